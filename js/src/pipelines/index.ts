/**
 * Pipelines in JupyterLab: the `.pipeline.yaml` file type and its drawing (beside the text editor), the
 * `nbdeploy:open-pipeline` command that opens a pipeline or a pipeline run, and the sidebar section
 * (`section.tsx`, listed in `sections/index.ts`).
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { getRun, isActive, Run } from '../api';
import { showActionError } from '../dialogs';
import { PIPELINE_FACTORY, PIPELINE_FILE_TYPE, PipelineFileFactory } from './document';
import { pipelineIcon } from './icon';
import { OPEN_PIPELINE_COMMAND } from './section';
import { createPipelineView, IPipelineActions } from './view';

export { pipelinesSection } from './section';

/** What the pipelines need from the plugin. */
export interface IPipelinesOptions {
  /** Add a main-area view (or activate the open one with the same id). */
  show(widget: MainAreaWidget<Widget>): void;
  openOutput(run: Run): void;
  openLog(run: Run): void;
  intervalMs(): number;
}

/** Register the file type, its drawing and the command that opens a pipeline's view. */
export function registerPipelines(app: JupyterFrontEnd, options: IPipelinesOptions): void {
  const actions: IPipelineActions = {
    openJobRun: id =>
      void getRun(id)
        .then(run => (run.has_output && !isActive(run.status) ? options.openOutput(run) : options.openLog(run)))
        .catch(e => showActionError(`open job run ${id}`, e)),
    openPipeline: (name, run) => void app.commands.execute(OPEN_PIPELINE_COMMAND, { name, run: run ?? null }),
    openFile: (path, factory) => void app.commands.execute('docmanager:open', factory ? { path, factory } : { path }),
    intervalMs: options.intervalMs
  };

  app.commands.addCommand(OPEN_PIPELINE_COMMAND, {
    label: args => (args.run ? `Open pipeline run ${args.run}` : `Open pipeline ${args.name ?? ''}`),
    execute: args => {
      const name = String(args.name ?? '');
      if (!name) {
        return;
      }
      const run = typeof args.run === 'number' ? args.run : null;
      options.show(createPipelineView(name, run, actions));
    }
  });

  app.docRegistry.addFileType({
    name: PIPELINE_FILE_TYPE,
    displayName: 'nbdeploy pipeline',
    extensions: ['.pipeline.yaml', '.pipeline.yml'],
    mimeTypes: ['text/x-yaml'],
    contentType: 'file',
    fileFormat: 'text',
    icon: pipelineIcon
  });
  app.docRegistry.addWidgetFactory(
    new PipelineFileFactory(
      {
        name: PIPELINE_FACTORY,
        label: 'Pipeline drawing',
        fileTypes: [PIPELINE_FILE_TYPE],
        defaultFor: [PIPELINE_FILE_TYPE],
        modelName: 'text'
      },
      actions
    )
  );
}
