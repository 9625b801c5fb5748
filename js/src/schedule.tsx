/**
 * "Schedule this notebook…": name, the parameters of the notebook's `parameters` cell as typed fields,
 * run now or on a schedule (presets or cron, with a time zone), timeout and retries, and "Output HTML".
 * On submit the notebook is saved, stored as a new job version, and the run or schedule is created.
 *
 * Every run keeps its executed notebook on the server. "Output HTML" (remembered per notebook, off by
 * default) is done by this browser, not the jobs API: when a run started here succeeds, the run tracker
 * saves its HTML beside the notebook as `<stem>-run-<id>.html` (see tracker.ts).
 */

import { NotebookPanel } from '@jupyterlab/notebook';
import { Message } from '@lumino/messaging';
import React from 'react';

import { createJob, createSchedule, Run, RunOptions, Schedule, startRun } from './api';
import { ErrorMessage, initialInputs, ParameterFields } from './components';
import { cronToWords, DAY_NAMES, presetToCron, SchedulePreset } from './cron';
import { FormBody, FormDialog } from './dialogs';
import {
  CellLike,
  collectValues,
  findParametersSource,
  htmlOutputPath,
  jobNameFromPath,
  NotebookParameter,
  parseParametersCell,
  validateName
} from './params';

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

class ScheduleBody extends FormBody {
  name: string;
  params: NotebookParameter[];
  inputs: Record<string, string | boolean>;
  fieldErrors: Record<string, string> = {};
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
  private readonly hasParametersCell: boolean;

  constructor(private readonly panel: NotebookPanel) {
    super();
    this.addClass('jp-nbdeploy-schedule-form');
    this.name = jobNameFromPath(panel.context.path);
    const nb = panel.context.model.toJSON() as { cells?: CellLike[] };
    const source = findParametersSource(nb.cells ?? []);
    this.hasParametersCell = source !== null;
    this.params = source === null ? [] : parseParametersCell(source);
    this.inputs = initialInputs(this.params);
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

  private options(): { options?: RunOptions; errors: Record<string, string> } {
    const errors: Record<string, string> = {};
    const options: RunOptions = {};
    const timeout = this.timeoutMinutes.trim();
    if (timeout) {
      const minutes = Number(timeout);
      if (!Number.isFinite(minutes) || minutes <= 0) {
        errors.timeout = 'the timeout is a number of minutes above 0 (or empty for none)';
      } else {
        options.timeout = Math.round(minutes * 60);
      }
    }
    if (!/^\d+$/.test(this.retries.trim()) || Number(this.retries) > 10) {
      errors.retries = 'retries is a whole number from 0 to 10';
    } else {
      options.retries = Number(this.retries);
    }
    return { options, errors };
  }

  async submit(): Promise<boolean> {
    const errors: Record<string, string> = {};
    const nameError = validateName(this.name);
    if (nameError) {
      errors.name = nameError;
    }
    const { values, errors: paramErrors } = collectValues(this.params, this.inputs);
    Object.assign(errors, paramErrors);
    const { options, errors: optionErrors } = this.options();
    Object.assign(errors, optionErrors);
    const preview = this.mode === 'schedule' ? this.schedulePreview() : {};
    if (preview.error) {
      errors.schedule = preview.error;
    }
    this.fieldErrors = errors;
    if (Object.keys(errors).length) {
      this.error = 'Please correct the fields marked in red.';
      this.update();
      return false;
    }
    try {
      // the job runs what is on disk: save first, then send the saved notebook
      await this.panel.context.save();
      const notebook = this.panel.context.model.toJSON();
      await createJob({ name: this.name, notebook });
      rememberOutputHtml(this.panel.context.path, this.outputHtml);
      if (this.mode === 'now') {
        this.outcome = { kind: 'run', run: await startRun(this.name, values, options), saveHtml: this.outputHtml };
      } else {
        const schedule = await createSchedule({
          job: this.name,
          cron: preview.cron!,
          timezone: this.timezone,
          parameters: values,
          ...options
        });
        this.outcome = { kind: 'schedule', schedule };
      }
      return true;
    } catch (e) {
      this.fail(e, this.fieldErrors);
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
    const field = { name: 'name', timeoutMinutes: 'timeout', retries: 'retries', outputHtml: 'outputHtml' }[key as string] ?? 'schedule';
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
          </select>
        )}
        <div className={preview.error ? 'jp-nbdeploy-field-error' : 'jp-nbdeploy-preview'} aria-live="polite">
          {preview.error ?? `Runs ${preview.words}`}
        </div>
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
          {this.hasParametersCell ? (
            <ParameterFields
              params={this.params}
              inputs={this.inputs}
              errors={this.fieldErrors}
              idPrefix="nbdeploy-schedule-param"
              onChange={(n, v) => {
                this.inputs[n] = v;
                delete this.fieldErrors[n]; // edited: the old complaint no longer applies
                this.update();
              }}
            />
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
              ? `When the run succeeds, save its output beside the notebook as ${htmlOutputPath(this.panel.context.path, '<id>')}.`
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
  const body = new ScheduleBody(panel);
  const dialog = new FormDialog(body, { title: 'Schedule this notebook', acceptLabel: 'Run now' });
  const result = await dialog.launch();
  return result.button.accept ? body.outcome : undefined;
}
