/**
 * Form fields as the server describes them (`FormField`: a notebook's parameters, a function's arguments, a
 * model's input columns): the lab renders one input per field, starting from `field.initial`, and sends
 * back what was typed. Types, defaults and coercion are the server's (`POST /forms/coerce`,
 * `POST /notebooks/schedule`).
 *
 * Only React here (no JupyterLab imports), so that Jest renders it directly.
 */

import React from 'react';

import { FormField, NbdeployAPIError } from './api';

/** What was typed into each field: text, or a checkbox's state. */
export type FormInputValues = Record<string, string | boolean>;

/** The text (or checkbox state) each field starts with, as the server decided it. */
export function initialInputs(fields: FormField[]): FormInputValues {
  return Object.fromEntries(fields.map(f => [f.name, f.initial]));
}

/**
 * The per-field messages of an API error: `error.fields` (a 422, one per bad input) and `error.field` (a
 * 400 naming one field; `parameters.x` is field `x`). `rename` maps the server's field names onto the
 * form's (e.g. `cron` to the schedule's fields).
 */
export function fieldErrorsOf(error: unknown, rename: Record<string, string> = {}): Record<string, string> {
  if (!(error instanceof NbdeployAPIError)) {
    return {};
  }
  const key = (field: string) => rename[field] ?? field.replace(/^parameters\./, '');
  const errors: Record<string, string> = {};
  for (const [field, message] of Object.entries(error.fields ?? {})) {
    errors[key(field)] = message;
  }
  if (error.field) {
    errors[key(error.field)] = error.message;
  }
  return errors;
}

function typeLabel(field: FormField): string {
  return field.type === 'expr' ? 'expression' : field.type === 'none' ? 'any' : field.type;
}

function FieldInput(props: {
  field: FormField;
  id: string;
  value: string | boolean | undefined;
  onChange: (value: string | boolean) => void;
}): JSX.Element {
  const { field: f, id, value } = props;
  if (f.type === 'bool') {
    return <input id={id} name={f.name} type="checkbox" checked={value === true} onChange={e => props.onChange(e.target.checked)} />;
  }
  if (f.type === 'list' || f.type === 'dict') {
    return (
      <textarea
        id={id}
        name={f.name}
        className="jp-mod-styled jp-nbdeploy-json"
        rows={2}
        value={String(value ?? '')}
        onChange={e => props.onChange(e.target.value)}
      />
    );
  }
  return (
    <input
      id={id}
      name={f.name}
      type="text"
      className="jp-mod-styled"
      inputMode={f.type === 'int' ? 'numeric' : f.type === 'float' ? 'decimal' : undefined}
      placeholder={f.type === 'expr' ? f.source : f.type === 'none' ? 'None' : f.required ? 'required' : ''}
      value={String(value ?? '')}
      onChange={e => props.onChange(e.target.value)}
    />
  );
}

/** One typed input per field (a checkbox for bools, JSON text for lists and dicts), each error under its field. */
export function ParameterFields(props: {
  fields: FormField[];
  inputs: FormInputValues;
  errors: Record<string, string>;
  onChange: (name: string, value: string | boolean) => void;
  idPrefix: string;
}): JSX.Element {
  if (!props.fields.length) {
    return <div className="jp-nbdeploy-empty">No parameters.</div>;
  }
  return (
    <div className="jp-nbdeploy-params">
      {props.fields.map(f => {
        const id = `${props.idPrefix}-${f.name}`;
        const error = props.errors[f.name];
        return (
          <div key={f.name} className={`jp-nbdeploy-param ${error ? 'jp-nbdeploy-mod-invalid' : ''}`}>
            <label htmlFor={id}>
              <span className="jp-nbdeploy-param-name">{f.name}</span>
              <span className="jp-nbdeploy-param-type">{typeLabel(f)}</span>
              {f.required ? <span className="jp-nbdeploy-param-required">required</span> : null}
            </label>
            <FieldInput field={f} id={id} value={props.inputs[f.name]} onChange={v => props.onChange(f.name, v)} />
            {f.help ? <div className="jp-nbdeploy-param-help">{f.help}</div> : null}
            {f.type === 'expr' ? <div className="jp-nbdeploy-param-help">Left empty, the notebook computes {f.source}.</div> : null}
            {error ? <div className="jp-nbdeploy-field-error">{error}</div> : null}
          </div>
        );
      })}
    </div>
  );
}
