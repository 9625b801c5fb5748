"""Serving statistics of the whole fleet: two real `nbdeploy serve` processes on one catalog and store, and
``/stats`` of either (and ``nbd.models.stats`` anywhere) counts what both served."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import nbdeploy as nbd
from tests.conftest import ServerProcess
from tests.helpers import free_port, stop_process, wait_for_http

pytestmark = pytest.mark.timeout(600)  # a hang guard for servers started on a crowded machine
PATH = "/nbdeploy/api/models/fleet-lr"
START_SECONDS = 180  # a hang guard: on a shared 2-core machine a server's imports alone can take a minute


def request(server: ServerProcess, method: str, path: str, body: object = None) -> tuple[int, object]:
    """``server.request`` with a generous hang guard (a first call may start replicas on a crowded machine)."""
    return server.request(method, path, body, timeout=START_SECONDS)


@contextlib.contextmanager
def servers(
    tmp_path: Path, count: int, *extra: str, env: dict[str, str] | None = None
) -> Iterator[list[ServerProcess]]:
    """``count`` `nbdeploy serve` processes started side by side (one token, each its own log), stopped by pid."""
    token = "fleet-token-" + os.urandom(6).hex()
    environ = dict(os.environ, NBDEPLOY_TOKEN=token, **(env or {}))
    started: list[ServerProcess] = []
    try:
        for i in range(count):
            port, log = free_port(), tmp_path / f"serve-{i}.log"
            with open(log, "wb") as out:
                command = [sys.executable, "-m", "nbdeploy.cli", "serve", "--port", str(port), *extra]
                proc = subprocess.Popen(command, env=environ, stdout=out, stderr=subprocess.STDOUT)
            started.append(ServerProcess(f"http://127.0.0.1:{port}", token, proc, log))
        for server in started:
            wait_for_http(server.url + "/healthz", timeout=START_SECONDS, proc=server.proc)
        yield started
    finally:
        for server in started:
            stop_process(server.proc)


@pytest.fixture
def app(nbd_env, monkeypatch):
    monkeypatch.setenv("NBDEPLOY_MODEL_STATS_SECONDS", "0.2")
    nbd.config.reset_settings()
    a = nbd.default()
    yield a
    a.close()


def row(x: float) -> dict:
    return {"dataframe_split": {"columns": ["a", "b"], "data": [[x, 1 - x]]}}


def test_stats_from_either_server_count_the_requests_of_both(app, tmp_path: Path) -> None:
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.8], [0.9, 0.1]])
    import pandas as pd

    frame = pd.DataFrame(X, columns=["a", "b"])
    app.models.put(LogisticRegression().fit(frame, [0, 1, 0, 1]), "fleet-lr", sample_input=frame)
    with servers(tmp_path, 2, "--no-scheduler") as (a, b):
        for i in range(3):
            assert request(a, "POST", PATH + "/predict", row(i / 3))[0] == 200
        for i in range(4):
            assert request(b, "POST", PATH + "/predict", row(i / 4))[0] == 200
        assert request(b, "POST", PATH + "/predict", {"dataframe_split": {"columns": ["a"], "data": [[1.0]]}})[0] >= 400

        def fleet(server) -> dict:
            status, body = request(server, "GET", PATH + "/stats")
            assert status == 200
            return body["stats"]

        deadline = time.monotonic() + 60  # each server writes its statistics out every 0.2 s
        while time.monotonic() < deadline and not (fleet(a)["requests"] == 8 and fleet(b)["requests"] == 8):
            time.sleep(0.1)
        for server in (a, b):
            stats = fleet(server)
            assert stats["requests"] == 8 and stats["errors"] == 1 and stats["processes"] == 2
            assert sum(stats["histogram"]["counts"]) == 8
            assert stats["histogram"]["le_ms"][-1] == "+Inf"
            assert "p99_le" in stats["latency_ms"]
            assert stats["versions"]["1"]["requests"] == 8
    # a notebook sees the fleet too, samples (the drift reservoirs) of both servers included
    merged = app.models.stats("fleet-lr")
    assert merged["requests"] == 8 and merged["processes"] == 2
    assert len(merged["versions"]["1"]["sample"]) == 7
    drift = app.models.drift("fleet-lr")
    assert drift is not None
