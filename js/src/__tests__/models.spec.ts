/* The models routes: `GET /models`, `GET /models/{name}` (nested: latest, versions, aliases, example, form),
 * predict with `?version=`/`?alias=`, alias and delete; records as the server sends them. */

import { json, makeRequest } from './server';

import {
  deleteModel,
  deleteModelVersion,
  getModel,
  listModels,
  ModelInfo,
  NbdeployAPIError,
  predictModel,
  setModelAlias
} from '../api';
import { field, modelVersion } from './fixtures';

beforeEach(() => makeRequest.mockReset());

describe('model answers', () => {
  it('gives GET /models (the newest version of each) as it is', async () => {
    makeRequest.mockResolvedValueOnce(json({ models: [modelVersion(2)] }));
    expect(await listModels()).toEqual([modelVersion(2)]);
    expect(makeRequest.mock.calls[0][0]).toBe('http://lab/nbdeploy/api/models');
  });

  it('gives GET /models/{name} nested, with the form of one row', async () => {
    const info: ModelInfo = {
      name: 'churn',
      latest: modelVersion(2),
      versions: [modelVersion(1, { aliases: ['production'] }), modelVersion(2)],
      aliases: { production: 1 },
      example: { dataframe_split: { columns: ['age'], data: [[23.5]] } },
      form: [field('age', 'float', '23.5', { default: 23.5, source: '23.5', required: true })]
    };
    makeRequest.mockResolvedValueOnce(json(info));
    expect(await getModel('churn')).toEqual(info);
    expect(makeRequest.mock.calls[0][0]).toBe('http://lab/nbdeploy/api/models/churn');
  });
});

describe('predictModel', () => {
  it('posts the payload to the newest version, a number or an alias', async () => {
    makeRequest.mockImplementation(async () => json({ predictions: [1, 0], version: 2 }));
    const body = { dataframe_records: [{ age: 20.5, tenure: 1 }] };
    await expect(predictModel('churn', body)).resolves.toEqual({ predictions: [1, 0], version: 2 });
    await predictModel('churn', body, { version: 1 });
    await predictModel('churn', body, { alias: 'production' });
    expect(makeRequest.mock.calls.map(c => c[0])).toEqual([
      'http://lab/nbdeploy/api/models/churn/predict',
      'http://lab/nbdeploy/api/models/churn/predict?version=1',
      'http://lab/nbdeploy/api/models/churn/predict?alias=production'
    ]);
    expect(makeRequest.mock.calls[0][1]).toMatchObject({ method: 'POST', body: JSON.stringify(body) });
  });

  it('gives a 422 as a readable error naming the column', async () => {
    const error422 = {
      type: 'SignatureError',
      message: "the input does not fit the model's columns: tenure: missing column (row 0)",
      fields: { tenure: 'missing column (row 0)' }
    };
    makeRequest.mockResolvedValueOnce(json({ error: error422 }, 422));
    const error = (await predictModel('churn', { dataframe_records: [{ age: 1 }] }).catch(e => e)) as NbdeployAPIError;
    expect(error).toBeInstanceOf(NbdeployAPIError);
    expect(error.status).toBe(422);
    expect(error.message).toBe("SignatureError: the input does not fit the model's columns: tenure: missing column (row 0)");
    expect(error.fields).toEqual({ tenure: 'missing column (row 0)' });
  });
});

describe('model management', () => {
  it('deletes a model or one version, and moves an alias with PUT {"version": N}', async () => {
    makeRequest.mockImplementation(async (_url: string, init: RequestInit) =>
      init.method === 'DELETE' ? new Response(null, { status: 204 }) : json(modelVersion(2, { aliases: ['production'] }))
    );
    await expect(deleteModel('churn')).resolves.toBeUndefined();
    await expect(deleteModelVersion('churn', 1)).resolves.toBeUndefined();
    expect(await setModelAlias('churn', 'production', 2)).toMatchObject({ version: 2, aliases: ['production'] });
    expect(makeRequest.mock.calls.map(c => [c[0], c[1].method])).toEqual([
      ['http://lab/nbdeploy/api/models/churn', 'DELETE'],
      ['http://lab/nbdeploy/api/models/churn/versions/1', 'DELETE'],
      ['http://lab/nbdeploy/api/models/churn/aliases/production', 'PUT']
    ]);
    expect(JSON.parse(makeRequest.mock.calls[2][1].body)).toEqual({ version: 2 });
  });

  it('gives a refused alias as a readable error', async () => {
    makeRequest.mockResolvedValueOnce(json({ error: { type: 'NotFoundError', message: "model 'churn' has no version 9" } }, 404));
    const error = (await setModelAlias('churn', 'staging', 9).catch(e => e)) as NbdeployAPIError;
    expect(error.status).toBe(404);
    expect(error.message).toBe("NotFoundError: model 'churn' has no version 9");
  });
});
