/* Serving statistics in the sidebar: the stats and figure routes of functions and models, and the line that
 * shows them (counts, latencies over every server, a model's drift in words). */

import { json, makeRequest } from './server';

import { getFunctionFigure, getFunctionStats, getModelFigure, getModelReport, NbdeployAPIError } from '../api';
import { formatServing, servingOfModel } from '../format';

beforeEach(() => makeRequest.mockReset());

describe('serving routes', () => {
  it('asks for a function or model by its escaped name, a model for a version or alias', async () => {
    const stats = { name: 'a b', processes: 2, requests: 3, errors: 1, statuses: { '200': 2, '422': 1 }, latency_ms: {}, histogram: {} };
    makeRequest.mockResolvedValueOnce(json(stats));
    expect(await getFunctionStats('a b')).toEqual(stats);
    makeRequest.mockResolvedValueOnce(json({ name: 'churn', stats: {}, drift: {} }));
    await getModelReport('churn', { alias: 'production' });
    expect(makeRequest.mock.calls.map(c => c[0])).toEqual([
      'http://lab/nbdeploy/api/functions/a%20b/stats',
      'http://lab/nbdeploy/api/models/churn/stats?alias=production'
    ]);
  });

  it('gives the figures as image blobs, and a missing one as an error naming it', async () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47]);
    makeRequest.mockResolvedValueOnce(new Response(png, { status: 200, headers: { 'Content-Type': 'image/png' } }));
    const blob = await getFunctionFigure('greet');
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(png);
    makeRequest.mockResolvedValueOnce(new Response('', { status: 404 }));
    const error = (await getModelFigure('ghost', { version: 2 }).catch(e => e)) as NbdeployAPIError;
    expect(error).toBeInstanceOf(NbdeployAPIError);
    expect(error.status).toBe(404);
    expect(error.message).toContain('the serving figure of ghost');
    expect(makeRequest.mock.calls.map(c => c[0])).toEqual([
      'http://lab/nbdeploy/api/functions/greet/stats.png',
      'http://lab/nbdeploy/api/models/ghost/stats.png?version=2'
    ]);
  });
});

describe('the serving line', () => {
  it('says so when nothing was served', () => {
    expect(formatServing({ requests: 0, errors: 0, processes: 0 })).toBe('No requests served yet.');
  });

  it('shows counts, latencies (or their histogram bucket) and servers', () => {
    expect(formatServing({ requests: 1, errors: 0, processes: 1, latency_ms: { p50: 3.14, p99: 42.4 } })).toBe(
      '1 request · 0 errors · p50 3.1 ms · p99 42 ms · 1 server'
    );
    expect(formatServing({ requests: 12, errors: 1, processes: 2, latency_ms: { p50: '+Inf' } })).toBe(
      '12 requests · 1 error · p50 +Inf ms · p99 – · 2 servers'
    );
  });

  it("reads a model's report: the fleet's numbers and its drift in words", () => {
    const report = {
      name: 'churn',
      stats: { requests: 5, errors: 0, processes: 3, latency_ms: { p50: 2, p99: 8 } },
      drift: { columns: { age: {}, tenure: {} }, drifted: ['age'] }
    };
    expect(servingOfModel(report)).toEqual({
      requests: 5,
      errors: 0,
      processes: 3,
      latency_ms: { p50: 2, p99: 8 },
      drift: 'drift in 1 of 2 columns'
    });
    expect(servingOfModel({ name: 'x', stats: {}, drift: { note: 'no profile' } }).drift).toBeUndefined();
  });
});
