/* The models REST answers (shapes copied from python/nbdeploy/models/manager.py: `ModelVersion.to_json`,
 * `ModelManager.info`), the request body "Try it" starts from, and the predict call. */

const makeRequest = jest.fn();
jest.mock('@jupyterlab/services', () => ({
  ServerConnection: { makeSettings: () => ({ baseUrl: 'http://lab/' }), makeRequest: (...args: unknown[]) => makeRequest(...args) }
}));
jest.mock('@jupyterlab/coreutils', () => ({
  URLExt: { join: (...parts: string[]) => parts.map((p, i) => (i ? p.replace(/^\/+/, '') : p.replace(/\/+$/, ''))).join('/') }
}));

import {
  deleteModel,
  deleteModelVersion,
  examplePayload,
  exampleRecord,
  listModels,
  NbdeployAPIError,
  placeholderValue,
  predictModel,
  setModelAlias,
  toModel,
  toModelVersion
} from '../api';
import { collectValues, columnParameters, dtypeParamType, initialInput } from '../params';

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

const SIGNATURE = {
  type: 'dataframe',
  columns: [
    { name: 'age', dtype: 'float64' },
    { name: 'tenure', dtype: 'int64' },
    { name: 'plan', dtype: 'str' }
  ]
};

function version(n: number, extra: Record<string, unknown> = {}) {
  return {
    name: 'churn',
    version: n,
    flavor: 'sklearn',
    format: 'skops',
    created_at: `2025-01-0${n}T10:00:00+00:00`,
    sha256: `abc${n}`,
    size: 10851,
    signature: SIGNATURE,
    metrics: { accuracy: 0.9 + n / 100 },
    params: {},
    tags: {},
    libraries: { 'scikit-learn': '1.9.1' },
    aliases: [],
    owner: null,
    method: 'predict',
    serving: {},
    note: '',
    path: '/nbdeploy/api/models/churn/predict',
    ...extra
  };
}

describe('model answers', () => {
  it('reads GET /models (the newest version of each)', async () => {
    makeRequest.mockResolvedValueOnce(json({ models: [version(2)] }));
    const [m] = await listModels();
    expect(makeRequest.mock.calls[0][0]).toBe('http://lab/nbdeploy/api/models');
    expect(m).toMatchObject({
      name: 'churn',
      version: '2',
      flavor: 'sklearn',
      method: 'predict',
      path: '/nbdeploy/api/models/churn/predict',
      metrics: { accuracy: 0.92 },
      aliases: []
    });
    expect(m.signature).toEqual(SIGNATURE);
  });

  it('reads GET /models/{name}: versions, and the {alias: version} map put onto them', () => {
    const m = toModel({
      ...version(2),
      latest_version: 2,
      aliases: { production: 1 },
      example: { dataframe_split: { columns: ['age', 'tenure', 'plan'], data: [[20.5, 1, 'basic']] } },
      versions: [version(1, { aliases: ['production'] }), version(2)]
    });
    expect(m.latest_version).toBe('2');
    expect(m.versions.map(v => [v.version, v.aliases])).toEqual([
      ['1', ['production']],
      ['2', []]
    ]);
    expect(m.aliases).toEqual([]);
    expect(m.example).toEqual({ dataframe_split: { columns: ['age', 'tenure', 'plan'], data: [[20.5, 1, 'basic']] } });
  });

  it('reads an array signature, and none', () => {
    expect(toModelVersion({ name: 'a', version: 1, signature: { type: 'ndarray', shape: [-1, 4], dtype: 'float32' } }).signature).toEqual({
      type: 'ndarray',
      shape: [-1, 4],
      dtype: 'float32'
    });
    const bare = toModelVersion({ name: 'b', version: 3, signature: null });
    expect(bare.signature).toBeNull();
    expect(bare.path).toBe('/nbdeploy/api/models/b/predict');
    expect(bare.flavor).toBe('generic');
  });
});

