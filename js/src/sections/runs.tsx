/** Runs: newest first, with status, live progress, duration and parameters; output, log, cancel; filters. */

import { HTMLSelect } from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';

import { cancelRun, isActive, listJobs, listRuns, Run, RUN_STATUSES, RunStatus } from '../api';
import { Empty, ErrorMessage, StatusBadge, TextButton } from '../components';
import { showActionError } from '../dialogs';
import { formatDuration, formatParameters, formatRelative, formatRunError, formatTimestamp, secondsSince } from '../format';
import { usePoll } from '../poll';
import { ISection, ISectionContext } from './types';

const LIMIT = 50;

/** Where a running run is: the API gives the 0-based index of the executing cell, so that many are done. */
function Progress(props: { run: Run }): JSX.Element | null {
  const { current_cell: done, cell_count: total } = props.run.progress;
  if (done === null || !total || !isActive(props.run.status)) {
    return null;
  }
  const cell = Math.min(done + (props.run.status === 'running' ? 1 : 0), total);
  return (
    <div className="jp-nbdeploy-progress" title={`${done} of ${total} cells executed`}>
      <div className="jp-nbdeploy-progress-bar">
        <div className="jp-nbdeploy-progress-fill" style={{ width: `${(100 * done) / total}%` }} />
      </div>
      <span>
        cell {cell} of {total}
      </span>
    </div>
  );
}

function RunRow(props: { context: ISectionContext; run: Run; highlighted: boolean; onChanged: () => void }): JSX.Element {
  const { run, context } = props;
  const active = isActive(run.status);
  const cancel = async () => {
    try {
      await cancelRun(run.id);
    } catch (e) {
      await showActionError(`cancel run ${run.id}`, e);
    }
    props.onChanged();
  };
  return (
    <li
      className={`jp-nbdeploy-item jp-nbdeploy-run ${props.highlighted ? 'jp-mod-highlighted' : ''}`}
      data-run-id={run.id}
      data-status={run.status}
    >
      <div className="jp-nbdeploy-row">
        <StatusBadge status={run.status} />
        <span className="jp-nbdeploy-name">{run.job}</span>
        <span className="jp-nbdeploy-muted">#{run.id}</span>
        {run.attempt && run.attempt > 1 ? <span className="jp-nbdeploy-tag">attempt {run.attempt}</span> : null}
        <span className="jp-nbdeploy-spacer" />
        <span className="jp-nbdeploy-muted" title={`Duration${run.started_at ? ` (started ${formatTimestamp(run.started_at)})` : ''}`}>
          {formatDuration(run.duration ?? secondsSince(run.started_at))}
        </span>
      </div>
      <Progress run={run} />
      <div className="jp-nbdeploy-row jp-nbdeploy-muted">
        <span title={formatTimestamp(run.queued_at)}>{formatRelative(run.queued_at)}</span>
        {run.schedule_id ? <span className="jp-nbdeploy-tag">scheduled</span> : null}
        <span className="jp-nbdeploy-params-summary" title={JSON.stringify(run.parameters, null, 1)}>
          {formatParameters(run.parameters)}
        </span>
      </div>
      {run.error && !active ? <div className="jp-nbdeploy-run-error">{formatRunError(run.error)}</div> : null}
      <div className="jp-nbdeploy-row jp-nbdeploy-actions">
        {run.has_output ? (
          <TextButton label="Open output" onClick={() => context.openOutput(run)} />
        ) : null}
        <TextButton label="Log" onClick={() => context.openLog(run)} />
        {active ? <TextButton label="Cancel" warn onClick={() => void cancel()} /> : null}
      </div>
    </li>
  );
}

function RunsBody(props: { context: ISectionContext }): JSX.Element {
  const { context } = props;
  const [job, setJob] = useState('');
  const [status, setStatus] = useState<RunStatus | ''>('');
  const [highlight, setHighlight] = useState<number | null>(context.highlightedRun());
  useEffect(() => {
    const onChange = (_: unknown, id: number | null) => setHighlight(id);
    context.highlightChanged.connect(onChange);
    return () => {
      context.highlightChanged.disconnect(onChange);
    };
  }, [context]);
  const runs = usePoll(context, () => listRuns({ job: job || null, status: status || null, limit: LIMIT }), [job, status]);
  const jobs = usePoll(context, listJobs);
  const jobNames = [...new Set([...(jobs.data ?? []).map(j => j.name), ...(runs.data ?? []).map(r => r.job), job].filter(Boolean))].sort();
  return (
    <div className="jp-nbdeploy-section-body">
      <div className="jp-nbdeploy-filters">
        <HTMLSelect
          aria-label="Filter by job"
          value={job}
          onChange={e => setJob(e.currentTarget.value)}
          options={[{ label: 'All jobs', value: '' }, ...jobNames.map(n => ({ label: n, value: n }))]}
        />
        <HTMLSelect
          aria-label="Filter by status"
          value={status}
          onChange={e => setStatus(e.currentTarget.value as RunStatus | '')}
          options={[{ label: 'Any status', value: '' }, ...RUN_STATUSES.map(s => ({ label: s.replace('_', ' '), value: s }))]}
        />
      </div>
      <ErrorMessage message={runs.error} />
      {runs.loading && !runs.data ? <div className="jp-nbdeploy-loading">Loading runs…</div> : null}
      {runs.data && !runs.data.length ? (
        <Empty>{job || status ? 'No runs match the filter.' : 'No runs yet.'}</Empty>
      ) : null}
      <ul className="jp-nbdeploy-list">
        {(runs.data ?? []).map(run => (
          <RunRow key={run.id} context={context} run={run} highlighted={run.id === highlight} onChanged={runs.refresh} />
        ))}
      </ul>
    </div>
  );
}

export const runsSection: ISection = {
  id: 'runs',
  title: 'Runs',
  render: context => <RunsBody context={context} />
};
