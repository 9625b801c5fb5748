/**
 * Datasets: every stored dataset with its newest version (rows, columns, size, aliases); its versions with
 * their lineage (the run that produced each and the runs that read it); delete a version or a dataset; and
 * "Profile", which has the server profile a version on the cluster and opens the HTML report in the main area.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { caretDownIcon, caretRightIcon, deleteIcon, tableRowsIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import React, { useState } from 'react';

import {
  deleteDataset,
  deleteDatasetVersion,
  DatasetVersion,
  getDataset,
  getDatasetLineage,
  getDatasetProfileHtml,
  listDatasets,
  LineageEvent,
  profileDataset
} from '../api';
import { CopyButton, Empty, ErrorMessage, IconButton, TextButton } from '../components';
import { confirmAndDelete, showActionError } from '../dialogs';
import { formatBytes, formatRelative, formatTimestamp } from '../format';
import { usePoll } from '../poll';
import { ISection, ISectionContext } from './types';

/** `1,000,000 rows · 20 columns · 38.1 MB`. */
function describeVersion(v: DatasetVersion): string {
  return `${v.rows.toLocaleString('en-US')} rows · ${v.columns.length} columns · ${formatBytes(v.size)}`;
}

/** A run of the lineage, in words: `job run 12` and the like, with when. */
function RunRef(props: { event: LineageEvent }): JSX.Element {
  const { event } = props;
  return (
    <span className="jp-nbdeploy-lineage-run" data-run-kind={event.run_kind} data-run-ref={event.run_ref} title={formatTimestamp(event.at)}>
      {event.label}
    </span>
  );
}

/** The report as a page in the main area: sandboxed, so that nothing in it reaches JupyterLab. */
function reportWidget(name: string, version: number, html: string): MainAreaWidget<Widget> {
  const content = new Widget();
  content.addClass('jp-nbdeploy-profile');
  const frame = document.createElement('iframe');
  frame.setAttribute('sandbox', 'allow-scripts');
  frame.title = `Profile of ${name} v${version}`;
  frame.style.width = '100%';
  frame.style.height = '100%';
  frame.style.border = '0';
  frame.srcdoc = html;
  content.node.style.height = '100%';
  content.node.appendChild(frame);
  const widget = new MainAreaWidget({ content });
  widget.id = `nbdeploy-dataset-profile-${name}-${version}`;
  widget.title.label = `${name} v${version} · profile`;
  widget.title.caption = `Profile of dataset ${name}, version ${version}`;
  widget.title.icon = tableRowsIcon;
  widget.title.closable = true;
  return widget;
}

/** Profile a version on the cluster (the stored report when it has one) and open the report. */
async function openProfile(app: JupyterFrontEnd, name: string, version: number): Promise<boolean> {
  const id = `nbdeploy-dataset-profile-${name}-${version}`;
  for (const w of app.shell.widgets('main')) {
    if (w.id === id) {
      app.shell.activateById(id);
      return false;
    }
  }
  try {
    await profileDataset(name, version);
    const html = await getDatasetProfileHtml(name, version);
    const widget = reportWidget(name, version, html);
    app.shell.add(widget, 'main');
    app.shell.activateById(widget.id);
    return true;
  } catch (e) {
    await showActionError(`profile ${name} v${version}`, e);
    return false;
  }
}

function ProfileButton(props: { context: ISectionContext; name: string; version: number; onDone: () => void }): JSX.Element {
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    const made = await openProfile(props.context.app, props.name, props.version);
    setBusy(false);
    if (made) {
      props.onDone();
    }
  };
  return <TextButton label={busy ? 'Profiling…' : 'Profile'} accent onClick={() => void (busy ? undefined : run())} />;
}

function removeVersion(name: string, version: number): Promise<boolean> {
  const consequence = `Version ${version} of ${name}, its files and its profile are deleted.`;
  return confirmAndDelete(`${name} v${version}`, consequence, () => deleteDatasetVersion(name, version));
}

