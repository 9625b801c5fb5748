/**
 * The form of a stored job's parameters, for "Run now" from the jobs list.
 *
 * TODO(server): `GET /jobs/{name}` (`JobInfo` / `Job`) gives the parameters papermill read but not their form
 * fields, as `NotebookInfo.form` does (`forms.parameter_fields`). Until it carries `form`, the lab asks
 * `POST /notebooks/inspect` about a notebook holding only the job's parameters cell, written back from those
 * parameters (`name: type = default  # help`), so that the server still decides every field.
 */

import { FormField, inspectNotebook, JobInfo, JobParameter } from './api';

/** A notebook whose one cell, tagged `parameters`, declares `parameters` as papermill read them. */
export function parametersNotebook(parameters: JobParameter[]): Record<string, unknown> {
  const lines = parameters.map(p => {
    const annotation = p.inferred_type_name && p.inferred_type_name !== 'None' ? `: ${p.inferred_type_name}` : '';
    return `${p.name}${annotation} = ${p.default}${p.help ? `  # ${p.help}` : ''}`;
  });
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
    cells: [{ cell_type: 'code', source: lines.join('\n'), metadata: { tags: ['parameters'] }, outputs: [], execution_count: null }]
  };
}

/** The form fields of the newest version of `job` (none when it has no parameters). */
export async function jobForm(job: JobInfo): Promise<FormField[]> {
  const parameters = job.latest.parameters;
  if (!parameters.length) {
    return [];
  }
  return (await inspectNotebook({ notebook: parametersNotebook(parameters), path: null })).form;
}
