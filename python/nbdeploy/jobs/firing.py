"""The scheduler: turns due cron ticks into queued runs, exactly once per tick, whoever else is scheduling.

Each schedule row holds ``next_fire_at``, the next tick not yet fired. One :meth:`Scheduler.tick` takes every
due schedule in its own transaction: it locks the row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` serialises writers), picks the ticks to fire by the ``catchup`` policy, inserts one queued
run per tick and moves ``next_fire_at`` past now. The catalog's unique ``(schedule_id, fire_time)`` is the
last word: a scheduler that loses a race gets an integrity error and rolls back, so two schedulers sharing a
catalog never create the same run twice.

The scheduler reads the time from a :class:`~nbdeploy.jobs.clock.Clock`, so tests drive it over many ticks
without waiting. When running, it sleeps until the next due tick (at most ``poll`` seconds), so a tick fires
within milliseconds of being due.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..store import Store
from .clock import Clock, SystemClock
from .cron import CronSpec
from .tables import RunRow, ScheduleRow

__all__ = ["Scheduler"]

log = logging.getLogger("nbdeploy.jobs")


class Scheduler:
    """Fires the due ticks of every schedule in ``store``'s catalog (:meth:`tick`; :meth:`start` loops).

    ``misfire_grace`` (real seconds): with ``catchup="none"``, a tick older than this when the scheduler sees it
    counts as missed. ``max_catchup`` caps the runs one ``catchup="all"`` pass creates. ``on_fire`` is called
    with the new run ids (the service uses it to wake its dispatcher).
    """

    def __init__(
        self,
        store: Store,
        clock: Clock | None = None,
        poll: float = 0.5,
        misfire_grace: float = 10.0,
        max_catchup: int = 100,
        on_fire: Callable[[list[int]], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.poll, self.misfire_grace, self.max_catchup = poll, misfire_grace, max_catchup
        self.on_fire = on_fire
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.next_due: datetime | None = None

    # --- one pass ------------------------------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> list[int]:
        """Fire every due schedule at ``now`` (default: the clock's); return the ids of the runs created."""
        now = now or self.clock.now()
        with self.store.catalog.session() as s:
            due = list(
                s.scalars(
                    sa.select(ScheduleRow.id)
                    .where(ScheduleRow.paused.is_(False), ScheduleRow.next_fire_at <= now)
                    .order_by(ScheduleRow.next_fire_at)
                    .limit(500)
                )
            )
        created: list[int] = []
        for schedule_id in due:
            try:
                created += self._fire(schedule_id, now)
            except IntegrityError:
                log.info("schedule %s: another scheduler fired this tick first", schedule_id)
            except Exception:
                log.exception("schedule %s: firing failed; will try again", schedule_id)
        with self.store.catalog.session() as s:
            self.next_due = s.scalar(
                sa.select(sa.func.min(ScheduleRow.next_fire_at)).where(ScheduleRow.paused.is_(False))
            )
        if created and self.on_fire is not None:
            self.on_fire(created)
        return created

    def _choose(self, row: ScheduleRow, spec: CronSpec, now: datetime) -> list[datetime]:
        assert row.next_fire_at is not None
        ticks = spec.ticks_between(row.next_fire_at - timedelta(microseconds=1), now, limit=self.max_catchup)
        if row.catchup == "all":
            return ticks
        if row.catchup == "latest":
            return ticks[-1:]
        grace = timedelta(seconds=self.misfire_grace * self.clock.speed)
        return [t for t in ticks if now - t <= grace][-1:]

    def _fire(self, schedule_id: int, now: datetime) -> list[int]:
        with self.store.catalog.session() as s:
            row = s.scalars(
                sa.select(ScheduleRow).where(ScheduleRow.id == schedule_id).with_for_update(skip_locked=True)
            ).first()
            if row is None or row.paused or row.next_fire_at is None or row.next_fire_at > now:
                return []  # deleted, paused, or another scheduler just fired it
            spec = CronSpec(row.cron, row.timezone)
            fire_times = self._choose(row, spec, now)
            runs: list[Any]
            if row.target == "pipeline":  # a pipeline run per tick, under the same unique (schedule_id, fire_time)
                from ..pipelines.scheduling import pipeline_runs

                runs = pipeline_runs(row, fire_times, now)
            else:
                runs = self._job_runs(row, fire_times, now)
            s.add_all(runs)
            skipped = len(spec.ticks_between(row.next_fire_at - timedelta(microseconds=1), now)) - len(runs)
            row.next_fire_at = spec.next_after(now)
            if fire_times:
                row.last_fire_at = fire_times[-1]
            s.flush()  # the unique (schedule_id, fire_time) answers here if another scheduler was first
            ids = [r.id for r in runs]
        if skipped > 0:
            log.info("schedule %s: skipped %d missed tick(s) (catchup=%s)", schedule_id, skipped, row.catchup)
        for fire_time, run_id in zip(fire_times, ids, strict=True):
            log.info(
                "schedule %s: tick %s fired as %s run %s",
                schedule_id,
                fire_time.isoformat(),
                row.target or "job",
                run_id,
            )
        return [] if row.target == "pipeline" else ids

    @staticmethod
    def _job_runs(row: ScheduleRow, fire_times: list[datetime], now: datetime) -> list[RunRow]:
        return [
            RunRow.queued(
                now,
                job=row.job,
                schedule_id=row.id,
                fire_time=fire_time,
                trigger="schedule",
                parameters=dict(row.parameters or {}),
                kernel=row.kernel,
                timeout=row.timeout,
                retries=row.retries,
                notify=row.notify,
                resources=row.resources,
                owner=row.owner,
            )
            for fire_time in fire_times
        ]

    # --- the loop ------------------------------------------------------------------------------------------
    def start(self) -> Scheduler:
        """Run :meth:`tick` in a background thread until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="nbdeploy-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            wait = self.poll
            try:
                self.tick()
                if self.next_due is not None:
                    ahead = (self.next_due - self.clock.now()).total_seconds()
                    wait = min(self.poll, self.clock.real_seconds(ahead))
            except Exception:
                log.exception("scheduler pass failed; retrying")
                wait = max(self.poll, 1.0)
            self._stop.wait(max(0.005, wait))
