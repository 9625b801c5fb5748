"""`nbdeploy serve` on SIGTERM: it stops accepting, lets requests in flight finish for ``shutdown_grace`` seconds,
then closes the connections of those still stuck (a function call that does not return, a client following the log
of a run that never starts) and exits."""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbdeploy as nbd
from tests.conftest import ServerProcess, start_nbdeploy_server
from tests.helpers import NOTEBOOKS, eventually

GRACE = 5.0  # long enough for the short call below to finish on a loaded machine


def stuck(seconds: float, folder: str = "", name: str = "") -> float:
    """Says it started (``<folder>/<name>.started``), then sleeps ``seconds`` or until ``<folder>/<name>.release``
    exists (so the shared cluster's worker is freed)."""
    import os
    import time

    if folder:
        open(os.path.join(folder, name + ".started"), "w").close()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (folder and os.path.exists(os.path.join(folder, name + ".release"))):
        time.sleep(0.05)
    return seconds


@pytest.fixture
def app(nbd_env, monkeypatch):
    monkeypatch.setenv("NBDEPLOY_SHUTDOWN_GRACE", str(GRACE))
    nbd.config.reset_settings()
    a = nbd.default()
    yield a
    a.close()


@pytest.fixture
def server(app, tmp_path: Path) -> Iterator[ServerProcess]:
    yield from start_nbdeploy_server(tmp_path, "--no-scheduler")  # no dispatcher: a queued run stays queued


def test_sigterm_ends_the_server_within_the_grace_while_requests_are_stuck(app, server, tmp_path: Path) -> None:
    app.functions.deploy(stuck)
    app.jobs.put(NOTEBOOKS / "quick.ipynb", "quick")
    never_starts = app.jobs.run("quick", dispatch=False)
    assert server.request("POST", "/nbdeploy/api/functions/stuck/invoke", {"seconds": 0.0})[0] == 200
    answers: dict[str, object] = {}

    def call(what: str, path: str, body: dict | None) -> None:  # each caller would wait past the hang guard
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(server.url + path, data=data, method="POST" if data else "GET")
        req.add_header("Authorization", f"token {server.token}")
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                answers[what] = (resp.status, resp.read())
        except urllib.error.HTTPError as err:
            answers[what] = err.code
        except OSError as exc:  # the connection closed without a (whole) answer
            answers[what] = exc

    callers = [
        threading.Thread(target=call, args=a, daemon=True)
        for a in (
            ("stuck", "/nbdeploy/api/functions/stuck/invoke", {"seconds": 600, "folder": str(tmp_path), "name": "a"}),
            ("short", "/nbdeploy/api/functions/stuck/invoke", {"seconds": 600, "folder": str(tmp_path), "name": "b"}),
            ("follow", f"/nbdeploy/api/runs/{never_starts.id}/log?follow=1", None),
        )
    ]
    for caller in callers:
        caller.start()
    try:
        for name in ("a", "b"):
            eventually((tmp_path / f"{name}.started").exists, 60, "the calls to start on the workers")
        server.proc.terminate()
        (tmp_path / "b.release").touch()  # the short call ends now, within the grace: it is answered
        # a hang guard, not a timing assertion: without a bound the server waits for its stuck requests for ever
        server.proc.wait(timeout=GRACE + 60)
    except subprocess.TimeoutExpired:
        pytest.fail("nbdeploy serve did not exit on SIGTERM while requests were stuck")
    finally:
        (tmp_path / "a.release").touch()
        (tmp_path / "b.release").touch()
    for caller in callers:
        caller.join(30)
    assert set(answers) == {"stuck", "short", "follow"}, answers  # each caller got an answer or a closed connection
    assert isinstance(answers["short"], tuple) and answers["short"][0] == 200, answers  # finished in the grace
    assert not isinstance(answers["stuck"], tuple), answers  # cut off after the grace
    log = server.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    # it waited for the two stuck requests only: the answered ones (the short call, the first one) were done
    assert "closing 2 request(s) still in flight" in log, log[-3000:]
    assert app.runs.get(never_starts.id).status == "queued"
