"""The catalog side of the dispatcher: leadership, claims, leases, progress and outcomes of runs.

Every write here is conditional on the writer still owning what it writes — the leadership row by ``owner``
and ``lease_until``, a run by ``lease_owner``, ``attempt`` and ``status`` — so a dispatcher that stalled past
its lease, and lost its runs to another one's reconciliation, writes nothing. All of it runs in the
dispatcher's thread; one transaction per step, never one inside another (SQLite would wait on itself).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..store import Store
from ..store.tables import ArtifactVersionRow
from .tables import DispatcherLeaseRow, RunArtifactRow, RunLogRow, RunMetricRow, RunOutputRow, RunRow, ScheduleRow

__all__ = ["LEADER", "LOST_MESSAGE", "RunLedger", "leader_alive", "lost", "run_timings"]

log = logging.getLogger("nbdeploy.jobs")

LEADER = "leader"
LOST_MESSAGE = "lost: worker or server died"


def lost(detail: str | None = None, message: str = LOST_MESSAGE) -> dict[str, Any]:
    """The outcome of an attempt whose worker, dispatcher or server went away."""
    return {"status": "lost", "error_type": "RunLost", "error_message": f"{message} ({detail})" if detail else message}


def run_timings(row: RunRow, outcome: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An attempt's timing breakdown in seconds (see :class:`~.records.RunTimings`): ``queue`` (queued to claimed),
    ``dispatch`` (claimed to the task starting on its worker), ``kernel`` (claiming a pooled kernel or starting one,
    connected), ``to_first_cell`` (claimed to the first cell starting), ``cells``, ``upload``, ``total``, and
    ``kernel_source`` (``pool`` or ``started``)."""
    worker = dict(outcome.get("timings") or {})
    timings: dict[str, Any] = {k: worker[k] for k in ("kernel", "cells", "upload", "prepare") if k in worker}
    if worker.get("kernel_source"):
        timings["kernel_source"] = str(worker["kernel_source"])
    started = row.started_at
    if started is not None:
        timings["queue"] = max(0.0, (started - max(row.queued_at, row.not_before)).total_seconds())
        claimed = started.timestamp()
        if worker.get("task_started_at"):
            timings["dispatch"] = max(0.0, float(worker["task_started_at"]) - claimed)
        if worker.get("first_cell_at"):
            timings["to_first_cell"] = max(0.0, float(worker["first_cell_at"]) - claimed)
        timings["total"] = max(0.0, (now - started).total_seconds())
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in timings.items()}


def leader_alive(store: Store, now: datetime | None = None) -> bool:
    """Whether a service dispatcher currently holds a live leadership lease on ``store``'s catalog."""
    now = now or datetime.now(UTC)
    with store.catalog.session() as s:
        until = s.scalar(sa.select(DispatcherLeaseRow.lease_until).where(DispatcherLeaseRow.name == LEADER))
    return until is not None and until > now


def metric_row(run_id: int, attempt: int, m: dict[str, Any]) -> RunMetricRow:
    """A metric row from a ``{"seq", "key", "value", "step", "time"}`` record of ``nbd.log_metric``."""
    return RunMetricRow(
        run_id=run_id,
        attempt=attempt,
        seq=int(m.get("seq") or 0),
        key=str(m["key"])[:128],
        value=float(m["value"]),
        step=m.get("step"),
        logged_at=datetime.fromtimestamp(float(m.get("time") or time.time()), UTC),
    )


def artifact_row(run_id: int, attempt: int, a: dict[str, Any]) -> RunArtifactRow:
    """An artifact row from a ``{"seq", "name", "sha256", "size", "time"}`` record of ``nbd.log_artifact``."""
    return RunArtifactRow(
        run_id=run_id,
        attempt=attempt,
        seq=int(a.get("seq") or 0),
        name=str(a["name"])[:255],
        sha256=str(a["sha256"]),
        size=int(a["size"]),
        logged_at=datetime.fromtimestamp(float(a.get("time") or time.time()), UTC),
    )


