"""Lineage: which run wrote a dataset or model version, and which runs read it.

A read or write through the API is recorded when it happens inside a run: a job run or pipeline node (the
kernel's ``NBDEPLOY_RUN_ID``), a function call on a worker (:func:`running`, set by the function runner), or
an MLflow run active in this process (``mlflow.active_run()``, when mlflow is imported). Outside a run nothing
is recorded. Recording never fails the read or write it describes.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from ..store.tables import utcnow
from .tables import LineageRow

__all__ = ["current_run", "record", "running"]

log = logging.getLogger("nbdeploy.lineage")
_current: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("nbdeploy_run", default=None)


@contextlib.contextmanager
def running(run_kind: str, run_ref: str) -> Iterator[None]:
    """Within the block, reads and writes are recorded as done by run ``run_ref`` of kind ``run_kind``."""
    token = _current.set((run_kind, run_ref))
    try:
        yield
    finally:
        _current.reset(token)


def current_run() -> tuple[str, str] | None:
    """``(run_kind, run_ref)`` of the run this code executes in, or ``None`` outside any run."""
    explicit = _current.get()
    if explicit is not None:
        return explicit
    run_id = os.environ.get("NBDEPLOY_RUN_ID")
    if run_id:
        kind = "pipeline" if os.environ.get("NBDEPLOY_PIPELINE") else "job"
        return kind, run_id
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        try:
            active = mlflow.active_run()
        except Exception:
            active = None
        if active is not None:
            return "tracked", str(active.info.run_id)
    return None


def record(catalog: Any, kind: str, name: str, version: int, direction: str) -> None:
    """Record that the current run read (``direction="read"``) or wrote a version; a no-op outside runs."""
    run = current_run()
    if run is None:
        return
    try:
        with catalog.session() as s:
            s.execute(
                sa.insert(LineageRow).values(
                    run_kind=run[0],
                    run_ref=run[1][:128],
                    kind=kind,
                    name=name,
                    version=int(version),
                    direction=direction,
                    at=utcnow(),
                )
            )
    except Exception:  # lineage is a record of what happened: it never breaks the read or write itself
        log.warning("could not record the lineage of %s %s v%s", kind, name, version, exc_info=True)


def entries(catalog: Any, kind: str, name: str) -> list[LineageRow]:
    """Every lineage row of ``kind/name``, oldest first."""
    with catalog.session(readonly=True) as s:
        return list(
            s.scalars(
                sa.select(LineageRow).where(LineageRow.kind == kind, LineageRow.name == name).order_by(LineageRow.id)
            )
        )


def of_run(catalog: Any, run_kind: str, run_ref: str) -> list[LineageRow]:
    """What one run read and wrote, oldest first."""
    with catalog.session(readonly=True) as s:
        return list(
            s.scalars(
                sa.select(LineageRow)
                .where(LineageRow.run_kind == run_kind, LineageRow.run_ref == str(run_ref))
                .order_by(LineageRow.id)
            )
        )
