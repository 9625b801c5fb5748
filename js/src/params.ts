/**
 * Parameters: read them from a notebook's `parameters` cell, describe them as typed form fields, and turn
 * what the user typed back into JSON values.
 *
 * Pure functions (no JupyterLab imports) so that Jest tests them directly.
 */

/** The kinds of value a parameter field edits. */
export type ParamType = 'int' | 'float' | 'bool' | 'str' | 'list' | 'dict' | 'none' | 'expr';

/** One parameter: its name, type, default value (JSON) and the comment written beside it. */
export interface NotebookParameter {
  name: string;
  type: ParamType;
  /** The default as a JSON value; for `expr` the Python source, which cannot be evaluated here. */
  default: unknown;
  /** The Python source of the default, as written in the cell. */
  source: string;
  /** The trailing `# comment`, if any. */
  help?: string;
  /** Whether the value must be given (request schemas with `required`). */
  required?: boolean;
}

/** A value that could not be parsed: `message` says why, for the user. */
export class ParseError extends Error {}

// --- a small reader of Python literals --------------------------------------------------------------

class LiteralReader {
  private pos = 0;
  constructor(private readonly text: string) {}

  read(): unknown {
    const value = this.value();
    this.space();
    if (this.pos < this.text.length) {
      throw new ParseError(`unexpected "${this.text.slice(this.pos, this.pos + 10)}"`);
    }
    return value;
  }

  private space(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) {
      this.pos++;
    }
  }

  private value(): unknown {
    this.space();
    const ch = this.text[this.pos];
    if (ch === undefined) {
      throw new ParseError('a value is missing');
    }
    if (ch === '[') {
      return this.sequence('[', ']');
    }
    if (ch === '(') {
      return this.sequence('(', ')');
    }
    if (ch === '{') {
      return this.mapping();
    }
    const stringStart = /^[rRuU]?(['"])/.exec(this.text.slice(this.pos, this.pos + 2));
    if (stringStart) {
      return this.string();
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.pos));
    if (word) {
      this.pos += word[0].length;
      const constants: Record<string, unknown> = { True: true, False: false, None: null };
      if (word[0] in constants) {
        return constants[word[0]];
      }
      throw new ParseError(`"${word[0]}" is not a literal`);
    }
    const number = /^[-+]?(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][-+]?\d+)?/.exec(this.text.slice(this.pos));
    if (number) {
      this.pos += number[0].length;
      const n = Number(number[0].replace(/_/g, ''));
      if (Number.isNaN(n)) {
        throw new ParseError(`"${number[0]}" is not a number`);
      }
      return n;
    }
    throw new ParseError(`unexpected "${this.text.slice(this.pos, this.pos + 10)}"`);
  }

  private sequence(open: string, close: string): unknown[] {
    this.pos++; // open
    const items: unknown[] = [];
    for (;;) {
      this.space();
      if (this.text[this.pos] === close) {
        this.pos++;
        return items;
      }
      items.push(this.value());
      this.space();
      if (this.text[this.pos] === ',') {
        this.pos++;
      } else if (this.text[this.pos] !== close) {
        throw new ParseError(`expected "," or "${close}" in ${open}${close}`);
      }
    }
  }

  private mapping(): Record<string, unknown> {
    this.pos++; // {
    const out: Record<string, unknown> = {};
    for (;;) {
      this.space();
      if (this.text[this.pos] === '}') {
        this.pos++;
        return out;
      }
      const key = this.value();
      if (typeof key !== 'string' && typeof key !== 'number') {
        throw new ParseError('dictionary keys must be strings or numbers');
      }
      this.space();
      if (this.text[this.pos] !== ':') {
        throw new ParseError('expected ":" in a dictionary');
      }
      this.pos++;
      out[String(key)] = this.value();
      this.space();
      if (this.text[this.pos] === ',') {
        this.pos++;
      } else if (this.text[this.pos] !== '}') {
        throw new ParseError('expected "," or "}" in a dictionary');
      }
    }
  }

  private string(): string {
    let raw = false;
    if (/[rRuU]/.test(this.text[this.pos])) {
      raw = /[rR]/.test(this.text[this.pos]);
      this.pos++;
    }
    const quote = this.text.startsWith(this.text[this.pos].repeat(3), this.pos)
      ? this.text[this.pos].repeat(3)
      : this.text[this.pos];
    this.pos += quote.length;
    let out = '';
    while (this.pos < this.text.length) {
      if (this.text.startsWith(quote, this.pos)) {
        this.pos += quote.length;
        return out;
      }
      const ch = this.text[this.pos];
      if (ch === '\n' && quote.length === 1) {
        break;
      }
      if (ch === '\\' && !raw) {
        const next = this.text[this.pos + 1];
        const escapes: Record<string, string> = {
          n: '\n',
          t: '\t',
          r: '\r',
          '0': '\0',
          '\\': '\\',
          "'": "'",
          '"': '"',
          '\n': ''
        };
        if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(this.text.slice(this.pos + 2, this.pos + 6))) {
          out += String.fromCharCode(parseInt(this.text.slice(this.pos + 2, this.pos + 6), 16));
          this.pos += 6;
          continue;
        }
        out += next in escapes ? escapes[next] : `\\${next}`;
        this.pos += 2;
        continue;
      }
      out += ch;
      this.pos++;
    }
    throw new ParseError('a string is not closed');
  }
}

