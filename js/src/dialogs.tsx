/**
 * Dialogs: a form dialog that stays open until its async submit succeeds (showing server errors inside
 * it), a delete confirmation, "Try it" for functions and "Run now" for jobs.
 */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import {
  errorMessage,
  functionRequestSchema,
  getJob,
  getOpenAPI,
  invokeFunction,
  InvokeResult,
  NbdeployAPIError,
  Run,
  startRun
} from './api';
import { ErrorMessage, initialInputs, ParameterFields } from './components';
import { formatDuration } from './format';
import {
  collectValues,
  NotebookParameter,
  parsePythonLiteral,
  schemaToParameters,
  storedParameters,
  typeOfValue
} from './params';

/** The body of a {@link FormDialog}: a React form whose `submit` says whether the dialog may close. */
export abstract class FormBody extends ReactWidget {
  /** Run the form's action; resolve `true` to close the dialog, `false` to keep it open. */
  abstract submit(): Promise<boolean>;
  /** Set while a submit is running. */
  busy = false;
  /** The last error, shown by the body. */
  error: string | undefined;
  errorDetails: string | undefined;

  /** Record `e` as the form's error (field errors go to `fieldErrors`) and re-render. */
  protected fail(e: unknown, fieldErrors?: Record<string, string>): void {
    this.error = errorMessage(e);
    this.errorDetails = e instanceof NbdeployAPIError ? e.traceback : undefined;
    if (e instanceof NbdeployAPIError && fieldErrors) {
      if (e.field) {
        fieldErrors[e.field] = e.message;
      }
      Object.assign(fieldErrors, e.fields ?? {});
    }
    this.update();
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
  params: NotebookParameter[] | null = null;
  inputs: Record<string, string | boolean> = {};
  fieldErrors: Record<string, string> = {};
  rawArgs = '{}';
  result: InvokeResult | undefined;
  loadError: string | undefined;

  constructor(private readonly name: string) {
    super();
    this.addClass('jp-nbdeploy-tryit');
    void this.loadSchema();
  }

  private async loadSchema(): Promise<void> {
    try {
      const schema = functionRequestSchema(await getOpenAPI(), this.name);
      this.params = schema ? schemaToParameters(schema) : [];
      this.inputs = initialInputs(this.params);
      if (!schema) {
        this.loadError = 'The API describes no arguments for this function: enter them as a JSON object.';
      }
    } catch (e) {
      this.params = [];
      this.loadError = `Could not read the function's arguments (${errorMessage(e)}): enter them as a JSON object.`;
    }
    this.update();
  }

  async submit(): Promise<boolean> {
    this.result = undefined;
    this.fieldErrors = {};
    let args: Record<string, unknown>;
    if (this.params && this.params.length) {
      const { values, errors } = collectValues(this.params, this.inputs, true);
      if (Object.keys(errors).length) {
        this.fieldErrors = errors;
        this.error = 'Some arguments are not valid.';
        this.update();
        return false;
      }
      args = values;
    } else {
      try {
        const parsed = this.rawArgs.trim() ? parsePythonLiteral(this.rawArgs) : {};
        if (typeOfValue(parsed) !== 'dict') {
          throw new Error('the arguments must be a JSON object, e.g. {"x": 1}');
        }
        args = parsed as Record<string, unknown>;
      } catch (e) {
        this.fail(e);
        return false;
      }
    }
    try {
      this.result = await invokeFunction(this.name, args);
      this.error = undefined;
    } catch (e) {
      this.fail(e, this.fieldErrors);
    }
    this.update();
    return false; // keep the dialog open to show the answer
  }

  render(): JSX.Element {
    if (this.params === null) {
      return <div className="jp-nbdeploy-loading">Reading the function's arguments…</div>;
    }
    return (
      <div>
        {this.params.length ? (
          <ParameterFields
            params={this.params}
            inputs={this.inputs}
            errors={this.fieldErrors}
            idPrefix={`nbdeploy-tryit-${this.name}`}
            onChange={(n, v) => {
              this.inputs[n] = v;
              delete this.fieldErrors[n]; // edited: the old complaint no longer applies
              this.update();
            }}
          />
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

/** "Try it": a form from the function's OpenAPI schema that invokes it and shows the answer. */
export async function showTryIt(name: string): Promise<void> {
  const dialog = new FormDialog(new TryItBody(name), { title: `Try ${name}`, acceptLabel: 'Invoke', cancelLabel: 'Close' });
  await dialog.launch();
}

// --- Run now (a stored job) ---------------------------------------------------------------------------

class RunNowBody extends FormBody {
  params: NotebookParameter[] | null = null;
  inputs: Record<string, string | boolean> = {};
  fieldErrors: Record<string, string> = {};
  run: Run | undefined;

  constructor(private readonly job: string) {
    super();
    void getJob(job)
      .then(j => {
        this.params = storedParameters(j.parameters);
        this.inputs = initialInputs(this.params);
      })
      .catch(e => {
        this.params = [];
        this.error = `Could not read the job's parameters: ${errorMessage(e)}`;
      })
      .then(() => this.update());
  }

  async submit(): Promise<boolean> {
    const { values, errors } = collectValues(this.params ?? [], this.inputs);
    this.fieldErrors = errors;
    if (Object.keys(errors).length) {
      this.error = 'Some parameters are not valid.';
      this.update();
      return false;
    }
    try {
      this.run = await startRun(this.job, values);
      return true;
    } catch (e) {
      this.fail(e, this.fieldErrors);
      return false;
    }
  }

  render(): JSX.Element {
    if (this.params === null) {
      return <div className="jp-nbdeploy-loading">Reading the job's parameters…</div>;
    }
    return (
      <div>
        <ParameterFields
          params={this.params}
          inputs={this.inputs}
          errors={this.fieldErrors}
          idPrefix={`nbdeploy-run-${this.job}`}
          onChange={(n, v) => {
            this.inputs[n] = v;
            delete this.fieldErrors[n]; // edited: the old complaint no longer applies
            this.update();
          }}
        />
        {this.busy ? <div className="jp-nbdeploy-loading">Starting a run…</div> : null}
        <ErrorMessage message={this.error} details={this.errorDetails} />
      </div>
    );
  }
}

/** "Run now" with a parameters form; resolves the new run, or undefined when cancelled. */
export async function showRunNow(job: string): Promise<Run | undefined> {
  const body = new RunNowBody(job);
  const dialog = new FormDialog(body, { title: `Run ${job} now`, acceptLabel: 'Run' });
  const result = await dialog.launch();
  return result.button.accept ? body.run : undefined;
}
