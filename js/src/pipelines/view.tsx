/**
 * The main-area view of a pipeline: its DAG, coloured by the states of one of its runs (the newest, or the one
 * opened), live while that run is in progress; "Run" starts a run and follows it, "Cancel" stops one. Clicking a
 * node with a job run opens its output notebook (or its log while it runs).
 */

import { MainAreaWidget } from '@jupyterlab/apputils';
import { HTMLSelect, ReactWidget } from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useState } from 'react';

import {
  cancelPipelineRun,
  errorMessage,
  getPipeline,
  getPipelineRun,
  isPipelineRunActive,
  listPipelineRuns,
  PipelineInfo,
  PipelineRun,
  startPipelineRun
} from '../api';
import { ErrorMessage, TextButton } from '../components';
import { showActionError } from '../dialogs';
import { formatDuration, formatTimestamp, secondsSince } from '../format';
import { PipelineGraph } from './drawing';
import { IPipelineNodeData, summarizeRun } from './graph';
import { pipelineIcon } from './icon';
import { PipelineRunPoller } from './poller';

/** What the pipeline views need from the plugin. */
export interface IPipelineActions {
  /** Open a node's job run: its output notebook, or its live log while it runs. */
  openJobRun(id: number): void;
  /** Open the view of pipeline `name` showing run `run` (or its newest run). */
  openPipeline(name: string, run?: number | null): void;
  /** Open a file of the Jupyter root in JupyterLab (with widget factory `factory`, or its default). */
  openFile(path: string, factory?: string): void;
  /** Milliseconds between loads of a run in progress. */
  intervalMs(): number;
}

/** A pipeline run's status as a coloured dot and word (the Runs section's badge, with the pipeline states). */
export function PipelineStatus(props: { status: string }): JSX.Element {
  return (
    <span className={`jp-nbdeploy-status jp-nbdeploy-status-${props.status}`} data-status={props.status}>
      <span className="jp-nbdeploy-status-dot" />
      {props.status}
    </span>
  );
}

/** Follow run `id` while it is in progress; `[run, error, poke]` (poke reloads it at once). */
export function useLiveRun(
  id: number | null,
  intervalMs: () => number
): [PipelineRun | null, string | undefined, () => void] {
  const [run, setRun] = useState<PipelineRun | null>(null);
  const [error, setError] = useState<string | undefined>(undefined);
  const [poller, setPoller] = useState<PipelineRunPoller | null>(null);
  useEffect(() => {
    setRun(null);
    setError(undefined);
    if (id === null) {
      setPoller(null);
      return;
    }
    const p = new PipelineRunPoller({
      id,
      load: getPipelineRun,
      intervalMs,
      onRun: r => {
        setRun(r);
        setError(undefined);
      },
      onError: setError
    });
    setPoller(p);
    p.start();
    return () => p.dispose();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id]);
  const poke = useCallback(() => poller?.poke(), [poller]);
  return [run, error, poke];
}

/** The text of a node's tooltip line about clicking it. */
export function jobRunHint(data: IPipelineNodeData): string | null {
  if (data.jobRun === null) {
    return null;
  }
  return isPipelineRunActive(data.status) ? `Click: the live log of job run ${data.jobRun}` : `Click: the output of job run ${data.jobRun}`;
}

function RunHeader(props: { run: PipelineRun; info: PipelineInfo | null; onCancel: () => void }): JSX.Element {
  const { run, info } = props;
  const active = isPipelineRunActive(run.status);
  const ended = run.ended_at ? new Date(run.ended_at).getTime() / 1000 : null;
  const started = run.started_at ? new Date(run.started_at).getTime() / 1000 : null;
  const duration = started !== null ? (ended ?? Date.now() / 1000) - started : secondsSince(run.started_at);
  return (
    <div className="jp-nbdeploy-row jp-nbdeploy-prun" data-run={run.run} data-status={run.status}>
      <PipelineStatus status={run.status} />
      <span className="jp-nbdeploy-muted">run {run.run}</span>
      <span className="jp-nbdeploy-muted" title={run.started_at ? `started ${formatTimestamp(run.started_at)}` : 'not started'}>
        {formatDuration(duration)}
      </span>
      <span className="jp-nbdeploy-prun-summary">{summarizeRun(run)}</span>
      {info && info.version !== null && info.version !== run.version ? (
        <span className="jp-nbdeploy-tag" title="The drawing is the newest version's">
          ran version {run.version}
        </span>
      ) : null}
      <span className="jp-nbdeploy-spacer" />
      {active ? <TextButton label="Cancel" warn onClick={props.onCancel} /> : null}
    </div>
  );
}

