"""The typed cluster status that ``GET /cluster`` sends (built from :func:`nbdeploy.runtime.status`), and the body
of ``POST /cluster/scale``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from ..schema import Record, Rule

__all__ = ["ClusterScale", "ClusterStatus", "WorkerStatus"]


@dataclass(frozen=True)
class ClusterScale(Record):
    """``POST /cluster/scale``: how many workers the cluster should have (at most the setting
    ``cluster_max_workers``)."""

    request = True
    workers: Annotated[int, Rule(minimum=1, description="the number of workers", example=2)]


@dataclass(frozen=True)
class WorkerStatus(Record):
    """One Dask worker: its address and name, threads, memory limit (bytes), GPUs and tasks executing."""

    address: str
    name: str
    nthreads: int
    memory_limit: int
    gpus: int
    executing: int


@dataclass(frozen=True)
class ClusterStatus(Record):
    """The cluster: its mode, scheduler, dashboard (``dashboard_url``: through this server, authenticated),
    owner and workers, with totals (task counts lag by up to a second)."""

    mode: str
    setting: str
    scheduler_address: str | None
    dashboard_link: str | None
    owner_pid: int | None
    started_at: str | None
    workers: list[WorkerStatus]
    total_threads: int
    total_memory: int
    tasks_running: int
    dashboard_url: str | None = None

    @classmethod
    def of(cls, data: dict[str, Any]) -> ClusterStatus:
        """Build from the dict :func:`nbdeploy.runtime.status` returns (unknown keys ignored)."""
        fields: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__ if k in data}
        fields["workers"] = [WorkerStatus(**w) for w in data.get("workers", [])]
        return cls(**fields)
