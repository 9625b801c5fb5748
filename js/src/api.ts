/**
 * The nbdeploy REST API as the sidebar sees it: one `requestAPI` helper over `ServerConnection`, the
 * JSON types of every route, and one function per call.
 *
 * Every field name the extension reads from the server is written here and nowhere else, so aligning
 * with the Python handlers (`python/nbdeploy/<service>/handlers.py`) is a change to this file only.
 * The normalisers (`toRun`, `toFunction`, …) accept the few spellings the handlers might use.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** Every REST route lives under this prefix (see `server_extension/base.py`). */
export const API_NAMESPACE = 'nbdeploy/api';

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
  if (error instanceof NbdeployAPIError) {
    return error.message;
  }
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
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
    const err = data && typeof data === 'object' ? data.error ?? data : undefined;
    if (!err || typeof err !== 'object') {
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
    const message = err.message || err.reason || reasonOf(response.status);
    return Promise.reject(
      new NbdeployAPIError(
        err.type && err.type !== 'HTTPError' && !String(message).startsWith(err.type)
          ? `${err.type}: ${message}`
          : String(message),
        response.status,
        err.type ?? 'Error',
        err.field,
        err.fields,
        err.traceback
      )
    );
  }
  return data as T;
}

function jsonInit(method: string, body?: unknown): RequestInit {
  return body === undefined ? { method } : { method, body: JSON.stringify(body) };
}

