/* api.ts: each route function calls its route (method, path, query, JSON body) and gives the server's record
 * as it is; requestAPI's readable errors. JupyterLab's modules are the boundary here:
 * ServerConnection.makeRequest is replaced by a function returning real `Response`s. */

import { json, makeRequest, sent } from './server';

import {
  cancelRun,
  coerceForm,
  getRunLog,
  getRunNotebook,
  inspectNotebook,
  listFunctions,
  listRuns,
  listSchedules,
  NbdeployAPIError,
  requestAPI,
  saveRunHtml,
  scheduleNotebook,
  setSchedulePaused,
  startRun
} from '../api';
import { field, runInfo } from './fixtures';

afterEach(() => makeRequest.mockReset());

describe('routes', () => {
  it('lists runs with the filter as a query, newest first as the server sent them', async () => {
    makeRequest.mockResolvedValueOnce(json({ runs: [runInfo(2, 'running'), runInfo(1, 'queued')] }));
    const runs = await listRuns({ status: 'running', job: 'a b', limit: 50 });
    expect(sent()).toEqual(['GET', 'http://lab/nbdeploy/api/runs?status=running&job=a%20b&limit=50', undefined]);
    expect(runs.map(r => r.id)).toEqual([2, 1]);
  });

  it('gives the records inside list answers', async () => {
    makeRequest.mockResolvedValueOnce(json({ functions: [{ name: 'greet', version: 2 }] }));
    expect((await listFunctions())[0]).toMatchObject({ name: 'greet', version: 2 });
    makeRequest.mockResolvedValueOnce(json({ schedules: [] }));
    await listSchedules('report');
    expect(sent(1)[1]).toBe('http://lab/nbdeploy/api/schedules?job=report');
  });

  it('coerces a form on the server', async () => {
    makeRequest.mockResolvedValueOnce(json({ values: { n: 5 }, errors: {} }));
    const fields = [field('n', 'int', '3')];
    await expect(coerceForm({ fields, inputs: { n: '5' }, include_defaults: true })).resolves.toEqual({ values: { n: 5 }, errors: {} });
    expect(sent()).toEqual(['POST', 'http://lab/nbdeploy/api/forms/coerce', { fields, inputs: { n: '5' }, include_defaults: true }]);
  });

  it('inspects and schedules a notebook', async () => {
    const notebook = { nbformat: 4, cells: [] };
    makeRequest.mockResolvedValueOnce(json({ name: 'daily-report', form: [] }));
    await inspectNotebook({ notebook, path: 'Daily Report.ipynb' });
    expect(sent(0)).toEqual(['POST', 'http://lab/nbdeploy/api/notebooks/inspect', { notebook, path: 'Daily Report.ipynb' }]);

    makeRequest.mockResolvedValueOnce(json({ job: { name: 'daily-report' }, run: runInfo(3, 'queued'), schedule: null }, 201));
    const done = await scheduleNotebook({ notebook, path: 'Daily Report.ipynb', when: 'now', inputs: { n_rows: '10' }, retries: 0 });
    expect(done.run?.id).toBe(3);
    expect(sent(1)).toEqual([
      'POST',
      'http://lab/nbdeploy/api/notebooks/schedule',
      { notebook, path: 'Daily Report.ipynb', when: 'now', inputs: { n_rows: '10' }, retries: 0 }
    ]);
  });

  it('has the server save a run as HTML beside its notebook', async () => {
    makeRequest.mockResolvedValueOnce(json({ path: 'reports/Sales Q1-run-12.html' }, 201));
    await expect(saveRunHtml(12, 'reports/Sales Q1.ipynb')).resolves.toEqual({ path: 'reports/Sales Q1-run-12.html' });
    expect(sent()).toEqual(['POST', 'http://lab/nbdeploy/api/runs/12/html', { notebook_path: 'reports/Sales Q1.ipynb' }]);
  });

  it('starts, cancels and pauses with the bodies the schema declares', async () => {
    makeRequest.mockImplementation(async () => json(runInfo(4, 'queued'), 201));
    await startRun('report', { parameters: { n: 5 } });
    await cancelRun(4);
    await setSchedulePaused(7, true);
    expect(sent(0)).toEqual(['POST', 'http://lab/nbdeploy/api/jobs/report/runs', { parameters: { n: 5 } }]);
    expect(sent(1)).toEqual(['POST', 'http://lab/nbdeploy/api/runs/4/cancel', undefined]);
    expect(sent(2)).toEqual(['PATCH', 'http://lab/nbdeploy/api/schedules/7', { paused: true }]);
  });

  it('reads a run output notebook and log', async () => {
    makeRequest.mockResolvedValueOnce(
      new Response('{"nbformat": 4, "cells": []}', { headers: { 'Content-Type': 'application/x-ipynb+json' } })
    );
    await expect(getRunNotebook(9)).resolves.toEqual({ nbformat: 4, cells: [] });
    expect(sent()[1]).toBe('http://lab/nbdeploy/api/runs/9/output?format=ipynb');
    makeRequest.mockResolvedValueOnce(new Response('line 1\nline 2', { headers: { 'Content-Type': 'text/plain' } }));
    await expect(getRunLog(9)).resolves.toBe('line 1\nline 2');
  });
});

