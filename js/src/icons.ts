/** The nbdeploy icon: a notebook page with an arrow leaving it (deployed). */

import { LabIcon } from '@jupyterlab/ui-components';

const NBDEPLOY_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M5 2h9l5 5v6.2a6.5 6.5 0 0 0-2-.2V8h-4V4H7v16h6.3a6.5 6.5 0 0 0 1 2H5a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2z"/>
    <path d="M9 10h5v1.6H9zM9 13.4h3.4V15H9z"/>
    <path d="M18 14.5l4 4-4 4v-3h-4v-2h4z"/>
  </g>
</svg>`;

export const nbdeployIcon = new LabIcon({ name: 'nbdeploy:logo', svgstr: NBDEPLOY_SVG });
