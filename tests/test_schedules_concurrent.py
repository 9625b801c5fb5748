"""Two ``nbdeploy scheduler`` processes share one catalog (SQLite, PostgreSQL) and race over the same ticks:
every tick becomes exactly one run. A shared fast clock (one cron minute per real second) makes the ticks come
quickly; both processes wake up for each tick at the same moment, so they really do race."""

from __future__ import annotations

import os
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
from nbdeploy.jobs.tables import RunRow
from tests.helpers import NOTEBOOKS, eventually, stop_process

TICKS = 6


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, nbd_home: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{nbd_home / 'shared-catalog.db'}"
    else:
        yield request.getfixturevalue("postgres_db")


def test_two_scheduler_processes_fire_each_tick_exactly_once(catalog_url: str, nbd_home: Path, tmp_path: Path) -> None:
    app = nbd.Nbdeploy(store_url=f"file://{nbd_home / 'store'}", catalog_url=catalog_url)
    store = app.store
    app.jobs.put(NOTEBOOKS / "quick.ipynb", "quick")
    origin = datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC)
    # both processes start before the first tick, even on a loaded machine (they import for a few seconds)
    clock = FastClock(origin, time.time() + 10.0, 60.0)
    schedules = app.schedules
    every_minute = schedules.add("quick", "* * * * *", catchup="all", now=origin)
    latest = schedules.add("quick", "* * * * *", catchup="latest", now=origin)

    env = dict(os.environ, NBDEPLOY_CATALOG_URL=catalog_url)
    command = [sys.executable, "-m", "nbdeploy.cli", "scheduler", "--no-dispatch", "--poll", "0.05"]
    procs = []
    try:
        for n in range(2):
            with open(tmp_path / f"scheduler-{n}.log", "wb") as out:
                procs.append(
                    subprocess.Popen([*command, "--clock", clock.spec()], env=env, stdout=out, stderr=subprocess.STDOUT)
                )

        def fired() -> int:
            with store.catalog.session() as s:
                return s.scalar(sa.select(sa.func.count()).where(RunRow.schedule_id == every_minute.id))

        eventually(lambda: fired() >= TICKS, 120, f"{TICKS} ticks firing")
    finally:
        for proc in procs:
            stop_process(proc)
    assert all(p.returncode in (0, -15) for p in procs), [(tmp_path / f"scheduler-{n}.log").read_text() for n in (0, 1)]
    with store.catalog.session() as s:
        rows = s.execute(sa.select(RunRow.schedule_id, RunRow.fire_time)).all()
    store.catalog.dispose()
    for schedule in (every_minute, latest):
        times = sorted(t for sid, t in rows if sid == schedule.id)
        assert len(times) == len(set(times)), f"a tick fired twice: {times}"
        assert times and times[0] == origin + timedelta(seconds=30)
        if schedule is every_minute:  # catchup="all": no tick is lost either, even when both processes lag
            assert times == [times[0] + timedelta(minutes=i) for i in range(len(times))]
    logs = "".join((tmp_path / f"scheduler-{n}.log").read_text() for n in (0, 1))
    assert "Traceback" not in logs, logs[-3000:]
