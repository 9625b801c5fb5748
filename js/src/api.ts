/**
 * The nbdeploy REST API as the sidebar sees it: one `requestAPI` helper over `ServerConnection` and one
 * small typed function per route the lab calls.
 *
 * Every type comes from the server's OpenAPI document (`js/openapi.json`, printed by
 * `python -m nbdeploy.server_extension.openapi`) through `src/generated/api.ts` (openapi-typescript; `make
 * types` regenerates both). The server decides names, types, defaults and paths; nothing here reinterprets
 * an answer, so a change of shape on the server is a compile error here.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { components, operations } from './generated/api';

/** Every REST route lives under this prefix (see `server_extension/base.py`). */
export const API_NAMESPACE = 'nbdeploy/api';

type Schemas = components['schemas'];

export type FormField = Schemas['FormField'];
export type FormInputs = Schemas['FormInputs'];
export type FormValues = Schemas['FormValues'];
export type FunctionSummary = Schemas['FunctionSummary'];
export type FunctionInfo = Schemas['FunctionInfo'];
export type InvokeResult = Schemas['InvokeResult'];
export type FunctionStats = Schemas['FunctionStats'];
export type Job = Schemas['Job'];
export type JobInfo = Schemas['JobInfo'];
export type JobParameter = Schemas['JobParameter'];
export type Schedule = Schemas['Schedule'];
export type Run = Schemas['RunInfo'];
export type RunTimings = Schemas['RunTimings'];
export type KernelList = Schemas['KernelList'];
export type RunRequest = Schemas['RunRequest'];
export type RunStatus = Run['status'];
export type NotebookInspect = Schemas['NotebookInspect'];
export type NotebookInfo = Schemas['NotebookInfo'];
export type NotebookSchedule = Schemas['NotebookSchedule'];
export type NotebookScheduled = Schemas['NotebookScheduled'];
export type HtmlSaved = Schemas['HtmlSaved'];
export type ClusterStatus = Schemas['ClusterStatus'];
export type ModelVersion = Schemas['ModelVersion'];
export type ModelInfo = Schemas['ModelInfo'];
export type PredictResult = Schemas['PredictResult'];
export type ModelReport = Schemas['ModelReport'];
export type DatasetVersion = Schemas['DatasetVersion'];
export type DatasetInfo = Schemas['DatasetInfo'];
export type DatasetLineage = Schemas['Lineage'];
export type LineageEvent = Schemas['LineageEvent'];
export type DatasetProfileInfo = Schemas['DatasetProfileInfo'];
export type ProfileRequest = Schemas['ProfileRequest'];
export type TrackedRun = Schemas['TrackedRun'];
export type RunComparison = Schemas['RunComparison'];
export type TrackedRunsQuery = NonNullable<operations['get_tracking_runs']['parameters']['query']>;
export type RunsQuery = NonNullable<operations['get_runs']['parameters']['query']>;
export type PredictQuery = NonNullable<operations['predict_model']['parameters']['query']>;
export type PipelineInfo = Schemas['PipelineInfo'];
export type PipelineNode = Schemas['PipelineNode'];
export type PipelineRun = Schemas['PipelineRun'];
export type PipelineRunRequest = Schemas['PipelineRunRequest'];
export type PipelinePutRequest = Schemas['PipelinePutRequest'];
export type PipelinePreviewRequest = Schemas['PipelinePreviewRequest'];
export type PipelineNodeRun = Schemas['NodeState'];
export type PipelineNodeStatus = PipelineNodeRun['status'];
export type PipelineRunStatus = PipelineRun['status'];

/** An error answer of the API, or a failure to reach it, with a message meant for people. */
export class NbdeployAPIError extends Error {
  constructor(
    message: string,
    readonly status: number = 0,
    readonly type: string = 'Error',
    readonly field?: string,
    readonly fields?: Record<string, string>,
    readonly traceback?: string
  ) {
    super(message);
    this.name = 'NbdeployAPIError';
  }
}

