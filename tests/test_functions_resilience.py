"""Serving survives what clusters do: a worker dies, a worker lacks a package."""

from __future__ import annotations

import os
import signal
import sys
import warnings
from pathlib import Path

import pytest

from nbdeploy.exceptions import ClusterError
from nbdeploy.functions import FunctionManager


def pid_of(worker_address: str, client) -> int:
    return client.run(os.getpid, workers=[worker_address])[worker_address]


def test_calls_keep_answering_when_a_serving_worker_is_killed(nbd_home: Path, monkeypatch) -> None:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        monkeypatch.setenv("NBDEPLOY_CLUSTER", cluster.scheduler_address)
        import nbdeploy.config

        nbdeploy.config.reset_settings()
        manager = FunctionManager()
        try:

            def add(a: int, b: int) -> int:
                return a + b

            manager.deploy(add)
            assert [manager.invoke("add", a=i, b=1) for i in range(4)] == [1, 2, 3, 4]
            pool = next(iter(manager._pools.values()))
            assert len(pool.replicas) == 2
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
    manager = FunctionManager()
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
