"""The runtime layer: every execution in nbdeploy is a Dask task, and this gives each process its cluster.

``client()`` / ``await async_client()`` return the process's cached Dask client for the ``cluster`` setting
(``local``, ``auto``, ``cuda``, a scheduler address or ``module:Class``; see :mod:`.modes`); ``status()``
describes the cluster; ``ensure_cluster()`` and ``shutdown()`` let a server own the embedded cluster that
kernels, the CLI and other servers share through ``<home>/runtime/cluster.json``; ``load_artifact()`` is the
worker-side cache every function, model and job loads its code through; ``run()`` / ``run_map()`` run tasks
with nbdeploy's errors. Importing this package is cheap: Dask is imported on first use.
"""

from __future__ import annotations

from .cache import ArtifactCache, cache_stats, clear_cache, load_artifact
from .cluster import async_client, client, ensure_cluster, ensure_cluster_async, shutdown, shutdown_async
from .control import scale_cluster, scale_cluster_async, start_cluster, status, status_async, stop_cluster
from .modes import ClusterSpec, gpus_visible, parse_cluster_setting, register_cluster_class
from .tasks import check_resources, cluster_errors, gpu_resources, result, result_async, run, run_async, run_map, submit

__all__ = [
    "ArtifactCache",
    "ClusterSpec",
    "async_client",
    "cache_stats",
    "check_resources",
    "clear_cache",
    "client",
    "cluster_errors",
    "ensure_cluster",
    "ensure_cluster_async",
    "gpu_resources",
    "gpus_visible",
    "load_artifact",
    "parse_cluster_setting",
    "register_cluster_class",
    "result",
    "result_async",
    "run",
    "run_async",
    "run_map",
    "scale_cluster",
    "scale_cluster_async",
    "shutdown",
    "shutdown_async",
    "start_cluster",
    "status",
    "status_async",
    "stop_cluster",
    "submit",
]
