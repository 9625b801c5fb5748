"""`nbdeploy models …` as a user runs it (subprocesses) against a real store and a real Dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbdeploy as nbd
from nbdeploy.models import ModelManager
from tests.test_functions_cli import cli


@pytest.fixture
def manager(nbd_env):
    m = nbd.default().models
    yield m
    m.close()


def fit(scale: float):
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    return LinearRegression().fit(frame, scale * (2 * frame.a + frame.b)), frame


def test_list_show_predict_alias_stats_batch_and_delete(manager: ModelManager, tmp_path: Path) -> None:
    model, frame = fit(1.0)
    manager.put(model, "lin", sample_input=frame, metrics={"r2": 1.0})
    manager.put(fit(10.0)[0], "lin", sample_input=frame)

    out = cli("models", "list")
    assert out.returncode == 0 and "lin" in out.stdout and "v2" in out.stdout and "sklearn" in out.stdout
    assert [m["version"] for m in json.loads(cli("models", "list", "--json").stdout)] == [2]
    shown = json.loads(cli("models", "show", "lin").stdout)
    assert [v["version"] for v in shown["versions"]] == [1, 2] and shown["versions"][0]["metrics"] == {"r2": 1.0}

    out = cli("models", "alias", "lin", "production", "1")
    assert out.returncode == 0 and "lin@production -> v1" in out.stdout, out.stderr
    out = cli("models", "predict", "lin", "--alias", "production", "--json", '{"inputs": [[1, 2]]}')
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["version"] == 1 and answer["predictions"] == pytest.approx([4.0])
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 1.0]}).to_csv(rows, index=False)
    answer = json.loads(cli("models", "predict", "lin", "--input", str(rows)).stdout)
    assert answer["version"] == 2 and answer["predictions"] == pytest.approx([20.0, 50.0])

    out = cli("models", "predict", "lin", "--json", '{"inputs": [[1, 2, 3]]}')
    assert out.returncode == 1 and "Traceback" not in out.stderr and "3" in out.stderr  # names the shape at fault
    out = cli("models", "predict", "lin")
    assert out.returncode == 1 and "--json PAYLOAD or --input FILE" in out.stderr
    out = cli("models", "predict", "lin", "--version", "1", "--alias", "production", "--json", "{}")
    assert out.returncode == 1 and "not both" in out.stderr

    stats = json.loads(cli("models", "stats", "lin").stdout)
    assert stats["name"] == "lin" and "drift" in stats and "latencies" not in stats["stats"]

    data = tmp_path / "features.parquet"
    pd.DataFrame({"a": np.arange(100.0), "b": np.zeros(100)}).to_parquet(data)
    out = cli("models", "predict-batch", "lin", str(data), "--output", str(tmp_path / "scores"), "--version", "1")
    assert out.returncode == 0, out.stderr
    scores = pd.read_parquet(tmp_path / "scores")
    np.testing.assert_allclose(np.sort(scores.iloc[:, 0].to_numpy()), 2 * np.arange(100.0), atol=1e-6)

    out = cli("models", "delete", "lin", "--version", "1", stdin="y\n")
    assert out.returncode == 0 and "deleted lin v1" in out.stdout
    assert cli("models", "predict", "lin", "--version", "1", "--json", '{"inputs": [[1, 2]]}').returncode == 1
    out = cli("models", "delete", "lin", "--yes")
    assert out.returncode == 0 and "deleted lin (1 version(s))" in out.stdout
    out = cli("models", "show", "lin")
    assert out.returncode == 1 and "no model named 'lin'" in out.stderr
