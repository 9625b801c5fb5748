/**
 * Server-drawn figures (matplotlib PNGs from the `….png` routes) in the main area, where they have room: a tab
 * that says it is loading, then shows what `build` made, or the error in words. Opening the same id again
 * replaces the tab, so the figure is drawn anew with the newest data.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { lineFormIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { errorMessage } from './api';

export interface IFigureTab {
  /** The tab's id (reopening it replaces the tab). */
  id: string;
  label: string;
  caption: string;
  /** A class on the tab's content, for styles and tests. */
  className: string;
  /** What to say while loading, and what could not be done when it fails ("compare the runs"). */
  loading: string;
  action: string;
  /** The elements to show (use {@link figureImage} for a figure's Blob). */
  build: (widget: MainAreaWidget) => Promise<HTMLElement[]>;
}

/** An <img> of a PNG Blob; its object URL is released when `owner` is disposed. */
export function figureImage(blob: Blob, alt: string, className: string, owner: Widget): HTMLImageElement {
  const img = document.createElement('img');
  img.className = className;
  img.alt = alt;
  img.src = URL.createObjectURL(blob);
  owner.disposed.connect(() => URL.revokeObjectURL(img.src));
  return img;
}

/** Open (or reopen) a figure tab in the main area and fill it. */
export async function openFigureTab(app: JupyterFrontEnd, tab: IFigureTab): Promise<void> {
  for (const existing of app.shell.widgets('main')) {
    if (existing.id === tab.id) {
      existing.dispose();
    }
  }
  const content = new Widget();
  content.addClass(tab.className);
  content.node.style.overflow = 'auto';
  const widget = new MainAreaWidget({ content });
  widget.id = tab.id;
  widget.title.label = tab.label;
  widget.title.caption = tab.caption;
  widget.title.icon = lineFormIcon;
  widget.title.closable = true;
  app.shell.add(widget, 'main');
  app.shell.activateById(widget.id);
  const status = document.createElement('div');
  status.className = 'jp-nbdeploy-loading';
  status.textContent = tab.loading;
  content.node.appendChild(status);
  try {
    const parts = await tab.build(widget);
    status.remove();
    content.node.append(...parts);
  } catch (e) {
    status.className = 'jp-nbdeploy-error';
    status.textContent = `Could not ${tab.action}: ${errorMessage(e)}`;
  }
}
