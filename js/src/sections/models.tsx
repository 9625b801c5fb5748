/**
 * Models: every stored model with its newest version, flavor, aliases and metrics; its versions (set an
 * alias, delete one); its serving statistics over every server and their figure (latency, request rate, drift);
 * delete a model; and "Try it", which sends one row (a form from the signature's
 * columns, or JSON) to the predict route.
 */

import { InputDialog } from '@jupyterlab/apputils';
import { caretDownIcon, caretRightIcon, deleteIcon } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import {
  coerceForm,
  deleteModel,
  deleteModelVersion,
  errorMessage,
  getModel,
  getModelFigure,
  getModelReport,
  listModels,
  ModelInfo,
  ModelVersion,
  predictModel,
  PredictQuery,
  PredictResult,
  setModelAlias
} from '../api';
import { absoluteUrl, Empty, ErrorMessage, IconButton, TextButton, UrlRow } from '../components';
import { confirmAndDelete, FormBody, FormDialog, showActionError } from '../dialogs';
import { formatMetrics, formatRelative, formatTimestamp, servingOfModel } from '../format';
import { usePoll } from '../poll';
import { Serving } from './serving';
import { ISection, ISectionContext } from './types';

/** The input a model takes, in words: `age float64, tenure int64` or `array N×4 float64`. */
function describeSignature(s: ModelVersion['signature']): string {
  if (!s) {
    return 'no signature (store it with sample_input=…)';
  }
  if (s.type === 'dataframe' && s.columns) {
    return s.columns.map(c => `${c.name} ${c.dtype}`).join(', ');
  }
  return `array ${(s.shape ?? [-1]).map(n => (n < 0 ? 'N' : String(n))).join('×')} ${s.dtype ?? ''}`.trim();
}

/** Predictions as JSON: on one line when short (`[1,0]`), indented otherwise. */
function formatPredictions(value: unknown): string {
  const line = JSON.stringify(value);
  return line !== undefined && line.length <= 80 ? line : JSON.stringify(value, null, 1);
}

function Tags(props: { tags: string[] }): JSX.Element {
  return (
    <>
      {props.tags.map(a => (
        <span key={a} className="jp-nbdeploy-tag">
          {a}
        </span>
      ))}
    </>
  );
}

/** Ask for an alias name and point it at `version`; true when it was set. */
async function promptAlias(name: string, version: number): Promise<boolean> {
  const answer = await InputDialog.getText({ title: `Alias for ${name} v${version}`, placeholder: 'production', okLabel: 'Set alias' });
  const alias = answer.value?.trim();
  if (!answer.button.accept || !alias) {
    return false;
  }
  try {
    await setModelAlias(name, alias, version);
    return true;
  } catch (e) {
    await showActionError(`set the alias ${alias} of ${name}`, e);
    return false;
  }
}

function removeVersion(name: string, version: number): Promise<boolean> {
  const consequence = `Version ${version} of ${name} and the aliases that point at it are deleted.`;
  return confirmAndDelete(`${name} v${version}`, consequence, () => deleteModelVersion(name, version));
}

function Versions(props: { context: ISectionContext; name: string; onChanged: () => void }): JSX.Element {
  const { data, error, refresh } = usePoll(props.context, () => getModel(props.name), [props.name]);
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
    <div className="jp-nbdeploy-model-detail">
      <div className="jp-nbdeploy-muted jp-nbdeploy-model-input" title="The input the model takes">
        Input: {describeSignature(data.latest.signature)}
      </div>
      <ul className="jp-nbdeploy-sublist">
        {[...data.versions].reverse().map(v => (
          <li key={v.version} className="jp-nbdeploy-model-version" data-version={v.version}>
            <span className="jp-nbdeploy-version">v{v.version}</span>
            <Tags tags={v.version === data.latest.version && !v.aliases.includes('latest') ? ['latest', ...v.aliases] : v.aliases} />
            <span className="jp-nbdeploy-muted">{v.flavor}</span>
            <span className="jp-nbdeploy-muted" title={formatTimestamp(v.created_at)}>
              {formatRelative(v.created_at)}
            </span>
            {Object.keys(v.metrics).length ? (
              <span className="jp-nbdeploy-metrics" title={JSON.stringify(v.metrics, null, 1)}>
                {formatMetrics(v.metrics)}
              </span>
            ) : null}
            <span className="jp-nbdeploy-spacer" />
            <TextButton label="Alias…" onClick={() => void promptAlias(props.name, v.version).then(changed)} />
            <IconButton
              icon={deleteIcon}
              title={`Delete ${props.name} v${v.version}`}
              onClick={() => void removeVersion(props.name, v.version).then(changed)}
            />
          </li>
        ))}
      </ul>
    </div>
  );
}