/** A message for people from anything thrown: API errors, network errors, bugs. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function reasonOf(status: number): string {
  const reasons: Record<number, string> = {
    400: 'the request was malformed',
    401: 'not logged in',
    403: 'not allowed (log in to Jupyter again?)',
    404: 'not found',
    409: 'conflict',
    413: 'the request is too large',
    422: 'the input does not fit',
    500: 'server error',
    502: 'the Dask cluster did not answer',
    503: 'service unavailable',
    504: 'the cluster or task timed out'
  };
  return reasons[status] ?? `HTTP ${status}`;
}

/**
 * Call the nbdeploy REST API.
 *
 * `endPoint` is relative to `/nbdeploy/api` (e.g. `functions/greet`). Returns the parsed JSON body (or
 * the text, for non-JSON answers; `undefined` for 204). Throws {@link NbdeployAPIError} with a readable
 * message for error answers, for answers that are not from nbdeploy and when the server is unreachable.
 */
export async function requestAPI<T = unknown>(
  endPoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
  if (init.body !== undefined && typeof init.body === 'string') {
    init = { ...init, headers: { 'Content-Type': 'application/json', ...(init.headers ?? {}) } };
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new NbdeployAPIError(`Cannot reach the Jupyter server: ${errorMessage(error)}`);
  }
  if (response.status === 204) {
    return undefined as T;
  }
  const text = await response.text();
  const contentType = response.headers.get('Content-Type') ?? '';
  let data: any = text;
  if (contentType.includes('json') && text) {
    try {
      data = JSON.parse(text);
    } catch {
      throw new NbdeployAPIError(`The server sent malformed JSON for ${endPoint}`, response.status);
    }
  }
  if (!response.ok) {
    // nbdeploy's errors are `{"error": {type, message, field?, fields?, traceback?}}` (schema `Error`)
    const err: Partial<Schemas['Error']['error']> | undefined =
      data && typeof data === 'object' && data.error && typeof data.error === 'object' ? data.error : undefined;
    if (!err) {
      if (response.status === 404) {
        throw new NbdeployAPIError(
          `The nbdeploy API is not available at /${API_NAMESPACE}/${endPoint}: is the nbdeploy server ` +
            'extension installed and enabled? (jupyter server extension list)',
          404,
          'NotFound'
        );
      }
      throw new NbdeployAPIError(`${reasonOf(response.status)} (${endPoint})`, response.status);
    }
    const message = err.message || reasonOf(response.status);
    throw new NbdeployAPIError(
      err.type && err.type !== 'HTTPError' && !message.startsWith(err.type) ? `${err.type}: ${message}` : message,
      response.status,
      err.type ?? 'Error',
      err.field,
      err.fields,
      err.traceback
    );
  }
  return data as T;
}

const seg = encodeURIComponent;

function send<T>(method: string, endPoint: string, body?: unknown): Promise<T> {
  return requestAPI<T>(endPoint, body === undefined ? { method } : { method, body: JSON.stringify(body) });
}

function query(params: object): string {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/** A figure route (`….png`, drawn by the server with matplotlib) as an image Blob; `what` names it in errors. */
async function getFigure(
  endPoint: string,
  what: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<Blob> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, {}, settings);
  } catch (error) {
    throw new NbdeployAPIError(`Cannot reach the Jupyter server: ${errorMessage(error)}`);
  }
  if (!response.ok) {
    throw new NbdeployAPIError(`${reasonOf(response.status)} (${what})`, response.status);
  }
  return response.blob();
}

// --- forms and notebooks ----------------------------------------------------------------------------

/** `POST /forms/coerce`: what was typed into `fields`, as JSON values, with an error per bad field. */
export function coerceForm(body: FormInputs): Promise<FormValues> {
  return send('POST', 'forms/coerce', body);
}

/** `POST /notebooks/inspect`: what a notebook would be as a job (name, parameters and their form). */
export function inspectNotebook(body: NotebookInspect): Promise<NotebookInfo> {
  return send('POST', 'notebooks/inspect', body);
}

/** `POST /notebooks/schedule`: store the notebook as a job version and run it now or on a schedule. */
export function scheduleNotebook(body: NotebookSchedule): Promise<NotebookScheduled> {
  return send('POST', 'notebooks/schedule', body);
}