function query(params: Record<string, string | number | undefined | null>): string {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

const seg = encodeURIComponent;

/** A list answer: either a JSON array or an object holding it under `key` (or `items`). */
function asList(data: any, key: string): any[] {
  if (Array.isArray(data)) {
    return data;
  }
  if (data && typeof data === 'object') {
    for (const k of [key, 'items', 'results']) {
      if (Array.isArray(data[k])) {
        return data[k];
      }
    }
  }
  return [];
}

function first<T>(...values: T[]): T | undefined {
  return values.find(v => v !== undefined && v !== null);
}

// --- functions --------------------------------------------------------------------------------------

export interface FunctionVersion {
  version: string;
  created_at?: string;
  sha256?: string;
  aliases: string[];
}

export interface FunctionInfo {
  name: string;
  latest_version: string;
  created_at?: string;
  url: string;
  description?: string;
  versions: FunctionVersion[];
}

export interface InvokeResult {
  result: unknown;
  version: string;
  duration_ms: number;
}

function toVersion(v: any): FunctionVersion {
  if (typeof v !== 'object' || v === null) {
    return { version: String(v), aliases: [] };
  }
  return {
    version: String(first(v.version, v.id, '?')),
    created_at: first(v.created_at, v.created),
    sha256: first(v.sha256, v.hash),
    aliases: Array.isArray(v.aliases) ? v.aliases.map(String) : []
  };
}

/** Put `{alias: version}` (as `GET /functions/{name}` gives them) onto the versions they point at. */
function withAliases(versions: FunctionVersion[], aliases: any): FunctionVersion[] {
  if (!aliases || typeof aliases !== 'object' || Array.isArray(aliases)) {
    return versions;
  }
  return versions.map(v => ({
    ...v,
    aliases: [
      ...v.aliases,
      ...Object.entries(aliases)
        .filter(([alias, version]) => String(version) === v.version && !v.aliases.includes(alias))
        .map(([alias]) => alias)
    ]
  }));
}

export function toFunction(f: any): FunctionInfo {
  const latest = first(f.latest_version, f.latest, f.version);
  return {
    name: String(f.name),
    latest_version: latest === undefined ? '?' : String(typeof latest === 'object' ? latest.version : latest),
    created_at: first(f.created_at, f.updated_at, f.last_deployed),
    url: String(first(f.url, f.path, f.invoke_url, `/${API_NAMESPACE}/functions/${f.name}/invoke`)),
    description: first(f.description, f.doc, f.docstring) || undefined,
    versions: Array.isArray(f.versions) ? withAliases(f.versions.map(toVersion), f.aliases) : []
  };
}

export async function listFunctions(): Promise<FunctionInfo[]> {
  return asList(await requestAPI('functions'), 'functions').map(toFunction);
}

export async function getFunction(name: string): Promise<FunctionInfo> {
  return toFunction(await requestAPI(`functions/${seg(name)}`));
}

export async function deleteFunction(name: string): Promise<void> {
  await requestAPI(`functions/${seg(name)}`, { method: 'DELETE' });
}

export async function invokeFunction(name: string, args: Record<string, unknown>): Promise<InvokeResult> {
  const data: any = await requestAPI(`functions/${seg(name)}/invoke`, jsonInit('POST', args));
  return {
    result: data?.result,
    version: String(first(data?.version, '?')),
    duration_ms: Number(first(data?.duration_ms, 0))
  };
}

/** A JSON schema of an object, as OpenAPI describes a request body. */
export interface ObjectSchema {
  type?: string;
  properties?: Record<string, any>;
  required?: string[];
  description?: string;
}

export async function getOpenAPI(): Promise<any> {
  return requestAPI('openapi.json');
}

/**
 * The request-body schema of function `name` in an OpenAPI document, `$ref`s resolved; null when the
 * document has no operation for it. Looks for a path ending in `/functions/<name>/invoke` (a templated
 * `{name}` path is used only if it carries no per-function schema).
 */
export function functionRequestSchema(openapi: any, name: string): ObjectSchema | null {
  const paths: Record<string, any> = openapi?.paths ?? {};
  const key = Object.keys(paths).find(p => p.endsWith(`/functions/${name}/invoke`) || p.endsWith(`/functions/${name}`));
  if (!key) {
    return null;
  }
  const op = paths[key]?.post;
  let schema = op?.requestBody?.content?.['application/json']?.schema;
  const resolve = (s: any): any => {
    if (s && typeof s.$ref === 'string') {
      const parts = s.$ref.replace(/^#\//, '').split('/');
      let target: any = openapi;
      for (const part of parts) {
        target = target?.[part];
      }
      return target ?? {};
    }
    return s;
  };
  schema = resolve(schema);
  if (!schema) {
    return null;
  }
  const properties: Record<string, any> = {};
  for (const [prop, value] of Object.entries(schema.properties ?? {})) {
    properties[prop] = resolve(value);
  }
  return { ...schema, properties };
}

// --- jobs, schedules, runs ----------------------------------------------------------------------------

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'timed_out' | string;

export const ACTIVE_STATUSES: RunStatus[] = ['queued', 'running'];
export const RUN_STATUSES: RunStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out'];

export function isActive(status: RunStatus): boolean {
  return ACTIVE_STATUSES.includes(status);
}

/** A parameter of a stored job; `default` is the Python source of the default (papermill's inspection). */
export interface JobParameterInfo {
  name: string;
  type?: string;
  default?: unknown;
  help?: string;
}

export interface JobVersion {
  version: string;
  created_at?: string;
}

export interface Schedule {
  id: string;
  job: string;
  cron: string;
  timezone: string;
  paused: boolean;
  parameters: Record<string, unknown>;
  next_fire_time?: string | null;
  last_fire_time?: string | null;
}

export interface Job {
  name: string;
  latest_version: string;
  created_at?: string;
  versions: JobVersion[];
  parameters: JobParameterInfo[];
  schedules: Schedule[];
}

export interface RunProgress {
  done: number;
  total: number;
}

export interface Run {
  id: string;
  job: string;
  job_version?: string;
  schedule_id?: string | null;
  status: RunStatus;
  parameters: Record<string, unknown>;
  created_at?: string;
  started_at?: string | null;
  finished_at?: string | null;
  /** seconds, from the server or from the timestamps */
  duration_s?: number | null;
  progress?: RunProgress | null;
  attempt?: number;
  error?: string | null;
  /** whether an executed notebook was stored (undefined when the server does not say) */
  has_output?: boolean;
  has_log?: boolean;
}

/** Options of a run (and of every run a schedule starts). */
export interface RunOptions {
  /** seconds for the whole run; null for none */
  timeout?: number | null;
  /** extra attempts after a failure, time-out or loss */
  retries?: number;
}

/** The body of `POST /jobs`: the notebook, saved in the browser, becomes a new version of job `name`. */
export interface JobCreate {
  name: string;
  notebook: unknown;
}

export interface ScheduleCreate extends RunOptions {
  job: string;
  cron: string;
  timezone: string;
  parameters: Record<string, unknown>;
}

function toParameters(p: any): JobParameterInfo[] {
  if (Array.isArray(p)) {
    return p.map(x => ({
      name: String(x.name),
      type: x.inferred_type_name ?? x.type,
      default: first(x.default, x.value),
      help: x.help || undefined
    }));
  }
  if (p && typeof p === 'object') {
    return Object.entries(p).map(([name, x]: [string, any]) =>
      x && typeof x === 'object' && ('default' in x || 'type' in x)
        ? { name, type: x.inferred_type_name ?? x.type, default: x.default, help: x.help || undefined }
        : { name, default: x }
    );
  }
  return [];
}

export function toSchedule(s: any): Schedule {
  return {
    id: String(s.id),
    job: String(first(s.job, s.job_name, '')),
    cron: String(first(s.cron, s.schedule, '')),
    timezone: String(first(s.timezone, s.tz, 'UTC')),
    paused: Boolean(first(s.paused, s.enabled === undefined ? undefined : !s.enabled, false)),
    parameters: s.parameters ?? {},
    next_fire_time: first(s.next_fire_at, s.next_fire_time, s.next_run) ?? null,
    last_fire_time: first(s.last_fire_at, s.last_fire_time, s.last_run) ?? null
  };
}

export function toJob(j: any): Job {
  const latest = first(j.latest_version, j.latest, j.version);
  return {
    name: String(j.name),
    latest_version: latest === undefined ? '?' : String(typeof latest === 'object' ? latest.version : latest),
    created_at: first(j.created_at, j.updated_at, Array.isArray(j.versions) ? j.versions[j.versions.length - 1]?.created_at : undefined),
    versions: Array.isArray(j.versions) ? j.versions.map((v: any) => toVersion(v)) : [],
    parameters: toParameters(j.parameters),
    // `GET /jobs/{name}` lists schedule ids only; full schedules come from `GET /schedules`
    schedules: Array.isArray(j.schedules) ? j.schedules.filter((s: any) => s && typeof s === 'object').map(toSchedule) : []
  };
}

function secondsBetween(a?: string | null, b?: string | null): number | null {
  if (!a) {
    return null;
  }
  const start = Date.parse(a);
  const end = b ? Date.parse(b) : Date.now();
  return Number.isNaN(start) || Number.isNaN(end) ? null : Math.max(0, (end - start) / 1000);
}

function toProgress(r: any): RunProgress | null {
  const p = r.progress;
  if (p && typeof p === 'object') {
    // `current_cell` is the 0-based index of the cell executing: that many cells are done
    const done = first(p.current_cell, p.done, p.cells_done);
    const total = first(p.cell_count, p.total, p.cells_total);
    if (done !== undefined && total !== undefined) {
      return { done: Number(done), total: Number(total) };
    }
  }
  const done = first(r.cells_done, r.cell_index, r.current_cell);
  const total = first(r.cells_total, r.cell_count, r.total_cells);
  return done !== undefined && total !== undefined ? { done: Number(done), total: Number(total) } : null;
}

function runErrorText(error: any): string {
  const what = [error.type, error.message ?? error.evalue].filter(Boolean).join(': ');
  return typeof error.cell === 'number' ? `${what} (cell ${error.cell + 1})` : what;
}

export function toRun(r: any): Run {
  const error: any = first(r.error, r.error_message);
  const duration = first(r.duration_s, r.duration, r.duration_ms !== undefined ? r.duration_ms / 1000 : undefined);
  return {
    id: String(first(r.id, r.run_id)),
    job: String(first(r.job, r.job_name, '')),
    job_version: first(r.job_version, r.version)?.toString(),
    schedule_id: first(r.schedule_id, r.schedule)?.toString() ?? null,
    status: String(first(r.status, r.state, 'queued')),
    parameters: r.parameters ?? {},
    created_at: first(r.queued_at, r.created_at),
    started_at: r.started_at ?? null,
    finished_at: first(r.finished_at, r.ended_at) ?? null,
    duration_s: duration !== undefined ? Number(duration) : secondsBetween(r.started_at, first(r.finished_at, r.ended_at)),
    progress: toProgress(r),
    attempt: r.attempt,
    error: error === undefined || error === null ? null : typeof error === 'object' ? runErrorText(error) : String(error),
    has_output: first(r.has_output, r.output_sha256 ? true : undefined),
    has_log: first(r.has_log, r.log_sha256 ? true : undefined)
  };
}

export async function listJobs(): Promise<Job[]> {
  return asList(await requestAPI('jobs'), 'jobs').map(toJob);
}

export async function getJob(name: string): Promise<Job> {
  return toJob(await requestAPI(`jobs/${seg(name)}`));
}

/** Store `notebook` as a new version of job `name` (created when new). Returns the job. */
export async function createJob(body: JobCreate): Promise<Job> {
  const data: any = await requestAPI('jobs', jsonInit('POST', body));
  return toJob(data?.job ?? { ...data, name: data?.name ?? body.name });
}

export async function deleteJob(name: string): Promise<void> {
  await requestAPI(`jobs/${seg(name)}`, { method: 'DELETE' });
}

/** Start a run of job `name` now with `parameters`. Returns the new run (queued). */
export async function startRun(name: string, parameters: Record<string, unknown>, options: RunOptions = {}): Promise<Run> {
  const data: any = await requestAPI(`jobs/${seg(name)}/runs`, jsonInit('POST', { parameters, ...options }));
  return toRun(data?.run ?? data);
}

export async function listSchedules(job?: string): Promise<Schedule[]> {
  return asList(await requestAPI(`schedules${query({ job })}`), 'schedules').map(toSchedule);
}

export async function createSchedule(body: ScheduleCreate): Promise<Schedule> {
  const data: any = await requestAPI('schedules', jsonInit('POST', body));
  return toSchedule(data?.schedule ?? data);
}

export async function setSchedulePaused(id: string, paused: boolean): Promise<Schedule> {
  return toSchedule(await requestAPI(`schedules/${seg(id)}`, jsonInit('PATCH', { paused })));
}

export async function deleteSchedule(id: string): Promise<void> {
  await requestAPI(`schedules/${seg(id)}`, { method: 'DELETE' });
}

export interface RunFilter {
  job?: string;
  status?: string;
  limit?: number;
}

/** Runs, newest first (sorted here too, whatever order the server used). */
export async function listRuns(filter: RunFilter = {}): Promise<Run[]> {
  const runs = asList(await requestAPI(`runs${query({ ...filter })}`), 'runs').map(toRun);
  const when = (r: Run) => Date.parse(r.created_at ?? r.started_at ?? '') || 0;
  return runs.sort((a, b) => when(b) - when(a) || Number(b.id) - Number(a.id));
}

export async function getRun(id: string): Promise<Run> {
  return toRun(await requestAPI(`runs/${seg(id)}`));
}

export async function cancelRun(id: string): Promise<Run | undefined> {
  const data: any = await requestAPI(`runs/${seg(id)}/cancel`, { method: 'POST' });
  return data && typeof data === 'object' && (data.id !== undefined || data.run) ? toRun(data.run ?? data) : undefined;
}

/** The executed notebook of a run (nbformat JSON). */
export async function getRunNotebook(id: string): Promise<any> {
  const data: any = await requestAPI(`runs/${seg(id)}/output${query({ format: 'ipynb' })}`);
  return typeof data === 'string' ? JSON.parse(data) : data?.notebook ?? data;
}

/** The executed notebook of a run as a standalone HTML page. */
export async function getRunHtml(id: string): Promise<string> {
  return String(await requestAPI(`runs/${seg(id)}/output${query({ format: 'html' })}`));
}

/** The log of a run, as text. */
export async function getRunLog(id: string): Promise<string> {
  const data: any = await requestAPI(`runs/${seg(id)}/log`);
  if (typeof data === 'string') {
    return data;
  }
  const log = first(data?.log, data?.text, data?.lines);
  return Array.isArray(log) ? log.join('\n') : String(log ?? '');
}

// --- cluster ----------------------------------------------------------------------------------------

export interface WorkerInfo {
  address: string;
  name: string;
  nthreads: number;
  memory_limit: number;
  gpus: number;
  executing: number;
}

export interface ClusterInfo {
  mode: string;
  scheduler_address: string;
  dashboard_link: string | null;
  workers: WorkerInfo[];
  total_threads: number;
  total_memory: number;
  tasks_running: number;
}

export async function getCluster(): Promise<ClusterInfo> {
  const c: any = await requestAPI('cluster');
  const workers: WorkerInfo[] = asList(c?.workers, 'workers').map((w: any) => ({
    address: String(first(w.address, w.id, '')),
    name: String(first(w.name, w.address, '')),
    nthreads: Number(first(w.nthreads, w.threads, 0)),
    memory_limit: Number(first(w.memory_limit, w.memory, 0)),
    gpus: Array.isArray(w.gpus) ? w.gpus.length : Number(first(w.gpus, w.gpu_count, 0)),
    executing: Number(first(w.executing, w.tasks_running, 0))
  }));
  return {
    mode: String(first(c?.mode, 'unknown')),
    scheduler_address: String(first(c?.scheduler_address, c?.address, '')),
    dashboard_link: first(c?.dashboard_link, c?.dashboard_url) ?? null,
    workers,
    total_threads: Number(first(c?.total_threads, workers.reduce((n, w) => n + w.nthreads, 0))),
    total_memory: Number(first(c?.total_memory, workers.reduce((n, w) => n + w.memory_limit, 0))),
    tasks_running: Number(first(c?.tasks_running, workers.reduce((n, w) => n + w.executing, 0)))
  };
}

// --- models -----------------------------------------------------------------------------------------

/** One input column of a model (from a DataFrame `sample_input`): its name and pandas dtype. */
export interface ModelColumn {
  name: string;
  dtype: string;
}

/**
 * A model's input signature, inferred from `sample_input` at `put` time (`models/signature.py`):
 * columns of a DataFrame, or the shape (first axis free, -1) and dtype of an array; null when unknown.
 */
export type ModelSignature =
  | { type: 'dataframe'; columns: ModelColumn[] }
  | { type: 'ndarray'; shape: number[]; dtype: string }
  | null;

/** One stored model version, as `GET /models` (newest of each) and `GET /models/{name}` (`versions`) give it. */
export interface ModelVersionInfo {
  name: string;
  version: string;
  flavor: string;
  created_at?: string;
  sha256?: string;
  size?: number;
  signature: ModelSignature;
  metrics: Record<string, unknown>;
  params: Record<string, unknown>;
  aliases: string[];
  /** what predictions call (`predict`, `predict_proba`, …) */
  method: string;
  /** the predict route (a path) */
  path: string;
  description?: string;
}

/** A model with every version (`GET /models/{name}`); `example` is a payload the server suggests. */
export interface ModelInfo extends ModelVersionInfo {
  latest_version: string;
  versions: ModelVersionInfo[];
  example?: Record<string, unknown>;
}

export interface PredictResult {
  predictions: unknown;
  version: string;
}

function toSignature(s: any): ModelSignature {
  if (s && typeof s === 'object') {
    if (s.type === 'dataframe' && Array.isArray(s.columns)) {
      return {
        type: 'dataframe',
        columns: s.columns.map((c: any) =>
          typeof c === 'object' && c !== null ? { name: String(c.name), dtype: String(c.dtype ?? c.type ?? 'object') } : { name: String(c), dtype: 'object' }
        )
      };
    }
    if (s.type === 'ndarray' || s.type === 'tensor' || Array.isArray(s.shape)) {
      return { type: 'ndarray', shape: Array.isArray(s.shape) ? s.shape.map(Number) : [-1], dtype: String(s.dtype ?? 'float64') };
    }
  }
  return null;
}

function objectOf(value: any): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value) ? value : {};
}

