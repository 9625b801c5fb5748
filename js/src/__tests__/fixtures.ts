/* Records as the server sends them, typed by the generated OpenAPI types (a field the schema requires and a
 * fixture lacks is a compile error here). */

import type { FormField, ModelVersion, Run } from '../api';

export function runInfo(id: number, status: Run['status'], extra: Partial<Run> = {}): Run {
  return {
    id,
    job: 'report',
    job_version: 1,
    schedule_id: null,
    fire_time: null,
    trigger: 'manual',
    parameters: {},
    kernel: null,
    timeout: null,
    retries: 0,
    resources: null,
    attempt: 1,
    status,
    queued_at: '2025-01-01T10:00:00+00:00',
    not_before: '2025-01-01T10:00:00+00:00',
    started_at: null,
    finished_at: null,
    duration: null,
    worker: null,
    progress: { current_cell: null, cell_count: null },
    cancel_requested: false,
    error: null,
    has_output: status === 'succeeded',
    has_log: false,
    history: [],
    metrics: null,
    artifacts: null,
    warnings: [],
    ...extra
  };
}

export function field(name: string, type: FormField['type'], initial: string | boolean, extra: Partial<FormField> = {}): FormField {
  return { name, type, default: null, source: '', initial, help: '', required: false, ...extra };
}

export function modelVersion(n: number, extra: Partial<ModelVersion> = {}): ModelVersion {
  return {
    name: 'churn',
    version: n,
    flavor: 'sklearn',
    format: 'skops',
    created_at: `2025-01-0${n}T10:00:00+00:00`,
    sha256: `abc${n}`,
    size: 10851,
    signature: { type: 'dataframe', columns: [{ name: 'age', dtype: 'float64' }], shape: null, dtype: null },
    metrics: { accuracy: 0.9 + n / 100 },
    params: {},
    tags: {},
    libraries: { 'scikit-learn': '1.9.1' },
    aliases: [],
    owner: null,
    method: 'predict',
    serving: {},
    description: '',
    note: '',
    path: '/nbdeploy/api/models/churn/predict',
    ...extra
  };
}