// --- functions --------------------------------------------------------------------------------------

export async function listFunctions(): Promise<FunctionSummary[]> {
  return (await send<Schemas['FunctionList']>('GET', 'functions')).functions;
}

export function getFunction(name: string): Promise<FunctionInfo> {
  return send('GET', `functions/${seg(name)}`);
}

export function deleteFunction(name: string): Promise<void> {
  return send('DELETE', `functions/${seg(name)}`);
}

/** `GET /functions/{name}/stats`: calls, errors and latency over every server that served it. */
export function getFunctionStats(name: string): Promise<FunctionStats> {
  return send('GET', `functions/${seg(name)}/stats`);
}

/** `GET /functions/{name}/stats.png`: latency histogram, latency over time and request rate (matplotlib). */
export function getFunctionFigure(name: string): Promise<Blob> {
  return getFigure(`functions/${seg(name)}/stats.png`, `the serving figure of ${name}`);
}

export function invokeFunction(name: string, args: Record<string, unknown>): Promise<InvokeResult> {
  return send('POST', `functions/${seg(name)}/invoke`, args);
}

// --- jobs, schedules, runs ----------------------------------------------------------------------------

/** Every run status, in the order a run goes through them (a status the schema adds is a compile error here). */
const STATUSES: Record<RunStatus, true> = { queued: true, running: true, succeeded: true, failed: true, cancelled: true, timed_out: true };
export const RUN_STATUSES = Object.keys(STATUSES) as RunStatus[];

/** Whether a run is still to end (queued or running). */
export function isActive(status: RunStatus): boolean {
  return status === 'queued' || status === 'running';
}

export async function listJobs(): Promise<Job[]> {
  return (await send<Schemas['JobList']>('GET', 'jobs')).jobs;
}

export function getJob(name: string): Promise<JobInfo> {
  return send('GET', `jobs/${seg(name)}`);
}

export function deleteJob(name: string): Promise<void> {
  return send('DELETE', `jobs/${seg(name)}`);
}

/** `POST /jobs/{name}/runs`: run a job now; resolves the queued run. */
export function startRun(name: string, body: RunRequest): Promise<Run> {
  return send('POST', `jobs/${seg(name)}/runs`, body);
}

export async function listSchedules(job?: string): Promise<Schedule[]> {
  return (await send<Schemas['ScheduleList']>('GET', `schedules${query({ job })}`)).schedules;
}

export function setSchedulePaused(id: number, paused: boolean): Promise<Schedule> {
  const body: Schemas['SchedulePatch'] = { paused };
  return send('PATCH', `schedules/${id}`, body);
}

export function deleteSchedule(id: number): Promise<void> {
  return send('DELETE', `schedules/${id}`);
}

/** `GET /runs`: runs, newest first. */
export async function listRuns(filter: RunsQuery = {}): Promise<Run[]> {
  return (await send<Schemas['RunList']>('GET', `runs${query(filter)}`)).runs;
}

export function getRun(id: number): Promise<Run> {
  return send('GET', `runs/${id}`);
}

export function cancelRun(id: number): Promise<Run> {
  return send('POST', `runs/${id}/cancel`);
}

/** The executed notebook of a run (nbformat JSON). */
export function getRunNotebook(id: number): Promise<Record<string, unknown>> {
  return send('GET', `runs/${id}/output${query({ format: 'ipynb' })}`);
}

/** The executed notebook of a run as a standalone HTML page. */
export function getRunHtml(id: number): Promise<string> {
  return send('GET', `runs/${id}/output${query({ format: 'html' })}`);
}

/** The log of a run, as text. */
export function getRunLog(id: number): Promise<string> {
  return send('GET', `runs/${id}/log`);
}

/**
 * `GET /runs/{id}/log?follow=1`: the log of a running run as the worker writes it; `onText` gets each piece in
 * order. Resolves when the run ended (the pieces joined are the log the finished run keeps); rejects like
 * {@link requestAPI} on an error answer, or when `signal` aborts.
 */
