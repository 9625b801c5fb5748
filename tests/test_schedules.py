"""Schedules: cron in time zones across DST, catch-up after downtime, pause/resume/delete, firing into real
runs, and webhook notifications received by a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

import nbdeploy as nbd
from nbdeploy.exceptions import InvalidInputError, NotFoundError
from nbdeploy.jobs.clock import FastClock, ManualClock
from nbdeploy.jobs.cron import CronSpec
from nbdeploy.jobs.dispatcher import Dispatcher, stop_local_dispatchers
from nbdeploy.jobs.firing import Scheduler
from nbdeploy.jobs.service import JobService
from nbdeploy.jobs.tables import RunRow, ScheduleRow
from tests.helpers import NOTEBOOKS, eventually

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- cron and time zones (pure logic) ---------------------------------------------------------------------------
def test_daily_schedule_follows_the_time_zone_across_both_dst_changes() -> None:
    spec = CronSpec("0 6 * * *", "Europe/Berlin")
    assert spec.next_fire_times(3, utc(2026, 3, 27, 12)) == [
        utc(2026, 3, 28, 5),
        utc(2026, 3, 29, 4),
        utc(2026, 3, 30, 4),
    ]
    assert spec.next_fire_times(3, utc(2026, 10, 23, 12)) == [
        utc(2026, 10, 24, 4),
        utc(2026, 10, 25, 5),
        utc(2026, 10, 26, 5),
    ]
    local = nbd.schedules.next_fire_times("0 6 * * *", 2, "Europe/Berlin", start=utc(2026, 3, 28, 12))
    assert [t.isoformat() for t in local] == ["2026-03-29T06:00:00+02:00", "2026-03-30T06:00:00+02:00"]


def test_a_time_skipped_or_repeated_by_dst_fires_once_unless_the_hour_is_a_wildcard() -> None:
    nightly = CronSpec("30 2 * * *", "Europe/Berlin")
    # spring forward: 02:30 does not exist on March 29; it fires once, when the gap ends (03:00 CEST)
    assert nightly.ticks_between(utc(2026, 3, 28, 12), utc(2026, 3, 30, 12)) == [
        utc(2026, 3, 29, 1),
        utc(2026, 3, 30, 0, 30),
    ]
    # fall back: 02:30 happens twice on October 25; a fixed-hour schedule fires at the first one only
    assert nightly.ticks_between(utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)) == [
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 26, 1, 30),
    ]
    # an "every 30 minutes" schedule fires at every real half hour, both passes through 02:xx included
    half_hourly = CronSpec("*/30 * * * *", "Europe/Berlin")
    ticks = half_hourly.ticks_between(utc(2026, 10, 24, 23, 50), utc(2026, 10, 25, 2, 10))
    assert ticks == [
        utc(2026, 10, 25, 0),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1),
        utc(2026, 10, 25, 1, 30),
        utc(2026, 10, 25, 2),
    ]


def test_malformed_cron_time_zone_and_options_are_rejected(nbd_home: Path) -> None:
    nbd.jobs.put(NOTEBOOKS / "quick.ipynb", "quick")
    cases = [
        ({"cron": "* * * *"}, "cron", "must have 5 fields"),
        ({"cron": "61 * * * *"}, "cron", "not a valid cron"),
        ({"cron": "* * * * * *"}, "cron", "must have 5 fields"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"catchup": "some"}, "catchup", "catchup must be one of"),
        ({"max_concurrency": 0}, "max_concurrency", "from 1 to 1000"),
        ({"notify": "ftp://x"}, "notify", "http:// or https://"),
        ({"parameters": {"y": 1}}, "parameters.y", "has no parameter 'y'"),
    ]
    for kwargs, field, message in cases:
        with pytest.raises(InvalidInputError, match=message) as err:
            nbd.schedules.add("quick", **{"cron": "* * * * *", **kwargs})
        assert err.value.field == field
    with pytest.raises(NotFoundError, match="no job named 'ghost'"):
        nbd.schedules.add("ghost", cron="* * * * *")
    assert nbd.schedules.list() == []


# --- the scheduler against a real SQLite catalog, driven by a manual clock ------------------------------------
@pytest.fixture
def store(nbd_home: Path) -> Iterator[Any]:
    app = nbd.default()
    app.jobs.put(NOTEBOOKS / "quick.ipynb", "quick")
    yield app.store
    stop_local_dispatchers()


def fire_times(store: Any, schedule_id: int) -> list[datetime]:
    return sorted(r.fire_time for r in nbd.default().runs.list(schedule_id=schedule_id, limit=1000))


def test_catchup_after_downtime_none_skips_latest_runs_one_all_runs_each(store: Any) -> None:
    manager = nbd.default().schedules
    ids = {c: manager.add("quick", "*/5 * * * *", catchup=c, now=T0).id for c in ("none", "latest", "all")}
    scheduler = Scheduler(store, clock=ManualClock(T0))
    assert scheduler.tick(T0 + timedelta(minutes=4)) == []  # nothing due yet

    assert len(scheduler.tick(T0 + timedelta(minutes=23))) == 5  # down since 10:00; ticks 05, 10, 15, 20 missed
    assert fire_times(store, ids["none"]) == []
    assert fire_times(store, ids["latest"]) == [T0 + timedelta(minutes=20)]
    assert fire_times(store, ids["all"]) == [T0 + timedelta(minutes=m) for m in (5, 10, 15, 20)]

    scheduler.tick(T0 + timedelta(minutes=25, seconds=1))  # back up: the next tick fires on time, for every policy
    for policy, schedule_id in ids.items():
        assert fire_times(store, schedule_id)[-1] == T0 + timedelta(minutes=25), policy
        assert manager.get(schedule_id).next_fire_at == T0 + timedelta(minutes=30)
    assert scheduler.tick(T0 + timedelta(minutes=25, seconds=2)) == []  # a tick fires once


def test_pause_resume_delete_and_next_fire_times(store: Any) -> None:
    manager = nbd.default().schedules
    schedule = manager.add("quick", "0 * * * *", timezone="Europe/Berlin", parameters={"x": "5"}, now=T0)
    assert schedule.parameters == {"x": 5} and schedule.next_fire_at == T0 + timedelta(hours=1)
    times = schedule.next_fire_times(3, start=T0)
    assert [t.isoformat() for t in times] == [
        "2026-01-05T12:00:00+01:00",
        "2026-01-05T13:00:00+01:00",
        "2026-01-05T14:00:00+01:00",
    ]
    scheduler = Scheduler(store, clock=ManualClock(T0))
    assert manager.pause(schedule.id).paused
    assert scheduler.tick(T0 + timedelta(hours=3)) == []
    resumed = manager.resume(schedule.id, now=T0 + timedelta(hours=3, minutes=10))
    assert resumed.next_fire_at == T0 + timedelta(hours=4)  # ticks missed while paused are not caught up
    [run_id] = scheduler.tick(T0 + timedelta(hours=4))
    run = nbd.default().runs.get(run_id)
    assert (run.trigger, run.schedule_id, run.parameters, run.status) == ("schedule", schedule.id, {"x": 5}, "queued")
    moved = manager.update(schedule.id, cron="30 6 * * 1-5", now=T0)
    assert moved.next_fire_at == utc(2026, 1, 6, 5, 30)
    manager.delete(schedule.id)
    with pytest.raises(NotFoundError, match=f"no schedule {schedule.id}"):
        manager.get(schedule.id)
    assert nbd.default().runs.get(run_id).schedule_id == schedule.id  # the history stays


def test_schedules_fire_into_real_runs_one_at_a_time(nbd_env: Path, store: Any) -> None:
    """A fast clock (one cron minute per real second) drives the scheduler of a real service."""
    manager = nbd.default().schedules
    origin = datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC)
    schedule = manager.add("quick", "* * * * *", parameters={"x": 41}, max_concurrency=1, now=origin)

    def succeeded() -> list[Any]:
        done = [r for r in nbd.default().runs.list(schedule_id=schedule.id) if r.status == "succeeded"]
        return done if len(done) >= 2 else []

    service = JobService(store, clock=FastClock(origin, time.time(), 60.0), poll=0.2).start()
    try:
        done = eventually(succeeded, 180, "two scheduled runs succeeding")
    finally:
        service.stop()
    runs = nbd.default().runs.list(schedule_id=schedule.id)
    assert len({r.fire_time for r in runs}) == len(runs)  # one run per tick
    assert all(r.trigger == "schedule" and r.parameters == {"x": 41} for r in runs)
    assert all(r.fire_time.second == 0 for r in done)
    assert "42" in json.dumps(done[0].output())


# --- webhooks -------------------------------------------------------------------------------------------------
@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]], threading.Event]]:
    """A real HTTP server on a loopback port collecting the JSON bodies POSTed to it; stopped after the test."""
    received: list[dict[str, Any]] = []
    arrived = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()
            arrived.set()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/nbdeploy", received, arrived
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_webhook_gets_a_post_when_a_scheduled_run_fails_and_optionally_on_success(
    nbd_env: Path, store: Any, webhook: tuple[str, list[dict[str, Any]], threading.Event]
) -> None:
    url, received, _ = webhook
    nbd.default().jobs.put(NOTEBOOKS / "fail.ipynb", "fail")
    manager = nbd.default().schedules
    failing = manager.add("fail", "*/5 * * * *", notify=url, now=T0)
    quiet = manager.add("quick", "*/5 * * * *", notify=url, now=T0)  # success is not notified unless asked
    loud = manager.add("quick", "*/5 * * * *", notify={"url": url, "on": ["failure", "success"]}, now=T0)
    created = Scheduler(store, clock=ManualClock(T0)).tick(T0 + timedelta(minutes=5))
    assert len(created) == 3
    dispatcher = Dispatcher(store, role="service").start()
    try:
        runs = [nbd.default().runs.get(i).wait(120) for i in created]
        eventually(lambda: len(received) >= 2, 30, "two webhook calls")
        for thread in dispatcher.notifications:
            thread.join(30)
    finally:
        dispatcher.stop()
    by_schedule = {r.schedule_id: r for r in runs}
    assert by_schedule[failing.id].status == "failed" and by_schedule[quiet.id].status == "succeeded"
    assert len(received) == 2
    events = {m["body"]["run"]["schedule_id"]: m for m in received}
    assert set(events) == {failing.id, loud.id}
    fail_event = events[failing.id]
    assert fail_event["path"] == "/hooks/nbdeploy" and fail_event["type"] == "application/json"
    assert fail_event["body"]["event"] == "run.failed"
    assert fail_event["body"]["run"]["error"]["message"] == "boom on attempt 1"
    assert events[loud.id]["body"]["event"] == "run.succeeded"


def test_the_catalog_refuses_a_second_run_for_a_tick_that_already_fired(store: Any) -> None:
    manager = nbd.default().schedules
    schedule = manager.add("quick", "*/5 * * * *", now=T0)
    scheduler = Scheduler(store, clock=ManualClock(T0))
    [first] = scheduler.tick(T0 + timedelta(minutes=5))
    # a scheduler working from a stale view of the schedule tries the same tick again
    with store.catalog.session() as s:
        s.get(ScheduleRow, schedule.id).next_fire_at = T0 + timedelta(minutes=5)
    assert scheduler.tick(T0 + timedelta(minutes=5, seconds=1)) == []
    assert fire_times(store, schedule.id) == [T0 + timedelta(minutes=5)]
    with pytest.raises(IntegrityError), store.catalog.session() as s:
        s.add(
            RunRow(
                job="quick",
                schedule_id=schedule.id,
                fire_time=T0 + timedelta(minutes=5),
                status="queued",
                parameters={},
                history=[],
            )
        )
    assert [r.id for r in nbd.default().runs.list(schedule_id=schedule.id)] == [first]


def test_a_pipeline_schedule_s_parameters_are_changed_against_the_pipeline(nbd_home: Path, tmp_path: Path) -> None:
    from nbdeploy.pipelines.tables import PipelineRunRow
    from tests.test_pipelines_support import notebook, write_pipeline

    notebook(tmp_path / "extract.ipynb", 'day = "x"', "n = 1")
    app = nbd.default()
    app.pipelines.put(
        write_pipeline(tmp_path, 'name: daily\nparameters: {day: "x"}\nnodes:\n  e: {notebook: extract.ipynb}\n')
    )
    schedule = app.pipelines.schedule("daily", "0 6 * * *", parameters={"day": "d1"}, now=T0)
    assert app.schedules.update(schedule.id, parameters={"day": "d2"}).parameters == {"day": "d2"}
    with pytest.raises(InvalidInputError, match="pipeline 'daily' has no parameter 'nope'") as err:
        app.schedules.update(schedule.id, parameters={"nope": 1})
    assert err.value.field == "parameters.nope"
    with pytest.raises(InvalidInputError, match="JSON values"):
        app.schedules.update(schedule.id, parameters={"day": float("nan")})
    Scheduler(app.store, clock=ManualClock(T0)).tick(T0 + timedelta(days=1))  # the tick fires with the new values
    with app.store.catalog.session() as s:
        fired = s.scalars(sa.select(PipelineRunRow.parameters).where(PipelineRunRow.schedule_id == schedule.id))
        assert list(fired) == [{"day": "d2"}]
