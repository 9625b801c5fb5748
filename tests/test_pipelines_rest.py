"""The pipelines REST API on a real ``nbdeploy serve`` (its root folder: the test's folder) and the shared cluster:
store (422 naming the node, nothing stored), preview, read, run, follow a run, cancel, delete."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbdeploy.pipelines.driver import stop_local_drivers
from tests.conftest import ServerProcess, start_nbdeploy_server
from tests.test_pipelines_support import notebook

DAILY = """
name: daily
parameters: {day: "2026-11-30"}
nodes:
  extract: {notebook: nb/extract.ipynb}
  clean:   {notebook: nb/clean.ipynb, after: [extract], parameters: {limit: 10}}
"""
NODE_KEYS = {"name", "notebook", "job", "after", "parameters", "cache", "kernel", "timeout", "retries"}
STATE_KEYS = {"status", "reason", "run", "started_at", "ended_at", "progress"}


@pytest.fixture
def server(nbd_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    (tmp_path / "nb").mkdir()
    notebook(tmp_path / "nb" / "extract.ipynb", 'day = "x"', "import nbdeploy as nbd\nnbd.output('rows', 42)")
    notebook(tmp_path / "nb" / "clean.ipynb", "upstream = {}\nlimit = 1", "n = upstream['extract']['rows'] + limit")
    monkeypatch.chdir(tmp_path)  # the standalone server's root folder is its working folder
    yield from start_nbdeploy_server(tmp_path, "--no-scheduler")
    stop_local_drivers()


@pytest.mark.timeout(600)  # several pipeline runs of real kernels on a shared, loaded machine
def test_pipelines_rest_store_preview_run_follow_and_delete(server: ServerProcess) -> None:
    status, body = server.request(
        "POST",
        "/nbdeploy/api/pipelines",
        {"yaml": DAILY.replace("extract.ipynb}", "extract.ipynb, after: [clean]}"), "path": "x.pipeline.yaml"},
    )
    assert status == 422 and list(body["error"]["fields"]) == ["nodes.extract.after"], body
    assert "cycle: extract -> clean -> extract" in body["error"]["message"]
    status, body = server.request(
        "POST", "/nbdeploy/api/pipelines", {"yaml": DAILY, "path": "../elsewhere/x.pipeline.yaml"}
    )
    assert status == 422 and "outside the server's root folder" in body["error"]["message"]
    assert server.request("GET", "/nbdeploy/api/pipelines") == (200, {"pipelines": []})

    status, preview = server.request(
        "POST", "/nbdeploy/api/pipelines/preview", {"yaml": DAILY, "path": "daily.pipeline.yaml"}
    )
    assert status == 200 and preview["version"] is None and preview["created_at"] is None
    assert [n["name"] for n in preview["nodes"]] == ["extract", "clean"] and set(preview["nodes"][0]) == NODE_KEYS
    assert server.request("GET", "/nbdeploy/api/pipelines") == (200, {"pipelines": []})

    status, stored = server.request("POST", "/nbdeploy/api/pipelines", {"yaml": DAILY, "path": "daily.pipeline.yaml"})
    assert status == 201 and stored["version"] == 1 and stored["parameters"] == {"day": "2026-11-30"}
    assert server.request("GET", "/nbdeploy/api/pipelines/daily") == (200, stored)

    status, body = server.request("POST", "/nbdeploy/api/pipelines/daily/runs", {"only": ["ghost"]})
    assert status == 400 and "no node 'ghost'" in body["error"]["message"]
    status, run = server.request("POST", "/nbdeploy/api/pipelines/daily/runs", {"parameters": {"day": "2026-12-01"}})
    assert status == 201 and run["pipeline"] == "daily" and set(run["nodes"]) == {"extract", "clean"}
    deadline = time.monotonic() + 300
    while run["status"] not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.2)
        status, run = server.request("GET", f"/nbdeploy/api/pipeline-runs/{run['run']}")
    assert run["status"] == "succeeded", run
    assert all(set(n) == STATE_KEYS and n["status"] == "succeeded" and n["run"] for n in run["nodes"].values())
    status, runs = server.request("GET", "/nbdeploy/api/pipelines/daily/runs")
    assert status == 200 and [r["run"] for r in runs["runs"]] == [run["run"]]
    assert server.request("POST", f"/nbdeploy/api/pipeline-runs/{run['run']}/cancel") == (202, run)
    status, _ = server.request("GET", "/nbdeploy/api/pipeline-runs/999")
    assert status == 404

    assert server.request("DELETE", "/nbdeploy/api/pipelines/daily")[0] == 204
    assert server.request("GET", "/nbdeploy/api/pipelines/daily")[0] == 404
    assert server.request("GET", "/nbdeploy/api/pipelines", token=None)[0] == 401
