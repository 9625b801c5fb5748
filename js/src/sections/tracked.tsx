/**
 * Tracked runs, shown in the Runs section below job runs: the runs MLflow clients logged into nbdeploy
 * (`mlflow.set_tracking_uri("http://…/nbdeploy/mlflow")`), with their experiment, status, params and latest
 * metrics; tick some and "Compare" opens their metrics plotted by step (matplotlib, drawn by the server) and
 * their params and metrics side by side in the main area.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import React, { useState } from 'react';

import { compareTrackedRuns, getTrackedRunsFigure, listTrackedRuns, RunComparison, TrackedRun } from '../api';
import { ErrorMessage, TextButton } from '../components';
import { figureImage, openFigureTab } from '../figures';
import { formatMetrics, formatParameters } from '../format';
import { usePoll } from '../poll';
import { ISectionContext } from './types';

const LIMIT = 50;

function cell(value: unknown): string {
  if (value === undefined || value === null) {
    return '–';
  }
  return typeof value === 'number' ? String(Number(value.toPrecision(6))) : String(value);
}

/** The comparison's params and metrics as one table, a column per run. */
function comparisonTable(data: RunComparison): HTMLTableElement {
  const table = document.createElement('table');
  table.className = 'jp-nbdeploy-compare-table';
  const row = (label: string, values: string[], header = false) => {
    const tr = table.insertRow();
    const th = document.createElement('th');
    th.textContent = label;
    tr.appendChild(th);
    values.forEach(v => {
      const td = document.createElement(header ? 'th' : 'td');
      td.textContent = v;
      tr.appendChild(td);
    });
  };
  row('run', data.runs.map(r => r.name || r.run_id.slice(0, 8)), true);
  row('experiment', data.runs.map(r => r.experiment));
  row('status', data.runs.map(r => r.status));
  data.params.forEach(p => row(`param ${p}`, data.runs.map(r => cell(r.params[p]))));
  data.metrics.forEach(m => row(`metric ${m}`, data.runs.map(r => cell(r.metrics[m]))));
  return table;
}

/** Open the comparison of `ids` in the main area: the figure, then the table. */
function openComparison(app: JupyterFrontEnd, ids: string[]): Promise<void> {
  return openFigureTab(app, {
    id: `nbdeploy-compare-${ids.join('-')}`,
    label: `Compare ${ids.length} runs`,
    caption: `Tracked runs ${ids.join(', ')}`,
    className: 'jp-nbdeploy-compare',
    loading: 'Loading the runs…',
    action: 'compare the runs',
    build: async widget => {
      const [data, figure] = await Promise.all([compareTrackedRuns(ids), getTrackedRunsFigure(ids)]);
      return [figureImage(figure, `Metrics of ${ids.length} runs by step`, 'jp-nbdeploy-compare-figure', widget), comparisonTable(data)];
    }
  });
}

function TrackedRow(props: { run: TrackedRun; selected: boolean; onToggle: () => void }): JSX.Element {
  const { run } = props;
  return (
    <li className="jp-nbdeploy-item jp-nbdeploy-tracked-run" data-run-uuid={run.run_id} data-status={run.status}>
      <div className="jp-nbdeploy-row">
        <input type="checkbox" aria-label={`Compare ${run.name || run.run_id}`} checked={props.selected} onChange={props.onToggle} />
        <span className="jp-nbdeploy-name" title={run.run_id}>
          {run.name || run.run_id.slice(0, 8)}
        </span>
        <span className="jp-nbdeploy-tag">{run.experiment}</span>
        <span className="jp-nbdeploy-spacer" />
        <span className="jp-nbdeploy-muted">{run.status.toLowerCase()}</span>
      </div>
      <div className="jp-nbdeploy-row jp-nbdeploy-muted">
        <span title={new Date(run.start_time).toISOString()}>{new Date(run.start_time).toLocaleString()}</span>
        <span className="jp-nbdeploy-params-summary" title={JSON.stringify(run.params, null, 1)}>
          {formatParameters(run.params)}
        </span>
      </div>
      {Object.keys(run.metrics).length ? (
        <div className="jp-nbdeploy-row jp-nbdeploy-metrics" title={JSON.stringify(run.metrics, null, 1)}>
          {formatMetrics(run.metrics)}
        </div>
      ) : null}
    </li>
  );
}

/** The tracked runs list with its "Compare" button; nothing at all while there are none. */
export function TrackedRuns(props: { context: ISectionContext }): JSX.Element | null {
  const { context } = props;
  const runs = usePoll(context, () => listTrackedRuns({ limit: LIMIT }));
  const [selected, setSelected] = useState<string[]>([]);
  if (!runs.error && !runs.data?.length) {
    return null;
  }
  const toggle = (id: string) => setSelected(selected.includes(id) ? selected.filter(s => s !== id) : [...selected, id]);
  const chosen = selected.filter(id => (runs.data ?? []).some(r => r.run_id === id));
  return (
    <div className="jp-nbdeploy-tracked">
      <div className="jp-nbdeploy-row jp-nbdeploy-subtitle">
        <span>Tracked runs (MLflow)</span>
        <span className="jp-nbdeploy-spacer" />
        <TextButton
          label={chosen.length ? `Compare ${chosen.length}` : 'Compare'}
          accent
          disabled={!chosen.length}
          onClick={() => void openComparison(context.app, chosen)}
        />
      </div>
      <ErrorMessage message={runs.error} />
      <ul className="jp-nbdeploy-list">
        {(runs.data ?? []).map(run => (
          <TrackedRow key={run.run_id} run={run} selected={selected.includes(run.run_id)} onToggle={() => toggle(run.run_id)} />
        ))}
      </ul>
    </div>
  );
}
