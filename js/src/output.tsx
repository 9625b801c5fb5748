/**
 * Main-area views of a run: its executed notebook (read-only, outputs rendered by JupyterLab's own
 * renderers) and its log (refreshed while the run is active).
 */

import { MainAreaWidget } from '@jupyterlab/apputils';
import { IOutputAreaModel, OutputArea, OutputAreaModel } from '@jupyterlab/outputarea';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { downloadIcon, notebookIcon, textEditorIcon, ToolbarButton } from '@jupyterlab/ui-components';
import { Panel, Widget } from '@lumino/widgets';

import { errorMessage, getRun, getRunHtml, getRunLog, getRunNotebook, isActive, Run } from './api';
import { showActionError } from './dialogs';

/** What this view reads of an nbformat cell. */
interface ICellJSON {
  cell_type: string;
  source?: string | string[];
  metadata?: { tags?: string[] };
  execution_count?: number | null;
  outputs?: unknown[];
}

/** The source of a cell as one string (nbformat allows a list of lines). */
function cellSource(cell: ICellJSON): string {
  return Array.isArray(cell.source) ? cell.source.join('') : cell.source ?? '';
}

/** Add a read-only rendering of notebook `nb` (nbformat JSON) to `panel`. */
function renderNotebook(panel: Panel, nb: Record<string, unknown>, rendermime: IRenderMimeRegistry): void {
  const cells = Array.isArray(nb.cells) ? (nb.cells as ICellJSON[]) : [];
  if (!cells.length) {
    panel.addWidget(message('The output notebook has no cells.'));
  }
  cells.forEach((cell, index) => {
    const source = cellSource(cell);
    const cellNode = new Panel();
    cellNode.addClass('jp-nbdeploy-cell');
    cellNode.addClass(`jp-nbdeploy-cell-${cell.cell_type}`);
    if ((cell.metadata?.tags ?? []).includes('injected-parameters')) {
      cellNode.addClass('jp-nbdeploy-cell-injected');
    }
    if (cell.cell_type === 'markdown') {
      const renderer = rendermime.createRenderer('text/markdown');
      void renderer.renderModel(rendermime.createModel({ data: { 'text/markdown': source }, trusted: false }));
      renderer.addClass('jp-RenderedMarkdown');
      cellNode.addWidget(renderer);
    } else {
      const input = new Widget({ node: document.createElement('div') });
      input.addClass('jp-nbdeploy-cell-input');
      const prompt = document.createElement('div');
      prompt.className = 'jp-nbdeploy-prompt';
      prompt.textContent = cell.cell_type === 'code' ? `[${cell.execution_count ?? ' '}]:` : '';
      const pre = document.createElement('pre');
      pre.textContent = source;
      input.node.append(prompt, pre);
      cellNode.addWidget(input);
      if (cell.cell_type === 'code' && Array.isArray(cell.outputs) && cell.outputs.length) {
        const model = new OutputAreaModel({ values: cell.outputs as IOutputAreaModel.IOptions['values'], trusted: false });
        const outputs = new OutputArea({ model, rendermime });
        outputs.addClass('jp-nbdeploy-cell-outputs');
        cellNode.addWidget(outputs);
      }
    }
    cellNode.node.dataset.cellIndex = String(index);
    panel.addWidget(cellNode);
  });
}

function message(text: string, error = false): Widget {
  const w = new Widget();
  w.addClass(error ? 'jp-nbdeploy-error' : 'jp-nbdeploy-empty');
  w.node.textContent = text;
  return w;
}

/** Save the run's output, rendered as HTML by the server, as a file the browser downloads. */
async function downloadHtml(run: Run): Promise<void> {
  try {
    const html = await getRunHtml(run.id);
    const url = URL.createObjectURL(new Blob([html], { type: 'text/html' }));
    const link = document.createElement('a');
    link.href = url;
    link.download = `${run.job}-run-${run.id}.html`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (e) {
    await showActionError(`download the HTML of run ${run.id}`, e);
  }
}

/** The executed notebook of `run`, read-only, in the main area. */
export function createOutputView(run: Run, rendermime: IRenderMimeRegistry): MainAreaWidget<Panel> {
  const content = new Panel();
  content.addClass('jp-nbdeploy-output');
  const widget = new MainAreaWidget({ content });
  widget.id = `nbdeploy-run-output-${run.id}`;
  widget.title.label = `${run.job} · run ${run.id}`;
  widget.title.caption = `Executed notebook of run ${run.id} of ${run.job} (read-only)`;
  widget.title.icon = notebookIcon;
  widget.title.closable = true;
  const header = document.createElement('div');
  header.className = 'jp-nbdeploy-output-header';
  header.textContent = `Run ${run.id} of ${run.job}: ${run.status} (read-only)`;
  content.addWidget(new Widget({ node: header }));
  const download = new ToolbarButton({
    icon: downloadIcon,
    label: 'Download HTML',
    tooltip: 'Download the executed notebook as an HTML page',
    onClick: () => void downloadHtml(run)
  });
  widget.toolbar.addItem('download-html', download);
  const loading = message('Loading the executed notebook…');
  content.addWidget(loading);
  void (async () => {
    try {
      const [nb, latest] = await Promise.all([getRunNotebook(run.id), getRun(run.id).catch(() => run)]);
      header.textContent = `Run ${latest.id} of ${latest.job}: ${latest.status} (read-only)`;
      loading.dispose();
      renderNotebook(content, nb, rendermime);
    } catch (e) {
      loading.dispose();
      content.addWidget(message(`Could not load the output of run ${run.id}: ${errorMessage(e)}`, true));
    }
  })();
  return widget;
}

/** The log of `run` in the main area, reloaded every `intervalMs` while the run is active. */
export function createLogView(run: Run, intervalMs: () => number): MainAreaWidget<Widget> {
  const content = new Widget();
  content.addClass('jp-nbdeploy-log');
  const status = document.createElement('div');
  status.className = 'jp-nbdeploy-output-header';
  const pre = document.createElement('pre');
  content.node.append(status, pre);
  const widget = new MainAreaWidget({ content });
  widget.id = `nbdeploy-run-log-${run.id}`;
  widget.title.label = `Log · run ${run.id}`;
  widget.title.caption = `Log of run ${run.id} of ${run.job}`;
  widget.title.icon = textEditorIcon;
  widget.title.closable = true;
  let timer: number | undefined;
  const load = async () => {
    const latest = await getRun(run.id).catch(() => run);
    const active = isActive(latest.status);
    status.textContent = `Run ${latest.id} of ${latest.job}: ${latest.status}${active ? ' (updating)' : ''}`;
    try {
      const text = await getRunLog(run.id);
      const atBottom = content.node.scrollTop + content.node.clientHeight >= content.node.scrollHeight - 20;
      pre.textContent = text || '(the log is empty)';
      if (atBottom) {
        content.node.scrollTop = content.node.scrollHeight;
      }
      status.classList.remove('jp-nbdeploy-error');
    } catch (e) {
      // the server keeps the log once an attempt has ended: say so while the run is still going
      pre.textContent = active
        ? 'The log is shown when the current attempt ends.'
        : `Could not load the log of run ${run.id}: ${errorMessage(e)}`;
      status.classList.toggle('jp-nbdeploy-error', !active);
    }
    if (active && !widget.isDisposed) {
      timer = window.setTimeout(() => void load(), intervalMs());
    }
  };
  widget.disposed.connect(() => window.clearTimeout(timer));
  void load();
  return widget;
}
