/**
 * Opening a `.pipeline.yaml` file draws it: a document widget (beside the text editor, which stays available
 * through "Open With") that sends the saved text to `POST /pipelines/preview` and draws what the server parsed,
 * or shows the server's message (naming the bad node) when the file is invalid. Redrawn each time the file is
 * saved. "Store" puts it as a new pipeline version; "Store and run" also runs it and opens the run.
 */

import { ABCWidgetFactory, DocumentRegistry, DocumentWidget, IDocumentWidget } from '@jupyterlab/docregistry';
import { PathExt } from '@jupyterlab/coreutils';
import { editIcon, ReactWidget, runIcon, saveIcon, ToolbarButton } from '@jupyterlab/ui-components';
import { Signal } from '@lumino/signaling';
import React from 'react';

import { errorMessage, PipelineInfo, PipelinePreviewRequest, previewPipeline, putPipeline, startPipelineRun } from '../api';
import { ErrorMessage } from '../components';
import { showActionError } from '../dialogs';
import { PipelineGraph } from './drawing';
import { IPipelineNodeData } from './graph';
import { pipelineIcon } from './icon';
import { IPipelineActions } from './view';

/** The file type of pipeline files (more specific than `.yaml`, so its default view is the drawing). */
export const PIPELINE_FILE_TYPE = 'nbdeploy-pipeline';
/** The name of the drawing's widget factory ("Open With" shows it). */
export const PIPELINE_FACTORY = 'nbdeploy Pipeline';

/** What the drawing of a file shows: the parsed pipeline, or the server's message about the file. */
interface IPreviewState {
  info: PipelineInfo | null;
  error: string | undefined;
  loading: boolean;
}

/** A notebook named by a pipeline file, as a path of the Jupyter root (names are relative to the file). */
export function notebookPath(filePath: string, notebook: string): string {
  return notebook.startsWith('/') ? notebook.replace(/^\/+/, '') : PathExt.join(PathExt.dirname(filePath), notebook);
}

export class PipelineFileView extends ReactWidget {
  constructor(
    readonly context: DocumentRegistry.IContext<DocumentRegistry.ICodeModel>,
    private readonly _actions: IPipelineActions
  ) {
    super();
    this.addClass('jp-nbdeploy-pfile');
    void context.ready.then(() => this.redraw());
    context.fileChanged.connect(this._onFileChanged, this);
  }

  /** The file as the server takes it: the saved text and its path. */
  source(): PipelinePreviewRequest {
    return { yaml: this.context.model.toString(), path: this.context.path };
  }

  /** Ask the server to parse the file again and draw the answer. */
  async redraw(): Promise<void> {
    const seq = ++this._seq;
    this._state = { ...this._state, loading: true };
    this.update();
    let next: IPreviewState;
    try {
      next = { info: await previewPipeline(this.source()), error: undefined, loading: false };
    } catch (e) {
      next = { info: null, error: errorMessage(e), loading: false };
    }
    if (seq === this._seq && !this.isDisposed) {
      this._state = next;
      this.update();
      this._drawn.emit();
    }
  }

  /** Emitted after each answer of the server is drawn (tests wait on it). */
  get drawn(): Signal<this, void> {
    return this._drawn;
  }

  dispose(): void {
    this.context.fileChanged.disconnect(this._onFileChanged, this);
    super.dispose();
  }

  render(): JSX.Element {
    const { info, error, loading } = this._state;
    const openNotebook = (data: IPipelineNodeData) => {
      if (data.node.notebook) {
        this._actions.openFile(notebookPath(this.context.path, data.node.notebook));
      }
    };
    return (
      <div className="jp-nbdeploy-pview" data-loading={loading ? 'true' : 'false'}>
        <div className="jp-nbdeploy-pview-header">
          {info || loading ? (
            <div className="jp-nbdeploy-row">
              {info ? <span className="jp-nbdeploy-name">{info.name}</span> : null}
              {info ? <span className="jp-nbdeploy-muted">{info.nodes.length} notebooks · preview of the saved file (not stored)</span> : null}
              {loading ? <span className="jp-nbdeploy-muted">checking…</span> : null}
            </div>
          ) : null}
          <ErrorMessage message={error} />
        </div>
        {info ? (
          <PipelineGraph
            info={info}
            run={null}
            clickHint={data => (data.node.notebook ? 'Click: open the notebook' : null)}
            onNodeClick={openNotebook}
          />
        ) : null}
      </div>
    );
  }

  private _onFileChanged(): void {
    void this.redraw();
  }

  private _state: IPreviewState = { info: null, error: undefined, loading: true };
  private _seq = 0;
  private _drawn = new Signal<this, void>(this);
}

/** Save the file if it has unsaved changes, then store it as a pipeline version; resolves the stored version. */
async function store(view: PipelineFileView): Promise<PipelineInfo> {
  if (view.context.model.dirty) {
    await view.context.save();
  }
  return putPipeline(view.source());
}

export class PipelineFileFactory extends ABCWidgetFactory<IDocumentWidget<PipelineFileView>, DocumentRegistry.ICodeModel> {
  constructor(
    options: DocumentRegistry.IWidgetFactoryOptions<IDocumentWidget<PipelineFileView>>,
    private readonly _actions: IPipelineActions
  ) {
    super(options);
  }

  protected createNewWidget(context: DocumentRegistry.IContext<DocumentRegistry.ICodeModel>): IDocumentWidget<PipelineFileView> {
    const content = new PipelineFileView(context, this._actions);
    const widget = new DocumentWidget({ content, context });
    widget.addClass('jp-nbdeploy-pipeline-file');
    widget.title.icon = pipelineIcon;
    const actions = this._actions;
    widget.toolbar.addItem(
      'nbdeploy-edit',
      new ToolbarButton({
        icon: editIcon,
        label: 'Edit',
        tooltip: 'Open this file in the text editor (the drawing is redrawn each time it is saved)',
        onClick: () => actions.openFile(context.path, 'Editor')
      })
    );
    widget.toolbar.addItem(
      'nbdeploy-store',
      new ToolbarButton({
        icon: saveIcon,
        label: 'Store',
        tooltip: 'Store this file as a new version of its pipeline and open it',
        onClick: async () => {
          try {
            const info = await store(content);
            actions.openPipeline(info.name, null);
          } catch (e) {
            await showActionError(`store the pipeline of ${context.path}`, e);
          }
        }
      })
    );
    widget.toolbar.addItem(
      'nbdeploy-run',
      new ToolbarButton({
        icon: runIcon,
        label: 'Store and run',
        tooltip: 'Store this file as a new version of its pipeline, run it and open the run',
        onClick: async () => {
          try {
            const info = await store(content);
            const run = await startPipelineRun(info.name, { parameters: {}, only: [], from: null, force: [] });
            actions.openPipeline(info.name, run.run);
          } catch (e) {
            await showActionError(`run the pipeline of ${context.path}`, e);
          }
        }
      })
    );
    return widget;
  }
}
