/**
 * A pipeline as a drawing: its nodes and `after` edges laid out top to bottom by dagre, each node carrying
 * what the server says of it in a run (state, k/N cells, why it was skipped, its job run). Pure functions,
 * no DOM: the React Flow view (`view.tsx`) draws what these return.
 */

import { graphlib, layout } from '@dagrejs/dagre';
import type { Edge, Node, NodeHandle, Position } from '@xyflow/react';

import { isPipelineRunActive, PipelineInfo, PipelineNode, PipelineNodeRun, PipelineNodeStatus, PipelineRun } from '../api';

/** A node's state in the drawing: a run's node state, or `defined` when no run is shown (a file, a definition). */
export type DrawnStatus = PipelineNodeStatus | 'defined';

/** What a drawn node shows. */
export interface IPipelineNodeData extends Record<string, unknown> {
  node: PipelineNode;
  status: DrawnStatus;
  /** The state in words: `running · 2/5 cells`, `skipped: unchanged since run 41`, `failed: ValueError: …`, … */
  label: string;
  /** Why a node was skipped, failed or cancelled, as the server said it; null when it said nothing. */
  reason: string | null;
  /** Fraction of cells executed while running, else null. */
  fraction: number | null;
  /** The node's job run (its output notebook and log), or null when it has none (yet). */
  jobRun: number | null;
}

export type PipelineFlowNode = Node<IPipelineNodeData, 'pipelineNode'>;

/** An edge with the bends dagre routed it through (around the nodes of the ranks it crosses). */
export interface IRoutedEdgeData extends Record<string, unknown> {
  /** The points between the two nodes, top to bottom (none for an edge between adjacent ranks). */
  bends: { x: number; y: number }[];
}

export type PipelineFlowEdge = Edge<IRoutedEdgeData, 'routed'>;

/**
 * An SVG path from `(sx, sy)` through `bends` to `(tx, ty)`: one vertical S-curve per leg, so an edge that
 * crosses a rank passes beside that rank's nodes (where dagre routed it), not through them.
 */
export function routedPath(sx: number, sy: number, bends: { x: number; y: number }[], tx: number, ty: number): string {
  const points = [{ x: sx, y: sy }, ...bends, { x: tx, y: ty }];
  let d = `M ${sx},${sy}`;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    const mid = (a.y + b.y) / 2;
    d += ` C ${a.x},${mid} ${b.x},${mid} ${b.x},${b.y}`;
  }
  return d;
}

/** The arrowhead of an edge that enters its node from above at `(tx, ty)`: a small triangle pointing down. */
export function arrowPath(tx: number, ty: number, size = 6): string {
  return `M ${tx - size},${ty - 1.5 * size} L ${tx + size},${ty - 1.5 * size} L ${tx},${ty} Z`;
}

/** The size every node is drawn at (dagre needs it to lay the graph out). */
export const NODE_WIDTH = 220;
export const NODE_HEIGHT = 78;

/** What a node runs, in words: its notebook (a path relative to the pipeline file) or `job NAME` (a stored job). */
export function nodeTarget(node: PipelineNode): string {
  return node.notebook ?? (node.job ? `job ${node.job}` : '');
}

/**
 * Where a node's edges meet it: in at the top centre, out at the bottom centre. Given with each node (and its size),
 * so React Flow needs to measure nothing when a run's states redraw the nodes (a node it has to measure again draws
 * no edges until it did).
 */
const HANDLES: NodeHandle[] = [
  { type: 'target', position: 'top' as Position, x: NODE_WIDTH / 2 - 0.5, y: 0, width: 1, height: 1 },
  { type: 'source', position: 'bottom' as Position, x: NODE_WIDTH / 2 - 0.5, y: NODE_HEIGHT - 1, width: 1, height: 1 }
];

