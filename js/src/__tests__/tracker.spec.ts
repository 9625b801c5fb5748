/* The run tracker's "Output HTML": a run started here with the option on has the server save its HTML
 * beside the notebook once it succeeds (`POST /runs/{id}/html`), and the notification names the file the
 * server wrote. The REST calls and JupyterLab's notifications are the boundary; `window`/`document` are the
 * little the tracker touches. */

const notify = { success: jest.fn(), info: jest.fn(), error: jest.fn(), warning: jest.fn() };
jest.mock('@jupyterlab/apputils', () => ({ Notification: notify }));
const api = { listRuns: jest.fn(), getRun: jest.fn(), saveRunHtml: jest.fn() };
jest.mock('../api', () => ({
  ...jest.requireActual('../api'),
  listRuns: (...a: unknown[]) => api.listRuns(...a),
  getRun: (...a: unknown[]) => api.getRun(...a),
  saveRunHtml: (...a: unknown[]) => api.saveRunHtml(...a)
}));
jest.mock('@jupyterlab/services', () => ({ ServerConnection: {} }));
jest.mock('@jupyterlab/coreutils', () => ({ URLExt: {} }));

import { NbdeployAPIError, Run } from '../api';
import { RunTracker } from '../tracker';
import { runInfo } from './fixtures';

const storage = new Map<string, string>();
(globalThis as any).window = {
  localStorage: {
    getItem: (k: string) => storage.get(k) ?? null,
    setItem: (k: string, v: string) => void storage.set(k, v)
  },
  setTimeout: () => 0,
  clearTimeout: () => undefined
};
(globalThis as any).document = { hidden: false };

const run = (id: number, status: Run['status'], extra: Partial<Run> = {}): Run => runInfo(id, status, extra);
const flush = () => new Promise(resolve => setTimeout(resolve, 0));

function tracker() {
  const t = new RunTracker({
    intervalMs: () => 1000,
    notificationsEnabled: () => true,
    openOutput: jest.fn(),
    openLog: jest.fn(),
    openFile: jest.fn()
  });
  return { t, poll: async () => ((t as any)._poll() as Promise<void>).then(flush) };
}

beforeEach(() => {
  storage.clear();
  jest.clearAllMocks();
  api.listRuns.mockResolvedValue([]);
  api.saveRunHtml.mockImplementation(async (id: number) => ({ path: `reports/Sales Q1-run-${id}.html` }));
});

it('has the server save the HTML of a succeeded run beside its notebook and says where', async () => {
  const { t, poll } = tracker();
  t.track(run(12, 'queued'), { saveHtmlBeside: 'reports/Sales Q1.ipynb' });
  api.getRun.mockResolvedValue(run(12, 'succeeded'));
  await poll();
  expect(api.saveRunHtml).toHaveBeenCalledWith(12, 'reports/Sales Q1.ipynb');
  expect(notify.success.mock.calls[0][0]).toBe('Run 12 of report succeeded. Its output was saved as reports/Sales Q1-run-12.html.');
  expect(notify.success.mock.calls[0][1].actions.map((a: any) => a.label)).toEqual(['Open output', 'Log', 'Open HTML']);
  await poll(); // announced and saved once
  expect(api.saveRunHtml).toHaveBeenCalledTimes(1);
});

it('saves nothing when the option is off, or the run failed', async () => {
  const { t, poll } = tracker();
  t.track(run(1, 'queued'));
  t.track(run(2, 'queued'), { saveHtmlBeside: 'a.ipynb' });
  const error = { type: 'ValueError', message: 'boom', cell: 3, traceback: null };
  api.getRun.mockImplementation(async (id: number) => (id === 1 ? run(1, 'succeeded') : run(2, 'failed', { error })));
  await poll();
  expect(api.saveRunHtml).not.toHaveBeenCalled();
  expect(notify.success.mock.calls[0][0]).toBe('Run 1 of report succeeded.');
  expect(notify.error.mock.calls[0][0]).toBe('Run 2 of report failed: ValueError: boom (cell 4)');
});

it('remembers across a page reload which runs save their HTML', async () => {
  tracker().t.track(run(5, 'running'), { saveHtmlBeside: 'nb.ipynb' });
  const { poll } = tracker(); // a new page: the same storage
  api.getRun.mockResolvedValue(run(5, 'succeeded'));
  await poll();
  expect(api.saveRunHtml).toHaveBeenCalledWith(5, 'nb.ipynb');
});

it('warns when the server cannot save the HTML', async () => {
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  api.saveRunHtml.mockRejectedValue(new NbdeployAPIError('PermissionError: Permission denied', 500));
  const { t, poll } = tracker();
  t.track(run(3, 'queued'), { saveHtmlBeside: 'nb.ipynb' });
  api.getRun.mockResolvedValue(run(3, 'succeeded'));
  await poll();
  expect(notify.success).not.toHaveBeenCalled();
  expect(notify.warning.mock.calls[0][0]).toBe(
    'Run 3 of report succeeded, but nbdeploy could not save its HTML beside nb.ipynb: PermissionError: Permission denied'
  );
  expect(warn).toHaveBeenCalledTimes(1);
  warn.mockRestore();
});
