"""Faster first answers: a deploy loads its version on the workers before it returns, a server starts its
replicas (and loads the newest versions) at start-up, and workers import ``worker_preload_modules``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import nbdeploy as nbd
from nbdeploy.runtime import warmup
from tests.conftest import start_nbdeploy_server


def loaded_shas() -> list[str]:
    """On a worker: the digests in its artifact cache."""
    from nbdeploy.runtime.cache import _process_cache

    return [key[1] for key in _process_cache()._entries]


def modules_imported(names: list[str]) -> bool:
    return all(name in sys.modules for name in names)


def eventually(check, seconds: float = 60.0) -> bool:
    """Poll ``check()`` until it is true (a deadline, not a timed assertion: the machine may be slow)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


@pytest.fixture
def app(nbd_env):
    a = nbd.default()
    yield a
    a.close()


def halve(x: float) -> float:
    return x / 2


def test_deploying_loads_the_function_and_the_model_on_every_worker_before_it_returns(app, dask_cluster) -> None:
    function = app.functions.deploy(halve)
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
    model = app.models.put(LogisticRegression().fit(X, [0, 1, 0, 1]), "warm-lr", sample_input=X)

    client = app.runtime.client()
    per_worker = client.run(loaded_shas)
    assert len(per_worker) == 2
    assert all(function.version.sha256 in shas for shas in per_worker.values())
    # a deploy waits for the workers only so long (PRELOAD_SECONDS); on a busy machine importing scikit-learn may
    # take longer, and the load goes on there: without any call, every worker ends up holding the model
    assert eventually(lambda: all(model.sha256 in shas for shas in client.run(loaded_shas).values()))
    assert all(client.run(modules_imported, ["nbdeploy.datasets.lineage_log", "nbdeploy.models.signature"]).values())


def test_a_deploy_without_a_running_cluster_still_succeeds_and_starts_none(nbd_home, tmp_path: Path) -> None:
    with nbd.Nbdeploy(cluster="local") as a:
        assert warmup.preload_version(a, "function", "0" * 64) == 0
        deployed = a.functions.deploy(halve)
        assert deployed.version.version == 1
        assert not (nbd_home / "runtime" / "cluster.json").exists()


def scaled(x: float) -> float:
    import numpy  # a package import: the deploy checks the workers can import it, when a cluster runs

    return float(numpy.float64(x) * 2)


def test_checking_the_workers_imports_at_deploy_never_starts_a_cluster(nbd_home) -> None:
    with nbd.Nbdeploy(cluster="local") as a:
        deployed = a.functions.deploy(scaled)
        assert deployed.version.version == 1 and not deployed.warnings
        assert not (nbd_home / "runtime" / "cluster.json").exists()
        assert a.functions._check_workers(["numpy"]) == []  # no cluster: nothing to check, and none started
        assert not (nbd_home / "runtime" / "cluster.json").exists()


def test_a_fresh_server_starts_its_replicas_and_preloads_modules_on_the_workers(
    nbd_env, tmp_path: Path, monkeypatch, app
) -> None:
    app.functions.deploy(halve)
    monkeypatch.setenv("NBDEPLOY_WORKER_PRELOAD_MODULES", "xml.dom.minidom,no_such_module_here")
    client = app.runtime.client()
    for server in start_nbdeploy_server(tmp_path, "--no-scheduler"):
        # the plugin reaches every worker (a module that does not exist is skipped, never fatal)
        assert eventually(lambda: all(client.run(modules_imported, ["xml.dom.minidom"]).values()))
        # the server's replicas are actors on both workers before any request
        assert eventually(lambda: sum(len(a) for a in client.run(serving_actors).values()) >= 2)
        status, body = server.request("POST", "/nbdeploy/api/functions/halve/invoke", {"x": 3})
        assert status == 200 and body["result"] == 1.5


def serving_actors(dask_worker) -> list[str]:
    """On a worker: the nbdeploy serving actors it hosts."""
    return [str(k) for k in dask_worker.state.actors if "FunctionActor" in str(k) or "ModelActor" in str(k)]


def test_the_preload_entry_point_imports_the_setting_modules(monkeypatch) -> None:
    from nbdeploy.runtime import preload

    monkeypatch.setenv("NBDEPLOY_WORKER_PRELOAD_MODULES", "json.tool,not_a_module_at_all")
    preload.dask_setup(None)  # what `dask worker --preload nbdeploy.runtime.preload` calls
    assert "json.tool" in sys.modules
    assert preload.import_modules(["not_a_module_at_all"]).keys() == {"not_a_module_at_all"}