def output_row(run_id: int, attempt: int, o: dict[str, Any]) -> RunOutputRow:
    """An output row from a ``{"seq", "name", "encoding", "value", "sha256", "size", "time"}`` record of
    ``nbd.output`` (``value`` only for inline JSON)."""
    return RunOutputRow(
        run_id=run_id,
        attempt=attempt,
        seq=int(o.get("seq") or 0),
        name=str(o["name"])[:128],
        encoding=str(o.get("encoding") or "json")[:16],
        value=o.get("value") if o.get("encoding") == "json" else None,
        sha256=str(o["sha256"])[:64],
        size=int(o.get("size") or 0),
        logged_at=datetime.fromtimestamp(float(o.get("time") or time.time()), UTC),
    )


class RunLedger:
    """The catalog writes of one dispatcher (``owner``), with leases of ``lease_ttl`` seconds."""

    def __init__(self, store: Store, owner: str, lease_ttl: float, retry_backoff: float, max_backoff: float) -> None:
        self.store, self.owner, self.lease_ttl = store, owner, lease_ttl
        self.retry_backoff, self.max_backoff = retry_backoff, max_backoff

    @property
    def catalog(self) -> Any:
        return self.store.catalog

    # --- leadership -----------------------------------------------------------------------------------------
    def acquire_or_renew(self, now: datetime) -> bool:
        """Take the leadership if it is free or expired, or renew ours; return whether we lead."""
        until = now + timedelta(seconds=self.lease_ttl)
        try:
            with self.catalog.session() as s:
                row = s.get(DispatcherLeaseRow, LEADER, with_for_update=True)
                if row is None:
                    s.add(
                        DispatcherLeaseRow(
                            name=LEADER,
                            owner=self.owner,
                            host=socket.gethostname(),
                            pid=os.getpid(),
                            acquired_at=now,
                            heartbeat_at=now,
                            lease_until=until,
                        )
                    )
                    return True
                if row.owner != self.owner and row.lease_until > now:
                    return False
                if row.owner != self.owner:
                    row.owner, row.host, row.pid, row.acquired_at = self.owner, socket.gethostname(), os.getpid(), now
                row.heartbeat_at, row.lease_until = now, until
                return True
        except IntegrityError:  # another dispatcher inserted the row first
            return False

    def release(self, now: datetime) -> None:
        """Give the leadership up (expire it now) so a standby takes over at its next heartbeat."""
        with self.catalog.session() as s:
            s.execute(
                sa.update(DispatcherLeaseRow)
                .where(DispatcherLeaseRow.name == LEADER, DispatcherLeaseRow.owner == self.owner)
                .values(lease_until=now - timedelta(seconds=1))
            )

    def renew_runs(self, run_ids: Iterable[int], now: datetime) -> None:
        """Extend the leases of our running runs."""
        with self.catalog.session() as s:
            s.execute(
                sa.update(RunRow)
                .where(RunRow.lease_owner == self.owner, RunRow.status == "running", RunRow.id.in_(list(run_ids)))
                .values(lease_until=now + timedelta(seconds=self.lease_ttl))
            )

    # --- outcomes ---------------------------------------------------------------------------------------------
    def backoff(self, failed_attempt: int) -> float:
        """Seconds before the attempt after ``failed_attempt`` may start (doubling, capped)."""
        return min(self.retry_backoff * 2 ** max(0, failed_attempt - 1), self.max_backoff)

    def apply_outcome(self, row: RunRow, outcome: dict[str, Any], now: datetime) -> bool:
        """Write an attempt's outcome onto a locked row; return whether the run is now terminal.

        A failed, timed-out or lost attempt with retries left puts the run back to ``queued`` with the next
        attempt number and ``not_before`` after the back-off; every attempt is appended to ``history``.
        """
        status = outcome["status"]
        row.history = [
            *(row.history or []),
            {
                "attempt": row.attempt,
                "status": status,
                "started_at": row.started_at.isoformat() if row.started_at else None,
                "finished_at": now.isoformat(),
                "worker": row.worker or outcome.get("worker"),
                "error_type": outcome.get("error_type"),
                "error_message": outcome.get("error_message"),
                "error_cell": outcome.get("error_cell"),
                "output_sha256": outcome.get("output_sha256"),
            },
        ]
        row.error_type = outcome.get("error_type")
        row.error_message = outcome.get("error_message")
        row.error_cell = outcome.get("error_cell")
        row.error_traceback = outcome.get("error_traceback")
        row.timings = run_timings(row, outcome, now)
        for key in ("output_sha256", "log_sha256", "cell_count", "worker"):
            if outcome.get(key) is not None and (key != "worker" or row.worker is None):
                setattr(row, key, outcome[key])
        row.lease_owner, row.lease_until = None, None
        if status in ("failed", "timed_out", "lost") and row.attempt <= row.retries and not row.cancel_requested:
            row.not_before = now + timedelta(seconds=self.backoff(row.attempt))
            row.status, row.attempt = "queued", row.attempt + 1
            row.worker, row.current_cell, row.started_at = None, None, None
            return False
        row.status = "failed" if status == "lost" else status
        row.finished_at = now
        return True

    def finish(self, run_id: int, attempt: int, outcome: dict[str, Any], now: datetime) -> RunRow | None:
        """Record the outcome of our attempt (metrics and artifacts from it replace the live ones); return the
        row when the run is now terminal, ``None`` otherwise (retried, or no longer ours)."""
        with self.catalog.session() as s:
            row = s.get(RunRow, run_id, with_for_update=True)
            if row is None or row.lease_owner != self.owner or row.attempt != attempt or row.status != "running":
                log.warning("run %s attempt %s is no longer ours; its outcome is dropped", run_id, attempt)
                return None
            for model, records, make in (
                (RunMetricRow, outcome.get("metrics"), metric_row),
                (RunArtifactRow, outcome.get("artifacts"), artifact_row),
                (RunOutputRow, outcome.get("outputs"), output_row),
            ):
                if records is not None:
                    s.execute(sa.delete(model).where(model.run_id == row.id, model.attempt == row.attempt))
                    s.add_all([make(row.id, row.attempt, r) for r in records])
            if outcome.get("log_sha256"):  # followers read the whole log from its blob from now on
                s.execute(sa.delete(RunLogRow).where(RunLogRow.run_id == row.id, RunLogRow.attempt == row.attempt))
            return row if self.apply_outcome(row, outcome, now) else None

    def reconcile(self, now: datetime, ours: set[int]) -> list[RunRow]:
        """Mark running runs whose lease expired as lost (retry or fail); return those now terminal."""
        terminal: list[RunRow] = []
        with self.catalog.session() as s:
            rows = s.scalars(
                sa.select(RunRow)
                .where(RunRow.status == "running", sa.or_(RunRow.lease_until.is_(None), RunRow.lease_until < now))
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                if row.lease_owner == self.owner and row.id in ours:
                    continue
                log.warning("run %s (attempt %s) lost its lease (owner %s)", row.id, row.attempt, row.lease_owner)
                if self.apply_outcome(row, lost(), now):
                    terminal.append(row)
        return terminal

    # --- progress ---------------------------------------------------------------------------------------------
    def record_progress(
        self,
        updates: dict[tuple[int, int], dict[str, Any]],
        rows: list[RunMetricRow | RunArtifactRow | RunLogRow],
    ) -> None:
        """Write ``{(run_id, attempt): {column: value}}`` on our running runs, and add metric/artifact rows."""
        with self.catalog.session() as s:
            for (run_id, attempt), values in updates.items():
                if values:
                    s.execute(
                        sa.update(RunRow)
                        .where(
                            RunRow.id == run_id,
                            RunRow.attempt == attempt,
                            RunRow.lease_owner == self.owner,
                            RunRow.status == "running",
                        )
                        .values(**values)
                    )
            s.add_all(rows)

    def cancel_requested(self, run_ids: list[int]) -> set[int]:
        """Which of these runs have a cancel request."""
        with self.catalog.session() as s:
            query = sa.select(RunRow.id).where(RunRow.id.in_(run_ids), RunRow.cancel_requested.is_(True))
            return set(s.scalars(query))

    # --- claiming ---------------------------------------------------------------------------------------------
    def queued(self, now: datetime, only: set[int] | None, limit: int = 200) -> list[Any]:
        """Queued runs that may start now or have a cancel request: ``(id, attempt, schedule_id, cancel)``."""
        query = sa.select(RunRow.id, RunRow.attempt, RunRow.schedule_id, RunRow.cancel_requested).where(
            RunRow.status == "queued", sa.or_(RunRow.not_before <= now, RunRow.cancel_requested.is_(True))
        )
        if only is not None:
            query = query.where(RunRow.id.in_(only))
        with self.catalog.session() as s:
            return list(s.execute(query.order_by(RunRow.not_before, RunRow.id).limit(limit)).all())

    def still_queued(self, run_ids: set[int]) -> set[int]:
        """Which of these runs are still queued."""
        with self.catalog.session() as s:
            return set(s.scalars(sa.select(RunRow.id).where(RunRow.id.in_(run_ids), RunRow.status == "queued")))

    def schedule_slots(self, schedule_ids: set[int]) -> tuple[dict[int, int], dict[int, int]]:
        """``(max_concurrency by schedule, running runs by schedule)``."""
        with self.catalog.session() as s:
            limits = s.execute(
                sa.select(ScheduleRow.id, ScheduleRow.max_concurrency).where(ScheduleRow.id.in_(schedule_ids))
            ).all()
            running = s.execute(
                sa.select(RunRow.schedule_id, sa.func.count())
                .where(RunRow.status == "running", RunRow.schedule_id.in_(schedule_ids))
                .group_by(RunRow.schedule_id)
            ).all()
        return dict(limits), dict(running)  # type: ignore[arg-type]

    def cancel_queued(self, run_ids: list[int], now: datetime) -> None:
        """Cancel queued runs that have a cancel request."""
        with self.catalog.session() as s:
            s.execute(
                sa.update(RunRow)
                .where(RunRow.id.in_(run_ids), RunRow.status == "queued", RunRow.cancel_requested.is_(True))
                .values(
                    status="cancelled",
                    finished_at=now,
                    error_type="Cancelled",
                    error_message="cancelled before it started",
                    lease_owner=None,
                    lease_until=None,
                )
            )

    def claim(self, run_id: int, attempt: int, now: datetime) -> tuple[dict[str, Any] | None, RunRow | None]:
        """Claim a queued run: ``(task spec, None)``; ``(None, row)`` when it failed at once (its job is gone);
        ``(None, None)`` when someone else claimed it first or it was cancelled."""
        with self.catalog.session() as s:
            row = s.get(RunRow, run_id, with_for_update=True)
            if row is None or row.status != "queued" or row.attempt != attempt or row.cancel_requested:
                return None, None
            if row.notebook_sha256 is None:  # scheduled runs take the job's newest version when they start
                version = s.scalars(
                    sa.select(ArtifactVersionRow)
                    .where(
                        ArtifactVersionRow.kind == "job",
                        ArtifactVersionRow.name == row.job,
                        ArtifactVersionRow.deleted.is_(False),
                    )
                    .order_by(ArtifactVersionRow.version.desc())
                    .limit(1)
                ).first()
                if version is None:
                    row.status, row.finished_at, row.error_type = "failed", now, "NotFoundError"
                    row.error_message = f"job {row.job!r} no longer exists: `nbdeploy jobs put` it again"
                    return None, row
                row.job_version, row.notebook_sha256 = version.version, version.sha256
            row.status, row.lease_owner = "running", self.owner
            row.lease_until = now + timedelta(seconds=self.lease_ttl)
            row.started_at, row.worker, row.current_cell = now, None, None
            return {
                "run_id": row.id,
                "attempt": row.attempt,
                "job": row.job,
                "job_version": row.job_version,
                "notebook_sha256": row.notebook_sha256,
                "parameters": dict(row.parameters or {}),
                "kernel": row.kernel,
                "warm": row.warm is not False,
                "timeout": row.timeout,
                "resources": row.resources,
                "store_url": self.store.url,
                "catalog_url": self.store.catalog.url,
            }, None
