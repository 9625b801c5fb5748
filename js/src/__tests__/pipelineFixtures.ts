/* Pipeline records as the server sends them, typed by the generated OpenAPI types: a definition of three notebooks
 * (prepare → train, prepare → report, train → report) and runs of it in several states. */

import type { PipelineInfo, PipelineNode, PipelineNodeRun, PipelineRun } from '../api';

export function pipelineNode(name: string, after: string[] = [], extra: Partial<PipelineNode> = {}): PipelineNode {
  return {
    name,
    notebook: `${name}.ipynb`,
    job: null,
    after,
    parameters: {},
    cache: true,
    kernel: null,
    timeout: null,
    retries: 0,
    ...extra
  };
}

export function pipelineInfo(extra: Partial<PipelineInfo> = {}): PipelineInfo {
  return {
    name: 'daily',
    version: 2,
    created_at: '2025-01-01T10:00:00+00:00',
    parameters: { day: '2025-01-01' },
    nodes: [pipelineNode('prepare'), pipelineNode('train', ['prepare'], { cache: '1h' }), pipelineNode('report', ['prepare', 'train'], { cache: false })],
    ...extra
  };
}

export function nodeRun(status: PipelineNodeRun['status'], extra: Partial<PipelineNodeRun> = {}): PipelineNodeRun {
  return {
    status,
    reason: null,
    run: null,
    started_at: null,
    ended_at: null,
    progress: null,
    ...extra
  };
}

export function pipelineRun(status: PipelineRun['status'], nodes: Record<string, PipelineNodeRun>, extra: Partial<PipelineRun> = {}): PipelineRun {
  return {
    run: 7,
    pipeline: 'daily',
    version: 2,
    status,
    started_at: '2025-01-01T10:00:00+00:00',
    ended_at: null,
    nodes,
    ...extra
  };
}
