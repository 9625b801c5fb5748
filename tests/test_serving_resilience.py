"""A dead or departing worker never delays calls that another replica can serve (real multi-process clusters)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

import nbdeploy as nbd
import nbdeploy.config
from nbdeploy.runtime import pool as pool_module
from tests.helpers import eventually


def add(a: int, b: int) -> int:
    return a + b


@pytest.fixture
def own_cluster(nbd_home: Path, monkeypatch: pytest.MonkeyPatch):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster:
        monkeypatch.setenv("NBDEPLOY_CLUSTER", cluster.scheduler_address)
        nbdeploy.config.reset_settings()
        try:
            yield cluster
        finally:
            nbdeploy.config.reset_settings()


def _pid(cluster, worker: str) -> int:
    from distributed import Client

    with Client(cluster.scheduler_address) as client:
        return client.run(os.getpid, workers=[worker])[worker]


async def _calls(manager, n: int, b: int) -> list[int]:
    answers = await asyncio.gather(*[manager.ainvoke("add", {"a": i, "b": b}) for i in range(n)])
    return [a.result for a in answers]


def test_a_dead_worker_the_scheduler_still_lists_never_delays_calls(own_cluster, monkeypatch) -> None:
    # a start on a worker that is gone would wait this long: any call that waited for it would hang the test
    monkeypatch.setattr(pool_module, "ACTOR_START_SECONDS", 3600.0)
    manager = nbd.default().functions
    try:
        manager.deploy(add)
        assert manager.invoke("add", a=1, b=1) == 2
        pool = next(iter(manager._pools.values()))
        eventually(lambda: len(pool.replicas) == 2, 60, "a replica on each worker")
        victim = pool.replicas[0].worker
        listed = pool._workers

        async def still_listing_the_victim() -> list[str]:  # the scheduler has not noticed the death yet
            return sorted({*await listed(), victim})

        pool._workers = still_listing_the_victim
        os.kill(_pid(own_cluster, victim), signal.SIGKILL)
        # calls made while the dead worker is still listed: the hang guard is far below the start-up wait
        answers = manager._run(asyncio.wait_for(_calls(manager, 200, 10), 120))
        assert answers == [i + 10 for i in range(200)]
        assert victim not in {r.worker for r in pool.replicas}
        assert victim in pool._starting  # a replica start on it is still waiting, in the background
        assert manager._run(asyncio.wait_for(_calls(manager, 20, 5), 120)) == [i + 5 for i in range(20)]
    finally:
        manager.close()


def test_a_worker_that_cannot_host_a_replica_is_skipped(own_cluster, monkeypatch) -> None:
    monkeypatch.setattr(pool_module, "ACTOR_START_SECONDS", 2.0)
    manager = nbd.default().functions
    try:
        manager.deploy(add)
        assert manager.invoke("add", a=1, b=2) == 3
        pool = next(iter(manager._pools.values()))
        eventually(lambda: len(pool.replicas) == 2, 60, "a replica on each worker")
        ghost = "tcp://127.0.0.1:9"  # listed, but no worker answers there
        listed = pool._workers

        async def with_a_ghost() -> list[str]:
            return sorted({*await listed(), ghost})

        pool._workers = with_a_ghost
        pool._refreshed = 0.0
        assert manager._run(_calls(manager, 50, 1)) == [i + 1 for i in range(50)]
        eventually(lambda: ghost in pool._skipped, 60, "the ghost worker skipped")
        assert len(pool.replicas) == 2 and ghost not in pool._starting
    finally:
        manager.close()