function PipelineViewBody(props: { name: string; initialRun: number | null; actions: IPipelineActions }): JSX.Element {
  const { name, actions } = props;
  const [info, setInfo] = useState<PipelineInfo | null>(null);
  const [infoError, setInfoError] = useState<string | undefined>(undefined);
  const [runs, setRuns] = useState<PipelineRun[]>([]);
  const [selected, setSelected] = useState<number | null>(props.initialRun);
  const [starting, setStarting] = useState(false);
  const [run, runError, poke] = useLiveRun(selected, actions.intervalMs);

  const loadRuns = useCallback(async (selectNewest: boolean) => {
    try {
      const list = await listPipelineRuns(name);
      setRuns(list);
      if (selectNewest && list.length) {
        setSelected(current => current ?? list[0].run);
      }
    } catch (e) {
      setInfoError(errorMessage(e));
    }
  }, [name]);

  useEffect(() => {
    let disposed = false;
    getPipeline(name)
      .then(i => !disposed && setInfo(i))
      .catch(e => !disposed && setInfoError(errorMessage(e)));
    void loadRuns(props.initialRun === null);
    return () => {
      disposed = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [name]);

  // the list's entry of the followed run shows its newest status too
  useEffect(() => {
    if (run) {
      setRuns(list => (list.some(r => r.run === run.run) ? list.map(r => (r.run === run.run ? run : r)) : [run, ...list]));
    }
  }, [run]);

  const start = async () => {
    setStarting(true);
    try {
      const started = await startPipelineRun(name, { parameters: {}, only: [], from: null, force: [] });
      setRuns(list => [started, ...list]);
      setSelected(started.run);
    } catch (e) {
      await showActionError(`run pipeline ${name}`, e);
    } finally {
      setStarting(false);
    }
  };
  const cancel = async () => {
    if (selected === null) {
      return;
    }
    try {
      await cancelPipelineRun(selected);
    } catch (e) {
      await showActionError(`cancel pipeline run ${selected}`, e);
    }
    poke();
  };

  const shown = run && run.run === selected ? run : null;
  return (
    <div className="jp-nbdeploy-pview">
      <div className="jp-nbdeploy-pview-header">
        <div className="jp-nbdeploy-row">
          <span className="jp-nbdeploy-name">{name}</span>
          {info && info.version !== null ? <span className="jp-nbdeploy-version">v{info.version}</span> : null}
          {info ? <span className="jp-nbdeploy-muted">{info.nodes.length} notebooks</span> : null}
          <span className="jp-nbdeploy-spacer" />
          <HTMLSelect
            aria-label="Pipeline run"
            className="jp-nbdeploy-prun-select"
            value={selected === null ? '' : String(selected)}
            onChange={e => setSelected(e.currentTarget.value ? Number(e.currentTarget.value) : null)}
            options={[
              { label: 'No run (the definition)', value: '' },
              ...runs.map(r => ({ label: `run ${r.run} · ${r.status}${r.started_at ? ` · ${formatTimestamp(r.started_at)}` : ''}`, value: String(r.run) }))
            ]}
          />
          <TextButton label={starting ? 'Starting…' : 'Run'} accent disabled={starting || !info} onClick={() => void start()} />
        </div>
        {shown ? <RunHeader run={shown} info={info} onCancel={() => void cancel()} /> : null}
        <ErrorMessage message={infoError ?? runError} />
      </div>
      {info ? (
        <PipelineGraph
          info={info}
          run={shown}
          clickHint={jobRunHint}
          onNodeClick={data => {
            if (data.jobRun !== null) {
              actions.openJobRun(data.jobRun);
            }
          }}
        />
      ) : !infoError ? (
        <div className="jp-nbdeploy-loading">Loading pipeline {name}…</div>
      ) : null}
    </div>
  );
}

class PipelineViewContent extends ReactWidget {
  constructor(
    private readonly _name: string,
    private readonly _run: number | null,
    private readonly _actions: IPipelineActions
  ) {
    super();
    this.addClass('jp-nbdeploy-pview-widget');
  }

  render(): JSX.Element {
    return <PipelineViewBody name={this._name} initialRun={this._run} actions={this._actions} />;
  }
}

/** The view of pipeline `name` in the main area, showing run `run` (or its newest run when null). */
export function createPipelineView(name: string, run: number | null, actions: IPipelineActions): MainAreaWidget<ReactWidget> {
  const content = new PipelineViewContent(name, run, actions);
  const widget = new MainAreaWidget<ReactWidget>({ content });
  widget.id = run === null ? `nbdeploy-pipeline-${name}` : `nbdeploy-pipeline-run-${run}`;
  widget.title.label = run === null ? `Pipeline ${name}` : `${name} · run ${run}`;
  widget.title.caption = `nbdeploy pipeline ${name}${run === null ? '' : `, run ${run}`}`;
  widget.title.icon = pipelineIcon;
  widget.title.closable = true;
  widget.addClass('jp-nbdeploy-pipeline-view');
  return widget;
}
