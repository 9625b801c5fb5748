/* The pipeline routes of api.ts (method, path, JSON body; the record as the server sent it) and the live run
 * poller: it loads a run until it ended, then stops, and stops at once when its view is disposed. JupyterLab's
 * ServerConnection is the boundary (real `Response`s); timers are jest's. */

import { json, makeRequest, sent } from './server';

import {
  cancelPipelineRun,
  deletePipeline,
  getPipelineRun,
  listPipelineRuns,
  listPipelines,
  NbdeployAPIError,
  PipelineRun,
  previewPipeline,
  putPipeline,
  startPipelineRun
} from '../api';
import { PipelineRunPoller } from '../pipelines/poller';
import { nodeRun, pipelineInfo, pipelineRun } from './pipelineFixtures';

// the poller's `window` timers are the global ones at call time (jest's fake timers in the poller tests)
(globalThis as any).window = {
  setTimeout: (fn: () => void, ms?: number) => setTimeout(fn, ms),
  clearTimeout: (id?: number) => clearTimeout(id)
};

afterEach(() => makeRequest.mockReset());

describe('pipeline routes', () => {
  it('lists pipelines and a pipeline’s runs from their list answers', async () => {
    makeRequest.mockResolvedValueOnce(json({ pipelines: [pipelineInfo()] }));
    expect((await listPipelines())[0].nodes.map(n => n.name)).toEqual(['prepare', 'train', 'report']);
    makeRequest.mockResolvedValueOnce(json({ runs: [pipelineRun('running', {})] }));
    expect((await listPipelineRuns('daily v2'))[0].run).toBe(7);
    expect(sent(1)[1]).toBe('http://lab/nbdeploy/api/pipelines/daily%20v2/runs');
  });

  it('sends a file’s text and path to preview and put', async () => {
    const body = { yaml: 'name: daily\n', path: 'flows/daily.pipeline.yaml' };
    makeRequest.mockResolvedValueOnce(json(pipelineInfo({ version: null })));
    expect((await previewPipeline(body)).version).toBeNull();
    expect(sent()).toEqual(['POST', 'http://lab/nbdeploy/api/pipelines/preview', body]);
    makeRequest.mockResolvedValueOnce(json(pipelineInfo({ version: 3 })));
    expect((await putPipeline(body)).version).toBe(3);
    expect(sent(1)).toEqual(['POST', 'http://lab/nbdeploy/api/pipelines', body]);
  });

  it('gives the server’s message naming the bad node when a preview is rejected', async () => {
    const message = "node 'train' runs after 'ghost', which is not a node of the pipeline";
    makeRequest.mockResolvedValueOnce(json({ error: { type: 'PipelineSpecError', message } }, 422));
    const error = await previewPipeline({ yaml: 'x', path: 'a.pipeline.yaml' }).catch(e => e);
    expect(error).toBeInstanceOf(NbdeployAPIError);
    expect(error.status).toBe(422);
    expect(error.message).toBe(`PipelineSpecError: ${message}`);
  });

  it('starts, reads and cancels runs, and deletes a pipeline', async () => {
    makeRequest.mockImplementation(async () => json(pipelineRun('queued', {})));
    const request = { parameters: { day: 'x' }, only: ['train'], from: null, force: [] };
    await startPipelineRun('daily', request);
    await getPipelineRun(7);
    await cancelPipelineRun(7);
    makeRequest.mockResolvedValueOnce(new Response(null, { status: 204 }));
    await deletePipeline('daily');
    expect([0, 1, 2, 3].map(n => sent(n))).toEqual([
      ['POST', 'http://lab/nbdeploy/api/pipelines/daily/runs', request],
      ['GET', 'http://lab/nbdeploy/api/pipeline-runs/7', undefined],
      ['POST', 'http://lab/nbdeploy/api/pipeline-runs/7/cancel', undefined],
      ['DELETE', 'http://lab/nbdeploy/api/pipelines/daily', undefined]
    ]);
  });
});

describe('PipelineRunPoller', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  /** A poller over `states`, one per load (the last repeats); what it reported. */
  function follow(states: (PipelineRun | Error)[]) {
    const seen: string[] = [];
    const load = jest.fn(async () => {
      const next = states.length > 1 ? states.shift()! : states[0];
      if (next instanceof Error) {
        throw next;
      }
      return next;
    });
    const poller = new PipelineRunPoller({
      id: 7,
      load,
      intervalMs: () => 1000,
      onRun: r => seen.push(`${r.status}:${Object.values(r.nodes).map(n => n.status).join(',')}`),
      onError: m => seen.push(`error:${m}`)
    });
    return { poller, load, seen };
  }

  async function tick(ms = 1000) {
    await jest.advanceTimersByTimeAsync(ms);
  }

  it('follows a run until it ended, then stops loading it', async () => {
    const { poller, load, seen } = follow([
      pipelineRun('running', { a: nodeRun('running') }),
      pipelineRun('running', { a: nodeRun('succeeded') }),
      pipelineRun('succeeded', { a: nodeRun('succeeded') })
    ]);
    poller.start();
    await tick(0);
    await tick();
    await tick();
    expect(seen).toEqual(['running:running', 'running:succeeded', 'succeeded:succeeded']);
    expect(poller.isStopped).toBe(true);
    await tick(5000);
    expect(load).toHaveBeenCalledTimes(3);
  });

  it('keeps trying after a failed load and reports it', async () => {
    const { poller, seen } = follow([new NbdeployAPIError('server error (pipeline-runs/7)', 500), pipelineRun('succeeded', {})]);
    poller.start();
    await tick(0);
    await tick();
    expect(seen).toEqual(['error:server error (pipeline-runs/7)', 'succeeded:']);
  });

  it('loads nothing more once disposed (its view closed)', async () => {
    const { poller, load } = follow([pipelineRun('running', { a: nodeRun('running') })]);
    poller.start();
    await tick(0);
    poller.dispose();
    await tick(5000);
    expect(load).toHaveBeenCalledTimes(1);
    expect(poller.isStopped).toBe(true);
  });

  it('follows an ended run again when poked (e.g. after a cancel)', async () => {
    const { poller, load } = follow([pipelineRun('succeeded', {})]);
    poller.start();
    await tick(0);
    poller.poke();
    await tick(0);
    expect(load).toHaveBeenCalledTimes(2);
  });
});
