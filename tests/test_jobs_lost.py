"""Runs whose worker or dispatcher dies mid-run end retried or failed as lost, never stuck "running".

Real processes throughout: a Dask worker process killed with SIGKILL (its nanny restarts it), and an
``nbdeploy scheduler`` process killed with SIGKILL and started again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbdeploy as nbd
from nbdeploy.jobs.dispatcher import LOST_MESSAGE, Dispatcher, leader_alive, stop_local_dispatchers
from nbdeploy.jobs.manager import JobManager
from tests.helpers import NOTEBOOKS, eventually, pid_alive, stop_process


@pytest.fixture
def jobs(nbd_env: Path) -> Iterator[JobManager]:
    manager = nbd.default().jobs
    manager.put(NOTEBOOKS / "wait.ipynb", "wait")
    yield manager
    stop_local_dispatchers()


def pids_at_cell_2(run: object, pidfile: Path, attempt: int = 1) -> dict[str, int]:
    """Wait until ``run`` executes its waiting cell; return the kernel's and worker's process ids."""
    eventually(lambda: run.info.current_cell == 2 and run.info.attempt == attempt, what=f"attempt {attempt} at cell 2")
    return json.loads(Path(f"{pidfile}.{attempt}").read_text())


def test_worker_killed_mid_run_is_retried_and_without_retries_fails_as_lost(
    jobs: JobManager, one_worker_client: object, tmp_path: Path
) -> None:
    dispatcher = Dispatcher(jobs.store, role="service", client=one_worker_client, retry_backoff=0.2).start()
    try:
        pidfile = tmp_path / "retried"
        run = jobs.run("wait", {"pidfile": str(pidfile), "seconds": 600, "skip_after_attempt": 1}, retries=1)
        pids = pids_at_cell_2(run, pidfile)
        os.kill(pids["worker"], signal.SIGKILL)
        info = run.wait(180).info
        assert (info.status, info.attempt) == ("succeeded", 2), info
        assert info.history[0].status == "lost" and info.history[0].error_message.startswith(LOST_MESSAGE)
        eventually(lambda: not pid_alive(pids["kernel"]), 60, "the dead worker's kernel exiting")

        pidfile = tmp_path / "lost"
        run = jobs.run("wait", {"pidfile": str(pidfile), "seconds": 600})
        pids = pids_at_cell_2(run, pidfile)
        os.kill(pids["worker"], signal.SIGKILL)
        info = run.wait(180).info
        assert (info.status, info.attempt, info.error_type) == ("failed", 1, "RunLost"), info
        assert info.error_message.startswith(LOST_MESSAGE)
    finally:
        dispatcher.stop()


def start_scheduler(log: Path) -> subprocess.Popen:
    args = ["scheduler", "--no-schedule", "--lease-ttl", "2", "--retry-backoff", "0.2", "--poll", "0.2"]
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "nbdeploy.cli", *args], stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ)
        )


def test_dispatcher_killed_mid_run_and_restarted_ends_runs_retried_or_lost(jobs: JobManager, tmp_path: Path) -> None:
    log = tmp_path / "scheduler.log"
    first = start_scheduler(log)
    second = None
    try:
        eventually(lambda: leader_alive(jobs.store), what="the scheduler process leading")
        retried_pids, lost_pids = tmp_path / "retried", tmp_path / "lost"
        retried = nbd.jobs.run(
            "wait", {"pidfile": str(retried_pids), "seconds": 600, "skip_after_attempt": 1}, retries=1
        )
        lost = nbd.jobs.run("wait", {"pidfile": str(lost_pids), "seconds": 600})
        kernels = [pids_at_cell_2(retried, retried_pids)["kernel"], pids_at_cell_2(lost, lost_pids)["kernel"]]

        first.send_signal(signal.SIGKILL)
        first.wait(30)
        # the dead dispatcher's Dask client is gone, so the workers stop its kernels
        eventually(lambda: not any(pid_alive(k) for k in kernels), 60, "the orphaned kernels exiting")
        assert retried.status == lost.status == "running"  # nobody has reconciled them yet

        second = start_scheduler(log)
        retried_info, lost_info = retried.wait(180).info, lost.wait(180).info
        assert (retried_info.status, retried_info.attempt) == ("succeeded", 2), log.read_text()[-3000:]
        assert retried_info.history[0].status == "lost"
        assert retried_info.history[0].error_message == LOST_MESSAGE
        assert (lost_info.status, lost_info.error_message) == ("failed", LOST_MESSAGE)
        assert not nbd.runs.list(status="running")
    finally:
        for proc in (first, second):
            if proc is not None:
                stop_process(proc)
