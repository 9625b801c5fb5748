"""Serving statistics of the whole fleet: two real `nbdeploy serve` processes on one catalog and store, and
``/stats`` of either (and ``nbd.models.stats`` anywhere) counts what both served."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import nbdeploy as nbd
from tests.conftest import start_nbdeploy_server

PATH = "/nbdeploy/api/models/fleet-lr"


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
    with contextlib.ExitStack() as stack:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        a = stack.enter_context(contextlib.contextmanager(start_nbdeploy_server)(tmp_path / "a", "--no-scheduler"))
        b = stack.enter_context(contextlib.contextmanager(start_nbdeploy_server)(tmp_path / "b", "--no-scheduler"))
        for i in range(3):
            assert a.request("POST", PATH + "/predict", row(i / 3))[0] == 200
        for i in range(4):
            assert b.request("POST", PATH + "/predict", row(i / 4))[0] == 200
        assert b.request("POST", PATH + "/predict", {"dataframe_split": {"columns": ["a"], "data": [[1.0]]}})[0] >= 400

        def fleet(server) -> dict:
            status, body = server.request("GET", PATH + "/stats")
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