/** The state of node `name` in `run` as the drawing shows it. */
export function drawnState(
  name: string,
  run: PipelineRun | null
): Pick<IPipelineNodeData, 'status' | 'label' | 'reason' | 'fraction' | 'jobRun'> {
  const state: PipelineNodeRun | undefined = run?.nodes[name];
  if (!state) {
    return { status: 'defined', label: run ? 'not in this run' : '', reason: null, fraction: null, jobRun: null };
  }
  const reason = state.reason ?? null;
  let label: string = state.status;
  let fraction: number | null = null;
  if (state.status === 'running' && state.progress && state.progress.total > 0) {
    const { done, total } = state.progress;
    fraction = Math.min(1, Math.max(0, done / total));
    label = `running · ${Math.min(done, total)}/${total} cells`;
  } else if (reason && state.status !== 'running' && state.status !== 'queued') {
    // skipped: why (`unchanged since run 41`); failed: the error; cancelled: `upstream 'prepare' failed`
    label = `${state.status}: ${reason}`;
  }
  return { status: state.status, label, reason, fraction, jobRun: state.run ?? null };
}

/** Whether nothing more will change in `run` (so polling it can stop). */
export function isRunFinished(run: PipelineRun): boolean {
  return !isPipelineRunActive(run.status) && !Object.values(run.nodes).some(n => isPipelineRunActive(n.status));
}

/** A key that changes only when the graph's shape changes (nodes or edges), not when states do. */
export function shapeKey(info: PipelineInfo): string {
  return info.nodes.map(n => `${n.name}<${[...n.after].sort().join(',')}`).join(';');
}

/**
 * React Flow nodes and edges of `info`, laid out top to bottom (dagre), with the states of `run` (or none).
 * An `after` that names no node of the pipeline draws no edge (the server rejects such files; a preview shows its
 * message instead).
 */
export function pipelineFlow(info: PipelineInfo, run: PipelineRun | null): { nodes: PipelineFlowNode[]; edges: PipelineFlowEdge[] } {
  const g = new graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 40, ranksep: 56, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  const names = new Set(info.nodes.map(n => n.name));
  for (const node of info.nodes) {
    g.setNode(node.name, { width: NODE_WIDTH, height: NODE_HEIGHT });
  }
  const edges: PipelineFlowEdge[] = [];
  for (const node of info.nodes) {
    for (const upstream of new Set(node.after)) {
      if (!names.has(upstream) || upstream === node.name) {
        continue;
      }
      g.setEdge(upstream, node.name);
      const target = run?.nodes[node.name]?.status;
      edges.push({
        id: `${upstream}->${node.name}`,
        type: 'routed',
        source: upstream,
        target: node.name,
        animated: target === 'running',
        className: `jp-nbdeploy-pedge jp-nbdeploy-pedge-${target ?? 'defined'}`,
        data: { bends: [] }
      });
    }
  }
  layout(g);
  for (const edge of edges) {
    // dagre's points start and end on the nodes' borders: the handles are drawn there, keep what lies between
    const points: { x: number; y: number }[] = g.edge(edge.source, edge.target)?.points ?? [];
    edge.data = { bends: points.slice(1, -1).map(p => ({ x: p.x, y: p.y })) };
  }
  const nodes: PipelineFlowNode[] = info.nodes.map(node => {
    const { x, y } = g.node(node.name);
    return {
      id: node.name,
      type: 'pipelineNode',
      position: { x: x - NODE_WIDTH / 2, y: y - NODE_HEIGHT / 2 },
      data: { node, ...drawnState(node.name, run) },
      width: NODE_WIDTH,
      height: NODE_HEIGHT,
      measured: { width: NODE_WIDTH, height: NODE_HEIGHT },
      handles: HANDLES,
      draggable: false,
      connectable: false
    };
  });
  return { nodes, edges };
}

/** `3 succeeded · 1 running · 1 skipped`: a run's node states counted, in the order a run goes through them. */
export function summarizeRun(run: PipelineRun): string {
  const order: PipelineNodeStatus[] = ['succeeded', 'running', 'queued', 'skipped', 'failed', 'cancelled'];
  const counts = new Map<string, number>();
  for (const state of Object.values(run.nodes)) {
    counts.set(state.status, (counts.get(state.status) ?? 0) + 1);
  }
  return order
    .filter(s => counts.get(s))
    .map(s => `${counts.get(s)} ${s}`)
    .join(' · ');
}
