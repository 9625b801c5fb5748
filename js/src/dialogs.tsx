/**
 * Dialogs: a form dialog that stays open until its async submit succeeds (showing server errors inside
 * it), a delete confirmation, "Try it" for functions and "Run now" for jobs.
 */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import {
  coerceForm,
  errorMessage,
  FormField,
  getFunction,
  getJob,
  invokeFunction,
  InvokeResult,
  NbdeployAPIError,
  Run,
  startRun
} from './api';
import { ErrorMessage } from './components';
import { fieldErrorsOf, FormInputValues, initialInputs, ParameterFields } from './form';
import { formatDuration } from './format';

/**
 * The body of a {@link FormDialog}: a React form whose `submit` says whether the dialog may close, with the
 * server's form fields (`FormField`s), what was typed into them and the errors shown under them.
 */
export abstract class FormBody extends ReactWidget {
  /** Run the form's action; resolve `true` to close the dialog, `false` to keep it open. */
  abstract submit(): Promise<boolean>;
  /** Set while a submit is running. */
  busy = false;
  /** The last error, shown by the body. */
  error: string | undefined;
  errorDetails: string | undefined;
  /** The form's fields as the server described them; null while they load. */
  fields: FormField[] | null = null;
  /** What was typed into each field (text, or a checkbox's state). */
  inputs: FormInputValues = {};
  /** A message under each field that does not fit. */
  fieldErrors: Record<string, string> = {};

  /** Show `fields`, each starting from its `initial` input. */
  protected setFields(fields: FormField[]): void {
    this.fields = fields;
    this.inputs = initialInputs(fields);
  }

  /**
   * The JSON values of the fields (`POST /forms/coerce`; with `includeDefaults`, of those left as they
   * started too). Resolves null, with each error under its field and `invalid` as the form's error, when
   * some input does not fit.
   */
  protected async coerce(includeDefaults: boolean, invalid: string): Promise<Record<string, unknown> | null> {
    const { values, errors } = await coerceForm({ fields: this.fields ?? [], inputs: this.inputs, include_defaults: includeDefaults });
    this.fieldErrors = errors;
    if (Object.keys(errors).length) {
      this.error = invalid;
      this.update();
      return null;
    }
    return values;
  }

  /** Record `e` as the form's error (its per-field messages, renamed by `rename`, under the fields) and re-render. */
  protected fail(e: unknown, rename?: Record<string, string>): void {
    this.error = errorMessage(e);
    this.errorDetails = e instanceof NbdeployAPIError ? e.traceback : undefined;
    Object.assign(this.fieldErrors, fieldErrorsOf(e, rename));
    this.update();
  }

  /** The fields' inputs, ids `<idPrefix>-<field name>`; an edited field drops its old complaint. */
  protected renderFields(idPrefix: string): JSX.Element {
    return (
      <ParameterFields
        fields={this.fields ?? []}
        inputs={this.inputs}
        errors={this.fieldErrors}
        idPrefix={idPrefix}
        onChange={(name, value) => {
          this.inputs[name] = value;
          delete this.fieldErrors[name];
          this.update();
        }}
      />
    );
  }
}

/** A JupyterLab dialog whose accept button runs the body's async `submit`, closing only on success. */
export class FormDialog extends Dialog<void> {
  constructor(private readonly form: FormBody, options: { title: string; acceptLabel: string; cancelLabel?: string }) {
    super({
      title: options.title,
      body: form,
      buttons: [
        Dialog.cancelButton({ label: options.cancelLabel ?? 'Cancel' }),
        Dialog.okButton({ label: options.acceptLabel })
      ],
      focusNodeSelector: 'input, textarea, select',
      hasClose: true
    });
    this.addClass('jp-nbdeploy-dialog');
  }

  resolve(index?: number): void {
    if (index === 0) {
      super.resolve(index);
      return;
    }
    if (this.form.busy) {
      return;
    }
    const accept = this.node.querySelector<HTMLButtonElement>('.jp-Dialog-button.jp-mod-accept');
    this.form.busy = true;
    this.form.error = undefined;
    this.form.update();
    if (accept) {
      accept.disabled = true;
    }
    this.form
      .submit()
      .catch(e => {
        this.form.error = errorMessage(e);
        return false;
      })
      .then(done => {
        this.form.busy = false;
        this.form.update();
        if (accept) {
          accept.disabled = false;
        }
        if (done) {
          super.resolve(index);
        }
      });
  }
}

/** Ask before deleting; resolves true when the user confirms. */
export async function confirmDelete(what: string, consequence: string): Promise<boolean> {
  const result = await showDialog({
    title: `Delete ${what}?`,
    body: consequence,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
  });
  return result.button.accept;
}

/** Ask whether to delete `what`; when the user agrees, run `remove` (an error shows as a dialog naming
 * `label`, e.g. `delete churn`). Resolves true when the user agreed, so the caller refreshes its list. */
export async function confirmAndDelete(
  what: string,
  consequence: string,
  remove: () => Promise<void>,
  label = `delete ${what}`
): Promise<boolean> {
  if (!(await confirmDelete(what, consequence))) {
    return false;
  }
  try {
    await remove();
  } catch (e) {
    await showActionError(label, e);
  }
  return true;
}