describe('the example "Try it" starts from', () => {
  it('takes the first row of the server example for a columnar model', () => {
    const example = { dataframe_split: { columns: ['age', 'tenure', 'plan'], data: [[20.5, 1, 'basic'], [40, 2, 'pro']] } };
    expect(exampleRecord(SIGNATURE.columns, example)).toEqual({ age: 20.5, tenure: 1, plan: 'basic' });
    expect(examplePayload(SIGNATURE as any, example)).toEqual({ dataframe_records: [{ age: 20.5, tenure: 1, plan: 'basic' }] });
  });

  it('fills placeholders from the dtypes without an example', () => {
    const columns = [...SIGNATURE.columns, { name: 'active', dtype: 'bool' }, { name: 'when', dtype: 'datetime64[ns]' }];
    expect(exampleRecord(columns)).toEqual({ age: 0, tenure: 0, plan: '', active: false, when: '' });
    expect(placeholderValue('UInt8')).toBe(0);
  });

  it('gives an array model one row: the example, else zeros of its shape', () => {
    const signature = { type: 'ndarray' as const, shape: [-1, 2, 3], dtype: 'float64' };
    expect(examplePayload(signature, { inputs: [[1, 2], [3, 4]] })).toEqual({ inputs: [[1, 2]] });
    expect(examplePayload(signature)).toEqual({
      inputs: [
        [
          [0, 0, 0],
          [0, 0, 0]
        ]
      ]
    });
    expect(examplePayload(null)).toEqual({ inputs: [] });
  });

  it('turns the columns into typed, required fields whose values make one record', () => {
    const params = columnParameters(SIGNATURE.columns, { age: 20.5, tenure: 1, plan: 'basic' });
    expect(params.map(p => [p.name, p.type, p.required])).toEqual([
      ['age', 'float', true],
      ['tenure', 'int', true],
      ['plan', 'str', true]
    ]);
    const inputs = Object.fromEntries(params.map(p => [p.name, initialInput(p)]));
    expect(inputs).toEqual({ age: '20.5', tenure: '1', plan: 'basic' });
    expect(collectValues(params, { ...inputs, tenure: '7' }, true)).toEqual({
      values: { age: 20.5, tenure: 7, plan: 'basic' },
      errors: {}
    });
    expect(collectValues(params, { ...inputs, tenure: 'seven', age: '' }, true).errors).toEqual({
      tenure: 'expected a whole number, not "seven"',
      age: 'a value is required'
    });
  });

  it.each([
    ['float64', 'float'],
    ['Float32', 'float'],
    ['int64', 'int'],
    ['uint8', 'int'],
    ['Int64', 'int'],
    ['bool', 'bool'],
    ['boolean', 'bool'],
    ['object', 'str'],
    ['str', 'str'],
    ['string[python]', 'str'],
    ['category', 'str'],
    ['datetime64[ns]', 'str'],
    ['complex128', 'none']
  ])('a %s column is a %s field', (dtype, type) => {
    expect(dtypeParamType(dtype)).toBe(type);
  });
});

describe('predictModel', () => {
  beforeEach(() => makeRequest.mockReset());

  it('posts the payload to the newest version, a number or an alias', async () => {
    makeRequest.mockImplementation(async () => json({ predictions: [1, 0], version: 2 }));
    const body = { dataframe_records: [{ age: 20.5, tenure: 1, plan: 'basic' }] };
    await expect(predictModel('churn', body)).resolves.toEqual({ predictions: [1, 0], version: '2' });
    await predictModel('churn', body, '1');
    await predictModel('churn', body, 'production');
    const urls = makeRequest.mock.calls.map(c => c[0]);
    expect(urls).toEqual([
      'http://lab/nbdeploy/api/models/churn/predict',
      'http://lab/nbdeploy/api/models/churn/predict?version=1',
      'http://lab/nbdeploy/api/models/churn/predict?alias=production'
    ]);
    expect(makeRequest.mock.calls[0][1]).toMatchObject({ method: 'POST', body: JSON.stringify(body) });
  });

  it('gives a 422 as a readable error naming the column', async () => {
    makeRequest.mockResolvedValueOnce(
      json(
        {
          error: {
            type: 'SignatureError',
            message: "the input does not fit the model's columns: tenure: missing column (row 0)",
            fields: { tenure: 'missing column (row 0)' }
          }
        },
        422
      )
    );
    const error = (await predictModel('churn', { dataframe_records: [{ age: 1 }] }).catch(e => e)) as NbdeployAPIError;
    expect(error).toBeInstanceOf(NbdeployAPIError);
    expect(error.status).toBe(422);
    expect(error.message).toBe("SignatureError: the input does not fit the model's columns: tenure: missing column (row 0)");
    expect(error.fields).toEqual({ tenure: 'missing column (row 0)' });
  });
});

describe('model management', () => {
  beforeEach(() => makeRequest.mockReset());

  it('deletes a model or one version, and moves an alias with PUT {"version": N}', async () => {
    makeRequest.mockImplementation(async (_url: string, init: RequestInit) =>
      init.method === 'DELETE' ? new Response(null, { status: 204 }) : json(version(2, { aliases: ['production'] }))
    );
    await expect(deleteModel('churn')).resolves.toBeUndefined();
    await expect(deleteModelVersion('churn', '1')).resolves.toBeUndefined();
    const moved = await setModelAlias('churn', 'production', '2');
    expect(moved).toMatchObject({ name: 'churn', version: '2', aliases: ['production'] });
    expect(makeRequest.mock.calls.map(c => [c[0], c[1].method])).toEqual([
      ['http://lab/nbdeploy/api/models/churn', 'DELETE'],
      ['http://lab/nbdeploy/api/models/churn/versions/1', 'DELETE'],
      ['http://lab/nbdeploy/api/models/churn/aliases/production', 'PUT']
    ]);
    expect(JSON.parse(makeRequest.mock.calls[2][1].body)).toEqual({ version: 2 });
  });

  it('gives a refused alias as a readable error', async () => {
    makeRequest.mockResolvedValueOnce(json({ error: { type: 'NotFoundError', message: "model 'churn' has no version 9" } }, 404));
    const error = (await setModelAlias('churn', 'staging', '9').catch(e => e)) as NbdeployAPIError;
    expect(error.status).toBe(404);
    expect(error.message).toBe("NotFoundError: model 'churn' has no version 9");
  });
});
