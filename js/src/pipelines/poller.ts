/**
 * Live pipeline runs: load a run now and again every refresh interval until it ended, then stop. The views start
 * one per shown run and dispose it with the widget, so nothing polls a run nobody looks at or that ended.
 */

import { errorMessage, PipelineRun } from '../api';
import { isRunFinished } from './graph';

export interface IRunPollerOptions {
  /** The pipeline run to follow. */
  id: number;
  /** Loads the run (`GET /pipeline-runs/{id}`). */
  load: (id: number) => Promise<PipelineRun>;
  /** Milliseconds between loads while the run is in progress. */
  intervalMs: () => number;
  /** Called with each loaded state. */
  onRun: (run: PipelineRun) => void;
  /** Called with a readable message when a load failed (the poller tries again at the next tick). */
  onError: (message: string) => void;
}

export class PipelineRunPoller {
  constructor(private readonly options: IRunPollerOptions) {}

  /** Whether the poller stopped: the run ended, or it was disposed. */
  get isStopped(): boolean {
    return this._stopped;
  }

  /** Load the run now and keep following it. */
  start(): void {
    void this._tick();
  }

  /** Load the run now (e.g. after a cancel), and follow it again if it is in progress. */
  poke(): void {
    if (this._disposed) {
      return;
    }
    window.clearTimeout(this._timer);
    this._stopped = false;
    void this._tick();
  }

  /** Stop following the run; no load starts after this. */
  dispose(): void {
    this._disposed = true;
    this._stopped = true;
    window.clearTimeout(this._timer);
  }

  private async _tick(): Promise<void> {
    if (this._disposed || this._inFlight) {
      return;
    }
    this._inFlight = true;
    let finished = false;
    try {
      const run = await this.options.load(this.options.id);
      if (this._disposed) {
        return;
      }
      this.options.onRun(run);
      finished = isRunFinished(run);
    } catch (e) {
      if (this._disposed) {
        return;
      }
      this.options.onError(errorMessage(e));
    } finally {
      this._inFlight = false;
    }
    if (finished) {
      this._stopped = true;
      return;
    }
    this._timer = window.setTimeout(() => void this._tick(), this.options.intervalMs());
  }

  private _disposed = false;
  private _stopped = false;
  private _inFlight = false;
  private _timer: number | undefined;
}
