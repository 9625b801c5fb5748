"""The typed results of the kernels service: the kernelspecs each worker can run and the state of its warm pool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..schema import Record

__all__ = ["KernelList", "KernelPoolState", "KernelSpecInfo", "WorkerKernels"]


@dataclass(frozen=True)
class KernelSpecInfo(Record):
    """A kernelspec a worker can run: its name, display name, language, and whether the worker pools it."""

    name: str
    display_name: str
    language: str
    pooled: bool = False

    @classmethod
    def of(cls, data: dict[str, Any]) -> KernelSpecInfo:
        return cls(
            name=str(data["name"]),
            display_name=str(data.get("display_name") or data["name"]),
            language=str(data.get("language") or ""),
            pooled=bool(data.get("pooled")),
        )


@dataclass(frozen=True)
class KernelPoolState(Record):
    """The warm kernels of one kernelspec on one worker: ``ready`` started kernels (their process ids), how many are
    ``starting``, and since the worker started how many were handed to runs (``claimed``), started cold because the
    pool was empty or off (``cold``), and found dead in the pool and replaced (``replaced``)."""

    kernel: str
    environment: str
    size: int
    ready: int
    starting: int
    claimed: int
    cold: int
    replaced: int
    ready_pids: list[int]
    preload: list[str]

    @classmethod
    def of(cls, data: dict[str, Any]) -> KernelPoolState:
        return cls(
            kernel=str(data["kernel"]),
            environment=str(data.get("environment") or ""),
            size=int(data.get("size") or 0),
            ready=int(data.get("ready") or 0),
            starting=int(data.get("starting") or 0),
            claimed=int(data.get("claimed") or 0),
            cold=int(data.get("cold") or 0),
            replaced=int(data.get("replaced") or 0),
            ready_pids=[int(p) for p in data.get("ready_pids") or []],
            preload=[str(m) for m in data.get("preload") or []],
        )


@dataclass(frozen=True)
class WorkerKernels(Record):
    """What one Dask worker can run (its kernelspecs, found in its own environment) and its warm pool."""

    worker: str
    kernelspecs: list[KernelSpecInfo]
    pool: list[KernelPoolState]
    error: str | None = None


@dataclass(frozen=True)
class KernelList(Record):
    """``GET /kernels``: every worker's kernelspecs and pools, and the names any worker can run."""

    workers: list[WorkerKernels]
    names: list[str]
    pool_size: int
    pooled: list[str]

    def find(self, name: str) -> KernelSpecInfo | None:
        """The kernelspec ``name`` as the first worker that has it describes it (``None`` when none has it)."""
        for worker in self.workers:
            for spec in worker.kernelspecs:
                if spec.name == name:
                    return spec
        return None
