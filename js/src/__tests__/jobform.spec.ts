/* "Run now" from the jobs list: until `GET /jobs/{name}` carries the form (see the TODO in jobform.ts), the
 * server inspects a notebook holding only the job's parameters cell, written back from what papermill read. */

const makeRequest = jest.fn();
jest.mock('@jupyterlab/services', () => ({
  ServerConnection: { makeSettings: () => ({ baseUrl: 'http://lab/' }), makeRequest: (...args: unknown[]) => makeRequest(...args) }
}));
jest.mock('@jupyterlab/coreutils', () => ({
  URLExt: { join: (...parts: string[]) => parts.map((p, i) => (i ? p.replace(/^\/+/, '') : p.replace(/\/+$/, ''))).join('/') }
}));

import type { JobInfo, JobParameter } from '../api';
import { jobForm, parametersNotebook } from '../jobform';
import { field } from './fixtures';

const PARAMETERS: JobParameter[] = [
  { name: 'n', inferred_type_name: 'int', default: '3', help: 'the number to square' },
  { name: 'label', inferred_type_name: 'str', default: "'square'", help: '' },
  { name: 'day', inferred_type_name: 'None', default: 'date.today()', help: '' }
];

it('writes the parameters back as a tagged parameters cell', () => {
  const nb = parametersNotebook(PARAMETERS) as any;
  expect(nb.nbformat).toBe(4);
  expect(nb.cells).toHaveLength(1);
  expect(nb.cells[0].metadata.tags).toEqual(['parameters']);
  expect(nb.cells[0].source).toBe("n: int = 3  # the number to square\nlabel: str = 'square'\nday = date.today()");
});

it("asks the server for the form of the job's parameters", async () => {
  const form = [field('n', 'int', '3', { default: 3, source: '3' })];
  makeRequest.mockResolvedValueOnce(new Response(JSON.stringify({ form }), { headers: { 'Content-Type': 'application/json' } }));
  const job = { name: 'report', latest: { parameters: PARAMETERS } } as unknown as JobInfo;
  await expect(jobForm(job)).resolves.toEqual(form);
  const [url, init] = makeRequest.mock.calls[0];
  expect(url).toBe('http://lab/nbdeploy/api/notebooks/inspect');
  expect(JSON.parse(init.body).notebook.cells[0].source).toContain('n: int = 3');
  const none = { name: 'bare', latest: { parameters: [] } } as unknown as JobInfo;
  await expect(jobForm(none)).resolves.toEqual([]);
  expect(makeRequest).toHaveBeenCalledTimes(1); // no parameters: nothing to ask
});
