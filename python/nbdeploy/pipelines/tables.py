"""Catalog tables of pipelines: runs of a pipeline and of its nodes (created by migration ``0007_pipelines``;
the named outputs of job runs are :class:`~nbdeploy.jobs.tables.RunOutputRow`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..store.tables import Base, UTCDateTime, utcnow

__all__ = ["ACTIVE", "NODE_TERMINAL", "TERMINAL", "PipelineNodeRow", "PipelineRunRow"]

ACTIVE = ("queued", "running")
TERMINAL = ("succeeded", "failed", "cancelled")
NODE_TERMINAL = ("succeeded", "skipped", "failed", "cancelled")


class PipelineRunRow(Base):
    """One run of a pipeline version; advanced by the driver holding its lease (``lease_owner``)."""

    __tablename__ = "pipeline_runs"
    __table_args__ = (
        UniqueConstraint("schedule_id", "fire_time", name="uq_pipeline_runs_schedule_id_fire_time"),
        Index("ix_pipeline_runs_pipeline", "pipeline"),
        Index("ix_pipeline_runs_status", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    trigger: Mapped[str] = mapped_column(String(16), nullable=False, default="manual")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    schedule_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fire_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    notify: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)


class PipelineNodeRow(Base):
    """One node of a pipeline run: ``job_run_id`` is the job run that executed it (or, skipped, whose outputs it
    reuses); ``cache_key`` hashes its code cells, resolved parameters, upstream outputs and kernelspec."""

    __tablename__ = "pipeline_run_nodes"
    __table_args__ = (
        UniqueConstraint("pipeline_run_id", "node", name="uq_pipeline_run_nodes_run_node"),
        Index("ix_pipeline_run_nodes_cache", "pipeline", "node", "cache_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline_run_id: Mapped[int] = mapped_column(Integer, nullable=False)
    pipeline: Mapped[str] = mapped_column(String(64), nullable=False)
    node: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    job_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cache_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