export function toModelVersion(m: any): ModelVersionInfo {
  const name = String(m.name);
  return {
    name,
    version: String(first(m.version, m.latest_version, '?')),
    flavor: String(first(m.flavor, 'generic')),
    created_at: first(m.created_at, m.created),
    sha256: m.sha256 ?? undefined,
    size: typeof m.size === 'number' ? m.size : undefined,
    signature: toSignature(m.signature),
    metrics: objectOf(m.metrics),
    params: objectOf(m.params),
    aliases: Array.isArray(m.aliases) ? m.aliases.map(String) : [],
    method: String(first(m.method, 'predict')),
    path: String(first(m.path, `/${API_NAMESPACE}/models/${name}/predict`)),
    description: first(m.description, m.note) || undefined
  };
}

/** `GET /models/{name}`: the newest version's fields, `aliases` as `{alias: version}`, every version. */
export function toModel(m: any): ModelInfo {
  const latest = toModelVersion({ ...m, aliases: Array.isArray(m.aliases) ? m.aliases : [] });
  const versions: ModelVersionInfo[] = Array.isArray(m.versions) ? m.versions.map(toModelVersion) : [latest];
  const aliases = m.aliases && typeof m.aliases === 'object' && !Array.isArray(m.aliases) ? m.aliases : {};
  const withAliases = versions.map(v => ({
    ...v,
    aliases: [
      ...v.aliases,
      ...Object.entries(aliases)
        .filter(([alias, version]) => String(version) === v.version && !v.aliases.includes(alias))
        .map(([alias]) => alias)
    ]
  }));
  const latestVersion = String(first(m.latest_version, latest.version));
  return {
    ...latest,
    aliases: withAliases.find(v => v.version === latestVersion)?.aliases ?? latest.aliases,
    latest_version: latestVersion,
    versions: withAliases,
    example: m.example && typeof m.example === 'object' ? m.example : undefined
  };
}