describe('requestAPI', () => {
  it('returns JSON, and undefined for 204', async () => {
    makeRequest.mockResolvedValueOnce(json({ ok: true }));
    await expect(requestAPI('status')).resolves.toEqual({ ok: true });
    makeRequest.mockResolvedValueOnce(new Response(null, { status: 204 }));
    await expect(requestAPI('functions/x', { method: 'DELETE' })).resolves.toBeUndefined();
  });

  it('turns an nbdeploy error body into a readable error with its field', async () => {
    makeRequest.mockResolvedValueOnce(
      json({ error: { type: 'InvalidInputError', message: "unknown field(s) ['x']", field: 'x' } }, 400)
    );
    const error = (await requestAPI('jobs/a/runs', { method: 'POST', body: '{}' }).catch(e => e)) as NbdeployAPIError;
    expect(error).toBeInstanceOf(NbdeployAPIError);
    expect(error.message).toBe("InvalidInputError: unknown field(s) ['x']");
    expect(error.status).toBe(400);
    expect(error.field).toBe('x');
    expect(makeRequest.mock.calls[0][1].headers['Content-Type']).toBe('application/json');
  });

  it('keeps the per-field errors of a 422', async () => {
    const fields = { n_rows: "expected a whole number, not 'ten'" };
    makeRequest.mockResolvedValueOnce(json({ error: { type: 'SignatureError', message: 'some parameters do not fit', fields } }, 422));
    const error = (await requestAPI('notebooks/schedule', { method: 'POST', body: '{}' }).catch(e => e)) as NbdeployAPIError;
    expect(error.fields).toEqual(fields);
  });

  it('keeps a traceback out of the message', async () => {
    makeRequest.mockResolvedValueOnce(json({ error: { type: 'ZeroDivisionError', message: 'division by zero', traceback: 'Traceback…' } }, 500));
    const error = (await requestAPI('functions/f/invoke').catch(e => e)) as NbdeployAPIError;
    expect(error.message).toBe('ZeroDivisionError: division by zero');
    expect(error.traceback).toBe('Traceback…');
  });

  it('says the extension is missing on a non-nbdeploy 404', async () => {
    makeRequest.mockResolvedValueOnce(new Response('<html>404</html>', { status: 404, headers: { 'Content-Type': 'text/html' } }));
    await expect(requestAPI('jobs')).rejects.toThrow(/nbdeploy API is not available .*jupyter server extension list/);
  });

  it('says when the server cannot be reached', async () => {
    makeRequest.mockRejectedValueOnce(new TypeError('Failed to fetch'));
    await expect(requestAPI('jobs')).rejects.toThrow('Cannot reach the Jupyter server: Failed to fetch');
  });
});
