"""Dask resources reach tasks: jobs, served functions and models that ask for ``{"GPU": 1}`` run only on workers
that offer it, and fail with a clear error on a cluster where none does (never wait for ever).

The GPU is a resource the test's workers declare: the placement logic is the same as on a dask-cuda cluster,
whose workers declare ``GPU`` per device (tests/test_runtime_gpu.py runs that where a GPU exists)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbdeploy as nbd
import nbdeploy.config
from nbdeploy.exceptions import ClusterError, InvalidInputError
from tests.helpers import NOTEBOOKS, stop_process

GPU = {"GPU": 1}


def where() -> int:
    import os

    return os.getpid()


def double(x: int) -> int:
    return 2 * x


@pytest.fixture
def gpu_cluster(nbd_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A scheduler with two `dask worker` processes: one declares a GPU, the other does not (stopped by pid)."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=0, processes=True, dashboard_address="127.0.0.1:0")
    command = [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address, "--nthreads", "2"]
    command += ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0", "--no-nanny"]
    procs = [
        subprocess.Popen([*command, "--resources", "GPU=1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        cluster.wait_for_workers(2, timeout=120)
        monkeypatch.setenv("NBDEPLOY_CLUSTER", cluster.scheduler_address)
        nbdeploy.config.reset_settings()
        cluster.gpu_pid = procs[0].pid  # type: ignore[attr-defined]
        yield cluster
    finally:
        nbd.default().close()
        nbd.runtime.shutdown()
        for proc in procs:
            stop_process(proc)
        cluster.close(timeout=30)


def gpu_worker(cluster: object) -> str:
    info = cluster.scheduler_info["workers"]  # type: ignore[attr-defined]
    return next(address for address, w in info.items() if (w.get("resources") or {}).get("GPU"))


def test_a_job_that_asks_for_a_gpu_runs_on_the_worker_that_offers_one(gpu_cluster: object) -> None:
    app = nbd.default()
    app.jobs.put(NOTEBOOKS / "quick.ipynb", "quick")
    run = app.jobs.run("quick", {"x": 2}, resources=GPU).wait(180)
    assert run.status == "succeeded", run.info
    assert run.info.worker == gpu_worker(gpu_cluster) and run.info.resources == {"GPU": 1.0}


def test_a_function_deployed_for_gpus_is_served_only_where_they_are(gpu_cluster: object) -> None:
    app = nbd.default()
    app.functions.deploy(where, resources=GPU)
    assert {app.functions.invoke("where") for _ in range(6)} == {gpu_cluster.gpu_pid}  # type: ignore[attr-defined]
    app.functions.deploy(where, "anywhere")
    assert app.functions.invoke("anywhere")  # no request: any worker serves it


def test_asking_for_a_resource_no_worker_offers_is_a_clear_error_not_a_wait(nbd_env: Path) -> None:
    app = nbd.default()
    app.jobs.put(NOTEBOOKS / "quick.ipynb", "quick")
    run = app.jobs.run("quick", {"x": 2}, resources=GPU).wait(120)
    assert run.status == "failed" and "offers the resources" in (run.info.error_message or "")
    app.functions.deploy(double, "gpu-double", resources=GPU)
    with pytest.raises(ClusterError, match="offers the resources"):
        app.functions.invoke("gpu-double", x=1)
    with pytest.raises(InvalidInputError, match="resources"):
        app.functions.deploy(double, "bad", resources={"GPU": -1})
    assert app.store.versions("function", "bad") == []
    with pytest.raises(InvalidInputError):
        app.jobs.run("quick", resources={"": 1})
    app.close()
