/** Small formatting helpers for the sidebar: durations, sizes, times, run errors. Pure, tested by Jest. */

import type { ModelReport, Run } from './api';

/** "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  }
  const total = Math.round(seconds);
  if (total < 3600) {
    return `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, '0')} s`;
  }
  return `${Math.floor(total / 3600)} h ${String(Math.floor((total % 3600) / 60)).padStart(2, '0')} min`;
}

/** "2.0 GiB", "512 MiB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (!bytes) {
    return '';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 10 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** "just now", "5 min ago", "in 3 h", or the date for anything over a week away. */
export function formatRelative(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) {
    return '';
  }
  const t = Date.parse(iso);
  if (Number.isNaN(t)) {
    return iso;
  }
  const diff = (t - now) / 1000;
  const abs = Math.abs(diff);
  const say = (n: number, unit: string) => (diff < 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`);
  if (abs < 45) {
    return diff < 0 ? 'just now' : 'in a few seconds';
  }
  if (abs < 3600) {
    return say(Math.round(abs / 60), 'min');
  }
  if (abs < 86400) {
    return say(Math.round(abs / 3600), 'h');
  }
  if (abs < 7 * 86400) {
    return say(Math.round(abs / 86400), abs < 1.5 * 86400 ? 'day' : 'days');
  }
  return new Date(t).toLocaleDateString();
}

/** The full local date and time, for tooltips. */
export function formatTimestamp(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : new Date(t).toLocaleString();
}

/** A JSON value shortened for a list row: `{"n": 3, "name": "x"}` → `n=3, name="x"`. */
export function formatParameters(params: Record<string, unknown> | null | undefined, max = 80): string {
  if (!params) {
    return '';
  }
  const text = Object.entries(params)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Metrics for a list row: `{"accuracy": 0.93456, "n": 120}` → `accuracy 0.9346, n 120`. */
export function formatMetrics(metrics: Record<string, unknown> | null | undefined, max = 80): string {
  if (!metrics) {
    return '';
  }
  const text = Object.entries(metrics)
    .map(([k, v]) => {
      const value =
        typeof v === 'number' && Number.isFinite(v) && !Number.isInteger(v) ? String(Number(v.toPrecision(4))) : typeof v === 'string' ? v : JSON.stringify(v);
      return `${k} ${value}`;
    })
    .join(', ');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Why a run failed, in one line: `ValueError: boom (cell 4)` (the API's cell index is 0-based). */
export function formatRunError(error: NonNullable<Run['error']>): string {
  const what = [error.type, error.message].filter(Boolean).join(': ');
  return typeof error.cell === 'number' ? `${what} (cell ${error.cell + 1})` : what;
}

/** Seconds from `iso` until `now` (how long a running run has run; the API gives `duration` once it ended). */
export function secondsSince(iso: string | null | undefined, now: number = Date.now()): number | null {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? null : Math.max(0, (now - t) / 1000);
}

// --- serving statistics (sections/serving.tsx) ---------------------------------------------------------

/** The part of `FunctionStats` / `ModelReport.stats` this line shows. */
export interface IServingSummary {
  requests: number;
  errors: number;
  processes: number;
  latency_ms?: { p50?: number | string; p99?: number | string };
  /** For a model: the drift in words (`2 of 3 columns drifted`), or undefined. */
  drift?: string;
}

function formatMs(value: number | string | undefined): string {
  if (value === undefined) {
    return '–';
  }
  return typeof value === 'number' ? `${value < 10 ? value.toFixed(1) : Math.round(value)} ms` : `${value} ms`;
}

/** `12 requests · 1 error · p50 3.1 ms · p99 9.0 ms · 2 servers`, or that nothing was served yet. */
export function formatServing(s: IServingSummary): string {
  if (!s.requests) {
    return 'No requests served yet.';
  }
  const parts = [
    `${s.requests} request${s.requests === 1 ? '' : 's'}`,
    `${s.errors} error${s.errors === 1 ? '' : 's'}`,
    `p50 ${formatMs(s.latency_ms?.p50)}`,
    `p99 ${formatMs(s.latency_ms?.p99)}`,
    `${s.processes} server${s.processes === 1 ? '' : 's'}`
  ];
  return parts.join(' · ');
}

/** A model's report as the serving line shows it: the fleet's counts and latencies, and its drift in words. */
export function servingOfModel(report: ModelReport): IServingSummary {
  const stats = report.stats as Partial<IServingSummary>;
  const drift = report.drift as { columns?: Record<string, unknown>; drifted?: string[] };
  const columns = Object.keys(drift.columns ?? {}).length;
  return {
    requests: Number(stats.requests ?? 0),
    errors: Number(stats.errors ?? 0),
    processes: Number(stats.processes ?? 0),
    latency_ms: stats.latency_ms,
    drift: columns ? `drift in ${drift.drifted?.length ?? 0} of ${columns} columns` : undefined
  };
}
