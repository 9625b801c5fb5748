/* The boundary of the route tests: JupyterLab's ServerConnection.makeRequest is replaced by `makeRequest`, a
 * jest function each test makes return real `Response`s (`json(...)`). Import this module before '../api'. */

export const makeRequest = jest.fn();
jest.mock('@jupyterlab/services', () => ({
  ServerConnection: { makeSettings: () => ({ baseUrl: 'http://lab/' }), makeRequest: (...args: unknown[]) => makeRequest(...args) }
}));
jest.mock('@jupyterlab/coreutils', () => ({
  URLExt: { join: (...parts: string[]) => parts.map((p, i) => (i ? p.replace(/^\/+/, '') : p.replace(/\/+$/, ''))).join('/') }
}));

/** A JSON answer. */
export const json = (body: unknown, status = 200): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

/** `[method, url, parsed JSON body]` of the n-th request. */
export function sent(n = 0): [string, string, unknown] {
  const [url, init] = makeRequest.mock.calls[n];
  return [init.method, url, init.body === undefined ? undefined : JSON.parse(init.body)];
}
