/* The pipeline drawing's model (pipelines/graph.ts): the dagre layout of the `after` edges, each node's state in
 * words from the server's run record, and when a run is finished. */

import { arrowPath, drawnState, isRunFinished, NODE_HEIGHT, nodeTarget, pipelineFlow, routedPath, shapeKey, summarizeRun } from '../pipelines/graph';
import { nodeRun, pipelineInfo, pipelineNode, pipelineRun } from './pipelineFixtures';

describe('pipelineFlow', () => {
  it('draws one edge per `after` and lays upstream nodes above downstream ones', () => {
    const { nodes, edges } = pipelineFlow(pipelineInfo(), null);
    expect(nodes.map(n => n.id)).toEqual(['prepare', 'train', 'report']);
    expect(edges.map(e => e.id).sort()).toEqual(['prepare->report', 'prepare->train', 'train->report']);
    const y = Object.fromEntries(nodes.map(n => [n.id, n.position.y]));
    expect(y.prepare + NODE_HEIGHT).toBeLessThanOrEqual(y.train);
    expect(y.train + NODE_HEIGHT).toBeLessThanOrEqual(y.report);
  });

  it('puts independent nodes side by side without overlapping', () => {
    const info = pipelineInfo({ nodes: [pipelineNode('a'), pipelineNode('b'), pipelineNode('c', ['a', 'b'])] });
    const { nodes } = pipelineFlow(info, null);
    const [a, b] = nodes;
    expect(a.position.y).toBe(b.position.y);
    expect(Math.abs(a.position.x - b.position.x)).toBeGreaterThanOrEqual(a.width ?? 0);
  });

  it('gives each node its size and handles, so a redraw with new states needs no measuring (edges stay drawn)', () => {
    const { nodes, edges } = pipelineFlow(pipelineInfo(), null);
    for (const n of nodes) {
      expect(n.measured).toEqual({ width: n.width, height: n.height });
      expect(n.handles?.map(h => h.type).sort()).toEqual(['source', 'target']);
    }
    expect(edges.every(e => e.type === 'routed')).toBe(true);
  });

  it('draws the definition alone when no run is shown', () => {
    const { nodes, edges } = pipelineFlow(pipelineInfo(), null);
    expect(nodes.every(n => n.data.status === 'defined' && n.data.label === '' && n.data.jobRun === null)).toBe(true);
    expect(edges.every(e => !e.animated)).toBe(true);
  });

  it("colours each node by the run's state and animates the edges into a running node", () => {
    const run = pipelineRun('running', {
      prepare: nodeRun('succeeded', { run: 11 }),
      train: nodeRun('running', { run: 12, progress: { done: 2, total: 5 } }),
      report: nodeRun('queued')
    });
    const { nodes, edges } = pipelineFlow(pipelineInfo(), run);
    expect(nodes.map(n => [n.id, n.data.status, n.data.jobRun])).toEqual([
      ['prepare', 'succeeded', 11],
      ['train', 'running', 12],
      ['report', 'queued', null]
    ]);
    expect(edges.find(e => e.id === 'prepare->train')?.animated).toBe(true);
    expect(edges.find(e => e.id === 'train->report')?.animated).toBe(false);
    expect(edges.find(e => e.id === 'train->report')?.className).toContain('jp-nbdeploy-pedge-queued');
  });

  it('routes an edge that skips a rank beside the node of that rank, not through it', () => {
    const { nodes, edges } = pipelineFlow(pipelineInfo(), null);
    const train = nodes.find(n => n.id === 'train')!;
    const long = edges.find(e => e.id === 'prepare->report')!;
    const bends = long.data!.bends;
    const beside = bends.filter(p => p.y >= train.position.y && p.y <= train.position.y + NODE_HEIGHT);
    expect(beside.length).toBeGreaterThan(0);
    for (const p of beside) {
      expect(p.x < train.position.x || p.x > train.position.x + (train.width ?? 0)).toBe(true);
    }
    // an edge between adjacent ranks bends only in the gap between them
    const prepare = nodes.find(n => n.id === 'prepare')!;
    for (const p of edges.find(e => e.id === 'prepare->train')!.data!.bends) {
      expect(p.y).toBeGreaterThanOrEqual(prepare.position.y + NODE_HEIGHT);
      expect(p.y).toBeLessThanOrEqual(train.position.y);
    }
  });

  it('draws an edge as one vertical curve per leg', () => {
    expect(routedPath(0, 0, [], 10, 100)).toBe('M 0,0 C 0,50 10,50 10,100');
    expect(routedPath(0, 0, [{ x: 50, y: 100 }], 0, 200)).toBe('M 0,0 C 0,50 50,50 50,100 C 50,150 0,150 0,200');
  });

  it('points the arrowhead down onto the node the edge enters', () => {
    expect(arrowPath(100, 50)).toBe('M 94,41 L 106,41 L 100,50 Z');
  });

  it('names what a node runs: its notebook, or the stored job', () => {
    expect(nodeTarget(pipelineNode('a'))).toBe('a.ipynb');
    expect(nodeTarget(pipelineNode('b', [], { notebook: null, job: 'nightly' }))).toBe('job nightly');
  });

  it('ignores an `after` naming no node of the pipeline', () => {
    const info = pipelineInfo({ nodes: [pipelineNode('a', ['ghost'])] });
    expect(pipelineFlow(info, null).edges).toEqual([]);
  });
});