export async function followRunLog(
  id: number,
  onText: (text: string) => void,
  signal?: AbortSignal,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<void> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, `runs/${id}/log`) + query({ follow: 1 });
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, { method: 'GET', signal }, settings);
  } catch (error) {
    throw new NbdeployAPIError(`Cannot reach the Jupyter server: ${errorMessage(error)}`);
  }
  if (!response.ok || !response.body) {
    throw new NbdeployAPIError(`${reasonOf(response.status)} (runs/${id}/log)`, response.status);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      const rest = decoder.decode();
      if (rest) {
        onText(rest);
      }
      return;
    }
    onText(decoder.decode(value, { stream: true }));
  }
}

/** `GET /kernels`: the kernelspecs the workers can run and their warm pools. */
export function listKernels(): Promise<KernelList> {
  return send('GET', 'kernels');
}

/** `POST /runs/{id}/html`: the server saves the run's HTML beside the notebook; resolves where. */
export function saveRunHtml(id: number, notebookPath: string): Promise<HtmlSaved> {
  const body: Schemas['HtmlSave'] = { notebook_path: notebookPath };
  return send('POST', `runs/${id}/html`, body);
}

// --- cluster ----------------------------------------------------------------------------------------

export function getCluster(): Promise<ClusterStatus> {
  return send('GET', 'cluster');
}

// --- models -----------------------------------------------------------------------------------------

export async function listModels(): Promise<ModelVersion[]> {
  return (await send<Schemas['ModelList']>('GET', 'models')).models;
}

export function getModel(name: string): Promise<ModelInfo> {
  return send('GET', `models/${seg(name)}`);
}

/** `DELETE /models/{name}`: every version; the model stops answering at once. */
export function deleteModel(name: string): Promise<void> {
  return send('DELETE', `models/${seg(name)}`);
}

/** `DELETE /models/{name}/versions/{number}`: one version, and the aliases that point at it. */
export function deleteModelVersion(name: string, version: number): Promise<void> {
  return send('DELETE', `models/${seg(name)}/versions/${version}`);
}

/** `PUT /models/{name}/aliases/{alias}`: point the alias (e.g. `production`) at a version. */
export function setModelAlias(name: string, alias: string, version: number): Promise<ModelVersion> {
  const body: Schemas['AliasSet'] = { version };
  return send('PUT', `models/${seg(name)}/aliases/${seg(alias)}`, body);
}

/** `POST /models/{name}/predict` with an MLflow scoring payload (the newest version, or `?version=`/`?alias=`). */
/** `GET /models/{name}/stats`: requests, errors, latency over every server, and the input drift of a version. */
export function getModelReport(name: string, which: PredictQuery = {}): Promise<ModelReport> {
  return send('GET', `models/${seg(name)}/stats${query(which)}`);
}

/** `GET /models/{name}/stats.png`: latency, request rate and drift per column (matplotlib). */
export function getModelFigure(name: string, which: PredictQuery = {}): Promise<Blob> {
  return getFigure(`models/${seg(name)}/stats.png${query(which)}`, `the serving figure of ${name}`);
}

export function predictModel(name: string, payload: Record<string, unknown>, which: PredictQuery = {}): Promise<PredictResult> {
  return send('POST', `models/${seg(name)}/predict${query(which)}`, payload);
}

// --- datasets ---------------------------------------------------------------------------------------

/** `GET /datasets`: every dataset's newest version. */
export async function listDatasets(): Promise<DatasetVersion[]> {
  return (await send<Schemas['DatasetList']>('GET', 'datasets')).datasets;
}

/** `GET /datasets/{name}`: its newest version, every version and its aliases. */
export function getDataset(name: string): Promise<DatasetInfo> {
  return send('GET', `datasets/${seg(name)}`);
}

/** `DELETE /datasets/{name}`: every version. */
export function deleteDataset(name: string): Promise<void> {
  return send('DELETE', `datasets/${seg(name)}`);
}

/** `DELETE /datasets/{name}/versions/{number}`: one version, and the aliases that point at it. */
export function deleteDatasetVersion(name: string, version: number): Promise<void> {
  return send('DELETE', `datasets/${seg(name)}/versions/${version}`);
}

