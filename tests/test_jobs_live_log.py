"""Following a run's log while it executes (real kernels, the shared two-worker cluster): ``run.log(follow=True)``,
``nbdeploy runs log ID --follow`` and ``GET /runs/{id}/log?follow=1`` receive every line in order, while the run
is still running, and end when it ends with the text the finished run keeps."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

import nbdeploy as nbd
from nbdeploy.jobs.dispatcher import stop_local_dispatchers
from nbdeploy.jobs.manager import JobManager

API = "/nbdeploy/api"
LINES = 40


def gated_notebook() -> dict:
    """Prints lines 0..LINES-1, waits until ``gate`` (a file) exists, then prints ``after the gate``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('gate = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(f"for i in range({LINES}):\n    print(f'line {{i}}', flush=True)"),
        nbformat.v4.new_code_cell(
            "import os, time\nwhile gate and not os.path.exists(gate):\n    time.sleep(0.05)\nprint('after the gate')"
        ),
    ]
    return dict(nb)


@pytest.fixture
def jobs(nbd_env: Path) -> Iterator[JobManager]:
    manager = nbd.default().jobs
    manager.put(gated_notebook(), "gated")
    yield manager
    stop_local_dispatchers()


def test_a_followed_log_streams_every_line_in_order_and_ends_with_the_run(jobs: JobManager, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    run = jobs.run("gated", {"gate": str(gate)})
    received: list[str] = []
    status_when_last_line_arrived = None
    for piece in run.log(follow=True):
        received.append(piece)
        if status_when_last_line_arrived is None and f"line {LINES - 1}\n" in "".join(received):
            status_when_last_line_arrived = nbd.runs.info(run.id).status
            gate.touch()  # only now may the run end: what we got so far was streamed live
    assert status_when_last_line_arrived == "running"
    text = "".join(received)
    assert run.info.status == "succeeded"
    assert text == run.log()  # the same text the finished run keeps
    lines = [line for line in text.splitlines() if line.startswith("line ")]
    assert lines == [f"line {i}" for i in range(LINES)]
    assert text.index(f"line {LINES - 1}") < text.index("after the gate")


def test_follow_from_the_cli_and_over_http(jobs: JobManager, tmp_path: Path, nbdeploy_server) -> None:
    gate = tmp_path / "gate"
    run = jobs.run("gated", {"gate": str(gate)})
    req = urllib.request.Request(
        f"{nbdeploy_server.url}{API}/runs/{run.id}/log?follow=1",
        headers={"Authorization": f"token {nbdeploy_server.token}"},
    )
    cli = subprocess.Popen(
        [sys.executable, "-m", "nbdeploy.cli", "runs", "log", str(run.id), "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            assert resp.headers["Content-Type"].startswith("text/plain")
            got = b""
            while f"line {LINES - 1}\n".encode() not in got:
                chunk = resp.read1(65536)
                assert chunk, "the stream ended before the run did"
                got += chunk
            assert nbd.runs.info(run.id).status == "running"
            gate.touch()
            got += resp.read()
        out, err = cli.communicate(timeout=300)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert got.decode() == run.log()
    assert cli.returncode == 0, err
    assert out == run.log()
    req = urllib.request.Request(f"{nbdeploy_server.url}{API}/runs/{run.id}/log?follow=1")
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(req, timeout=60)
    assert denied.value.code in (401, 403)
