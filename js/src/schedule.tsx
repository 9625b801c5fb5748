/**
 * "Schedule this notebook…": name, the parameters of the notebook's `parameters` cell as typed fields,
 * run now or on a schedule (presets or cron, with a time zone), timeout and retries, and "Output HTML".
 *
 * The server decides: opening the dialog asks `POST /notebooks/inspect` for the job name, the parameters
 * and their form; on submit the notebook is saved and `POST /notebooks/schedule` stores it as a job version
 * and starts the run or the schedule (nothing is stored unless every field fits; its errors show under
 * the fields).
 *
 * Every run keeps its executed notebook on the server. "Output HTML" (remembered per notebook, off by
 * default): when a run started here succeeds, the run tracker has the server save its HTML beside the
 * notebook (`POST /runs/{id}/html`, see tracker.ts).
 */

import { NotebookPanel } from '@jupyterlab/notebook';
import { Message } from '@lumino/messaging';
import React from 'react';

import { errorMessage, inspectNotebook, NotebookInfo, NotebookSchedule, Run, Schedule, scheduleNotebook } from './api';
import { ErrorMessage } from './components';
import { cronToWords, DAY_NAMES, presetToCron, SchedulePreset } from './cron';
import { FormBody, FormDialog } from './dialogs';

type PresetKind = SchedulePreset['kind'];

const PRESETS: { kind: PresetKind; label: string }[] = [
  { kind: 'hourly', label: 'Hourly' },
  { kind: 'daily', label: 'Daily at' },
  { kind: 'weekdays', label: 'Weekdays at' },
  { kind: 'weekly', label: 'Weekly on' },
  { kind: 'custom', label: 'Custom (cron)' }
];

function timeZones(): string[] {
  const supported = (Intl as any).supportedValuesOf?.('timeZone') as string[] | undefined;
  const zones = supported && supported.length ? [...supported] : [];
  for (const z of ['UTC', localTimeZone()]) {
    if (!zones.includes(z)) {
      zones.unshift(z);
    }
  }
  return zones;
}

function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** What the dialog creates: a run (with whether to save its HTML beside the notebook), or a schedule. */
export type ScheduleOutcome = { kind: 'run'; run: Run; saveHtml: boolean } | { kind: 'schedule'; schedule: Schedule };

const OUTPUT_HTML_KEY = 'nbdeploy:output-html';

/** The "Output HTML" choice last made for the notebook at `path` (off when never made). */
function rememberedOutputHtml(path: string): boolean {
  try {
    const saved = JSON.parse(window.localStorage.getItem(OUTPUT_HTML_KEY) ?? '{}');
    return saved?.[path] === true;
  } catch {
    return false;
  }
}

function rememberOutputHtml(path: string, on: boolean): void {
  try {
    const saved = JSON.parse(window.localStorage.getItem(OUTPUT_HTML_KEY) ?? '{}');
    const choices: Record<string, boolean> = saved && typeof saved === 'object' && !Array.isArray(saved) ? saved : {};
    if (on) {
      choices[path] = true;
    } else {
      delete choices[path];
    }
    window.localStorage.setItem(OUTPUT_HTML_KEY, JSON.stringify(choices));
  } catch {
    // storage disabled or full: the choice holds for this dialog only
  }
}

/** The server's errors of these fields show under the dialog's fields of another name. */
const FIELD_NAMES: Record<string, string> = { cron: 'schedule' };

class ScheduleBody extends FormBody {
  name: string;
  mode: 'now' | 'schedule' = 'now';
  preset: PresetKind = 'daily';
  minute = '0';
  time = '06:00';
  day = 1;
  cron = '0 6 * * *';
  timezone = localTimeZone();
  timeoutMinutes = '';
  retries = '0';
  outputHtml: boolean;
  outcome: ScheduleOutcome | undefined;
  private readonly zones = timeZones();

