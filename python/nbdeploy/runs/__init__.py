"""Runs of jobs: ``nbd.runs.list()``, ``nbd.runs.get(id)``, and inside a job ``nbd.log_metric`` /
``nbd.log_artifact``.

Importing this module is cheap (no Dask, papermill or jupyter-server), so a job's kernel pays little for
``nbd.log_metric``.
"""

from __future__ import annotations

import builtins
from typing import Any

from .tracking import current_run, log_artifact, log_metric

__all__ = ["Run", "RunFailedError", "current_run", "get", "list", "log_artifact", "log_metric"]


def __getattr__(name: str) -> Any:
    if name in ("Run", "RunFailedError", "RunInfo", "RunManager"):
        from . import manager

        return getattr(manager, name)
    raise AttributeError(f"module 'nbdeploy.runs' has no attribute {name!r}")


def _manager() -> Any:
    from .manager import RunManager

    return RunManager()


def get(run_id: int) -> Any:
    """The :class:`Run` with this id; raises :class:`~nbdeploy.exceptions.NotFoundError`."""
    return _manager().get(run_id)


def list(job: str | None = None, status: str | None = None, limit: int = 100) -> builtins.list[Any]:
    """Runs, newest first, optionally of one job and in one status."""
    return _manager().list(job=job, status=status, limit=limit)
