/**
 * The contract of a sidebar section. A section is one file under `sections/` exporting an
 * {@link ISection}; `sections/index.ts` lists them in order. Adding one (Models, …) touches nothing else.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { ISignal } from '@lumino/signaling';

import { Run } from '../api';
import { IPollHost } from '../poll';
import { RunTracker } from '../tracker';

/** What the sidebar hands to every section. */
export interface ISectionContext extends IPollHost {
  app: JupyterFrontEnd;
  /** Runs started from this browser, notifications, the count of runs in progress. */
  tracker: RunTracker;
  /** Open the executed notebook of a run in the main area. */
  openOutput(run: Run): void;
  /** Open the log of a run in the main area. */
  openLog(run: Run): void;
  /** Expand another section (by id) and ask it to refresh, e.g. Runs after "Run now". */
  reveal(sectionId: string): void;
  /** A run id to highlight in the Runs section (the one just started), or null. */
  highlightedRun(): number | null;
  readonly highlightChanged: ISignal<unknown, number | null>;
}

export interface ISection {
  /** Stable id, used in DOM ids and by `reveal`, e.g. `runs`. */
  id: string;
  /** The section's title in the sidebar. */
  title: string;
  /** Render the section's body (a React element; use `usePoll` for live data). */
  render(context: ISectionContext): JSX.Element;
}
