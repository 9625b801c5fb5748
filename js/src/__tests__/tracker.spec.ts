/* The run tracker's "Output HTML": a run started here with the option on has its HTML saved beside the
 * notebook once it succeeds, and the notification names the file. The REST calls and JupyterLab's
 * notifications are the boundary; `window`/`document` are the little the tracker touches. */

const notify = { success: jest.fn(), info: jest.fn(), error: jest.fn(), warning: jest.fn() };
jest.mock('@jupyterlab/apputils', () => ({ Notification: notify }));
const api = { listRuns: jest.fn(), getRun: jest.fn(), getRunHtml: jest.fn() };
jest.mock('../api', () => ({
  ...jest.requireActual('../api'),
  listRuns: (...a: unknown[]) => api.listRuns(...a),
  getRun: (...a: unknown[]) => api.getRun(...a),
  getRunHtml: (...a: unknown[]) => api.getRunHtml(...a)
}));
jest.mock('@jupyterlab/services', () => ({ ServerConnection: {} }));
jest.mock('@jupyterlab/coreutils', () => ({ URLExt: {} }));

import { Run } from '../api';
import { RunTracker } from '../tracker';

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

const run = (id: string, status: string): Run => ({ id, job: 'report', status, parameters: {} });
const flush = () => new Promise(resolve => setTimeout(resolve, 0));

function tracker(saveTextFile = jest.fn().mockResolvedValue(undefined)) {
  const t = new RunTracker({
    intervalMs: () => 1000,
    notificationsEnabled: () => true,
    openOutput: jest.fn(),
    openLog: jest.fn(),
    saveTextFile,
    openFile: jest.fn()
  });
  return { t, saveTextFile, poll: async () => ((t as any)._poll() as Promise<void>).then(flush) };
}

beforeEach(() => {
  storage.clear();
  jest.clearAllMocks();
  api.listRuns.mockResolvedValue([]);
  api.getRunHtml.mockResolvedValue('<html>square of 7 is 49</html>');
});

it('saves the HTML of a succeeded run beside its notebook and says so', async () => {
  const { t, saveTextFile, poll } = tracker();
  t.track(run('12', 'queued'), { saveHtmlBeside: 'reports/Sales Q1.ipynb' });
  api.getRun.mockResolvedValue(run('12', 'succeeded'));
  await poll();
  expect(api.getRunHtml).toHaveBeenCalledWith('12');
  expect(saveTextFile).toHaveBeenCalledWith('reports/Sales Q1-run-12.html', '<html>square of 7 is 49</html>');
  expect(notify.success.mock.calls[0][0]).toBe('Run 12 of report succeeded. Its output was saved as reports/Sales Q1-run-12.html.');
  expect(notify.success.mock.calls[0][1].actions.map((a: any) => a.label)).toEqual(['Open output', 'Log', 'Open HTML']);
  await poll(); // announced and saved once
  expect(saveTextFile).toHaveBeenCalledTimes(1);
});

it('saves nothing when the option is off, or the run failed', async () => {
  const { t, saveTextFile, poll } = tracker();
  t.track(run('1', 'queued'));
  t.track(run('2', 'queued'), { saveHtmlBeside: 'a.ipynb' });
  api.getRun.mockImplementation(async (id: string) => run(id, id === '1' ? 'succeeded' : 'failed'));
  await poll();
  expect(saveTextFile).not.toHaveBeenCalled();
  expect(notify.success.mock.calls[0][0]).toBe('Run 1 of report succeeded.');
  expect(notify.error).toHaveBeenCalledTimes(1);
});

it('remembers across a page reload which runs save their HTML', async () => {
  tracker().t.track(run('5', 'running'), { saveHtmlBeside: 'nb.ipynb' });
  const { saveTextFile, poll } = tracker(); // a new page: the same storage
  api.getRun.mockResolvedValue(run('5', 'succeeded'));
  await poll();
  expect(saveTextFile).toHaveBeenCalledWith('nb-run-5.html', expect.any(String));
});

it('warns when the HTML cannot be saved', async () => {
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  const { t, poll } = tracker(jest.fn().mockRejectedValue(new Error('Permission denied')));
  t.track(run('3', 'queued'), { saveHtmlBeside: 'nb.ipynb' });
  api.getRun.mockResolvedValue(run('3', 'succeeded'));
  await poll();
  expect(notify.success).not.toHaveBeenCalled();
  expect(notify.warning.mock.calls[0][0]).toBe('Run 3 of report succeeded, but nbdeploy could not save its HTML as nb-run-3.html: Permission denied');
  expect(warn).toHaveBeenCalledTimes(1);
  warn.mockRestore();
});
