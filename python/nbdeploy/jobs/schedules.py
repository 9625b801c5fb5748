"""Cron schedules of jobs: ``nbd.schedules.add("report", cron="0 6 * * *", timezone="Europe/Berlin")``.

A schedule is a catalog row; the scheduler (:mod:`nbdeploy.jobs.firing`, running in every server and in
``nbdeploy scheduler``) turns its due ticks into queued runs, exactly once per tick. ``catchup`` says what
happens to ticks missed while no scheduler ran: ``none`` skips them, ``latest`` runs the most recent one,
``all`` runs each (up to 100).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ..exceptions import InvalidInputError, NotFoundError
from ..names import validate_name
from ..runtime.resources import normalize_resources
from ..schema import ListRecord, Record
from ..store import _owner
from ..store.tables import utcnow
from .cron import CronSpec
from .notify import normalize_notify
from .options import validate_run_options
from .tables import ScheduleRow

__all__ = ["CATCHUP", "UPDATABLE", "Schedule", "ScheduleList", "ScheduleManager", "next_fire_times"]

if TYPE_CHECKING:
    from ..app import Nbdeploy

CATCHUP = ("none", "latest", "all")
UPDATABLE = (
    "cron",
    "timezone",
    "parameters",
    "kernel",
    "catchup",
    "max_concurrency",
    "timeout",
    "retries",
    "notify",
    "resources",
    "paused",
)


@dataclass(frozen=True)
class Schedule(Record):
    """A cron schedule of a job: when it fires (``upcoming``: the next five ticks), with what, and its state.

    A snapshot; its methods act on the catalog and return a fresh one."""

    id: int
    job: str
    cron: str
    timezone: str
    parameters: dict[str, Any]
    kernel: str | None
    catchup: str
    max_concurrency: int
    timeout: float | None
    retries: int
    notify: dict[str, Any] | None
    resources: dict[str, float] | None
    paused: bool
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    created_at: datetime
    updated_at: datetime
    owner: str | None
    upcoming: tuple[datetime, ...] = ()
    target: str = "job"  # what a tick fires: a run of the job, or of the pipeline named ``job``
    _manager: ScheduleManager | None = field(default=None, repr=False, compare=False)

    json_exclude = ("_manager",)

    @classmethod
    def from_row(cls, row: ScheduleRow, manager: ScheduleManager | None = None) -> Schedule:
        return cls(
            id=row.id,
            job=row.job,
            cron=row.cron,
            timezone=row.timezone,
            parameters=dict(row.parameters or {}),
            kernel=row.kernel,
            catchup=row.catchup,
            max_concurrency=row.max_concurrency,
            timeout=row.timeout,
            retries=row.retries,
            notify=row.notify,
            resources=row.resources,
            paused=bool(row.paused),
            next_fire_at=row.next_fire_at,
            last_fire_at=row.last_fire_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            owner=row.owner,
            upcoming=tuple(
                t.astimezone(ZoneInfo(row.timezone)) for t in CronSpec(row.cron, row.timezone).next_fire_times(5)
            ),
            target=row.target or "job",
            _manager=manager,
        )

    def _mgr(self) -> ScheduleManager:
        if self._manager is None:
            raise RuntimeError("this Schedule snapshot is not bound to a manager")
        return self._manager

    def next_fire_times(self, n: int = 5, start: datetime | None = None) -> builtins.list[datetime]:
        """The next ``n`` fire times after ``start`` (default now), in the schedule's time zone."""
        tz = ZoneInfo(self.timezone)
        return [t.astimezone(tz) for t in CronSpec(self.cron, self.timezone).next_fire_times(n, start)]

    def pause(self) -> Schedule:
        """Stop firing (ticks while paused are not caught up later)."""
        return self._mgr().pause(self.id)

    def resume(self) -> Schedule:
        """Fire again, from the next tick after now."""
        return self._mgr().resume(self.id)

    def delete(self) -> None:
        """Delete the schedule (its runs stay in the history)."""
        self._mgr().delete(self.id)

    def refresh(self) -> Schedule:
        """A fresh snapshot from the catalog."""
        return self._mgr().get(self.id)

    def runs(self, limit: int = 100) -> builtins.list[Any]:
        """This schedule's runs, newest first."""
        return self._mgr().app.runs.list(schedule_id=self.id, limit=limit)