describe('drawnState', () => {
  it('says k/N cells while a node runs', () => {
    const run = pipelineRun('running', { train: nodeRun('running', { progress: { done: 2, total: 5 } }) });
    expect(drawnState('train', run)).toMatchObject({ label: 'running · 2/5 cells', fraction: 0.4 });
  });

  it('says "running" without a fraction before the cell count is known', () => {
    const run = pipelineRun('running', { train: nodeRun('running', { progress: null }) });
    expect(drawnState('train', run)).toMatchObject({ label: 'running', fraction: null });
  });

  it('gives the reason a node was skipped, as the server said it', () => {
    const run = pipelineRun('succeeded', { prepare: nodeRun('skipped', { reason: 'cached (run 3, same inputs)', run: 3 }) });
    expect(drawnState('prepare', run)).toMatchObject({
      status: 'skipped',
      label: 'skipped: cached (run 3, same inputs)',
      reason: 'cached (run 3, same inputs)',
      jobRun: 3
    });
  });

  it("gives a failed node's error and why a downstream node was cancelled", () => {
    const run = pipelineRun('cancelled', {
      train: nodeRun('failed', { reason: 'ValueError: no rows', run: 12 }),
      report: nodeRun('cancelled', { reason: "upstream 'train' failed" }),
      publish: nodeRun('succeeded')
    });
    expect(drawnState('train', run)).toMatchObject({ status: 'failed', label: 'failed: ValueError: no rows', jobRun: 12 });
    expect(drawnState('report', run)).toMatchObject({ status: 'cancelled', label: "cancelled: upstream 'train' failed" });
    expect(drawnState('publish', run)).toMatchObject({ status: 'succeeded', label: 'succeeded' });
  });

  it('marks a node the run does not include', () => {
    const run = pipelineRun('running', {});
    expect(drawnState('report', run)).toMatchObject({ status: 'defined', label: 'not in this run' });
  });
});

describe('runs', () => {
  it('is finished only when the run and every node ended', () => {
    expect(isRunFinished(pipelineRun('succeeded', { a: nodeRun('succeeded'), b: nodeRun('skipped') }))).toBe(true);
    expect(isRunFinished(pipelineRun('failed', { a: nodeRun('failed'), b: nodeRun('cancelled') }))).toBe(true);
    expect(isRunFinished(pipelineRun('running', { a: nodeRun('succeeded') }))).toBe(false);
    expect(isRunFinished(pipelineRun('queued', {}))).toBe(false);
    expect(isRunFinished(pipelineRun('failed', { a: nodeRun('running') }))).toBe(false);
  });

  it('counts node states in the order a run goes through them', () => {
    const run = pipelineRun('running', {
      a: nodeRun('skipped'),
      b: nodeRun('succeeded'),
      c: nodeRun('running'),
      d: nodeRun('succeeded')
    });
    expect(summarizeRun(run)).toBe('2 succeeded · 1 running · 1 skipped');
  });

  it('changes the shape key only when nodes or edges change', () => {
    const info = pipelineInfo();
    const renamed = pipelineInfo({ nodes: info.nodes.map(n => ({ ...n, notebook: `x/${n.notebook}` })) });
    expect(shapeKey(renamed)).toBe(shapeKey(info));
    const rewired = pipelineInfo({ nodes: [pipelineNode('prepare'), pipelineNode('train'), pipelineNode('report', ['train'])] });
    expect(shapeKey(rewired)).not.toBe(shapeKey(info));
  });
});
