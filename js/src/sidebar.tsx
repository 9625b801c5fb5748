/**
 * The nbdeploy sidebar: a JupyterLab side panel with one collapsible section per entry of `SECTIONS`.
 * Sections poll only while they are on screen.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { ReactWidget, refreshIcon, SidePanel, ToolbarButton } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { AccordionPanel, Widget } from '@lumino/widgets';

import { Run } from './api';
import { nbdeployIcon } from './icons';
import { ISection, ISectionContext, SECTIONS } from './sections';
import { RunTracker } from './tracker';

/** What the sidebar needs from the plugin. */
export interface ISidebarOptions {
  app: JupyterFrontEnd;
  tracker: RunTracker;
  intervalMs: () => number;
  openOutput: (run: Run) => void;
  openLog: (run: Run) => void;
}

/** One section: a React widget whose live lists pause while it is hidden or collapsed. */
class SectionWidget extends ReactWidget {
  constructor(
    readonly section: ISection,
    sidebar: NbdeploySidebar
  ) {
    super();
    this.id = `nbdeploy-section-${section.id}`;
    this.addClass('jp-nbdeploy-section');
    this.title.label = section.title;
    this.title.caption = section.title;
    this.context = {
      app: sidebar.options.app,
      tracker: sidebar.options.tracker,
      openOutput: run => sidebar.options.openOutput(run),
      openLog: run => sidebar.options.openLog(run),
      reveal: id => sidebar.reveal(id),
      highlightedRun: () => sidebar.highlightedRun,
      highlightChanged: sidebar.highlightChanged,
      isActive: () => this.isVisible && !document.hidden,
      intervalMs: () => sidebar.options.intervalMs(),
      refreshRequested: this._refreshRequested
    };
  }

  readonly context: ISectionContext;

  /** Reload the section's lists now. */
  refresh(): void {
    this._refreshRequested.emit();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.refresh();
  }

  render(): JSX.Element {
    return this.section.render(this.context);
  }

  private _refreshRequested = new Signal<this, void>(this);
}

export class NbdeploySidebar extends SidePanel {
  constructor(readonly options: ISidebarOptions) {
    super();
    this.id = 'nbdeploy-sidebar';
    this.addClass('jp-nbdeploy-sidebar');
    this.title.icon = nbdeployIcon;
    this.title.caption = 'nbdeploy';
    const heading = new Widget({ node: document.createElement('h2') });
    heading.addClass('jp-nbdeploy-heading');
    heading.node.textContent = 'nbdeploy';
    this.header.addWidget(heading);
    this.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: 'Refresh every section',
        onClick: () => this.refreshAll()
      })
    );
    for (const section of SECTIONS) {
      const widget = new SectionWidget(section, this);
      this._sections.set(section.id, widget);
      this.addWidget(widget);
    }
    document.addEventListener('visibilitychange', this._onVisibility);
  }

  /** The run to highlight in the Runs section (the one just started here). */
  get highlightedRun(): number | null {
    return this._highlighted;
  }

  get highlightChanged(): ISignal<this, number | null> {
    return this._highlightChanged;
  }

  /** Highlight run `id` in the Runs section for a few seconds (the one just started here). */
  highlightRun(id: number | null): void {
    this._highlighted = id;
    this._highlightChanged.emit(id);
    window.clearTimeout(this._highlightTimer);
    if (id !== null) {
      this._highlightTimer = window.setTimeout(() => this.highlightRun(null), 10_000);
    }
  }

  /** Show the sidebar, expand section `id` and refresh it. */
  reveal(id: string): void {
    this.options.app.shell.activateById(this.id);
    const widget = this._sections.get(id);
    if (!widget) {
      return;
    }
    const accordion = this.content as AccordionPanel;
    const index = accordion.widgets.indexOf(widget);
    if (index >= 0 && !widget.isVisible && typeof accordion.expand === 'function') {
      accordion.expand(index);
    }
    widget.refresh();
    widget.node.scrollIntoView?.({ block: 'nearest' });
  }

  refreshAll(): void {
    this._sections.forEach(w => w.refresh());
  }

  dispose(): void {
    document.removeEventListener('visibilitychange', this._onVisibility);
    super.dispose();
  }

  private _onVisibility = () => {
    if (!document.hidden && this.isVisible) {
      this.refreshAll();
    }
  };

  private _sections = new Map<string, SectionWidget>();
  private _highlighted: number | null = null;
  private _highlightTimer: number | undefined;
  private _highlightChanged = new Signal<this, number | null>(this);
}