/** Parse a Python literal (numbers, strings, True/False/None, lists, tuples, dicts) into a JSON value. */
export function parsePythonLiteral(source: string): unknown {
  return new LiteralReader(source).read();
}

/** The parameter type of a JSON value. */
export function typeOfValue(value: unknown): ParamType {
  if (value === null || value === undefined) {
    return 'none';
  }
  if (typeof value === 'boolean') {
    return 'bool';
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? 'int' : 'float';
  }
  if (typeof value === 'string') {
    return 'str';
  }
  if (Array.isArray(value)) {
    return 'list';
  }
  return 'dict';
}

// --- the parameters cell ----------------------------------------------------------------------------

/** Index of the `#` that starts a comment in a line of Python, or -1 (quotes are respected). */
function commentStart(line: string): number {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (ch === '\\') {
        i++;
      } else if (line.startsWith(quote, i)) {
        i += quote.length - 1;
        quote = null;
      }
    } else if (ch === '#') {
      return i;
    } else if (ch === '"' || ch === "'") {
      quote = line.startsWith(ch.repeat(3), i) ? ch.repeat(3) : ch;
      i += quote.length - 1;
    }
  }
  return -1;
}

/** Whether brackets and quotes of a statement are balanced, i.e. the statement is complete. */
function isComplete(code: string): boolean {
  let depth = 0;
  let quote: string | null = null;
  for (let i = 0; i < code.length; i++) {
    const ch = code[i];
    if (quote) {
      if (ch === '\\') {
        i++;
      } else if (code.startsWith(quote, i)) {
        i += quote.length - 1;
        quote = null;
      }
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = code.startsWith(ch.repeat(3), i) ? ch.repeat(3) : ch;
      i += quote.length - 1;
    } else if ('([{'.includes(ch)) {
      depth++;
    } else if (')]}'.includes(ch)) {
      depth--;
    }
  }
  return depth <= 0 && quote === null;
}

const ANNOTATION_TYPES: Record<string, ParamType> = {
  int: 'int',
  float: 'float',
  bool: 'bool',
  str: 'str',
  list: 'list',
  dict: 'dict'
};

/**
 * Read the assignments of a `parameters` cell: `name = literal  # optional comment`, one per statement
 * (a statement may span lines inside brackets or a triple-quoted string; `name: type = value` works too).
 *
 * Values that are not literals (`date.today()`) come back with type `expr` and their source as default.
 * Lines that are not assignments (imports, comments) are skipped. Returns the parameters in cell order;
 * a name assigned twice keeps its last value, as Python would.
 */
