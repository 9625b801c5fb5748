/** Jobs & schedules: each job with its schedules in words and their next fire time; run now, pause, delete. */

import { deleteIcon, pauseIcon, runIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { deleteJob, deleteSchedule, Job, listJobs, listSchedules, Schedule, setSchedulePaused } from '../api';
import { Empty, ErrorMessage, IconButton, TextButton } from '../components';
import { cronToWords } from '../cron';
import { confirmAndDelete, showActionError, showRunNow } from '../dialogs';
import { formatParameters, formatRelative, formatTimestamp } from '../format';
import { usePoll } from '../poll';
import { ISection, ISectionContext } from './types';

/** A job (its newest version) with the schedules that run it. */
interface IJobWithSchedules {
  job: Job;
  schedules: Schedule[];
}

/** Every job with its schedules (`GET /jobs` and `GET /schedules`). */
async function loadJobs(): Promise<IJobWithSchedules[]> {
  const [jobs, schedules] = await Promise.all([listJobs(), listSchedules()]);
  return jobs.map(job => ({ job, schedules: schedules.filter(s => s.job === job.name) }));
}

function ScheduleRow(props: { schedule: Schedule; onChanged: () => void }): JSX.Element {
  const s = props.schedule;
  const words = cronToWords(s.cron, s.timezone);
  const toggle = async () => {
    try {
      await setSchedulePaused(s.id, !s.paused);
    } catch (e) {
      await showActionError(`${s.paused ? 'resume' : 'pause'} the schedule`, e);
    }
    props.onChanged();
  };
  const remove = async () => {
    const consequence = `${s.job} will no longer run ${words}. Past runs are kept.`;
    if (await confirmAndDelete('this schedule', consequence, () => deleteSchedule(s.id), 'delete the schedule')) {
      props.onChanged();
    }
  };
  return (
    <li className={`jp-nbdeploy-schedule ${s.paused ? 'jp-mod-paused' : ''}`} data-schedule-id={s.id}>
      <div className="jp-nbdeploy-row">
        <span className="jp-nbdeploy-cron" title={`cron: ${s.cron} (${s.timezone})`}>
          {words}
        </span>
        <span className="jp-nbdeploy-spacer" />
        {s.paused ? (
          <IconButton icon={runIcon} title="Resume this schedule" onClick={() => void toggle()} />
        ) : (
          <IconButton icon={pauseIcon} title="Pause this schedule" onClick={() => void toggle()} />
        )}
        <IconButton icon={deleteIcon} title="Delete this schedule" onClick={() => void remove()} />
      </div>
      <div className="jp-nbdeploy-row jp-nbdeploy-muted">
        {s.paused ? (
          <span className="jp-nbdeploy-tag jp-nbdeploy-tag-paused">paused</span>
        ) : s.upcoming.length ? (
          <span title={`Next: ${s.upcoming.map(formatTimestamp).join(', ')}`}>next {formatRelative(s.upcoming[0])}</span>
        ) : null}
        {Object.keys(s.parameters).length ? <span className="jp-nbdeploy-params-summary">{formatParameters(s.parameters)}</span> : null}
      </div>
    </li>
  );
}

function JobRow(props: { context: ISectionContext; job: Job; schedules: Schedule[]; onChanged: () => void }): JSX.Element {
  const { job, schedules } = props;
  const runNow = async () => {
    const run = await showRunNow(job.name);
    if (run) {
      props.context.tracker.track(run);
      props.context.reveal('runs');
    }
  };
  const remove = async () => {
    const which = schedules.length ? ` and its ${schedules.length} schedule(s)` : '';
    const consequence = `Every version of ${job.name}${which} is deleted.`;
    if (await confirmAndDelete(`job ${job.name}`, consequence, () => deleteJob(job.name), `delete ${job.name}`)) {
      props.onChanged();
    }
  };
  return (
    <li className="jp-nbdeploy-item" data-name={job.name}>
      <div className="jp-nbdeploy-row">
        <span className="jp-nbdeploy-name">{job.name}</span>
        <span className="jp-nbdeploy-version">v{job.version}</span>
        <span className="jp-nbdeploy-muted" title={formatTimestamp(job.created_at)}>
          {formatRelative(job.created_at)}
        </span>
        <span className="jp-nbdeploy-spacer" />
        <TextButton label="Run now" accent onClick={() => void runNow()} />
        <IconButton icon={deleteIcon} title={`Delete ${job.name}`} onClick={() => void remove()} />
      </div>
      {schedules.length ? (
        <ul className="jp-nbdeploy-sublist">
          {schedules.map(s => (
            <ScheduleRow key={s.id} schedule={s} onChanged={props.onChanged} />
          ))}
        </ul>
      ) : (
        <div className="jp-nbdeploy-muted jp-nbdeploy-indent">No schedule.</div>
      )}
    </li>
  );
}

function JobsBody(props: { context: ISectionContext }): JSX.Element {
  const { data, error, loading, refresh } = usePoll(props.context, loadJobs);
  return (
    <div className="jp-nbdeploy-section-body">
      <ErrorMessage message={error} />
      {loading && !data ? <div className="jp-nbdeploy-loading">Loading jobs…</div> : null}
      {data && !data.length ? (
        <Empty>No jobs yet. Open a notebook and use "Schedule this notebook…" in its toolbar.</Empty>
      ) : null}
      <ul className="jp-nbdeploy-list">
        {(data ?? []).map(({ job, schedules }) => (
          <JobRow key={job.name} context={props.context} job={job} schedules={schedules} onChanged={refresh} />
        ))}
      </ul>
    </div>
  );
}

export const jobsSection: ISection = {
  id: 'jobs',
  title: 'Jobs & schedules',
  render: context => <JobsBody context={context} />
};
