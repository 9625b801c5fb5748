/**
 * Serving statistics of a function or a model, over every server that served it (the server merges them): a
 * line of counts and latencies that refreshes with its section, and "Plot", which opens the server's matplotlib
 * figure in the main area (latency histogram, latency over time, request rate; a model's drift per column): the
 * same figure `nbd.functions.plot(name)` / `nbd.models.plot(name)` returns in a notebook.
 */

import React from 'react';

import { ErrorMessage, TextButton } from '../components';
import { figureImage, openFigureTab } from '../figures';
import { formatServing, IServingSummary } from '../format';
import { usePoll } from '../poll';
import { ISectionContext } from './types';

/** The serving line of a function or model (`kind`), with "Plot" for the server-drawn figure. */
export function Serving(props: {
  context: ISectionContext;
  kind: 'function' | 'model';
  name: string;
  load: () => Promise<IServingSummary>;
  figure: () => Promise<Blob>;
}): JSX.Element {
  const { context, kind, name } = props;
  const { data, error } = usePoll(context, props.load, [name]);
  const plot = () =>
    void openFigureTab(context.app, {
      id: `nbdeploy-serving-${kind}-${name}`,
      label: `${name} serving`,
      caption: `Latency and request rate of the ${kind} ${name} over every server`,
      className: 'jp-nbdeploy-serving-figure',
      loading: 'Drawing the figure…',
      action: `draw the serving figure of ${name}`,
      build: async widget => [figureImage(await props.figure(), `Serving statistics of ${name}`, 'jp-nbdeploy-figure', widget)]
    });
  return (
    <div className="jp-nbdeploy-serving" data-name={name}>
      <div className="jp-nbdeploy-row">
        <span className="jp-nbdeploy-muted jp-nbdeploy-serving-summary" title="Over every server that served it">
          {data ? formatServing(data) : error ? '' : 'Loading the serving statistics…'}
          {data?.drift ? ` · ${data.drift}` : ''}
        </span>
        <span className="jp-nbdeploy-spacer" />
        <TextButton label="Plot" title="Latency and request rate (drawn by the server), in the main area" onClick={plot} />
      </div>
      <ErrorMessage message={error} />
    </div>
  );
}
