/** The status-bar item: how many runs are in progress; a click opens the Runs section. */

import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import React from 'react';

import { nbdeployIcon } from './icons';
import { RunTracker } from './tracker';

export class RunsStatusItem extends ReactWidget {
  constructor(
    private readonly tracker: RunTracker,
    private readonly onOpen: () => void
  ) {
    super();
    this.addClass('jp-nbdeploy-statusitem');
    this.id = 'nbdeploy-status';
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.tracker.changed}>
        {() => {
          const n = this.tracker.activeCount;
          const error = this.tracker.error;
          const title = error
            ? `nbdeploy: ${error}`
            : `${n} nbdeploy run${n === 1 ? '' : 's'} in progress: click to open the Runs list`;
          return (
            <button type="button" className="jp-nbdeploy-statusbutton" title={title} onClick={this.onOpen}>
              <nbdeployIcon.react tag="span" elementSize="small" />
              <span>{error ? 'nbdeploy: –' : `${n} running`}</span>
            </button>
          );
        }}
      </UseSignal>
    );
  }
}
