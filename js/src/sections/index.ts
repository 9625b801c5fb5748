/**
 * The sidebar's sections, top to bottom. A new section (Models, …) is one file beside this one and
 * one entry here.
 */

import { clusterSection } from './cluster';
import { datasetsSection } from './datasets';
import { functionsSection } from './functions';
import { jobsSection } from './jobs';
import { modelsSection } from './models';
import { pipelinesSection } from '../pipelines/section';
import { runsSection } from './runs';
import { ISection } from './types';

export const SECTIONS: ISection[] = [functionsSection, modelsSection, datasetsSection, jobsSection, runsSection, pipelinesSection, clusterSection];

export type { ISection, ISectionContext } from './types';
