/** Functions: every deployed function, its latest version and URL; its serving statistics and figure, versions, "Try it", delete. */

import { caretDownIcon, caretRightIcon, deleteIcon } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { deleteFunction, FunctionSummary, getFunction, getFunctionFigure, getFunctionStats, listFunctions } from '../api';
import { absoluteUrl, Empty, ErrorMessage, IconButton, TextButton, UrlRow } from '../components';
import { confirmAndDelete, showTryIt } from '../dialogs';
import { formatRelative, formatTimestamp } from '../format';
import { usePoll } from '../poll';
import { Serving } from './serving';
import { ISection, ISectionContext } from './types';

function Versions(props: { context: ISectionContext; name: string }): JSX.Element {
  const { data, error } = usePoll(props.context, () => getFunction(props.name), [props.name]);
  if (error) {
    return <ErrorMessage message={error} />;
  }
  if (!data) {
    return <div className="jp-nbdeploy-loading">Loading versions…</div>;
  }
  if (!data.versions.length) {
    return <Empty>No versions listed.</Empty>;
  }
  return (
    <ul className="jp-nbdeploy-sublist">
      {[...data.versions].reverse().map(v => (
        <li key={v.version}>
          <span className="jp-nbdeploy-version">v{v.version}</span>
          {(v.version === data.latest_version && !v.aliases.includes('latest') ? ['latest', ...v.aliases] : v.aliases).map(a => (
            <span key={a} className="jp-nbdeploy-tag">
              {a}
            </span>
          ))}
          <span className="jp-nbdeploy-muted" title={formatTimestamp(v.created_at)}>
            {formatRelative(v.created_at)}
          </span>
          <span className="jp-nbdeploy-muted jp-nbdeploy-mono" title={`sha256 ${v.sha256}`}>
            {v.sha256.slice(0, 8)}
          </span>
        </li>
      ))}
    </ul>
  );
}

function FunctionRow(props: { context: ISectionContext; fn: FunctionSummary; onChanged: () => void }): JSX.Element {
  const { fn } = props;
  const [open, setOpen] = useState(false);
  const url = absoluteUrl(fn.path);
  const remove = async () => {
    const consequence = `Every version of ${fn.name} is deleted and ${url} stops answering.`;
    if (await confirmAndDelete(`function ${fn.name}`, consequence, () => deleteFunction(fn.name), `delete ${fn.name}`)) {
      props.onChanged();
    }
  };
  return (
    <li className="jp-nbdeploy-item" data-name={fn.name}>
      <div className="jp-nbdeploy-row" onClick={() => setOpen(!open)}>
        <IconButton icon={open ? caretDownIcon : caretRightIcon} title={open ? 'Hide versions' : 'Show versions'} onClick={() => setOpen(!open)} />
        <span className="jp-nbdeploy-name" title={fn.description || fn.name}>
          {fn.name}
        </span>
        <span className="jp-nbdeploy-version">v{fn.version}</span>
        <span className="jp-nbdeploy-muted" title={`Last deployed ${formatTimestamp(fn.created_at)}`}>
          {formatRelative(fn.created_at)}
        </span>
        <span className="jp-nbdeploy-spacer" />
        <TextButton label="Try it" accent onClick={() => void showTryIt(fn.name)} />
        <IconButton icon={deleteIcon} title={`Delete ${fn.name}`} onClick={() => void remove()} />
      </div>
      <UrlRow url={url} />
      {open ? (
        <>
          <Serving context={props.context} kind="function" name={fn.name} load={() => getFunctionStats(fn.name)} figure={() => getFunctionFigure(fn.name)} />
          <Versions context={props.context} name={fn.name} />
        </>
      ) : null}
    </li>
  );
}

function FunctionsBody(props: { context: ISectionContext }): JSX.Element {
  const { data, error, loading, refresh } = usePoll(props.context, listFunctions);
  return (
    <div className="jp-nbdeploy-section-body">
      <ErrorMessage message={error} />
      {loading && !data ? <div className="jp-nbdeploy-loading">Loading functions…</div> : null}
      {data && !data.length ? (
        <Empty>
          No functions yet. Deploy one from a notebook cell with <code>%%deploy NAME</code>.
        </Empty>
      ) : null}
      <ul className="jp-nbdeploy-list">
        {(data ?? []).map(fn => (
          <FunctionRow key={fn.name} context={props.context} fn={fn} onChanged={refresh} />
        ))}
      </ul>
    </div>
  );
}

export const functionsSection: ISection = {
  id: 'functions',
  title: 'Functions',
  render: context => <FunctionsBody context={context} />
};