function ModelRow(props: { context: ISectionContext; model: ModelVersion; onChanged: () => void }): JSX.Element {
  const { model } = props;
  const [open, setOpen] = useState(false);
  const url = absoluteUrl(model.path);
  const remove = async () => {
    const consequence = `Every version of ${model.name} is deleted and ${url} stops answering.`;
    if (await confirmAndDelete(`model ${model.name}`, consequence, () => deleteModel(model.name), `delete ${model.name}`)) {
      props.onChanged();
    }
  };
  return (
    <li className="jp-nbdeploy-item jp-nbdeploy-model" data-name={model.name}>
      <div className="jp-nbdeploy-row" onClick={() => setOpen(!open)}>
        <IconButton icon={open ? caretDownIcon : caretRightIcon} title={open ? 'Hide versions' : 'Show versions'} onClick={() => setOpen(!open)} />
        <span className="jp-nbdeploy-name" title={model.description || model.name}>
          {model.name}
        </span>
        <span className="jp-nbdeploy-version">v{model.version}</span>
        <span className="jp-nbdeploy-muted" title={`Stored ${formatTimestamp(model.created_at)}`}>
          {formatRelative(model.created_at)}
        </span>
        <span className="jp-nbdeploy-spacer" />
        <TextButton label="Try it" accent onClick={() => void showTryModel(model.name)} />
        <IconButton icon={deleteIcon} title={`Delete ${model.name}`} onClick={() => void remove()} />
      </div>
      <div className="jp-nbdeploy-row jp-nbdeploy-urlrow">
        <span className="jp-nbdeploy-tag jp-nbdeploy-flavor" title={`Flavor ${model.flavor}; predictions call ${model.method}()`}>
          {model.flavor}
        </span>
        <Tags tags={model.aliases} />
        {Object.keys(model.metrics).length ? (
          <span className="jp-nbdeploy-metrics" title={JSON.stringify(model.metrics, null, 1)}>
            {formatMetrics(model.metrics)}
          </span>
        ) : null}
      </div>
      <UrlRow url={url} />
      {open ? (
        <>
          <Serving context={props.context} kind="model" name={model.name} load={() => getModelReport(model.name).then(servingOfModel)} figure={() => getModelFigure(model.name)} />
          <Versions context={props.context} name={model.name} onChanged={props.onChanged} />
        </>
      ) : null}
    </li>
  );
}

function ModelsBody(props: { context: ISectionContext }): JSX.Element {
  const { data, error, loading, refresh } = usePoll(props.context, listModels);
  return (
    <div className="jp-nbdeploy-section-body">
      <ErrorMessage message={error} />
      {loading && !data ? <div className="jp-nbdeploy-loading">Loading models…</div> : null}
      {data && !data.length ? (
        <Empty>
          No models yet. Store one from a notebook with <code>nbd.models.put(model, "name", sample_input=X)</code>.
        </Empty>
      ) : null}
      <ul className="jp-nbdeploy-list">
        {(data ?? []).map(m => (
          <ModelRow key={m.name} context={props.context} model={m} onChanged={refresh} />
        ))}
      </ul>
    </div>
  );
}

// --- Try it ---------------------------------------------------------------------------------------------

class TryModelBody extends FormBody {
  model: ModelInfo | undefined;
  mode: 'form' | 'json' = 'json';
  rawPayload = '';
  /** Counts edits of the JSON text, so that values carried over from the fields never overwrite typing. */
  private rawEdits = 0;
  version = 'latest';
  result: PredictResult | undefined;
  loadError: string | undefined;

  constructor(private readonly name: string) {
    super();
    this.addClass('jp-nbdeploy-tryit');
    void this.load();
  }

  /** A model of named columns comes with the form of one row; others are tried with JSON. */
  private get columnar(): boolean {
    return !!this.fields?.length;
  }

  private async load(): Promise<void> {
    try {
      this.model = await getModel(this.name);
      this.setFields(this.model.form);
      this.mode = this.columnar ? 'form' : 'json';
      this.rawPayload = JSON.stringify(this.model.example ?? { inputs: [] }, null, 1);
      if (this.columnar) {
        await this.carryToJson();
      }
    } catch (e) {
      this.loadError = `Could not read the model's signature (${errorMessage(e)}): enter an MLflow payload as JSON.`;
      this.rawPayload = JSON.stringify({ dataframe_records: [{}] });
    }
    this.update();
  }

  /** The request body: the form's one record (null when a field does not fit), or the JSON text. */
  private async payload(): Promise<Record<string, unknown> | null> {
    if (this.mode === 'form' && this.columnar) {
      const values = await this.coerce(true, 'Some values are not valid.');
      return values && { dataframe_records: [values] };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(this.rawPayload);
    } catch {
      throw new Error('The input is not valid JSON.');
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new Error('The input must be a JSON object such as {"dataframe_records": [{…}]} or {"inputs": [[…]]}.');
    }
    return parsed as Record<string, unknown>;
  }