export async function listModels(): Promise<ModelVersionInfo[]> {
  return asList(await requestAPI('models'), 'models').map(toModelVersion);
}

export async function getModel(name: string): Promise<ModelInfo> {
  return toModel(await requestAPI(`models/${seg(name)}`));
}

/** `DELETE /models/{name}`: every version; the model stops answering at once. */
export async function deleteModel(name: string): Promise<void> {
  await requestAPI(`models/${seg(name)}`, { method: 'DELETE' });
}

/** `DELETE /models/{name}/versions/{version}`: one version, and the aliases that point at it. */
export async function deleteModelVersion(name: string, version: string): Promise<void> {
  await requestAPI(`models/${seg(name)}/versions/${seg(version)}`, { method: 'DELETE' });
}

/** `PUT /models/{name}/aliases/{alias}`: point the alias (e.g. `production`) at a version. */
export async function setModelAlias(name: string, alias: string, version: string): Promise<ModelVersionInfo> {
  return toModelVersion(await requestAPI(`models/${seg(name)}/aliases/${seg(alias)}`, jsonInit('PUT', { version: Number(version) })));
}

/** `POST /models/{name}/predict` with an MLflow scoring payload; `version` is a number or an alias. */
export async function predictModel(name: string, payload: unknown, version?: string): Promise<PredictResult> {
  const which = version === undefined || version === '' || version === 'latest' ? {} : /^\d+$/.test(version) ? { version } : { alias: version };
  const data: any = await requestAPI(`models/${seg(name)}/predict${query(which)}`, jsonInit('POST', payload));
  return { predictions: data?.predictions, version: String(first(data?.version, '?')) };
}

