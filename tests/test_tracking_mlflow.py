"""The stock ``mlflow`` client against real servers: ``nbdeploy serve`` (token auth, MLflow's
``MLFLOW_TRACKING_TOKEN``) and the Jupyter extension (Jupyter's auth). Runs, metrics, params, tags, batches,
autolog, artifacts through the store, MLflow's error codes, a logged model registered into nbdeploy's models
and served, and the tracked runs beside job runs."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import nbdeploy as nbd
from nbdeploy.app import reset_default
from tests.conftest import ServerProcess, start_nbdeploy_server
from tests.helpers import stop_process, wait_for_http

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402


@pytest.fixture
def server(nbd_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    """`nbdeploy serve` with the MLflow client pointed at it (tracking URI and token in the environment)."""
    for found in start_nbdeploy_server(tmp_path, "--no-scheduler"):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"{found.url}/nbdeploy/mlflow")
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", found.token)
        monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
        monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        # the client remembers the experiment of an earlier test's server: each test starts from the default one
        monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
        mlflow.set_tracking_uri(f"{found.url}/nbdeploy/mlflow")
        yield found
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
    reset_default()


def test_the_mlflow_client_logs_runs_that_nbdeploy_lists_beside_job_runs(server: ServerProcess) -> None:
    mlflow.set_experiment("churn")
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_params({"depth": 3, "loss": "log"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"auc": 0.91, "f1": 0.8})
        mlflow.set_tags({"team": "growth"})
    client = MlflowClient()
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "baseline"
    assert got.data.params == {"alpha": "0.5", "depth": "3", "loss": "log"}
    assert got.data.metrics == {"loss": 0.2, "auc": 0.91, "f1": 0.8}
    assert got.data.tags["team"] == "growth"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    found = mlflow.search_runs(experiment_names=["churn"], filter_string="params.alpha = '0.5'", output_format="list")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    assert (
        mlflow.search_runs(experiment_names=["churn"], filter_string="metrics.auc > 0.95", output_format="list") == []
    )

    app = nbd.default()  # the same catalog, from this process
    tracked = app.runs.tracked()
    assert [(r.run_id, r.experiment, r.metrics["auc"]) for r in tracked] == [(run.info.run_id, "churn", 0.91)]
    assert set(app.runs.list_all()) == {"jobs", "tracked"}
    status, body = server.request("GET", "/nbdeploy/api/tracking/runs")
    assert status == 200 and body["runs"][0]["params"]["depth"] == "3"


def test_mlflow_errors_come_back_with_mlflow_error_codes(server: ServerProcess) -> None:
    client = MlflowClient()
    with pytest.raises(MlflowException) as missing:
        client.get_run("0" * 32)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.create_experiment("twice")
    with pytest.raises(MlflowException) as twice:
        client.create_experiment("twice")
    assert twice.value.error_code == "RESOURCE_ALREADY_EXISTS"
    run = client.create_run(client.get_experiment_by_name("twice").experiment_id)
    client.log_param(run.info.run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as changed:
        client.log_param(run.info.run_id, "lr", "0.2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_experiment_by_name("never-made") is None  # a 404 the client turns into None
    status, body = server.request("POST", "/nbdeploy/mlflow/api/2.0/mlflow/runs/log-metric", {"run_id": "x" * 40})
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"


def test_the_token_is_required(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    status, body = server.request("POST", "/nbdeploy/mlflow/api/2.0/mlflow/experiments/search", {}, token=None)
    assert status == 401 and body["error_code"] == "UNAUTHENTICATED"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "wrong")
    with pytest.raises(MlflowException) as refused:
        MlflowClient().search_experiments()
    assert "UNAUTHENTICATED" in str(refused.value) or refused.value.error_code == "UNAUTHENTICATED"
    req = urllib.request.Request(
        f"{server.url}/nbdeploy/mlflow/api/2.0/mlflow/experiments/search",
        data=b"{}",
        method="POST",
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as resp:
        assert json.loads(resp.read())["experiments"][0]["name"] == "Default"


def test_artifacts_go_through_the_store(server: ServerProcess, tmp_path: Path) -> None:
    note = tmp_path / "notes.txt"
    note.write_text("hello from a run")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(note), artifact_path="docs")
        mlflow.log_dict({"a": 1}, "config/params.json")
    client = MlflowClient()
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["config", "docs"]
    assert [f.path for f in client.list_artifacts(run.info.run_id, "docs")] == ["docs/notes.txt"]
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="docs/notes.txt", dst_path=str(tmp_path / "out")
    )
    assert Path(local).read_text() == "hello from a run"
    app = nbd.default()
    import hashlib

    assert app.store.artifacts.has_blob(hashlib.sha256(b"hello from a run").hexdigest())


def test_autolog_and_a_registered_model_is_served_by_nbdeploy(server: ServerProcess) -> None:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    x = rng.random((60, 3))
    y = x @ [1.0, 2.0, 3.0]
    mlflow.sklearn.autolog(log_models=False)
    try:
        with mlflow.start_run(run_name="auto") as auto:
            model = LinearRegression().fit(x, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    logged = MlflowClient().get_run(auto.info.run_id)
    assert "training_r2_score" in logged.data.metrics and logged.data.params["fit_intercept"] == "True"
    with mlflow.start_run(run_name="model"):
        info = mlflow.sklearn.log_model(model, name="model")
    version = mlflow.register_model(info.model_uri, "Price Model")
    assert version.status == "READY" and version.tags["nbdeploy.model"] == "price-model"
    status, body = server.request("POST", "/nbdeploy/api/models/price-model/predict", {"inputs": x[:3].tolist()})
    assert status == 200, body
    assert np.allclose(body["predictions"], model.predict(x[:3]))
    assert isinstance(mlflow.sklearn.load_model(info.model_uri), LinearRegression)  # the files round-trip too


def test_the_compare_route_plots_runs_side_by_side(server: ServerProcess) -> None:
    ids = []
    for lr in (0.1, 0.01):
        with mlflow.start_run() as run:
            mlflow.log_param("lr", lr)
            for step in range(3):
                mlflow.log_metric("loss", lr * (3 - step), step=step)
        ids.append(run.info.run_id)
    status, body = server.request("GET", f"/nbdeploy/api/tracking/compare?runs={','.join(ids)}")
    assert status == 200 and body["metrics"] == ["loss"] and body["params"] == ["lr"]
    assert [len(body["history"][i]["loss"]) for i in ids] == [3, 3]
    req = urllib.request.Request(
        f"{server.url}/nbdeploy/api/tracking/compare.png?runs={','.join(ids)}",
        headers={"Authorization": f"token {server.token}"},
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["Content-Type"] == "image/png" and resp.read().startswith(b"\x89PNG")
    fig = nbd.default().runs.plot(ids)
    assert fig.axes[0].get_title() == "loss"


@pytest.fixture
def jupyter(nbd_env: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real `jupyter server` with the nbdeploy extension (no scheduler), token-protected; stopped by pid."""
    token = secrets.token_hex(16)
    runtime = tmp_path / "runtime"
    (tmp_path / "jupyter-config").mkdir(exist_ok=True)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime))
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "server",
        "--no-browser",
        "--allow-root",
        "--ServerApp.port=0",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={tmp_path}",
        "--ServerApp.jpserver_extensions={'nbdeploy': True}",
        "--NbdeployExtension.background_services=False",
    ]
    with (tmp_path / "jupyter.log").open("w") as log:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        import time

        deadline = time.monotonic() + 90
        url = None
        while url is None and time.monotonic() < deadline:
            for info in runtime.glob("jpserver-*.json"):
                try:
                    url = json.loads(info.read_text())["url"]
                except (ValueError, KeyError):
                    pass
            time.sleep(0.2)
        assert url, (tmp_path / "jupyter.log").read_text()[-2000:]
        wait_for_http(f"{url}api/status?token={token}", timeout=60, proc=proc)
        yield url.rstrip("/"), token
    finally:
        stop_process(proc, timeout=20)


def test_the_jupyter_extension_answers_mlflow_behind_jupyter_auth(
    jupyter: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, token = jupyter
    req = urllib.request.Request(f"{url}/nbdeploy/mlflow/api/2.0/mlflow/experiments/search", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req)
    assert refused.value.code == 403 and json.loads(refused.value.read())["error_code"] == "PERMISSION_DENIED"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    mlflow.set_tracking_uri(f"{url}/nbdeploy/mlflow")
    try:
        mlflow.set_experiment("in-jupyter")
        with mlflow.start_run() as run:
            mlflow.log_metric("acc", 0.7)
        assert MlflowClient().get_run(run.info.run_id).data.metrics == {"acc": 0.7}
    finally:
        mlflow.set_tracking_uri(None)
