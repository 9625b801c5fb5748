"""Pipelines under stress: a schedule that fires a pipeline fires each tick once with two schedulers sharing the
catalog; a worker killed mid-pipeline leaves no node "running"; a cancelled run stops its running node and never
starts the rest."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

import nbdeploy as nbd
from nbdeploy.jobs.clock import FastClock
from nbdeploy.jobs.dispatcher import Dispatcher, stop_local_dispatchers
from nbdeploy.pipelines.driver import stop_local_drivers
from nbdeploy.pipelines.tables import PipelineRunRow
from tests.helpers import NOTEBOOKS, eventually, stop_process
from tests.test_pipelines_support import notebook, write_pipeline

TICKS = 4
WAITING = """
name: slow
nodes:
  quick: {notebook: quick.ipynb}
  wait:  {notebook: wait.ipynb, parameters: {pidfile: "PIDFILE", seconds: 600}}
  after: {notebook: quick.ipynb, after: [wait]}
"""


@pytest.fixture
def slow(nbd_home: Path, tmp_path: Path) -> Iterator[Path]:
    """A pipeline whose ``wait`` node waits (for 600 s, recording its kernel's and worker's pids) while ``quick``
    runs beside it; ``after`` follows ``wait``."""
    shutil.copy(NOTEBOOKS / "wait.ipynb", tmp_path / "wait.ipynb")
    notebook(tmp_path / "quick.ipynb", "x = 1", "y = x + 1")
    yield write_pipeline(tmp_path, WAITING.replace("PIDFILE", str(tmp_path / "pids")), "slow")
    stop_local_drivers()
    stop_local_dispatchers()


def test_a_pipeline_schedule_fires_each_tick_once_with_two_schedulers(slow: Path, tmp_path: Path) -> None:
    app = nbd.default()
    nbd.pipelines.put(slow)
    origin = datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC)
    clock = FastClock(origin, time.time() + 10.0, 60.0)
    schedule = nbd.pipelines.schedule("slow", "* * * * *", catchup="all", now=origin)
    assert (schedule.job, schedule.cron, schedule.target) == ("slow", "* * * * *", "pipeline")
    env = dict(os.environ, NBDEPLOY_CATALOG_URL=app.settings.catalog_url)
    command = [
        sys.executable,
        "-m",
        "nbdeploy.cli",
        "scheduler",
        "--no-dispatch",
        "--poll",
        "0.05",
        "--clock",
        clock.spec(),
    ]
    procs = []
    try:
        for n in range(2):
            with open(tmp_path / f"scheduler-{n}.log", "wb") as out:
                procs.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))

        def fired() -> list[datetime]:
            with app.store.catalog.session() as s:
                return list(
                    s.scalars(sa.select(PipelineRunRow.fire_time).where(PipelineRunRow.schedule_id == schedule.id))
                )

        eventually(lambda: len(fired()) >= TICKS, 120, f"{TICKS} ticks firing")
    finally:
        for proc in procs:
            stop_process(proc)
    times = sorted(fired())
    assert len(times) == len(set(times)), f"a tick fired twice: {times}"
    assert times == [origin + timedelta(seconds=30) + timedelta(minutes=i) for i in range(len(times))]
    with app.store.catalog.session() as s:
        rows = s.scalars(sa.select(PipelineRunRow).where(PipelineRunRow.schedule_id == schedule.id)).all()
        assert {(r.pipeline, r.status, r.trigger) for r in rows} == {("slow", "queued", "schedule")}
    logs = "".join((tmp_path / f"scheduler-{n}.log").read_text() for n in (0, 1))
    assert "Traceback" not in logs, logs[-3000:]
    with pytest.raises(nbd.ConflictError, match="delete them first"):
        nbd.pipelines.delete("slow")


def test_a_worker_killed_mid_pipeline_leaves_no_node_running(
    slow: Path, tmp_path: Path, one_worker_client: object
) -> None:
    import json

    dispatcher = Dispatcher(nbd.default().store, role="service", client=one_worker_client).start()
    try:
        run = nbd.pipelines.run(slow)
        pidfile = Path(f"{tmp_path / 'pids'}.1")
        eventually(pidfile.exists, 240, "the wait node's kernel starting")
        eventually(lambda: run.info.nodes["quick"].status == "succeeded", 240, "the quick node finishing")
        os.kill(json.loads(pidfile.read_text())["worker"], signal.SIGKILL)
        info = run.wait(240).info
        assert info.status == "failed"
        assert {n: s.status for n, s in info.nodes.items()} == {
            "quick": "succeeded",
            "wait": "failed",
            "after": "cancelled",
        }
        assert info.nodes["wait"].reason.startswith("RunLost: lost")
        assert info.nodes["after"].reason == "upstream 'wait' failed"
    finally:
        dispatcher.stop()


def test_cancelling_a_pipeline_run_stops_its_running_node_and_starts_no_other(
    slow: Path, nbd_env: Path, tmp_path: Path
) -> None:
    run = nbd.pipelines.run(slow)
    eventually(
        lambda: run.info.nodes["wait"].status == "running" and Path(f"{tmp_path / 'pids'}.1").exists(),
        240,
        "wait running",
    )
    run.cancel()
    info = run.wait(240).info
    assert info.status == "cancelled"
    assert info.nodes["wait"].status == "cancelled" and info.nodes["after"].status == "cancelled"
    assert nbd.runs.get(info.nodes["wait"].run).status == "cancelled"
