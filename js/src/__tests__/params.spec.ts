import {
  coerceValue,
  collectValues,
  findParametersSource,
  htmlOutputPath,
  jobNameFromPath,
  validateName,
  parseParametersCell,
  parsePythonLiteral,
  schemaToParameters,
  storedParameters
} from '../params';

describe('parsePythonLiteral', () => {
  it.each([
    ['1', 1],
    ['-3', -3],
    ['1_000', 1000],
    ['2.5', 2.5],
    ['1e-3', 0.001],
    ['True', true],
    ['False', false],
    ['None', null],
    ["'single'", 'single'],
    ['"double"', 'double'],
    ['"with \\"escape\\" and \\n"', 'with "escape" and \n'],
    ["r'C:\\path'", 'C:\\path'],
    ['"""triple"""', 'triple'],
    ["[1, 'a', None, True]", [1, 'a', null, true]],
    ['(1, 2,)', [1, 2]],
    ["{'a': 1, \"b\": [2, 3], 4: None}", { a: 1, b: [2, 3], '4': null }],
    ['[]', []],
    ['{}', {}]
  ])('reads %s', (source, value) => {
    expect(parsePythonLiteral(source)).toEqual(value);
  });

  it.each(['date.today()', '1 + 2', "'unclosed", '[1, 2', 'x'])('refuses %s', source => {
    expect(() => parsePythonLiteral(source)).toThrow();
  });
});

describe('parseParametersCell', () => {
  const cell = [
    '# Parameters of the report',
    'import datetime',
    'n_rows = 1000  # how many rows to sample',
    'ratio = 0.25',
    'threshold: float = 1',
    'verbose = False',
    "region = 'eu-west'  # a # inside: 'ok'",
    'label = "it\'s # not a comment"',
    'tags = ["a", "b"]',
    'options = {',
    '    "depth": 3,  # nested comment',
    '    "mode": "fast",',
    '}',
    'start = datetime.date.today()',
    'output_path = None',
    'if n_rows > 10:',
    '    pass',
    'n_rows = 2000'
  ].join('\n');

  const params = parseParametersCell(cell);
  const byName = Object.fromEntries(params.map(p => [p.name, p]));

  it('finds every assignment in order, the last value winning', () => {
    expect(params.map(p => p.name)).toEqual([
      'ratio',
      'threshold',
      'verbose',
      'region',
      'label',
      'tags',
      'options',
      'start',
      'output_path',
      'n_rows'
    ]);
    expect(byName.n_rows).toMatchObject({ type: 'int', default: 2000 });
  });

  it('types each value and keeps comments as help', () => {
    expect(byName.ratio).toMatchObject({ type: 'float', default: 0.25 });
    expect(byName.threshold).toMatchObject({ type: 'float', default: 1 });
    expect(byName.verbose).toMatchObject({ type: 'bool', default: false });
    expect(byName.region).toMatchObject({ type: 'str', default: 'eu-west', help: "a # inside: 'ok'" });
    expect(byName.label).toMatchObject({ type: 'str', default: "it's # not a comment" });
    expect(byName.label.help).toBeUndefined();
    expect(byName.tags).toMatchObject({ type: 'list', default: ['a', 'b'] });
    expect(byName.options).toMatchObject({ type: 'dict', default: { depth: 3, mode: 'fast' } });
    expect(byName.output_path).toMatchObject({ type: 'none', default: null });
  });

  it('keeps a non-literal value as an expression', () => {
    expect(byName.start).toMatchObject({ type: 'expr', default: 'datetime.date.today()' });
  });

  it('reads nothing from an empty cell', () => {
    expect(parseParametersCell('')).toEqual([]);
    expect(parseParametersCell('# just a comment\n\n')).toEqual([]);
  });

  it('ignores comparisons', () => {
    expect(parseParametersCell('x == 1')).toEqual([]);
  });
});

describe('findParametersSource', () => {
  it('returns the first code cell tagged parameters', () => {
    const cells = [
      { cell_type: 'markdown', source: 'x = 1', metadata: { tags: ['parameters'] } },
      { cell_type: 'code', source: 'import os', metadata: {} },
      { cell_type: 'code', source: ['a = 1\n', 'b = 2'], metadata: { tags: ['parameters'] } }
    ];
    expect(findParametersSource(cells)).toBe('a = 1\nb = 2');
    expect(findParametersSource(cells.slice(0, 2))).toBeNull();
  });
});