  /** `info` is what `POST /notebooks/inspect` said of the notebook; `loadError` why it could not say. */
  constructor(
    private readonly panel: NotebookPanel,
    private readonly info: NotebookInfo | undefined,
    private readonly loadError: string | undefined
  ) {
    super();
    this.addClass('jp-nbdeploy-schedule-form');
    this.name = info?.name ?? '';
    this.setFields(info?.form ?? []);
    this.outputHtml = rememberedOutputHtml(panel.context.path);
  }

  private presetValue(): SchedulePreset {
    switch (this.preset) {
      case 'hourly':
        return { kind: 'hourly', minute: /^\d+$/.test(this.minute.trim()) ? Number(this.minute) : NaN };
      case 'daily':
      case 'weekdays':
        return { kind: this.preset, time: this.time };
      case 'weekly':
        return { kind: 'weekly', day: this.day, time: this.time };
      case 'custom':
        return { kind: 'custom', cron: this.cron };
    }
  }

  /** The cron expression and its words, or the reason it is invalid. */
  private schedulePreview(): { cron?: string; words?: string; error?: string } {
    try {
      const cron = presetToCron(this.presetValue());
      return { cron, words: cronToWords(cron, this.timezone) };
    } catch (e) {
      return { error: (e as Error).message };
    }
  }

  /** Timeout (minutes in the dialog, seconds for the API) and retries as numbers; the server checks their range. */
  private options(): { options: Pick<NotebookSchedule, 'timeout' | 'retries'>; errors: Record<string, string> } {
    const errors: Record<string, string> = {};
    const timeout = this.timeoutMinutes.trim();
    const minutes = Number(timeout);
    if (timeout && !Number.isFinite(minutes)) {
      errors.timeout = 'the timeout is a number of minutes (or empty for none)';
    }
    if (!/^\d+$/.test(this.retries.trim())) {
      errors.retries = 'retries is a whole number';
    }
    return { options: { timeout: timeout ? Math.round(minutes * 60) : null, retries: Number(this.retries) }, errors };
  }

  async submit(): Promise<boolean> {
    const { options, errors } = this.options();
    this.fieldErrors = errors;
    if (Object.keys(errors).length) {
      this.error = 'Please correct the fields marked in red.';
      this.update();
      return false;
    }
    // a custom cron goes to the server as typed (it has the last word); a preset only once it makes one
    const cron = this.preset === 'custom' ? this.cron : this.schedulePreview().cron ?? null;
    try {
      // the job runs what is on disk: save first, then send the saved notebook
      await this.panel.context.save();
      const done = await scheduleNotebook({
        notebook: this.panel.context.model.toJSON() as Record<string, unknown>,
        path: this.panel.context.path,
        name: this.name,
        when: this.mode,
        inputs: this.inputs,
        ...(this.mode === 'schedule' ? { cron, timezone: this.timezone } : {}),
        ...options
      });
      rememberOutputHtml(this.panel.context.path, this.outputHtml);
      if (done.run) {
        this.outcome = { kind: 'run', run: done.run, saveHtml: this.outputHtml };
      } else if (done.schedule) {
        this.outcome = { kind: 'schedule', schedule: done.schedule };
      }
      return true;
    } catch (e) {
      this.fail(e, FIELD_NAMES);
      const shown = ['name', 'schedule', 'timezone', 'timeout', 'retries', ...(this.fields ?? []).map(f => f.name)];
      if (shown.some(key => key in this.fieldErrors)) {
        this.error = 'Please correct the fields marked in red.';
        this.update();
      }
      return false;
    }
  }

  private field(label: string, id: string, input: JSX.Element, errorKey?: string, help?: string): JSX.Element {
    const error = errorKey ? this.fieldErrors[errorKey] : undefined;
    return (
      <div className={`jp-nbdeploy-param ${error ? 'jp-nbdeploy-mod-invalid' : ''}`}>
        <label htmlFor={id}>{label}</label>
        {input}
        {help ? <div className="jp-nbdeploy-param-help">{help}</div> : null}
        {error ? <div className="jp-nbdeploy-field-error">{error}</div> : null}
      </div>
    );
  }