function Versions(props: { context: ISectionContext; name: string; onChanged: () => void }): JSX.Element {
  const { context, name } = props;
  const load = async () => {
    const [info, lineage] = await Promise.all([getDataset(name), getDatasetLineage(name)]);
    return { info, lineage: new Map(lineage.versions.map(v => [v.version, v])) };
  };
  const { data, error, refresh } = usePoll(context, load, [name]);
  const changed = (done: boolean) => {
    if (done) {
      refresh();
      props.onChanged();
    }
  };
  if (error) {
    return <ErrorMessage message={error} />;
  }
  if (!data) {
    return <div className="jp-nbdeploy-loading">Loading versions…</div>;
  }
  return (
    <div className="jp-nbdeploy-dataset-detail">
      <div className="jp-nbdeploy-muted" title="The newest version's columns">
        Columns: {data.info.latest.columns.map(c => `${c.name} ${c.type}`).join(', ')}
      </div>
      <ul className="jp-nbdeploy-sublist">
        {[...data.info.versions].reverse().map(v => {
          const lineage = data.lineage.get(v.version);
          return (
            <li key={v.version} className="jp-nbdeploy-dataset-version" data-version={v.version}>
              <div className="jp-nbdeploy-row">
                <span className="jp-nbdeploy-version">v{v.version}</span>
                {v.aliases.map(a => (
                  <span key={a} className="jp-nbdeploy-tag">
                    {a}
                  </span>
                ))}
                <span className="jp-nbdeploy-muted">{describeVersion(v)}</span>
                <span className="jp-nbdeploy-muted" title={formatTimestamp(v.created_at)}>
                  {formatRelative(v.created_at)}
                </span>
                <span className="jp-nbdeploy-spacer" />
                <ProfileButton context={context} name={name} version={v.version} onDone={refresh} />
                <IconButton icon={deleteIcon} title={`Delete ${name} v${v.version}`} onClick={() => void removeVersion(name, v.version).then(changed)} />
              </div>
              <div className="jp-nbdeploy-row jp-nbdeploy-muted jp-nbdeploy-lineage">
                <span className="jp-nbdeploy-lineage-produced">
                  {lineage?.produced_by ? (
                    <>
                      produced by <RunRef event={lineage.produced_by} />
                    </>
                  ) : (
                    `written outside a run${v.appended_to ? ` (appended to v${v.appended_to})` : ''}`
                  )}
                </span>
                {lineage && lineage.read_by.length ? (
                  <span className="jp-nbdeploy-lineage-read">
                    · read by{' '}
                    {lineage.read_by.map((e, i) => (
                      <React.Fragment key={`${e.run_kind}-${e.run_ref}`}>
                        {i ? ', ' : ''}
                        <RunRef event={e} />
                      </React.Fragment>
                    ))}
                  </span>
                ) : null}
              </div>
            </li>
          );
        })}
      </ul>
    </div>
  );
}

function DatasetRow(props: { context: ISectionContext; dataset: DatasetVersion; onChanged: () => void }): JSX.Element {
  const { dataset } = props;
  const [open, setOpen] = useState(false);
  const remove = async () => {
    const consequence = `Every version of ${dataset.name}, its files and profiles are deleted.`;
    if (await confirmAndDelete(`dataset ${dataset.name}`, consequence, () => deleteDataset(dataset.name), `delete ${dataset.name}`)) {
      props.onChanged();
    }
  };
  return (
    <li className="jp-nbdeploy-item jp-nbdeploy-dataset" data-name={dataset.name}>
      <div className="jp-nbdeploy-row" onClick={() => setOpen(!open)}>
        <IconButton icon={open ? caretDownIcon : caretRightIcon} title={open ? 'Hide versions' : 'Show versions'} onClick={() => setOpen(!open)} />
        <span className="jp-nbdeploy-name" title={dataset.description || dataset.name}>
          {dataset.name}
        </span>
        <span className="jp-nbdeploy-version">v{dataset.version}</span>
        <span className="jp-nbdeploy-muted" title={`Stored ${formatTimestamp(dataset.created_at)}`}>
          {formatRelative(dataset.created_at)}
        </span>
        <span className="jp-nbdeploy-spacer" />
        <IconButton icon={deleteIcon} title={`Delete ${dataset.name}`} onClick={() => void remove()} />
      </div>
      <div className="jp-nbdeploy-row jp-nbdeploy-muted">
        <span>{describeVersion(dataset)}</span>
        {dataset.aliases.map(a => (
          <span key={a} className="jp-nbdeploy-tag">
            {a}
          </span>
        ))}
      </div>
      <div className="jp-nbdeploy-row jp-nbdeploy-urlrow">
        <span className="jp-nbdeploy-url jp-nbdeploy-mono" title="Where the Parquet files are: nbd.datasets.path(name)">
          {dataset.url}
        </span>
        <CopyButton text={dataset.url} title="Copy the fsspec URL" />
      </div>
      {open ? <Versions context={props.context} name={dataset.name} onChanged={props.onChanged} /> : null}
    </li>
  );
}

function DatasetsBody(props: { context: ISectionContext }): JSX.Element {
  const { data, error, loading, refresh } = usePoll(props.context, listDatasets);
  return (
    <div className="jp-nbdeploy-section-body">
      <ErrorMessage message={error} />
      {loading && !data ? <div className="jp-nbdeploy-loading">Loading datasets…</div> : null}
      {data && !data.length ? (
        <Empty>
          No datasets yet. Store one from a notebook with <code>nbd.datasets.put(df, "name")</code>.
        </Empty>
      ) : null}
      <ul className="jp-nbdeploy-list">
        {(data ?? []).map(d => (
          <DatasetRow key={d.name} context={props.context} dataset={d} onChanged={refresh} />
        ))}
      </ul>
    </div>
  );
}

export const datasetsSection: ISection = {
  id: 'datasets',
  title: 'Datasets',
  render: context => <DatasetsBody context={context} />
};
