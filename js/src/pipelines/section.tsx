/**
 * Pipelines in the sidebar: every stored pipeline (newest version, its notebooks); unfolded, its recent runs with
 * their states. Clicking a pipeline or a run opens its drawing in the main area (command
 * `nbdeploy:open-pipeline`); "Run" starts a run and opens it.
 */

import { caretDownIcon, caretRightIcon, deleteIcon } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { deletePipeline, listPipelineRuns, listPipelines, PipelineInfo, startPipelineRun } from '../api';
import { Empty, ErrorMessage, IconButton, TextButton } from '../components';
import { confirmAndDelete, showActionError } from '../dialogs';
import { formatRelative, formatTimestamp } from '../format';
import { usePoll } from '../poll';
import { ISection, ISectionContext } from '../sections/types';
import { nodeTarget, summarizeRun } from './graph';
import { PipelineStatus } from './view';

/** The command that opens a pipeline's drawing (registered in `pipelines/index.ts`). */
export const OPEN_PIPELINE_COMMAND = 'nbdeploy:open-pipeline';

/** How many of a pipeline's runs the sidebar lists. */
const RUNS_SHOWN = 5;

function open(context: ISectionContext, name: string, run: number | null = null): void {
  void context.app.commands.execute(OPEN_PIPELINE_COMMAND, { name, run });
}

function RecentRuns(props: { context: ISectionContext; name: string }): JSX.Element {
  const { data, error } = usePoll(props.context, () => listPipelineRuns(props.name), [props.name]);
  if (error) {
    return <ErrorMessage message={error} />;
  }
  if (!data) {
    return <div className="jp-nbdeploy-loading">Loading runs…</div>;
  }
  if (!data.length) {
    return <Empty>No runs yet.</Empty>;
  }
  return (
    <ul className="jp-nbdeploy-sublist">
      {data.slice(0, RUNS_SHOWN).map(r => (
        <li
          key={r.run}
          className="jp-nbdeploy-prun-item"
          data-run={r.run}
          data-status={r.status}
          title={`Open run ${r.run}`}
          onClick={() => open(props.context, props.name, r.run)}
        >
          <PipelineStatus status={r.status} />
          <span className="jp-nbdeploy-muted">#{r.run}</span>
          <span className="jp-nbdeploy-muted" title={formatTimestamp(r.started_at)}>
            {formatRelative(r.started_at)}
          </span>
          <span className="jp-nbdeploy-muted jp-nbdeploy-prun-summary">{summarizeRun(r)}</span>
        </li>
      ))}
    </ul>
  );
}

function PipelineRow(props: { context: ISectionContext; pipeline: PipelineInfo; onChanged: () => void }): JSX.Element {
  const { context, pipeline } = props;
  const [unfolded, setUnfolded] = useState(false);
  const run = async () => {
    try {
      const started = await startPipelineRun(pipeline.name, { parameters: {}, only: [], from: null, force: [] });
      open(context, pipeline.name, started.run);
      setUnfolded(true);
    } catch (e) {
      await showActionError(`run pipeline ${pipeline.name}`, e);
    }
  };
  const remove = async () => {
    const consequence = `Every version of pipeline ${pipeline.name} is deleted.`;
    if (await confirmAndDelete(`pipeline ${pipeline.name}`, consequence, () => deletePipeline(pipeline.name))) {
      props.onChanged();
    }
  };
  return (
    <li className="jp-nbdeploy-item jp-nbdeploy-pipeline" data-name={pipeline.name}>
      <div className="jp-nbdeploy-row">
        <IconButton
          icon={unfolded ? caretDownIcon : caretRightIcon}
          title={unfolded ? 'Hide runs' : 'Show runs'}
          onClick={() => setUnfolded(!unfolded)}
        />
        <a
          className="jp-nbdeploy-name jp-nbdeploy-pipeline-open"
          href="#"
          title={`Open the drawing of ${pipeline.name}`}
          onClick={e => {
            e.preventDefault();
            open(context, pipeline.name);
          }}
        >
          {pipeline.name}
        </a>
        {pipeline.version !== null ? <span className="jp-nbdeploy-version">v{pipeline.version}</span> : null}
        <span className="jp-nbdeploy-muted" title={pipeline.created_at ? `Stored ${formatTimestamp(pipeline.created_at)}` : ''}>
          {formatRelative(pipeline.created_at)}
        </span>
        <span className="jp-nbdeploy-spacer" />
        <TextButton label="Run" accent onClick={() => void run()} />
        <IconButton icon={deleteIcon} title={`Delete ${pipeline.name}`} onClick={() => void remove()} />
      </div>
      <div className="jp-nbdeploy-row jp-nbdeploy-muted" title={pipeline.nodes.map(n => `${n.name}: ${nodeTarget(n)}`).join('\n')}>
        {pipeline.nodes.length} notebooks: {pipeline.nodes.map(n => n.name).join(', ')}
      </div>
      {unfolded ? <RecentRuns context={context} name={pipeline.name} /> : null}
    </li>
  );
}

function PipelinesBody(props: { context: ISectionContext }): JSX.Element {
  const { data, error, loading, refresh } = usePoll(props.context, listPipelines);
  return (
    <div className="jp-nbdeploy-section-body">
      <ErrorMessage message={error} />
      {loading && !data ? <div className="jp-nbdeploy-loading">Loading pipelines…</div> : null}
      {data && !data.length ? (
        <Empty>
          No pipelines yet. Open a <code>.pipeline.yaml</code> file and press "Store", or use{' '}
          <code>nbd.pipelines.put(…)</code>.
        </Empty>
      ) : null}
      <ul className="jp-nbdeploy-list">
        {(data ?? []).map(p => (
          <PipelineRow key={p.name} context={props.context} pipeline={p} onChanged={refresh} />
        ))}
      </ul>
    </div>
  );
}

export const pipelinesSection: ISection = {
  id: 'pipelines',
  title: 'Pipelines',
  render: context => <PipelinesBody context={context} />
};
