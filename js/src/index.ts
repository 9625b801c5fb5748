/**
 * The nbdeploy JupyterLab extension: the sidebar (Functions, Models, Jobs & schedules, Runs, Pipelines, Cluster),
 * the "Schedule this notebook…" toolbar button and command, run notifications, the status-bar item, and the
 * drawings of pipelines and their runs (also of opened `.pipeline.yaml` files).
 */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ToolbarButton } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { Run } from './api';
import { nbdeployIcon } from './icons';
import { createLogView, createOutputView } from './output';
import { registerPipelines } from './pipelines';
import { showScheduleDialog } from './schedule';
import { NbdeploySidebar } from './sidebar';
import { RunsStatusItem } from './statusbar';
import { RunTracker } from './tracker';

export const PLUGIN_ID = 'nbdeploy:plugin';

export namespace CommandIDs {
  export const scheduleNotebook = 'nbdeploy:schedule-notebook';
  export const openSidebar = 'nbdeploy:open-sidebar';
  export const openRuns = 'nbdeploy:open-runs';
  export const refresh = 'nbdeploy:refresh';
}

/** The user settings (schema/plugin.json). */
interface ISettings {
  refreshInterval: number;
  notifications: boolean;
}

const DEFAULTS: ISettings = { refreshInterval: 3, notifications: true };

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The nbdeploy sidebar: functions, models, jobs and schedules, runs and the Dask cluster.',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [ICommandPalette, ISettingRegistry, IStatusBar, INotebookTracker, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    statusBar: IStatusBar | null,
    notebooks: INotebookTracker | null,
    restorer: ILayoutRestorer | null
  ) => {
    const settings: ISettings = { ...DEFAULTS };
    const intervalMs = () => Math.max(1, settings.refreshInterval) * 1000;
    const views = new WidgetTracker<MainAreaWidget<Widget>>({ namespace: 'nbdeploy-views' });

    const show = (widget: MainAreaWidget<Widget>) => {
      const existing = views.find(w => w.id === widget.id);
      if (existing) {
        widget.dispose();
        app.shell.activateById(existing.id);
        return;
      }
      void views.add(widget);
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
    };
    const openOutput = (run: Run) => show(createOutputView(run, rendermime));
    const openLog = (run: Run) => show(createLogView(run, intervalMs));

    const tracker = new RunTracker({
      intervalMs,
      notificationsEnabled: () => settings.notifications,
      openOutput,
      openLog,
      openFile: path => void app.commands.execute('docmanager:open', { path })
    });
    registerPipelines(app, { show, openOutput, openLog, intervalMs });
    const sidebar = new NbdeploySidebar({ app, tracker, intervalMs, openOutput, openLog });
    app.shell.add(sidebar, 'left', { rank: 650 });
    if (restorer) {
      restorer.add(sidebar, sidebar.id);
    }

    // --- commands -----------------------------------------------------------------------------------
    const notebookFor = (args: { path?: unknown }): NotebookPanel | null => {
      if (!notebooks) {
        return null;
      }
      if (typeof args.path === 'string') {
        return notebooks.find(p => p.context.path === args.path) ?? null;
      }
      return notebooks.currentWidget;
    };

    const scheduleNotebook = async (panel: NotebookPanel) => {
      const outcome = await showScheduleDialog(panel);
      if (!outcome) {
        return;
      }
      if (outcome.kind === 'run') {
        tracker.track(outcome.run, { saveHtmlBeside: outcome.saveHtml ? panel.context.path : null });
        sidebar.highlightRun(outcome.run.id);
        sidebar.reveal('runs');
      } else {
        sidebar.reveal('jobs');
      }
    };

    app.commands.addCommand(CommandIDs.scheduleNotebook, {
      label: 'Schedule this notebook…',
      caption: 'Store this notebook as an nbdeploy job and run it now or on a schedule',
      icon: args => (args.toolbar ? nbdeployIcon : undefined),
      isEnabled: args => notebookFor(args) !== null,
      execute: async args => {
        const panel = notebookFor(args);
        if (panel) {
          await scheduleNotebook(panel);
        }
      }
    });
    app.commands.addCommand(CommandIDs.openSidebar, {
      label: 'Show the nbdeploy sidebar',
      execute: () => app.shell.activateById(sidebar.id)
    });
    app.commands.addCommand(CommandIDs.openRuns, {
      label: 'Show nbdeploy runs',
      execute: () => sidebar.reveal('runs')
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh the nbdeploy sidebar',
      execute: () => sidebar.refreshAll()
    });
    if (palette) {
      const category = 'nbdeploy';
      for (const command of [CommandIDs.scheduleNotebook, CommandIDs.openSidebar, CommandIDs.openRuns, CommandIDs.refresh]) {
        palette.addItem({ command, category });
      }
    }

    // --- the notebook toolbar button ---------------------------------------------------------------------
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (panel: NotebookPanel) => {
        const button = new ToolbarButton({
          icon: nbdeployIcon,
          label: 'Schedule',
          tooltip: 'Schedule this notebook… (nbdeploy)',
          onClick: () => void scheduleNotebook(panel)
        });
        button.addClass('jp-nbdeploy-schedule-button');
        panel.toolbar.insertAfter('cellType', 'nbdeploy-schedule', button);
        return button;
      }
    });

    // --- status bar ----------------------------------------------------------------------------------
    if (statusBar) {
      statusBar.registerStatusItem('nbdeploy:runs', {
        item: new RunsStatusItem(tracker, () => sidebar.reveal('runs')),
        align: 'left',
        rank: 4
      });
    }

    // --- settings ------------------------------------------------------------------------------------
    const apply = (loaded: ISettingRegistry.ISettings) => {
      settings.refreshInterval = Number(loaded.get('refreshInterval').composite ?? DEFAULTS.refreshInterval);
      settings.notifications = Boolean(loaded.get('notifications').composite ?? DEFAULTS.notifications);
      tracker.poke();
    };
    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(loaded => {
          apply(loaded);
          loaded.changed.connect(apply);
        })
        .catch(reason => console.warn('nbdeploy: could not load its settings, using the defaults', reason));
    }

    void app.restored.then(() => tracker.start());
  }
};

export default plugin;