/** The first row of the server's example payload (`dataframe_split`, `dataframe_records` or `inputs`), or undefined. */
export function exampleRow(example: unknown, columns?: string[]): unknown {
  const ex: any = example;
  if (!ex || typeof ex !== 'object') {
    return undefined;
  }
  if (ex.dataframe_split && Array.isArray(ex.dataframe_split.data) && ex.dataframe_split.data.length) {
    const names: string[] = ex.dataframe_split.columns ?? columns ?? [];
    const row = ex.dataframe_split.data[0];
    return Array.isArray(row) ? Object.fromEntries(names.map((n, i) => [n, row[i]])) : undefined;
  }
  if (Array.isArray(ex.dataframe_records) && ex.dataframe_records.length) {
    return ex.dataframe_records[0];
  }
  const inputs = first(ex.inputs, ex.instances);
  return Array.isArray(inputs) && inputs.length ? inputs[0] : undefined;
}

/** A placeholder value of a dtype: 0 for numbers, false for booleans, "" for text. */
export function placeholderValue(dtype: string): unknown {
  const d = dtype.toLowerCase();
  if (d.startsWith('bool')) {
    return false;
  }
  if (/^(u?int|float|double|complex)/.test(d)) {
    return 0;
  }
  return '';
}

/**
 * One record (`{column: value}`) to try a columnar model with: the server's example row where it has
 * one, placeholders from the column dtypes elsewhere.
 */