  protected onUpdateRequest(msg: Message): void {
    super.onUpdateRequest(msg);
    // the accept button says what it will do
    const label = this.node.closest('.jp-Dialog-content')?.querySelector('.jp-mod-accept .jp-Dialog-buttonLabel');
    if (label) {
      label.textContent = this.mode === 'now' ? 'Run now' : 'Schedule';
    }
  }

  private set<K extends keyof this>(key: K, value: this[K]): void {
    this[key] = value;
    // an edited field drops its old complaint (the schedule's fields share one)
    const field =
      { name: 'name', timezone: 'timezone', timeoutMinutes: 'timeout', retries: 'retries', outputHtml: 'outputHtml' }[key as string] ??
      'schedule';
    delete this.fieldErrors[field];
    this.update();
  }

  private renderSchedule(): JSX.Element {
    const preview = this.schedulePreview();
    return (
      <fieldset className="jp-nbdeploy-fieldset">
        <legend>Schedule</legend>
        <div className="jp-nbdeploy-inline">
          <select
            id="nbdeploy-schedule-preset"
            aria-label="Schedule preset"
            className="jp-mod-styled"
            value={this.preset}
            onChange={e => this.set('preset', e.target.value as PresetKind)}
          >
            {PRESETS.map(p => (
              <option key={p.kind} value={p.kind}>
                {p.label}
              </option>
            ))}
          </select>
          {this.preset === 'hourly' ? (
            <label className="jp-nbdeploy-inline">
              at minute
              <input
                id="nbdeploy-schedule-minute"
                type="text"
                inputMode="numeric"
                className="jp-mod-styled jp-nbdeploy-short"
                value={this.minute}
                onChange={e => this.set('minute', e.target.value)}
              />
            </label>
          ) : null}
          {this.preset === 'weekly' ? (
            <select
              id="nbdeploy-schedule-day"
              aria-label="Day of the week"
              className="jp-mod-styled"
              value={this.day}
              onChange={e => this.set('day', Number(e.target.value))}
            >
              {DAY_NAMES.map((d, i) => (
                <option key={d} value={i}>
                  {d}
                </option>
              ))}
            </select>
          ) : null}
          {['daily', 'weekdays', 'weekly'].includes(this.preset) ? (
            <input
              id="nbdeploy-schedule-time"
              aria-label="Time (HH:MM)"
              type="time"
              className="jp-mod-styled"
              value={this.time}
              onChange={e => this.set('time', e.target.value)}
            />
          ) : null}
          {this.preset === 'custom' ? (
            <input
              id="nbdeploy-schedule-cron"
              aria-label="Cron expression"
              type="text"
              className="jp-mod-styled jp-nbdeploy-mono"
              placeholder="minute hour day month weekday"
              value={this.cron}
              onChange={e => this.set('cron', e.target.value)}
            />
          ) : null}
        </div>
        {this.field(
          'Time zone',
          'nbdeploy-schedule-timezone',
          <select
            id="nbdeploy-schedule-timezone"
            className="jp-mod-styled"
            value={this.timezone}
            onChange={e => this.set('timezone', e.target.value)}
          >
            {this.zones.map(z => (
              <option key={z} value={z}>
                {z}
              </option>
            ))}
          </select>,
          'timezone'
        )}
        {/* the cron of the preset in words, or why there is none (cron.ts; the server's own complaint after) */}
        {preview.error || this.fieldErrors.schedule ? (
          <div className="jp-nbdeploy-field-error" aria-live="polite">
            {preview.error ?? this.fieldErrors.schedule}
          </div>
        ) : (
          <div className="jp-nbdeploy-preview" aria-live="polite">{`Runs ${preview.words}`}</div>
        )}
      </fieldset>
    );
  }

