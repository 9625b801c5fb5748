/* The REST answers the Python handlers give (shapes copied from python/nbdeploy/<service>/handlers.py),
 * read by api.ts's normalisers; and requestAPI's readable errors. JupyterLab's modules are the boundary
 * here: ServerConnection.makeRequest is replaced by a function returning real `Response`s. */

const makeRequest = jest.fn();
jest.mock('@jupyterlab/services', () => ({
  ServerConnection: { makeSettings: () => ({ baseUrl: 'http://lab/' }), makeRequest: (...args: unknown[]) => makeRequest(...args) }
}));
jest.mock('@jupyterlab/coreutils', () => ({
  URLExt: { join: (...parts: string[]) => parts.map((p, i) => (i ? p.replace(/^\/+/, '') : p.replace(/\/+$/, ''))).join('/') }
}));

import {
  functionRequestSchema,
  listRuns,
  NbdeployAPIError,
  requestAPI,
  toFunction,
  toJob,
  toRun,
  toSchedule
} from '../api';

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

describe('normalisers', () => {
  it('reads a run', () => {
    const run = toRun({
      id: 7,
      job: 'report',
      job_version: 2,
      schedule_id: null,
      parameters: { n: 7 },
      status: 'running',
      attempt: 1,
      queued_at: '2025-01-01T10:00:00+00:00',
      started_at: '2025-01-01T10:00:01+00:00',
      finished_at: null,
      duration: null,
      progress: { current_cell: 3, cell_count: 12 },
      error: null,
      has_output: false,
      has_log: false
    });
    expect(run).toMatchObject({
      id: '7',
      job: 'report',
      job_version: '2',
      schedule_id: null,
      status: 'running',
      parameters: { n: 7 },
      created_at: '2025-01-01T10:00:00+00:00',
      progress: { done: 3, total: 12 },
      error: null,
      has_output: false
    });
    expect(run.duration_s).toBeGreaterThan(0); // still running: measured from started_at
  });

  it('reads a failed run with its error cell', () => {
    const run = toRun({
      id: 8,
      job: 'report',
      status: 'failed',
      duration: 1.5,
      error: { type: 'ValueError', message: 'boom', cell: 3, traceback: '...' },
      progress: { current_cell: null, cell_count: null }
    });
    expect(run.error).toBe('ValueError: boom (cell 4)');
    expect(run.duration_s).toBe(1.5);
    expect(run.progress).toBeNull();
  });

  it('reads a schedule', () => {
    expect(
      toSchedule({
        id: 3,
        job: 'report',
        cron: '30 6 * * 1-5',
        timezone: 'Europe/Berlin',
        parameters: {},
        paused: false,
        next_fire_at: '2025-01-02T05:30:00+00:00',
        last_fire_at: null
      })
    ).toEqual({
      id: '3',
      job: 'report',
      cron: '30 6 * * 1-5',
      timezone: 'Europe/Berlin',
      paused: false,
      parameters: {},
      next_fire_time: '2025-01-02T05:30:00+00:00',
      last_fire_time: null
    });
  });

  it('reads a job with papermill parameters and schedule ids', () => {
    const job = toJob({
      name: 'report',
      latest: 2,
      parameters: { n: { name: 'n', inferred_type_name: 'int', default: '3', help: 'the number' } },
      versions: [{ version: 1, created_at: 'a' }, { version: 2, created_at: 'b' }],
      schedules: [3]
    });
    expect(job).toMatchObject({
      name: 'report',
      latest_version: '2',
      created_at: 'b',
      parameters: [{ name: 'n', type: 'int', default: '3', help: 'the number' }],
      schedules: []
    });
  });

  it('reads a function, its path and aliases', () => {
    const fn = toFunction({
      name: 'greet',
      latest_version: 2,
      created_at: 'x',
      path: '/nbdeploy/api/functions/greet/invoke',
      description: '',
      aliases: { latest: 2, production: 1 },
      versions: [{ version: 1 }, { version: 2 }]
    });
    expect(fn.url).toBe('/nbdeploy/api/functions/greet/invoke');
    expect(fn.description).toBeUndefined();
    expect(fn.versions.map(v => [v.version, v.aliases])).toEqual([
      ['1', ['production']],
      ['2', ['latest']]
    ]);
  });

  it('finds a function request schema in the OpenAPI document', () => {
    const doc = {
      paths: {
        '/nbdeploy/api/functions/{name}': { get: {} },
        '/nbdeploy/api/functions/greet/invoke': {
          post: { requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/greet' } } } } }
        }
      },
      components: {
        schemas: { greet: { type: 'object', properties: { name: { type: 'string', default: 'world' } }, required: [] } }
      }
    };
    expect(functionRequestSchema(doc, 'greet')?.properties).toEqual({ name: { type: 'string', default: 'world' } });
    expect(functionRequestSchema(doc, 'other')).toBeNull();
  });
});

describe('requestAPI', () => {
  afterEach(() => makeRequest.mockReset());

  it('returns JSON, and undefined for 204', async () => {
    makeRequest.mockResolvedValueOnce(json({ runs: [{ id: 1, status: 'queued', queued_at: '2025-01-01' }, { id: 2, status: 'running', queued_at: '2025-01-02' }] }));
    const runs = await listRuns({ status: 'running', job: 'a b' });
    expect(makeRequest.mock.calls[0][0]).toBe('http://lab/nbdeploy/api/runs?status=running&job=a%20b');
    expect(runs.map(r => r.id)).toEqual(['2', '1']); // newest first
    makeRequest.mockResolvedValueOnce(new Response(null, { status: 204 }));
    await expect(requestAPI('functions/x', { method: 'DELETE' })).resolves.toBeUndefined();
  });

  it('turns an nbdeploy error body into a readable error with its field', async () => {
    makeRequest.mockResolvedValueOnce(
      json({ error: { type: 'InvalidInputError', message: "unknown field(s) ['x']", field: 'x' } }, 400)
    );
    const error = (await requestAPI('jobs/a/runs', { method: 'POST', body: '{}' }).catch(e => e)) as NbdeployAPIError;
    expect(error).toBeInstanceOf(NbdeployAPIError);
    expect(error.message).toBe("InvalidInputError: unknown field(s) ['x']");
    expect(error.status).toBe(400);
    expect(error.field).toBe('x');
    expect(makeRequest.mock.calls[0][1].headers['Content-Type']).toBe('application/json');
  });

  it('keeps a traceback out of the message', async () => {
    makeRequest.mockResolvedValueOnce(json({ error: { type: 'ZeroDivisionError', message: 'division by zero', traceback: 'Traceback…' } }, 500));
    const error = (await requestAPI('functions/f/invoke').catch(e => e)) as NbdeployAPIError;
    expect(error.message).toBe('ZeroDivisionError: division by zero');
    expect(error.traceback).toBe('Traceback…');
  });

  it('says the extension is missing on a non-nbdeploy 404', async () => {
    makeRequest.mockResolvedValueOnce(new Response('<html>404</html>', { status: 404, headers: { 'Content-Type': 'text/html' } }));
    await expect(requestAPI('jobs')).rejects.toThrow(/nbdeploy API is not available .*jupyter server extension list/);
  });

  it('says when the server cannot be reached', async () => {
    makeRequest.mockRejectedValueOnce(new TypeError('Failed to fetch'));
    await expect(requestAPI('jobs')).rejects.toThrow('Cannot reach the Jupyter server: Failed to fetch');
  });

  it('gives text answers as text', async () => {
    makeRequest.mockResolvedValueOnce(new Response('line 1\nline 2', { headers: { 'Content-Type': 'text/plain' } }));
    await expect(requestAPI('runs/1/log')).resolves.toBe('line 1\nline 2');
  });
});