export function parseParametersCell(source: string): NotebookParameter[] {
  const found = new Map<string, NotebookParameter>();
  const lines = source.replace(/\r\n?/g, '\n').split('\n');
  const split = (line: string): [string, string | undefined] => {
    const hash = commentStart(line);
    return hash < 0 ? [line, undefined] : [line.slice(0, hash), line.slice(hash + 1).trim() || undefined];
  };
  for (let i = 0; i < lines.length; i++) {
    // a statement continues over the next lines while its brackets or quotes are open; comments are
    // cut line by line, and the first line's comment is the parameter's help
    const [first, help] = split(lines[i]);
    let code = first;
    while (!isComplete(code) && i + 1 < lines.length) {
      code += '\n' + split(lines[++i])[0];
    }
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*([A-Za-z_][\w.[\], ]*?))?\s*=(?!=)\s*([\s\S]+?)\s*;?\s*$/.exec(code.trim());
    if (!m) {
      continue;
    }
    const [, name, annotation, valueSource] = m;
    let type: ParamType;
    let value: unknown;
    try {
      value = parsePythonLiteral(valueSource);
      type = typeOfValue(value);
      const annotated = annotation ? ANNOTATION_TYPES[annotation.trim().split('[')[0]] : undefined;
      if (annotated === 'float' && type === 'int') {
        type = 'float';
      } else if (annotated && type === 'none') {
        type = annotated;
      }
    } catch {
      type = 'expr';
      value = valueSource;
    }
    found.delete(name);
    found.set(name, { name, type, default: value, source: valueSource, ...(help ? { help } : {}) });
  }
  return [...found.values()];
}

/** A notebook cell as stored in an .ipynb (only what we read). */
export interface CellLike {
  cell_type: string;
  source: string | string[];
  metadata?: { tags?: string[]; [key: string]: unknown };
}

/** The source of the first cell tagged `parameters`, or null when the notebook has none. */
export function findParametersSource(cells: CellLike[]): string | null {
  for (const cell of cells) {
    if (cell.cell_type === 'code' && (cell.metadata?.tags ?? []).includes('parameters')) {
      return cellSource(cell);
    }
  }
  return null;
}

// --- form values ------------------------------------------------------------------------------------

/** The text a form field shows for a parameter's value. */
export function formatValue(type: ParamType, value: unknown): string {
  switch (type) {
    case 'str':
    case 'expr':
      return value === null || value === undefined ? '' : String(value);
    case 'none':
      return '';
    case 'bool':
      return value ? 'true' : 'false';
    case 'list':
    case 'dict':
      return JSON.stringify(value ?? (type === 'list' ? [] : {}));
    default:
      return value === null || value === undefined ? '' : String(value);
  }
}

/**
 * Turn what the user typed into the JSON value for a parameter of `type`.
 *
 * Throws a {@link ParseError} whose message tells the user what to type instead. Empty text gives
 * `null` for `none` parameters and for optional ones; lists and dicts are JSON (Python literals accepted).
 */
export function coerceValue(type: ParamType, input: string | boolean): unknown {
  if (typeof input === 'boolean') {
    if (type !== 'bool') {
      throw new ParseError('expected text, not a checkbox');
    }
    return input;
  }
  const text = input.trim();
  switch (type) {
    case 'str':
      return input;
    case 'expr':
      return input;
    case 'bool':
      if (/^(true|yes|1)$/i.test(text)) {
        return true;
      }
      if (/^(false|no|0)$/i.test(text)) {
        return false;
      }
      throw new ParseError('expected true or false');
    case 'int':
      if (!/^[-+]?\d[\d_]*$/.test(text)) {
        throw new ParseError(`expected a whole number, not "${text}"`);
      }
      return Number(text.replace(/_/g, ''));
    case 'float': {
      const n = Number(text.replace(/_/g, ''));
      if (text === '' || Number.isNaN(n)) {
        throw new ParseError(`expected a number, not "${text}"`);
      }
      return n;
    }
    case 'none': {
      if (text === '' || text === 'None' || text === 'null') {
        return null;
      }
      // a parameter whose default is None takes any JSON or Python literal, else the text itself
      try {
        return JSON.parse(text);
      } catch {
        try {
          return parsePythonLiteral(text);
        } catch {
          return input;
        }
      }
    }
    case 'list':
    case 'dict': {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        try {
          value = parsePythonLiteral(text);
        } catch (e) {
          throw new ParseError(`expected a JSON ${type === 'list' ? 'list like [1, 2]' : 'object like {"a": 1}'}`);
        }
      }
      const isList = Array.isArray(value);
      const isDict = typeof value === 'object' && value !== null && !isList;
      if ((type === 'list' && !isList) || (type === 'dict' && !isDict)) {
        throw new ParseError(`expected a JSON ${type === 'list' ? 'list like [1, 2]' : 'object like {"a": 1}'}`);
      }
      return value;
    }
  }
}

