"""The jobs, schedules and runs REST API: in a real Jupyter server (pytest-jupyter) whose background service
runs the job, and in a real ``nbdeploy serve`` process with its own scheduler and dispatcher."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse

from nbdeploy.jobs.dispatcher import stop_local_dispatchers
from tests.conftest import ServerProcess, start_nbdeploy_server
from tests.helpers import NOTEBOOKS

API = "/nbdeploy/api"


@pytest.fixture
def jp_server_config(nbd_env: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    background = getattr(request, "param", True)  # indirect parametrization: False starts no jobs service
    return {
        "ServerApp": {"jpserver_extensions": {"nbdeploy": True}},
        "NbdeployExtension": {"start_cluster": False, "background_services": background},
    }


def body(response: HTTPResponse) -> Any:
    return json.loads(response.body) if response.body else None


async def test_jobs_schedules_and_runs_over_the_jupyter_server(jp_fetch: Any, nbd_env: Path) -> None:
    async def call(method: str, *path: str, payload: Any = None, **params: str) -> HTTPResponse:
        kwargs: dict[str, Any] = {"method": method, "raise_error": False, "params": params}
        if payload is not None:
            kwargs["body"] = payload if isinstance(payload, str) else json.dumps(payload)
        elif method in ("POST", "PATCH"):
            kwargs["body"] = ""
        return await jp_fetch("nbdeploy", "api", *path, **kwargs)

    notebook = json.loads((NOTEBOOKS / "params.ipynb").read_text())
    created = await call("POST", "jobs", payload={"name": "params", "notebook": notebook})
    assert created.code == 201, created.body
    assert created.headers["Location"].endswith(f"{API}/jobs/params")
    assert body(created)["parameters"][0] == {
        "name": "n",
        "inferred_type_name": "int",
        "default": "3",
        "help": "",
        "type_source": "declared",
    }
    assert [j["name"] for j in body(await call("GET", "jobs"))["jobs"]] == ["params"]
    detail = body(await call("GET", "jobs", "params"))
    assert detail["latest"]["version"] == 1
    assert [p["name"] for p in detail["latest"]["parameters"]] == ["n", "scale", "label", "flag", "items"]

    started = await call("POST", "jobs", "params", "runs", payload={"parameters": {"n": 2, "label": "rest"}})
    assert started.code == 201, started.body
    run_id = body(started)["id"]
    assert started.headers["Location"].endswith(f"{API}/runs/{run_id}")
    deadline = time.monotonic() + 120
    while (run := body(await call("GET", "runs", str(run_id))))["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.1)
    assert run["status"] == "succeeded", run
    assert {m["key"] for m in run["metrics"]} == {"result", "loss"} and run["artifacts"][0]["name"] == "greeting.txt"
    listed = body(await call("GET", "runs", job="params", status="succeeded"))["runs"]
    assert [r["id"] for r in listed] == [run_id]
    assert body(await call("GET", "runs", status="failed"))["runs"] == []
    output = await call("GET", "runs", str(run_id), "output")
    assert output.headers["Content-Type"] == "application/x-ipynb+json"
    assert "result=3.0 label=rest" in output.body.decode()
    html = await call("GET", "runs", str(run_id), "output", format="html")
    assert html.headers["Content-Type"].startswith("text/html") and b"result=3.0" in html.body
    log = await call("GET", "runs", str(run_id), "log")
    assert log.headers["Content-Type"].startswith("text/plain") and b"to-stderr" in log.body
    cancel = await call("POST", "runs", str(run_id), "cancel")
    assert cancel.code == 202 and body(cancel)["status"] == "succeeded"

    added = await call(
        "POST", "schedules", payload={"job": "params", "cron": "*/15 * * * *", "timezone": "Europe/Berlin"}
    )
    assert added.code == 201, added.body
    schedule = body(added)
    assert added.headers["Location"].endswith(f"{API}/schedules/{schedule['id']}")
    assert len(schedule["upcoming"]) == 5
    paused = await call("PATCH", "schedules", str(schedule["id"]), payload={"paused": True})
    assert paused.code == 200 and body(paused)["paused"] is True
    assert [s["id"] for s in body(await call("GET", "schedules", job="params"))["schedules"]] == [schedule["id"]]
    in_use = await call("DELETE", "jobs", "params")
    assert in_use.code == 409 and "schedules rm" in body(in_use)["error"]["message"]
    deleted = await call("DELETE", "schedules", str(schedule["id"]))
    assert deleted.code == 204 and not deleted.body

    # errors: JSON, with the offending field
    bad = await call("POST", "jobs", "params", "runs", payload={"parameters": {"nope": 1}})
    assert bad.code == 400 and body(bad)["error"]["field"] == "parameters.nope"
    bad = await call("POST", "schedules", payload={"job": "params", "cron": "*/15 * * *"})
    assert bad.code == 400 and body(bad)["error"]["field"] == "cron"
    bad = await call("PATCH", "schedules", "999", payload={"now": "2020-01-01"})
    assert bad.code == 400 and body(bad)["error"]["field"] == "now"
    bad = await call("POST", "jobs", payload={"name": "x", "notebook": "/etc/passwd"})
    assert bad.code == 400 and body(bad)["error"]["field"] == "notebook"
    bad = await call("POST", "jobs", payload={"name": "../escape", "notebook": notebook})
    assert bad.code == 400 and body(bad)["error"]["field"] == "name"
    assert (await call("GET", "jobs", "ghost")).code == 404
    assert (await call("GET", "runs", "4242")).code == 404
    assert (await call("GET", "runs", "4242", "log")).code == 404
    assert (await call("DELETE", "schedules", "4242")).code == 404
    assert (await call("GET", "runs", str(run_id), "output", format="pdf")).code == 400
    assert (await call("DELETE", "jobs", "params")).code == 204
    assert (await call("GET", "jobs", "params")).code == 404
    assert body(await call("GET", "runs", str(run_id)))["status"] == "succeeded"  # the history stays
    unauthenticated = await jp_fetch("nbdeploy", "api", "runs", headers={"Authorization": ""}, raise_error=False)
    assert unauthenticated.code == 403
    stop_local_dispatchers()


@pytest.mark.parametrize("jp_server_config", [False], indirect=True)
async def test_a_run_posted_before_the_jobs_service_started_survives_its_start(
    jp_fetch: Any, jp_serverapp: Any, nbd_env: Path, tmp_path: Path
) -> None:
    """A server answers requests while its start-up (the embedded cluster, then the jobs service) still runs: a
    run posted then goes to an ephemeral dispatcher, which the service must let finish, not stop ("lost")."""
    from nbdeploy.jobs import service
    from tests.helpers import pid_alive

    async def call(method: str, *path: str, payload: Any = None) -> Any:
        kwargs = {"body": json.dumps(payload)} if method == "POST" else {}
        return body(await jp_fetch("nbdeploy", "api", *path, method=method, **kwargs))

    notebook = json.loads((NOTEBOOKS / "wait.ipynb").read_text())
    await call("POST", "jobs", payload={"name": "wait", "notebook": notebook})
    gate, pidfile = tmp_path / "gate", tmp_path / "pids"
    parameters = {"gate": str(gate), "pidfile": str(pidfile), "seconds": 60}
    run_id = (await call("POST", "jobs", "wait", "runs", payload={"parameters": parameters}))["id"]
    deadline = time.monotonic() + 60
    while not Path(f"{pidfile}.1").exists():  # the kernel runs the notebook
        assert time.monotonic() < deadline, await call("GET", "runs", str(run_id))
        await asyncio.sleep(0.05)
    kernel = json.loads(Path(f"{pidfile}.1").read_text())["kernel"]

    stop = await service.start(jp_serverapp.web_app.settings["nbdeploy"])  # what the server does once started
    try:
        await asyncio.sleep(1.0)  # the watchdog would have killed the kernel by now
        run = await call("GET", "runs", str(run_id))
        assert run["status"] == "running" and pid_alive(kernel), run
        gate.touch()
        while (run := await call("GET", "runs", str(run_id)))["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, run
            await asyncio.sleep(0.1)
        assert run["status"] == "succeeded" and run["attempt"] == 1, run
    finally:
        await stop()
        stop_local_dispatchers()


@pytest.fixture
def serve_with_scheduler(nbd_env: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    """``nbdeploy serve`` with its scheduler and dispatcher, on a free loopback port; stopped by pid."""
    yield from start_nbdeploy_server(tmp_path)


def test_a_job_runs_through_the_standalone_server(serve_with_scheduler: ServerProcess) -> None:
    req = serve_with_scheduler.request
    notebook = json.loads((NOTEBOOKS / "fail.ipynb").read_text())
    status, job = req("POST", f"{API}/jobs", {"name": "fail", "notebook": notebook})
    assert status == 201, job
    status, run = req("POST", f"{API}/jobs/fail/runs", {"parameters": {"fail_until_attempt": 0}})
    assert status == 201, run
    deadline = time.monotonic() + 120
    while run["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, run
        time.sleep(0.1)
        status, run = req("GET", f"{API}/runs/{run['id']}")
    assert run["status"] == "succeeded" and run["worker"].startswith("tcp://"), run
    status, text = req("GET", f"{API}/runs/{run['id']}/log")
    assert status == 200 and "finished" in text
    status, failed = req("POST", f"{API}/jobs/fail/runs", {"timeout": "soon"})
    assert status == 400 and failed["error"]["field"] == "timeout"
    status, _ = req("GET", f"{API}/runs", token=None)
    assert status == 401