@dataclass(frozen=True)
class ScheduleList(ListRecord):
    """Schedules, oldest first (``GET /schedules``)."""

    schedules: builtins.list[Schedule]


def _check_catchup(catchup: Any) -> str:
    if catchup not in CATCHUP:
        raise InvalidInputError(f"catchup must be one of {', '.join(CATCHUP)}, got {catchup!r}", "catchup")
    return catchup


def _check_concurrency(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise InvalidInputError("max_concurrency must be a whole number from 1 to 1000", "max_concurrency")
    return value


class ScheduleManager:
    """The cron schedules of ``app`` (``app.schedules``), rows in its catalog."""

    def __init__(self, app: Nbdeploy) -> None:
        self.app = app
        self.store = app.store

    def _jobs(self) -> Any:
        return self.app.jobs

    def next_fire_times(
        self, schedule: str | Schedule, n: int = 5, timezone: str = "UTC", start: datetime | None = None
    ) -> builtins.list[datetime]:
        """The next ``n`` fire times of a schedule (an id, a :class:`Schedule`) or of a cron expression."""
        if isinstance(schedule, int) or (isinstance(schedule, str) and schedule.isdigit()):
            schedule = self.get(int(schedule))
        return next_fire_times(schedule, n, timezone, start)

    def add(
        self,
        job: str,
        cron: str,
        timezone: str = "UTC",
        parameters: dict[str, Any] | None = None,
        catchup: str = "latest",
        max_concurrency: int = 1,
        timeout: float | None = None,
        retries: int = 0,
        notify: Any = None,
        kernel: str | None = None,
        now: datetime | None = None,
        resources: dict[str, float] | None = None,
        from_text: bool = False,
    ) -> Schedule:
        """Schedule job ``job`` on ``cron`` (5 fields) in ``timezone``; return the new :class:`Schedule`.

        Raises :class:`NotFoundError` for an unknown job and :class:`InvalidInputError` for a bad cron, time
        zone, catchup policy, option or parameter.
        """
        jobs = self._jobs()
        version = jobs.get(validate_name(job, "job"))
        params = jobs.check_parameters(job, parameters, version, from_text=from_text).values
        spec = CronSpec(cron, timezone)
        timeout, retries, kernel = validate_run_options(timeout, retries, kernel)
        now = now or utcnow()
        row = ScheduleRow(
            job=job,
            cron=spec.expr,
            timezone=spec.timezone,
            parameters=params,
            kernel=kernel,
            catchup=_check_catchup(catchup),
            max_concurrency=_check_concurrency(max_concurrency),
            timeout=timeout,
            retries=retries,
            notify=normalize_notify(notify),
            resources=normalize_resources(resources),
            paused=False,
            next_fire_at=spec.next_after(now),
            created_at=now,
            updated_at=now,
            owner=_owner(),
        )
        with self.store.catalog.session() as s:
            s.add(row)
        return Schedule.from_row(row, self)

    def _row(self, session: Any, schedule_id: Any) -> ScheduleRow:
        try:
            schedule_id = int(schedule_id)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"schedule id must be a number, got {schedule_id!r}", "schedule_id") from exc
        row = session.get(ScheduleRow, schedule_id)
        if row is None:
            raise NotFoundError(f"no schedule {schedule_id}: `nbdeploy schedules list` shows them")
        return row

    def get(self, schedule_id: int) -> Schedule:
        """The schedule with this id; raises :class:`NotFoundError`."""
        with self.store.catalog.session() as s:
            return Schedule.from_row(self._row(s, schedule_id), self)

    def list(self, job: str | None = None) -> builtins.list[Schedule]:
        """Every schedule (of ``job``), oldest first."""
        query = sa.select(ScheduleRow).order_by(ScheduleRow.id)
        if job is not None:
            query = query.where(ScheduleRow.job == validate_name(job, "job"))
        with self.store.catalog.session() as s:
            return [Schedule.from_row(r, self) for r in s.scalars(query)]

    def update(self, schedule_id: int, now: datetime | None = None, **changes: Any) -> Schedule:
        """Change fields of a schedule (``cron``, ``timezone``, ``parameters``, ``paused``, …); return it.

        A new cron or time zone, or resuming, moves the next tick to the first one after now.
        """
        unknown = set(changes) - set(UPDATABLE)
        if unknown:
            raise InvalidInputError(
                f"cannot change {sorted(unknown)} of a schedule; changeable: {', '.join(UPDATABLE)}",
                sorted(unknown)[0],
            )
        now = now or utcnow()
        current = self.get(schedule_id)  # validate first: no other session may open while ours holds the lock
        values: dict[str, Any] = {}
        if "parameters" in changes and current.target == "pipeline":  # checked against the pipeline's parameters
            from ..pipelines.manager import check_parameters

            values["parameters"] = check_parameters(self.app.pipelines.definition(current.job), changes["parameters"])
        elif "parameters" in changes:
            values["parameters"] = self._jobs().check_parameters(current.job, changes["parameters"]).values
        if {"timeout", "retries", "kernel"} & set(changes):
            values["timeout"], values["retries"], values["kernel"] = validate_run_options(
                changes.get("timeout", current.timeout),
                changes.get("retries", current.retries),
                changes.get("kernel", current.kernel),
            )
        if "catchup" in changes:
            values["catchup"] = _check_catchup(changes["catchup"])
        if "max_concurrency" in changes:
            values["max_concurrency"] = _check_concurrency(changes["max_concurrency"])
        if "notify" in changes:
            values["notify"] = normalize_notify(changes["notify"])
        if "resources" in changes:
            values["resources"] = normalize_resources(changes["resources"])
        spec = CronSpec(changes.get("cron", current.cron), changes.get("timezone", current.timezone))
        retime = "cron" in changes or "timezone" in changes
        values["cron"], values["timezone"] = spec.expr, spec.timezone
        if "paused" in changes:
            if not isinstance(changes["paused"], bool):
                raise InvalidInputError("paused must be true or false", "paused")
            values["paused"] = changes["paused"]
        with self.store.catalog.session() as s:
            row = self._row(s, schedule_id)
            resumed = row.paused and values.get("paused") is False
            for key, value in values.items():
                setattr(row, key, value)
            if retime or resumed:
                row.next_fire_at = spec.next_after(now)
            row.updated_at = now
            return Schedule.from_row(row, self)

    def pause(self, schedule_id: int) -> Schedule:
        """Pause a schedule; return it."""
        return self.update(schedule_id, paused=True)

    def resume(self, schedule_id: int, now: datetime | None = None) -> Schedule:
        """Resume a schedule from the next tick after now; return it."""
        return self.update(schedule_id, now=now, paused=False)

    def delete(self, schedule_id: int) -> None:
        """Delete a schedule (its runs stay in the history); raises :class:`NotFoundError`."""
        with self.store.catalog.session() as s:
            s.delete(self._row(s, schedule_id))


def next_fire_times(
    schedule: str | Schedule, n: int = 5, timezone: str = "UTC", start: datetime | None = None
) -> builtins.list[datetime]:
    """The next ``n`` fire times of a schedule or of a cron expression in ``timezone``."""
    if isinstance(schedule, Schedule):
        return schedule.next_fire_times(n, start)
    tz = ZoneInfo(CronSpec(schedule, timezone).timezone)
    return [t.astimezone(tz) for t in CronSpec(schedule, timezone).next_fire_times(n, start)]
