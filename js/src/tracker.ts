/**
 * The runs this browser cares about: the count of runs in progress (status bar) and the runs started
 * here, whose end is announced with a JupyterLab notification. A run started with "Output HTML" on has
 * its executed notebook saved as HTML beside its notebook once it succeeds: this browser asks the server
 * to (`POST /runs/{id}/html`), which names and writes the file through Jupyter's contents.
 */

import { Notification } from '@jupyterlab/apputils';
import { ISignal, Signal } from '@lumino/signaling';

import { errorMessage, getRun, isActive, listRuns, Run, saveRunHtml } from './api';
import { formatRunError } from './format';

const STORAGE_KEY = 'nbdeploy:tracked-runs';
/** `{run id: notebook path}` of tracked runs whose HTML is to be saved beside that notebook. */
const HTML_STORAGE_KEY = 'nbdeploy:runs-html';

export interface ITrackerOptions {
  intervalMs: () => number;
  notificationsEnabled: () => boolean;
  openOutput: (run: Run) => void;
  openLog: (run: Run) => void;
  /** Open a file of the server root in JupyterLab. */
  openFile: (path: string) => void;
}

/** How a run started here is followed up. */
export interface ITrackOptions {
  /** Have the server save the run's output as HTML beside this notebook when it succeeds. */
  saveHtmlBeside?: string | null;
}

export class RunTracker {
  constructor(private readonly options: ITrackerOptions) {
    try {
      const saved = JSON.parse(window.localStorage.getItem(STORAGE_KEY) ?? '[]');
      if (Array.isArray(saved)) {
        saved.map(Number).filter(Number.isInteger).forEach(id => this._tracked.add(id));
      }
      const html = JSON.parse(window.localStorage.getItem(HTML_STORAGE_KEY) ?? '{}');
      if (html && typeof html === 'object' && !Array.isArray(html)) {
        for (const [id, path] of Object.entries(html)) {
          if (this._tracked.has(Number(id)) && typeof path === 'string') {
            this._html.set(Number(id), path);
          }
        }
      }
    } catch {
      // a corrupt entry: start afresh
    }
  }

  /** Runs in progress (queued or running), as of the last poll. */
  get activeCount(): number {
    return this._active.length;
  }

  get activeRuns(): readonly Run[] {
    return this._active;
  }

  /** Why the last poll failed, or undefined. */
  get error(): string | undefined {
    return this._error;
  }

  /** Emitted after each poll. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Watch `run` (started from this browser) and notify when it ends (saving its HTML if asked). */
  track(run: Run, options: ITrackOptions = {}): void {
    this._tracked.add(run.id);
    if (options.saveHtmlBeside) {
      this._html.set(run.id, options.saveHtmlBeside);
    }
    this._save();
    if (isActive(run.status) && !this._active.some(r => r.id === run.id)) {
      this._active = [run, ...this._active];
      this._changed.emit();
    }
    this.poke();
  }

  isTracked(id: number): boolean {
    return this._tracked.has(id);
  }

  /** Start polling (idempotent). */
  start(): void {
    if (!this._started) {
      this._started = true;
      void this._tick();
    }
  }

  /** Poll now rather than at the next interval. */
  poke(): void {
    window.clearTimeout(this._timer);
    if (this._started) {
      void this._tick();
    }
  }

  dispose(): void {
    this._started = false;
    window.clearTimeout(this._timer);
  }

  private async _tick(): Promise<void> {
    if (this._busy) {
      this._again = true; // asked for while a poll is in flight: poll once more right after it
      return;
    }
    this._again = false;
    this._busy = true;
    try {
      if (!document.hidden) {
        await this._poll();
      }
    } finally {
      this._busy = false;
      window.clearTimeout(this._timer);
      if (this._started) {
        // back off while the API fails (not installed, server restarting)
        const interval = this._again ? 0 : this.options.intervalMs() * (this._error ? 5 : 1);
        this._timer = window.setTimeout(() => void this._tick(), interval);
      }
    }
  }

  private async _poll(): Promise<void> {
    try {
      const [running, queued] = await Promise.all([listRuns({ status: 'running' }), listRuns({ status: 'queued' })]);
      this._active = [...running, ...queued].filter(r => isActive(r.status));
      this._error = undefined;
      const activeIds = new Set(this._active.map(r => r.id));
      for (const id of [...this._tracked]) {
        if (activeIds.has(id)) {
          continue;
        }
        let run: Run;
        try {
          run = await getRun(id);
        } catch {
          this._tracked.delete(id); // deleted, or from another server
          continue;
        }
        if (!isActive(run.status)) {
          this._tracked.delete(id);
          const notebook = this._html.get(id);
          this._html.delete(id);
          if (notebook && run.status === 'succeeded') {
            void this._saveHtml(run, notebook).then(saved => this._notify(run, saved));
          } else {
            this._notify(run);
          }
        }
      }
      this._save();
    } catch (e) {
      this._error = errorMessage(e);
    }
    this._changed.emit();
  }

  /** Have the server save the HTML of `run` beside `notebook`; resolve the file's path, or why it failed. */
  private async _saveHtml(run: Run, notebook: string): Promise<{ path?: string; error?: string }> {
    try {
      return { path: (await saveRunHtml(run.id, notebook)).path };
    } catch (e) {
      console.warn(`nbdeploy: could not save the HTML of run ${run.id} beside ${notebook}`, e);
      return { error: `could not save its HTML beside ${notebook}: ${errorMessage(e)}` };
    }
  }

  private _notify(run: Run, html: { path?: string; error?: string } = {}): void {
    if (!this.options.notificationsEnabled()) {
      return;
    }
    const log = { label: 'Log', callback: () => this.options.openLog(run) };
    const output = { label: 'Open output', callback: () => this.options.openOutput(run), displayType: 'accent' as const };
    const actions = run.has_output === false ? [log] : [output, log];
    const what = `Run ${run.id} of ${run.job}`;
    if (run.status === 'succeeded') {
      if (html.path) {
        const path = html.path;
        const open = { label: 'Open HTML', callback: () => this.options.openFile(path) };
        Notification.success(`${what} succeeded. Its output was saved as ${path}.`, { autoClose: 8000, actions: [...actions, open] });
      } else if (html.error) {
        Notification.warning(`${what} succeeded, but nbdeploy ${html.error}`, { autoClose: false, actions });
      } else {
        Notification.success(`${what} succeeded.`, { autoClose: 8000, actions });
      }
    } else if (run.status === 'cancelled') {
      Notification.info(`${what} was cancelled.`, { autoClose: 8000, actions });
    } else {
      const reason = run.error ? `: ${formatRunError(run.error)}` : '.';
      const status = run.status === 'timed_out' ? 'timed out' : run.status;
      Notification.error(`${what} ${status}${reason}`, { autoClose: false, actions });
    }
  }

  private _save(): void {
    try {
      window.localStorage.setItem(STORAGE_KEY, JSON.stringify([...this._tracked]));
      window.localStorage.setItem(HTML_STORAGE_KEY, JSON.stringify(Object.fromEntries([...this._html].filter(([id]) => this._tracked.has(id)))));
    } catch {
      // storage full or disabled: tracking still works for this page
    }
  }

  private _tracked = new Set<number>();
  private _html = new Map<number, string>();
  private _active: Run[] = [];
  private _error: string | undefined;
  private _changed = new Signal<this, void>(this);
  private _started = false;
  private _busy = false;
  private _again = false;
  private _timer: number | undefined;
}