/** `GET /datasets/{name}/lineage`: per version, the run that produced it and the runs that read it. */
export function getDatasetLineage(name: string): Promise<DatasetLineage> {
  return send('GET', `datasets/${seg(name)}/lineage`);
}

/** `POST /datasets/{name}/versions/{version}/profile`: profile a version on the cluster (or its stored profile). */
export function profileDataset(name: string, version: number, body: ProfileRequest = {}): Promise<DatasetProfileInfo> {
  return send('POST', `datasets/${seg(name)}/versions/${version}/profile`, body);
}

/** `GET /datasets/{name}/versions/{version}/profile.html`: the profile report as an HTML page. */
export function getDatasetProfileHtml(name: string, version: number): Promise<string> {
  return send('GET', `datasets/${seg(name)}/versions/${version}/profile.html`);
}

// --- tracked runs (MLflow clients) -------------------------------------------------------------------

/** `GET /tracking/runs`: runs logged by MLflow clients, newest first. */
export async function listTrackedRuns(filter: TrackedRunsQuery = {}): Promise<TrackedRun[]> {
  return (await send<Schemas['TrackedRunList']>('GET', `tracking/runs${query(filter)}`)).runs;
}

/** `GET /tracking/compare?runs=a,b`: tracked runs side by side (params, metrics, histories). */
export function compareTrackedRuns(runIds: string[]): Promise<RunComparison> {
  return send('GET', `tracking/compare${query({ runs: runIds.join(',') })}`);
}

/** `GET /tracking/compare.png?runs=a,b`: the runs' metrics by step (matplotlib) as an image Blob. */
export function getTrackedRunsFigure(runIds: string[]): Promise<Blob> {
  return getFigure(`tracking/compare.png${query({ runs: runIds.join(',') })}`, 'the metrics figure');
}

// --- pipelines ----------------------------------------------------------------------------------------

/** Whether a pipeline run (or node) is still to end. */
export function isPipelineRunActive(status: PipelineRunStatus | PipelineNodeStatus | 'defined'): boolean {
  return status === 'queued' || status === 'running';
}

/** `GET /pipelines`: every pipeline's newest version. */
export async function listPipelines(): Promise<PipelineInfo[]> {
  return (await send<Schemas['PipelineList']>('GET', 'pipelines')).pipelines;
}

/** `GET /pipelines/{name}`: the newest version of a pipeline. */
export function getPipeline(name: string): Promise<PipelineInfo> {
  return send('GET', `pipelines/${seg(name)}`);
}

/** `POST /pipelines`: store a `.pipeline.yaml` file as a new version of its pipeline. */
export function putPipeline(body: PipelinePutRequest): Promise<PipelineInfo> {
  return send('POST', 'pipelines', body);
}

/** `POST /pipelines/preview`: parse and check a `.pipeline.yaml` file; stores nothing (422 names the bad node). */
export function previewPipeline(body: PipelinePreviewRequest): Promise<PipelineInfo> {
  return send('POST', 'pipelines/preview', body);
}

/** `DELETE /pipelines/{name}`. */
export function deletePipeline(name: string): Promise<void> {
  return send('DELETE', `pipelines/${seg(name)}`);
}

/** `POST /pipelines/{name}/runs`: run a pipeline now (`{}` runs it with its defaults); resolves the queued run. */
export function startPipelineRun(name: string, body: PipelineRunRequest = {}): Promise<PipelineRun> {
  return send('POST', `pipelines/${seg(name)}/runs`, body);
}

/** `GET /pipelines/{name}/runs`: the pipeline's runs, newest first. */
export async function listPipelineRuns(name: string): Promise<PipelineRun[]> {
  return (await send<Schemas['PipelineRunList']>('GET', `pipelines/${seg(name)}/runs`)).runs;
}

/** `GET /pipeline-runs/{id}`: a pipeline run and the state of each node. */
export function getPipelineRun(id: number): Promise<PipelineRun> {
  return send('GET', `pipeline-runs/${id}`);
}

/** `POST /pipeline-runs/{id}/cancel`. */
export function cancelPipelineRun(id: number): Promise<PipelineRun> {
  return send('POST', `pipeline-runs/${id}/cancel`);
}