describe('coerceValue', () => {
  it('parses typed input', () => {
    expect(coerceValue('int', ' 42 ')).toBe(42);
    expect(coerceValue('float', '2.5')).toBe(2.5);
    expect(coerceValue('float', '3')).toBe(3);
    expect(coerceValue('bool', true)).toBe(true);
    expect(coerceValue('bool', 'false')).toBe(false);
    expect(coerceValue('str', ' keep spaces ')).toBe(' keep spaces ');
    expect(coerceValue('list', '[1, "a"]')).toEqual([1, 'a']);
    expect(coerceValue('list', "['py', True]")).toEqual(['py', true]);
    expect(coerceValue('dict', '{"a": 1}')).toEqual({ a: 1 });
    expect(coerceValue('none', '')).toBeNull();
    expect(coerceValue('none', '5')).toBe(5);
    expect(coerceValue('none', 'some text')).toBe('some text');
  });

  it('explains bad input', () => {
    expect(() => coerceValue('int', '4.5')).toThrow('expected a whole number, not "4.5"');
    expect(() => coerceValue('float', 'abc')).toThrow('expected a number, not "abc"');
    expect(() => coerceValue('bool', 'maybe')).toThrow('expected true or false');
    expect(() => coerceValue('list', '{"a": 1}')).toThrow(/JSON list/);
    expect(() => coerceValue('dict', '[1]')).toThrow(/JSON object/);
    expect(() => coerceValue('dict', '{oops')).toThrow(/JSON object/);
  });
});

describe('collectValues', () => {
  const params = parseParametersCell('n = 10\nname = "x"\nflag = False\nwhen = today()');

  it('returns only what differs from the defaults', () => {
    const { values, errors } = collectValues(params, { n: '10', name: 'y', flag: true, when: 'today()' });
    expect(errors).toEqual({});
    expect(values).toEqual({ name: 'y', flag: true });
  });

  it('returns every value with includeDefaults, except expressions', () => {
    const { values } = collectValues(params, { n: '11' }, true);
    expect(values).toEqual({ n: 11, name: 'x', flag: false });
  });

  it('reports errors per field', () => {
    const { errors } = collectValues(params, { n: 'ten' });
    expect(errors).toEqual({ n: 'expected a whole number, not "ten"' });
  });

  it('requires required fields', () => {
    const fields = schemaToParameters({
      properties: { x: { type: 'integer' }, y: { type: 'string', default: 'hi', description: 'greeting' } },
      required: ['x']
    });
    expect(fields).toEqual([
      { name: 'x', type: 'int', default: undefined, source: '', required: true },
      { name: 'y', type: 'str', default: 'hi', source: '"hi"', required: false, help: 'greeting' }
    ]);
    expect(collectValues(fields, { y: 'hi' }).errors).toEqual({ x: 'a value is required' });
    expect(collectValues(fields, { x: '3', y: 'hi' }, true).values).toEqual({ x: 3, y: 'hi' });
  });
});

describe('names', () => {
  it('derives a job name from a notebook path', () => {
    expect(jobNameFromPath('reports/Daily Report (v2).ipynb')).toBe('daily-report-v2');
    expect(jobNameFromPath('_private.ipynb')).toBe('private');
    expect(jobNameFromPath('ÄÖÜ.ipynb')).toBe('notebook');
  });

  it('validates names', () => {
    expect(validateName('daily-report')).toBeNull();
    expect(validateName('Daily')).toMatch(/lower-case/);
    expect(validateName('')).toBe('enter a name');
  });
});

describe('storedParameters', () => {
  it('reads the Python sources the jobs API gives', () => {
    const fields = storedParameters([
      { name: 'n', type: 'int', default: '1000', help: 'rows' },
      { name: 'region', type: 'str', default: "'eu-west'" },
      { name: 'ratio', type: 'float', default: '1' },
      { name: 'when', type: 'None', default: 'date.today()' },
      { name: 'out', type: 'str', default: 'None' }
    ]);
    expect(fields).toEqual([
      { name: 'n', type: 'int', default: 1000, source: '1000', help: 'rows' },
      { name: 'region', type: 'str', default: 'eu-west', source: "'eu-west'" },
      { name: 'ratio', type: 'float', default: 1, source: '1' },
      { name: 'when', type: 'expr', default: 'date.today()', source: 'date.today()' },
      { name: 'out', type: 'str', default: null, source: 'None' }
    ]);
  });
});

describe('collectValues with untouched fields', () => {
  it('sends nothing for a field left as it started', () => {
    const fields = storedParameters([{ name: 'out', type: 'str', default: 'None' }]);
    expect(collectValues(fields, { out: '' })).toEqual({ values: {}, errors: {} });
    expect(collectValues(fields, { out: 'x.csv' }).values).toEqual({ out: 'x.csv' });
  });
});

describe('htmlOutputPath', () => {
  it('puts <stem>-run-<id>.html beside the notebook', () => {
    expect(htmlOutputPath('report.ipynb', '7')).toBe('report-run-7.html');
    expect(htmlOutputPath('reports/Sales Q1.ipynb', '12')).toBe('reports/Sales Q1-run-12.html');
    expect(htmlOutputPath('a/b/notes.IPYNB', '3')).toBe('a/b/notes-run-3.html');
    expect(htmlOutputPath('x.ipynb', 'a/b')).toBe('x-run-a-b.html');
  });
});
