/** Cluster: the Dask scheduler, its workers (cores, memory, GPUs), tasks running and the dashboard link. */

import { launchIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { getCluster } from '../api';
import { CopyButton, Empty, ErrorMessage } from '../components';
import { formatBytes } from '../format';
import { usePoll } from '../poll';
import { ISection, ISectionContext } from './types';

function ClusterBody(props: { context: ISectionContext }): JSX.Element {
  const { data, error, loading } = usePoll(props.context, getCluster);
  // `dashboard_url` goes through this server (authenticated); Dask's own link only when there is none
  const dashboard = data ? data.dashboard_url ?? data.dashboard_link : null;
  return (
    <div className="jp-nbdeploy-section-body">
      <ErrorMessage message={error} />
      {loading && !data ? <div className="jp-nbdeploy-loading">Connecting to the cluster…</div> : null}
      {data ? (
        <>
          <dl className="jp-nbdeploy-facts">
            <dt>Scheduler</dt>
            <dd>
              <span className="jp-nbdeploy-mono">{data.scheduler_address || 'none'}</span>
              {data.scheduler_address ? <CopyButton text={data.scheduler_address} title="Copy the scheduler address" /> : null}
              <span className="jp-nbdeploy-tag">{data.mode}</span>
            </dd>
            <dt>Workers</dt>
            <dd>
              {data.workers.length} workers · {data.total_threads} cores · {formatBytes(data.total_memory) || 'no memory limit'}
            </dd>
            <dt>Tasks</dt>
            <dd>{data.tasks_running} running</dd>
            {dashboard ? (
              <>
                <dt>Dashboard</dt>
                <dd>
                  <a className="jp-nbdeploy-link" href={dashboard} target="_blank" rel="noopener noreferrer">
                    Dask dashboard <launchIcon.react tag="span" elementSize="small" />
                  </a>
                </dd>
              </>
            ) : null}
          </dl>
          {data.workers.length ? (
            <table className="jp-nbdeploy-table">
              <thead>
                <tr>
                  <th>Worker</th>
                  <th>Cores</th>
                  <th>Memory</th>
                  <th>GPUs</th>
                  <th>Tasks</th>
                </tr>
              </thead>
              <tbody>
                {data.workers.map(w => (
                  <tr key={w.address} title={w.address}>
                    <td className="jp-nbdeploy-mono">{w.name}</td>
                    <td>{w.nthreads}</td>
                    <td>{formatBytes(w.memory_limit)}</td>
                    <td>{w.gpus}</td>
                    <td>{w.executing}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>No workers are connected.</Empty>
          )}
        </>
      ) : null}
    </div>
  );
}

export const clusterSection: ISection = {
  id: 'cluster',
  title: 'Cluster',
  render: context => <ClusterBody context={context} />
};