export function exampleRecord(columns: ModelColumn[], example?: unknown): Record<string, unknown> {
  const row = exampleRow(example, columns.map(c => c.name));
  const given = row && typeof row === 'object' && !Array.isArray(row) ? (row as Record<string, unknown>) : {};
  return Object.fromEntries(columns.map(c => [c.name, c.name in given ? given[c.name] : placeholderValue(c.dtype)]));
}

/** An array of `shape` (the first, free axis taken as 1 row) filled with the dtype's placeholder. */
function placeholderArray(shape: number[], dtype: string): unknown {
  if (!shape.length) {
    return placeholderValue(dtype);
  }
  const [size, ...rest] = shape;
  return Array.from({ length: size > 0 ? size : 1 }, () => placeholderArray(rest, dtype));
}

/**
 * The request body "Try it" starts from: `{"dataframe_records": [record]}` for a columnar model,
 * `{"inputs": [row]}` (the example's first row, or zeros of the signature's shape) for an array model,
 * and `{"inputs": []}` when the model has no signature and the server gave no example.
 */
export function examplePayload(signature: ModelSignature, example?: unknown): Record<string, unknown> {
  if (signature?.type === 'dataframe') {
    return { dataframe_records: [exampleRecord(signature.columns, example)] };
  }
  const row = exampleRow(example);
  if (row !== undefined) {
    return { inputs: [row] };
  }
  if (signature?.type === 'ndarray') {
    return { inputs: placeholderArray([1, ...signature.shape.slice(1)], signature.dtype) };
  }
  return { inputs: [] };
}
