"""The timing breakdown a run records (``RunInfo.timings``): where its time went, from the ledger's timestamps
and what its worker measured (see :func:`nbdeploy.jobs.ledger.run_timings`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..schema import Record

__all__ = ["RunTimings"]


@dataclass(frozen=True)
class RunTimings(Record):
    """Where an attempt's time went, in seconds: ``queue`` (queued to claimed by a dispatcher), ``dispatch`` (to the
    task starting on its worker), ``kernel`` (claiming a warm kernel, or starting one: ``kernel_source`` is ``pool``
    or ``started``, connected and given the run's environment), ``to_first_cell`` (claimed to the first cell
    starting), ``cells`` (the notebook's cells), ``upload`` (output and log into the store), ``total`` (claimed to
    finished)."""

    queue: float | None = None
    dispatch: float | None = None
    kernel: float | None = None
    kernel_source: str | None = None
    to_first_cell: float | None = None
    cells: float | None = None
    upload: float | None = None
    total: float | None = None

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> RunTimings | None:
        if not data:
            return None
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if data.get(k) is not None})
