"""Serving survives what clusters do: a worker dies, a worker lacks a package."""

from __future__ import annotations

import os
import signal
import sys
import warnings
from pathlib import Path

import pytest

import nbdeploy as nbd
from nbdeploy.exceptions import ClusterError
from tests.helpers import eventually


def pid_of(worker_address: str, client) -> int:
    return client.run(os.getpid, workers=[worker_address])[worker_address]


def test_calls_keep_answering_when_a_serving_worker_is_killed(nbd_home: Path, monkeypatch) -> None:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster:
        monkeypatch.setenv("NBDEPLOY_CLUSTER", cluster.scheduler_address)
        import nbdeploy.config

        nbdeploy.config.reset_settings()
        manager = nbd.default().functions
        try:

            def add(a: int, b: int) -> int:
                return a + b

            manager.deploy(add)
            assert [manager.invoke("add", a=i, b=1) for i in range(4)] == [1, 2, 3, 4]
            pool = next(iter(manager._pools.values()))
            eventually(lambda: len(pool.replicas) == 2, 60, "a replica on each worker")
            with Client(cluster.scheduler_address) as client:
                victim = pool.replicas[0].worker
                os.kill(pid_of(victim, client), signal.SIGKILL)
            # every call still gets its own right answer: retried on the surviving replica, then on the
            # replacement worker the nanny starts
            assert [manager.invoke("add", a=i, b=10) for i in range(20)] == [i + 10 for i in range(20)]
            assert victim not in {r.worker for r in pool.replicas}
        finally:
            manager.close()
            nbdeploy.config.reset_settings()


def test_deploy_warns_about_packages_workers_lack(nbd_env: Path, tmp_path: Path, monkeypatch) -> None:
    pkg = tmp_path / "onlyhere"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("def answer():\n    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the test process can import it; the workers cannot
    import onlyhere  # noqa: F401

    namespace: dict = {"__name__": "__main__"}
    cell = "import onlyhere\ndef ask() -> int:\n    return onlyhere.answer()\n"
    exec(cell, namespace)
    manager = nbd.default().functions
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            deployment = manager.deploy_cell(cell, namespace, "ask")
        assert any("cannot import onlyhere" in w for w in deployment.warnings)
        assert any("onlyhere" in str(w.message) for w in caught)
        with pytest.raises(ClusterError, match="could not load ask v1"):
            manager.invoke("ask")
    finally:
        manager.close()
        sys.modules.pop("onlyhere", None)


def spin() -> int:
    n = 0
    while True:  # a runaway loop: only an interrupt ends it
        n += 1


def nap(seconds: float) -> float:
    import time

    time.sleep(seconds)  # inside C: an interrupt waits until it returns
    return seconds


def square(x: int) -> int:
    return x * x


def _serving_counters(dask_worker) -> tuple[int, int, int]:
    """(calls interrupted, threads abandoned, calls running) over this worker's function replicas."""
    actors = [a for a in dask_worker.state.actors.values() if type(a).__name__ == "FunctionActor"]
    return (
        sum(a.interrupted for a in actors),
        sum(a.abandoned for a in actors),
        sum(len(a._running) for a in actors),
    )


def test_calls_past_their_timeout_are_stopped_and_never_starve_the_replica(nbd_env: Path, dask_cluster) -> None:
    import asyncio

    from distributed import Client

    from nbdeploy.exceptions import ClusterTimeoutError
    from tests.helpers import eventually

    manager = nbd.default().functions
    try:
        manager.deploy(spin, timeout=0.5)
        manager.deploy(nap, timeout=0.5)
        manager.deploy(square)
        assert manager.invoke("square", x=2) == 4

        async def runaway(name: str, n: int, **kwargs) -> list[BaseException]:
            calls = [manager.ainvoke(name, kwargs) for _ in range(n)]
            return await asyncio.gather(*calls, return_exceptions=True)

        # more runaway loops than the replicas have threads: each is stopped, and the replica serves on
        assert all(isinstance(e, ClusterTimeoutError) for e in manager._run(runaway("spin", 6)))
        assert manager.invoke("square", x=3) == 9
        with Client(dask_cluster.scheduler_address) as client:

            def totals() -> tuple[int, int, int]:
                found = client.run(_serving_counters).values()
                return tuple(sum(column) for column in zip(*found, strict=True))  # type: ignore[return-value]

            eventually(lambda: totals()[0] >= 6 and totals()[2] == 0, timeout=60, what="runaway calls stopped")
            # calls stuck inside C (a long sleep) cannot be interrupted: their threads are left behind and the
            # replica goes on with fresh ones
            assert all(isinstance(e, ClusterTimeoutError) for e in manager._run(runaway("nap", 4, seconds=6.0)))
            assert manager.invoke("square", x=4) == 16
            eventually(lambda: totals()[1] >= 1, timeout=60, what="a stuck thread abandoned")
            eventually(lambda: totals()[2] == 0, timeout=60, what="the naps ended")
    finally:
        manager.close()