/**
 * Coerce every field of a form. Returns the values that differ from the defaults (or all, with
 * `includeDefaults`) and the per-field error messages; `errors` is empty when the form is valid.
 */
export function collectValues(
  params: NotebookParameter[],
  inputs: Record<string, string | boolean>,
  includeDefaults = false
): { values: Record<string, unknown>; errors: Record<string, string> } {
  const values: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const p of params) {
    const input = inputs[p.name];
    const untouched = input === undefined || input === initialInput(p);
    const emptied = typeof input === 'string' && input.trim() === '' && p.type !== 'str';
    if (untouched || emptied) {
      if (p.required && (p.default === undefined || emptied)) {
        errors[p.name] = 'a value is required';
      } else if ((includeDefaults || p.required) && p.type !== 'expr' && p.default !== undefined) {
        values[p.name] = p.default;
      }
      continue;
    }
    try {
      const value = coerceValue(p.type, input);
      if (p.type === 'expr' && value === p.default) {
        continue; // left as written in the notebook: the notebook computes it
      }
      if (includeDefaults || p.required || JSON.stringify(value) !== JSON.stringify(p.default)) {
        values[p.name] = value;
      }
    } catch (e) {
      errors[p.name] = (e as Error).message;
    }
  }
  return { values, errors };
}

/** The text (or checkbox state) a parameter's field starts with: its default; empty for expressions. */
export function initialInput(p: NotebookParameter): string | boolean {
  if (p.type === 'bool') {
    return p.default === true;
  }
  return p.type === 'expr' ? '' : formatValue(p.type, p.default);
}

/** JSON-schema property (as in an OpenAPI request body) to a parameter type. */
export function schemaType(schema: { type?: string | string[]; anyOf?: { type?: string }[] }): ParamType {
  let t = schema.type;
  if (!t && schema.anyOf) {
    t = schema.anyOf.map(s => s.type ?? '').filter(x => x && x !== 'null');
  }
  const first = Array.isArray(t) ? t.find(x => x !== 'null') : t;
  switch (first) {
    case 'integer':
      return 'int';
    case 'number':
      return 'float';
    case 'boolean':
      return 'bool';
    case 'string':
      return 'str';
    case 'array':
      return 'list';
    case 'object':
      return 'dict';
    default:
      return 'none';
  }
}

/** A JSON schema of an object (a function's request body) as form parameters. */
export function schemaToParameters(schema: {
  properties?: Record<string, { type?: string | string[]; default?: unknown; description?: string; title?: string }>;
  required?: string[];
}): NotebookParameter[] {
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties ?? {}).map(([name, prop]) => {
    const type = schemaType(prop);
    return {
      name,
      type,
      default: prop.default,
      source: prop.default === undefined ? '' : JSON.stringify(prop.default),
      required: required.has(name),
      ...(prop.description || prop.title ? { help: prop.description ?? prop.title } : {})
    };
  });
}

/** The source of a cell as one string (nbformat allows a list of lines). */
export function cellSource(cell: { source?: string | string[] }): string {
  return Array.isArray(cell.source) ? cell.source.join('') : cell.source ?? '';
}

/**
 * A job name from a notebook path: the file name without `.ipynb`, lower-cased, other characters
 * replaced by `-`, fitting `^[a-z0-9][a-z0-9._-]{0,63}$`.
 */
