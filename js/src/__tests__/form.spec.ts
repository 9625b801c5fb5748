/* form.tsx renders the server's form fields as they are: one input per field starting from `field.initial`,
 * and the server's per-field errors under their fields. Rendered to HTML with react-dom/server. */

jest.mock('@jupyterlab/services', () => ({ ServerConnection: {} }));
jest.mock('@jupyterlab/coreutils', () => ({ URLExt: {} }));

import React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';

import { NbdeployAPIError } from '../api';
import { fieldErrorsOf, initialInputs, ParameterFields } from '../form';
import { field } from './fixtures';

const FIELDS = [
  field('n_rows', 'int', '1000', { default: 1000, source: '1000', help: 'how many rows to sample' }),
  field('verbose', 'bool', false, { default: false, source: 'False' }),
  field('tags', 'list', '["a", "b"]', { default: ['a', 'b'], source: '["a", "b"]' }),
  field('day', 'expr', '', { default: 'date.today()', source: 'date.today()' })
];

function render(errors: Record<string, string> = {}): string {
  const inputs = initialInputs(FIELDS);
  return renderToStaticMarkup(React.createElement(ParameterFields, { fields: FIELDS, inputs, errors, onChange: () => undefined, idPrefix: 'p' }));
}

it('starts each input from the initial text or checkbox state the server gave', () => {
  expect(initialInputs(FIELDS)).toEqual({ n_rows: '1000', verbose: false, tags: '["a", "b"]', day: '' });
  const html = render();
  expect(html).toContain('<input id="p-n_rows" name="n_rows" type="text" class="jp-mod-styled" inputMode="numeric" placeholder="" value="1000"/>');
  expect(html).toMatch(/<input id="p-verbose" name="verbose" type="checkbox"\/>/);
  expect(html).toContain('<textarea id="p-tags" name="tags" class="jp-mod-styled jp-nbdeploy-json" rows="2">[&quot;a&quot;, &quot;b&quot;]</textarea>');
  expect(html).toContain('placeholder="date.today()"');
  expect(html).toContain('Left empty, the notebook computes date.today().');
  expect(html).toContain('how many rows to sample');
});

it('shows each error under its field', () => {
  const html = render({ n_rows: "expected a whole number, not 'ten'" });
  expect(html).toContain('class="jp-nbdeploy-param jp-nbdeploy-mod-invalid"');
  expect(html).toContain('<div class="jp-nbdeploy-field-error">expected a whole number, not &#x27;ten&#x27;</div>');
});

it('says when there are no fields', () => {
  const html = renderToStaticMarkup(
    React.createElement(ParameterFields, { fields: [], inputs: {}, errors: {}, onChange: () => undefined, idPrefix: 'p' })
  );
  expect(html).toBe('<div class="jp-nbdeploy-empty">No parameters.</div>');
});

it("puts a 422's errors and a 400's field under the fields", () => {
  const e422 = new NbdeployAPIError('SignatureError: some parameters do not fit', 422, 'SignatureError', undefined, { n_rows: 'bad' });
  expect(fieldErrorsOf(e422)).toEqual({ n_rows: 'bad' });
  const e400 = new NbdeployAPIError('InvalidInputError: bad cron', 400, 'InvalidInputError', 'cron');
  expect(fieldErrorsOf(e400, { cron: 'schedule' })).toEqual({ schedule: 'InvalidInputError: bad cron' });
  const param = new NbdeployAPIError("InvalidInputError: parameter 'n' must be a int", 400, 'InvalidInputError', 'parameters.n');
  expect(fieldErrorsOf(param)).toEqual({ n: "InvalidInputError: parameter 'n' must be a int" });
  expect(fieldErrorsOf(new Error('network'))).toEqual({});
});
