/**
 * The drawing of a pipeline: React Flow (`@xyflow/react`) with the dagre layout of `graph.ts`; each node a card
 * coloured by its state (JupyterLab's theme variables, see style/pipelines.css), with k/N cells while running and
 * the reason a node was skipped. Clicking a node calls `onNodeClick` (the views open its output or log).
 */

import { Background, BaseEdge, Controls, EdgeProps, Handle, NodeProps, Position, ReactFlow } from '@xyflow/react';
import React, { useMemo } from 'react';

import { PipelineInfo, PipelineRun } from '../api';
import { arrowPath, IPipelineNodeData, nodeTarget, PipelineFlowEdge, PipelineFlowNode, pipelineFlow, routedPath, shapeKey } from './graph';

/** What a click on a node will do, in words (the card's tooltip). */
function clickHint(data: IPipelineNodeData, clickable: (data: IPipelineNodeData) => string | null): string {
  const hint = clickable(data);
  const parts = [`${data.node.name}: ${nodeTarget(data.node)}`];
  if (data.label) {
    parts.push(data.label);
  }
  if (hint) {
    parts.push(hint);
  }
  return parts.join('\n');
}

/** Hints are per drawing; React Flow's node components get them through this context. */
const HintContext = React.createContext<(data: IPipelineNodeData) => string | null>(() => null);

function PipelineNodeCard(props: NodeProps<PipelineFlowNode>): JSX.Element {
  const { data } = props;
  const hint = React.useContext(HintContext);
  const cache = data.node.cache;
  return (
    <div
      className={`jp-nbdeploy-pnode jp-nbdeploy-pnode-${data.status} ${hint(data) ? 'jp-mod-clickable' : ''}`}
      data-node={data.node.name}
      data-status={data.status}
      title={clickHint(data, hint)}
    >
      <Handle type="target" position={Position.Top} isConnectable={false} />
      <div className="jp-nbdeploy-pnode-head">
        <span className="jp-nbdeploy-pnode-dot" />
        <span className="jp-nbdeploy-pnode-name">{data.node.name}</span>
        {cache !== false ? (
          <span className="jp-nbdeploy-pnode-tag" title={`Cached${typeof cache === 'string' ? ` for ${cache}` : ''}`}>
            cache{typeof cache === 'string' ? ` ${cache}` : ''}
          </span>
        ) : null}
      </div>
      <div className="jp-nbdeploy-pnode-notebook">{nodeTarget(data.node)}</div>
      {data.label ? <div className="jp-nbdeploy-pnode-state">{data.label}</div> : null}
      {data.fraction !== null ? (
        <div className="jp-nbdeploy-progress-bar jp-nbdeploy-pnode-progress">
          <div className="jp-nbdeploy-progress-fill" style={{ width: `${100 * data.fraction}%` }} />
        </div>
      ) : null}
      <Handle type="source" position={Position.Bottom} isConnectable={false} />
    </div>
  );
}

/**
 * An edge drawn through the bends dagre gave it, with an arrowhead of its own (SVG markers are referenced by
 * `url(#id)`, which JupyterLab's page does not resolve, so React Flow's markers do not show there).
 */
function RoutedEdge(props: EdgeProps<PipelineFlowEdge>): JSX.Element {
  const path = routedPath(props.sourceX, props.sourceY, props.data?.bends ?? [], props.targetX, props.targetY);
  return (
    <>
      <BaseEdge id={props.id} path={path} style={props.style} />
      <path className="jp-nbdeploy-pedge-arrow" d={arrowPath(props.targetX, props.targetY)} />
    </>
  );
}

const NODE_TYPES = { pipelineNode: PipelineNodeCard };
const EDGE_TYPES = { routed: RoutedEdge };


export interface IPipelineGraphProps {
  info: PipelineInfo;
  /** The run whose states colour the nodes, or null to draw the definition alone. */
  run: PipelineRun | null;
  /** Called with a clicked node. */
  onNodeClick?: (data: IPipelineNodeData) => void;
  /** What clicking a node does, in words, or null when it does nothing (shown as its tooltip). */
  clickHint?: (data: IPipelineNodeData) => string | null;
}

/** The pipeline's DAG, laid out top to bottom, fitted into its box; redrawn whenever `info` or `run` change. */
export function PipelineGraph(props: IPipelineGraphProps): JSX.Element {
  const { info, run, onNodeClick } = props;
  const { nodes, edges } = useMemo(() => pipelineFlow(info, run), [info, run]);
  const hint = props.clickHint ?? (() => null);
  return (
    <HintContext.Provider value={hint}>
      <div className="jp-nbdeploy-pgraph" data-pipeline={info.name}>
        <ReactFlow
          // a new shape is fitted into view again; state changes keep the user's zoom and pan
          key={shapeKey(info)}
          nodes={nodes}
          edges={edges}
          nodeTypes={NODE_TYPES}
          edgeTypes={EDGE_TYPES}
          fitView
          fitViewOptions={{ padding: 0.15, maxZoom: 1.2 }}
          minZoom={0.2}
          maxZoom={2}
          nodesDraggable={false}
          nodesConnectable={false}
          elementsSelectable={false}
          onNodeClick={(_, node) => onNodeClick?.(node.data)}
        >
          <Background />
          <Controls showInteractive={false} />
        </ReactFlow>
      </div>
    </HintContext.Provider>
  );
}