  /** Put the fields' values that fit into the JSON text as one record (unless it was edited meanwhile). */
  private async carryToJson(): Promise<void> {
    const edits = this.rawEdits;
    try {
      const { values } = await coerceForm({ fields: this.fields ?? [], inputs: this.inputs, include_defaults: true });
      if (edits === this.rawEdits) {
        this.rawPayload = JSON.stringify({ dataframe_records: [values] }, null, 1);
        this.update();
      }
    } catch {
      // the server did not answer: the JSON text stays as it was
    }
  }

  /** Switch between the fields and the JSON text, carrying the values across. */
  private setMode(mode: 'form' | 'json'): void {
    if (mode === this.mode) {
      return;
    }
    this.mode = mode;
    this.fieldErrors = {};
    this.error = undefined;
    this.update();
    if (mode === 'json' && this.columnar) {
      void this.carryToJson();
    }
  }

  /** `?version=N`, `?alias=A` or nothing (the newest), from the version picker. */
  private which(): PredictQuery {
    if (this.version === 'latest') {
      return {};
    }
    return /^\d+$/.test(this.version) ? { version: Number(this.version) } : { alias: this.version };
  }

  async submit(): Promise<boolean> {
    this.result = undefined;
    this.fieldErrors = {};
    try {
      const payload = await this.payload();
      if (payload) {
        this.result = await predictModel(this.name, payload, this.which());
        this.error = undefined;
        this.errorDetails = undefined;
      }
    } catch (e) {
      this.fail(e);
    }
    this.update();
    return false; // keep the dialog open to show the answer
  }

  private versionChoices(): { value: string; label: string }[] {
    const model = this.model;
    if (!model) {
      return [{ value: 'latest', label: 'latest' }];
    }
    const aliases = model.versions.flatMap(v => v.aliases.map(a => ({ value: a, label: `${a} (v${v.version})` })));
    const versions = [...model.versions].reverse().map(v => ({ value: String(v.version), label: `v${v.version}` }));
    return [{ value: 'latest', label: `latest (v${model.latest.version})` }, ...aliases, ...versions];
  }

  render(): JSX.Element {
    if (!this.model && !this.loadError) {
      return <div className="jp-nbdeploy-loading">Reading the model's signature…</div>;
    }
    return (
      <div>
        <div className="jp-nbdeploy-inline jp-nbdeploy-tryit-options">
          <label className="jp-nbdeploy-inline" htmlFor="nbdeploy-trymodel-version">
            Version
            <select
              id="nbdeploy-trymodel-version"
              className="jp-mod-styled"
              value={this.version}
              onChange={e => {
                this.version = e.target.value;
                this.update();
              }}
            >
              {this.versionChoices().map(c => (
                <option key={c.value} value={c.value}>
                  {c.label}
                </option>
              ))}
            </select>
          </label>
          {this.columnar ? (
            <>
              <label className="jp-nbdeploy-radio">
                <input type="radio" name="nbdeploy-trymodel-mode" checked={this.mode === 'form'} onChange={() => this.setMode('form')} />
                One row
              </label>
              <label className="jp-nbdeploy-radio">
                <input type="radio" name="nbdeploy-trymodel-mode" checked={this.mode === 'json'} onChange={() => this.setMode('json')} />
                JSON
              </label>
            </>
          ) : null}
        </div>
        {this.mode === 'form' && this.columnar ? (
          this.renderFields(`nbdeploy-trymodel-${this.name}`)
        ) : (
          <div className="jp-nbdeploy-param">
            {this.loadError ? <div className="jp-nbdeploy-param-help">{this.loadError}</div> : null}
            <label htmlFor="nbdeploy-trymodel-json">Input (an MLflow scoring payload)</label>
            <textarea
              id="nbdeploy-trymodel-json"
              className="jp-mod-styled jp-nbdeploy-json"
              rows={Math.min(12, Math.max(4, this.rawPayload.split('\n').length))}
              value={this.rawPayload}
              onChange={e => {
                this.rawPayload = e.target.value;
                this.rawEdits++;
                this.update();
              }}
            />
            {this.model ? <div className="jp-nbdeploy-param-help">The model takes {describeSignature(this.model.latest.signature)}.</div> : null}
          </div>
        )}
        {this.busy ? <div className="jp-nbdeploy-loading">Predicting with {this.name}…</div> : null}
        <ErrorMessage message={this.error} details={this.errorDetails} />
        {this.result ? (
          <div className="jp-nbdeploy-result" aria-label="predictions">
            <div className="jp-nbdeploy-result-meta">Predictions from version {this.result.version}</div>
            <pre>{formatPredictions(this.result.predictions)}</pre>
          </div>
        ) : null}
      </div>
    );
  }
}

/** "Try it" for a model: one row from its signature (or a JSON payload), sent to the predict route. */
export async function showTryModel(name: string): Promise<void> {
  const dialog = new FormDialog(new TryModelBody(name), { title: `Try model ${name}`, acceptLabel: 'Predict', cancelLabel: 'Close' });
  await dialog.launch();
}

export const modelsSection: ISection = {
  id: 'models',
  title: 'Models',
  render: context => <ModelsBody context={context} />
};
