"""Catalog tables of jobs: schedules, runs, run metrics and artifacts, and the dispatcher lease.

The schema is created by the alembic migration ``0002_jobs``; these classes only map it. Importing this module
registers the tables on :class:`nbdeploy.store.tables.Base`, so every module that queries them imports it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..store.tables import Base, UTCDateTime, utcnow

__all__ = [
    "ACTIVE_STATES",
    "RUN_STATES",
    "TERMINAL_STATES",
    "DispatcherLeaseRow",
    "RunArtifactRow",
    "RunMetricRow",
    "RunOutputRow",
    "RunRow",
    "ScheduleRow",
]

RUN_STATES = ("queued", "running", "succeeded", "failed", "cancelled", "timed_out")
ACTIVE_STATES = ("queued", "running")
TERMINAL_STATES = ("succeeded", "failed", "cancelled", "timed_out")


class ScheduleRow(Base):
    """A cron schedule of a job; ``next_fire_at`` is the next tick not yet fired (UTC)."""

    __tablename__ = "schedules"
    __table_args__ = (
        Index("ix_schedules_paused_next_fire_at", "paused", "next_fire_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    cron: Mapped[str] = mapped_column(String(128), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    kernel: Mapped[str | None] = mapped_column(String(128), nullable=True)
    catchup: Mapped[str] = mapped_column(String(8), nullable=False)
    max_concurrency: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    timeout: Mapped[float | None] = mapped_column(Float, nullable=True)
    retries: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    notify: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    resources: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    target: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: a job; "pipeline": a pipeline


class RunRow(Base):
    """One run of a job: its state machine, lease, progress, error and outputs.

    Created ``queued`` by the API or the scheduler; every later change is written by the dispatcher that
    holds its lease (``lease_owner``). ``(schedule_id, fire_time)`` is unique, so a tick is fired once.
    """

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("schedule_id", "fire_time", name="uq_runs_schedule_id_fire_time"),
        Index("ix_runs_status_not_before", "status", "not_before"),
        Index("ix_runs_job_queued_at", "job", "queued_at"),
        Index("ix_runs_lease_owner_status", "lease_owner", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(64), nullable=False)
    job_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    notebook_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    schedule_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fire_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    trigger: Mapped[str] = mapped_column(String(16), nullable=False, default="manual")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    kernel: Mapped[str | None] = mapped_column(String(128), nullable=True)
    timeout: Mapped[float | None] = mapped_column(Float, nullable=True)
    retries: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    worker: Mapped[str | None] = mapped_column(String(256), nullable=True)
    current_cell: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cell_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error_type: Mapped[str | None] = mapped_column(String(128), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_cell: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error_traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    output_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    log_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    notify: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    resources: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    warm: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # False: a kernel started for it, not pooled
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # see RunTimings

    @classmethod
    def queued(cls, now: datetime, **fields: Any) -> RunRow:
        """A new run, queued at ``now`` to start at once (attempt 1, no history): what a manual run and a
        schedule's tick both create, with their own ``fields`` (job, trigger, parameters, …)."""
        return cls(
            attempt=1,
            status="queued",
            queued_at=now,
            not_before=now,
            cancel_requested=False,
            history=[],
            **fields,
        )


class RunMetricRow(Base):
    """A metric a run logged with ``nbd.log_metric`` (per attempt; ``step`` orders repeated values)."""

    __tablename__ = "run_metrics"
    __table_args__ = (Index("ix_run_metrics_run_id_attempt", "run_id", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    key: Mapped[str] = mapped_column(String(128), nullable=False)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class RunLogRow(Base):
    """A piece of a running attempt's log, as its worker streamed it (whole lines; ``offset`` is where it starts in
    the log file, in bytes). Followers read these while the run executes; the finished run's log blob is the
    whole text."""

    __tablename__ = "run_log_chunks"
    __table_args__ = (Index("ix_run_log_chunks_run_id_attempt_offset", "run_id", "attempt", "offset"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    offset: Mapped[int] = mapped_column(Integer, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)


class RunArtifactRow(Base):
    """A file or bytes a run attached with ``nbd.log_artifact`` (the blob is in the store by hash)."""

    __tablename__ = "run_artifacts"
    __table_args__ = (Index("ix_run_artifacts_run_id_attempt", "run_id", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class RunOutputRow(Base):
    """A named output a run recorded with ``nbd.output`` (per attempt): small JSON ``value`` inline, else a store
    blob by ``sha256`` (``encoding`` says how to read it: json, pickle, parquet, npy); ``sha256`` always hashes
    the value (a pipeline's cache keys use it). Created by migration ``0007_pipelines``."""

    __tablename__ = "run_outputs"
    __table_args__ = (Index("ix_run_outputs_run_id_attempt", "run_id", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    encoding: Mapped[str] = mapped_column(String(16), nullable=False)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class DispatcherLeaseRow(Base):
    """The dispatcher leadership: the owner that claims queued runs and reconciles lost ones, until
    ``lease_until`` (renewed by its heartbeat)."""

    __tablename__ = "dispatcher_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), nullable=False)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