export function jobNameFromPath(path: string): string {
  const base = path.split('/').pop() ?? '';
  const stem = base.replace(/\.ipynb$/i, '');
  const name = stem
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .replace(/-+$/, '')
    .slice(0, 64);
  return name || 'notebook';
}

/**
 * Where the HTML of run `runId` of a notebook goes: beside it, as `<notebook stem>-run-<id>.html`
 * (`reports/Sales Q1.ipynb`, 12 → `reports/Sales Q1-run-12.html`).
 */
export function htmlOutputPath(notebookPath: string, runId: string): string {
  const slash = notebookPath.lastIndexOf('/');
  const dir = slash >= 0 ? notebookPath.slice(0, slash + 1) : '';
  const base = notebookPath.slice(slash + 1);
  const stem = base.replace(/\.ipynb$/i, '') || 'notebook';
  const id = String(runId).replace(/[/\\]+/g, '-'); // run ids are numbers; never a folder
  return `${dir}${stem}-run-${id}.html`;
}

/** Why `name` is not a valid nbdeploy name, or null when it is. */
export function validateName(name: string): string | null {
  if (!name) {
    return 'enter a name';
  }
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(name)) {
    return 'use lower-case letters, digits, ".", "_" and "-" (starting with a letter or digit, at most 64)';
  }
  return null;
}

const DECLARED_TYPES: Record<string, ParamType> = {
  int: 'int',
  integer: 'int',
  float: 'float',
  number: 'float',
  bool: 'bool',
  boolean: 'bool',
  str: 'str',
  string: 'str',
  list: 'list',
  array: 'list',
  dict: 'dict',
  object: 'dict'
};

/**
 * The parameters of a stored job as form fields. The jobs API gives each default as Python source
 * (papermill's inspection: `"1000"`, `"'eu-west'"`) with an inferred type name; a default that is not
 * a literal becomes an `expr` field.
 */
export function storedParameters(
  infos: { name: string; type?: string; default?: unknown; help?: string }[]
): NotebookParameter[] {
  return infos.map(p => {
    const help = p.help ? { help: p.help } : {};
    const source = typeof p.default === 'string' ? p.default : JSON.stringify(p.default ?? null);
    let value = p.default;
    if (typeof p.default === 'string') {
      try {
        value = parsePythonLiteral(p.default);
      } catch {
        return { name: p.name, type: 'expr', default: p.default, source, ...help };
      }
    }
    const declared = p.type ? DECLARED_TYPES[p.type] : undefined;
    let type = typeOfValue(value);
    if ((declared === 'float' && type === 'int') || (declared && type === 'none')) {
      type = declared;
    }
    return { name: p.name, type, default: value, source, ...help };
  });
}

/** The field type for a column of a pandas dtype (`float64`, `Int32`, `bool`, `object`, `datetime64[ns]`, …). */
export function dtypeParamType(dtype: string): ParamType {
  const d = dtype.toLowerCase();
  if (/^(float|double)/.test(d)) {
    return 'float';
  }
  if (/^u?int/.test(d)) {
    return 'int';
  }
  if (d.startsWith('bool')) {
    return 'bool';
  }
  if (['object', 'str', 'string', 'category'].includes(d) || d.startsWith('string') || d.startsWith('datetime')) {
    return 'str';
  }
  return 'none';
}

/**
 * A model's input columns as form fields (every one required), starting from the values of `record`
 * (one example row). Columns of other dtypes take any JSON value.
 */
export function columnParameters(columns: { name: string; dtype: string }[], record: Record<string, unknown> = {}): NotebookParameter[] {
  return columns.map(c => {
    const type = dtypeParamType(c.dtype);
    const value = record[c.name];
    return {
      name: c.name,
      type,
      default: value,
      source: value === undefined ? '' : JSON.stringify(value),
      required: true,
      ...(type === 'none' ? { help: `dtype ${c.dtype}: any JSON value` } : {})
    };
  });
}
