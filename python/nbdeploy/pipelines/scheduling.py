"""Schedules that fire a pipeline: the jobs' cron schedules (:mod:`nbdeploy.jobs.firing`) with ``target`` set to
``"pipeline"``. The scheduler inserts one queued pipeline run per tick; the unique ``(schedule_id, fire_time)`` of
``pipeline_runs`` makes two schedulers sharing a catalog fire it once. A server's pipeline driver starts it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .tables import PipelineRunRow

__all__ = ["pipeline_runs"]


def pipeline_runs(schedule: Any, fire_times: list[datetime], now: datetime) -> list[PipelineRunRow]:
    """The queued pipeline runs of ``schedule``'s ticks at ``fire_times`` (the newest pipeline version when each
    starts; the schedule's parameters)."""
    return [
        PipelineRunRow(
            pipeline=schedule.job,
            version=None,
            status="queued",
            trigger="schedule",
            parameters=dict(schedule.parameters or {}),
            options={},
            schedule_id=schedule.id,
            fire_time=fire_time,
            queued_at=now,
            cancel_requested=False,
            notify=schedule.notify,
            owner=schedule.owner,
        )
        for fire_time in fire_times
    ]