  render(): JSX.Element {
    return (
      <div>
        {this.field(
          'Job name',
          'nbdeploy-schedule-name',
          <input
            id="nbdeploy-schedule-name"
            type="text"
            className="jp-mod-styled"
            value={this.name}
            onChange={e => this.set('name', e.target.value.trim())}
          />,
          'name',
          `From ${this.panel.context.path}; a new version if the job exists.`
        )}
        <fieldset className="jp-nbdeploy-fieldset">
          <legend>Parameters</legend>
          {this.loadError ? (
            <div className="jp-nbdeploy-field-error">Could not read the notebook's parameters: {this.loadError}</div>
          ) : this.info?.has_parameters_cell ? (
            this.renderFields('nbdeploy-schedule-param')
          ) : (
            <div className="jp-nbdeploy-empty">
              This notebook has no cell tagged "parameters": add the tag to a cell of assignments to make them
              parameters.
            </div>
          )}
        </fieldset>
        <fieldset className="jp-nbdeploy-fieldset">
          <legend>When</legend>
          <label className="jp-nbdeploy-radio">
            <input type="radio" name="nbdeploy-when" checked={this.mode === 'now'} onChange={() => this.set('mode', 'now')} />
            Run now
          </label>
          <label className="jp-nbdeploy-radio">
            <input
              type="radio"
              name="nbdeploy-when"
              checked={this.mode === 'schedule'}
              onChange={() => this.set('mode', 'schedule')}
            />
            On a schedule
          </label>
        </fieldset>
        {this.mode === 'schedule' ? this.renderSchedule() : null}
        <fieldset className="jp-nbdeploy-fieldset">
          <legend>Options</legend>
          <div className="jp-nbdeploy-inline">
            {this.field(
              'Timeout (minutes)',
              'nbdeploy-schedule-timeout',
              <input
                id="nbdeploy-schedule-timeout"
                type="text"
                inputMode="decimal"
                placeholder="none"
                className="jp-mod-styled jp-nbdeploy-short"
                value={this.timeoutMinutes}
                onChange={e => this.set('timeoutMinutes', e.target.value)}
              />,
              'timeout'
            )}
            {this.field(
              'Retries',
              'nbdeploy-schedule-retries',
              <input
                id="nbdeploy-schedule-retries"
                type="text"
                inputMode="numeric"
                className="jp-mod-styled jp-nbdeploy-short"
                value={this.retries}
                onChange={e => this.set('retries', e.target.value)}
              />,
              'retries'
            )}
          </div>
          <label className="jp-nbdeploy-checkbox" htmlFor="nbdeploy-schedule-output-html">
            <input
              id="nbdeploy-schedule-output-html"
              type="checkbox"
              checked={this.outputHtml}
              disabled={this.mode !== 'now'}
              onChange={e => this.set('outputHtml', e.target.checked)}
            />
            Output HTML
          </label>
          <div className="jp-nbdeploy-param-help">
            {this.mode === 'now'
              ? `When the run succeeds, save its output beside the notebook as ${(this.info?.html_path ?? '').replace('{id}', '<id>')}.`
              : 'Only for "Run now": runs of a schedule keep their output on the server (open it from Runs).'}
          </div>
        </fieldset>
        {this.busy ? <div className="jp-nbdeploy-loading">Saving the notebook and storing the job…</div> : null}
        <ErrorMessage message={this.error} details={this.errorDetails} />
      </div>
    );
  }
}

/** Show the dialog for `panel`; resolves what was created, or undefined when cancelled. */
export async function showScheduleDialog(panel: NotebookPanel): Promise<ScheduleOutcome | undefined> {
  // the notebook as it is in the editor (no save needed to read it); saved on submit
  const notebook = panel.context.model.toJSON() as Record<string, unknown>;
  let info: NotebookInfo | undefined;
  let loadError: string | undefined;
  try {
    info = await inspectNotebook({ notebook, path: panel.context.path });
  } catch (e) {
    loadError = errorMessage(e);
  }
  const body = new ScheduleBody(panel, info, loadError);
  const dialog = new FormDialog(body, { title: 'Schedule this notebook', acceptLabel: 'Run now' });
  const result = await dialog.launch();
  return result.button.accept ? body.outcome : undefined;
}