/** Show an error from an action the user started (a delete, a pause) as a dialog with a readable message. */
export async function showActionError(action: string, error: unknown): Promise<void> {
  await showDialog({
    title: `Could not ${action}`,
    body: errorMessage(error),
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}

// --- Try it ---------------------------------------------------------------------------------------------

class TryItBody extends FormBody {
  rawArgs = '{}';
  result: InvokeResult | undefined;
  loadError: string | undefined;

  constructor(private readonly name: string) {
    super();
    this.addClass('jp-nbdeploy-tryit');
    void this.load();
  }

  private async load(): Promise<void> {
    try {
      this.setFields((await getFunction(this.name)).form);
    } catch (e) {
      this.fields = [];
      this.loadError = `Could not read the function's arguments (${errorMessage(e)}): enter them as a JSON object.`;
    }
    this.update();
  }

  /** The arguments: the fields' values, or the JSON object typed when the function has no fields. */
  private async args(): Promise<Record<string, unknown> | null> {
    if (this.fields?.length) {
      return this.coerce(true, 'Some arguments are not valid.');
    }
    let parsed: unknown;
    try {
      parsed = this.rawArgs.trim() ? JSON.parse(this.rawArgs) : {};
    } catch {
      parsed = undefined;
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new Error('the arguments must be a JSON object, e.g. {"x": 1}');
    }
    return parsed as Record<string, unknown>;
  }

  async submit(): Promise<boolean> {
    this.result = undefined;
    this.fieldErrors = {};
    try {
      const args = await this.args();
      if (args) {
        this.result = await invokeFunction(this.name, args);
        this.error = undefined;
        this.errorDetails = undefined;
      }
    } catch (e) {
      this.fail(e);
    }
    this.update();
    return false; // keep the dialog open to show the answer
  }

  render(): JSX.Element {
    if (this.fields === null) {
      return <div className="jp-nbdeploy-loading">Reading the function's arguments…</div>;
    }
    return (
      <div>
        {this.fields.length ? (
          this.renderFields(`nbdeploy-tryit-${this.name}`)
        ) : (
          <div className="jp-nbdeploy-param">
            {this.loadError ? <div className="jp-nbdeploy-param-help">{this.loadError}</div> : null}
            <label htmlFor="nbdeploy-tryit-json">Arguments (JSON object)</label>
            <textarea
              id="nbdeploy-tryit-json"
              className="jp-mod-styled jp-nbdeploy-json"
              rows={3}
              value={this.rawArgs}
              onChange={e => {
                this.rawArgs = e.target.value;
                this.update();
              }}
            />
          </div>
        )}
        {this.busy ? <div className="jp-nbdeploy-loading">Invoking {this.name}…</div> : null}
        <ErrorMessage message={this.error} details={this.errorDetails} />
        {this.result ? (
          <div className="jp-nbdeploy-result" aria-label="result">
            <div className="jp-nbdeploy-result-meta">
              Result from version {this.result.version} in {formatDuration(this.result.duration_ms / 1000)}
            </div>
            <pre>{JSON.stringify(this.result.result, null, 2)}</pre>
          </div>
        ) : null}
      </div>
    );
  }
}

/** "Try it": the function's form (from `GET /functions/{name}`), invoking it and showing the answer. */
export async function showTryIt(name: string): Promise<void> {
  const dialog = new FormDialog(new TryItBody(name), { title: `Try ${name}`, acceptLabel: 'Invoke', cancelLabel: 'Close' });
  await dialog.launch();
}

// --- Run now (a stored job) ---------------------------------------------------------------------------

class RunNowBody extends FormBody {
  run: Run | undefined;

  constructor(private readonly job: string) {
    super();
    void getJob(job)
      .then(info => this.setFields(info.latest.form))
      .catch(e => {
        this.fields = [];
        this.error = `Could not read the job's parameters: ${errorMessage(e)}`;
      })
      .then(() => this.update());
  }

  async submit(): Promise<boolean> {
    try {
      const parameters = await this.coerce(false, 'Some parameters are not valid.');
      if (!parameters) {
        return false;
      }
      this.run = await startRun(this.job, { parameters });
      return true;
    } catch (e) {
      this.fail(e);
      return false;
    }
  }

  render(): JSX.Element {
    if (this.fields === null) {
      return <div className="jp-nbdeploy-loading">Reading the job's parameters…</div>;
    }
    return (
      <div>
        {this.renderFields(`nbdeploy-run-${this.job}`)}
        {this.busy ? <div className="jp-nbdeploy-loading">Starting a run…</div> : null}
        <ErrorMessage message={this.error} details={this.errorDetails} />
      </div>
    );
  }
}

/** "Run now" with the job's parameters form; resolves the new run, or undefined when cancelled. */
export async function showRunNow(job: string): Promise<Run | undefined> {
  const body = new RunNowBody(job);
  const dialog = new FormDialog(body, { title: `Run ${job} now`, acceptLabel: 'Run' });
  const result = await dialog.launch();
  return result.button.accept ? body.run : undefined;
}
