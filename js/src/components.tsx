/** Small React pieces shared by the sections and dialogs. */

import { Notification } from '@jupyterlab/apputils';
import { copyIcon, LabIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { RunStatus } from './api';

/** A readable error line (never a raw stack trace; the details, if any, fold out). */
export function ErrorMessage(props: { message?: string; details?: string }): JSX.Element | null {
  if (!props.message) {
    return null;
  }
  return (
    <div className="jp-nbdeploy-error" role="alert">
      {props.message}
      {props.details ? (
        <details>
          <summary>Details</summary>
          <pre>{props.details}</pre>
        </details>
      ) : null}
    </div>
  );
}

export function Empty(props: { children: React.ReactNode }): JSX.Element {
  return <div className="jp-nbdeploy-empty">{props.children}</div>;
}

/** A small icon button with a tooltip (and an accessible label). */
export function IconButton(props: {
  icon: LabIcon;
  title: string;
  onClick: () => void;
  disabled?: boolean;
  className?: string;
}): JSX.Element {
  return (
    <button
      type="button"
      className={`jp-nbdeploy-iconbutton ${props.className ?? ''}`}
      title={props.title}
      aria-label={props.title}
      disabled={props.disabled}
      onClick={e => {
        e.stopPropagation();
        props.onClick();
      }}
    >
      <props.icon.react tag="span" elementSize="normal" />
    </button>
  );
}

/** A text button in the JupyterLab style. */
export function TextButton(props: {
  label: string;
  title?: string;
  onClick: () => void;
  disabled?: boolean;
  accent?: boolean;
  warn?: boolean;
}): JSX.Element {
  const mod = props.warn ? 'jp-mod-warn' : props.accent ? 'jp-mod-accept' : 'jp-mod-reject';
  return (
    <button
      type="button"
      className={`jp-Button jp-mod-styled jp-mod-small ${mod} jp-nbdeploy-textbutton`}
      title={props.title ?? props.label}
      disabled={props.disabled}
      onClick={e => {
        e.stopPropagation();
        props.onClick();
      }}
    >
      {props.label}
    </button>
  );
}

/** Copy `text` to the clipboard and say so. */
export async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    Notification.info(`Copied ${text}`, { autoClose: 2000 });
  } catch {
    // clipboard API refused (insecure context): fall back to a selection copy
    const area = document.createElement('textarea');
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand('copy');
    area.remove();
    Notification.info(`Copied ${text}`, { autoClose: 2000 });
  }
}

export function CopyButton(props: { text: string; title?: string }): JSX.Element {
  return <IconButton icon={copyIcon} title={props.title ?? `Copy ${props.text}`} onClick={() => void copyText(props.text)} />;
}

const STATUS_LABELS: Record<string, string> = {
  queued: 'queued',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
  timed_out: 'timed out'
};

/** The absolute URL of a route (the API gives a path). */
export function absoluteUrl(url: string): string {
  return /^https?:/.test(url) ? url : `${window.location.origin}${url.startsWith('/') ? '' : '/'}${url}`;
}

/** An endpoint's URL (POSTed to, so not followed on click) with a copy button. */
export function UrlRow(props: { url: string }): JSX.Element {
  const { url } = props;
  return (
    <div className="jp-nbdeploy-row jp-nbdeploy-urlrow">
      <a className="jp-nbdeploy-url jp-nbdeploy-mono" href={url} title={`POST ${url}`} onClick={e => e.preventDefault()}>
        {url}
      </a>
      <CopyButton text={url} title="Copy the URL" />
    </div>
  );
}

/** A run status as a coloured dot and word. */
export function StatusBadge(props: { status: RunStatus }): JSX.Element {
  return (
    <span className={`jp-nbdeploy-status jp-nbdeploy-status-${props.status}`}>
      <span className="jp-nbdeploy-status-dot" />
      {STATUS_LABELS[props.status] ?? props.status}
    </span>
  );
}
