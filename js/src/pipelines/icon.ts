/** The pipeline icon: three boxes joined as a small DAG (file type, views, sidebar). */

import { LabIcon } from '@jupyterlab/ui-components';

const PIPELINE_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M9 2h6v5h-2v3.2l5.4 3.1-.9 1.6L12 12.2l-5.5 2.7-.9-1.6L11 10.2V7H9z"/>
    <path d="M2 15h7v7H2zM15 15h7v7h-7z"/>
  </g>
</svg>`;

export const pipelineIcon = new LabIcon({ name: 'nbdeploy:pipeline', svgstr: PIPELINE_SVG });
