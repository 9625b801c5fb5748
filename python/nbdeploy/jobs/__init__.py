"""Jobs: notebooks run with papermill on the Dask cluster, now or on a cron schedule.

``nbd.jobs.put(path, "report")`` stores a version; ``nbd.jobs.parameters("report")`` shows its parameters;
``run = nbd.jobs.run("report", parameters={"day": "2026-01-01"})`` queues a run (``run.wait()``,
``run.status``, ``run.output()``, ``run.log()``, ``run.metrics``, ``run.cancel()``). Schedules are in
:mod:`nbdeploy.jobs.schedules` (``nbd.schedules``). Importing this module imports neither Dask nor papermill.
"""

from __future__ import annotations

import builtins
from typing import Any

from ..store import Version

__all__ = ["delete", "get", "info", "list", "parameters", "put", "run", "versions"]


def _manager() -> Any:
    from .manager import JobManager

    return JobManager()


def put(path_or_notebook: Any, name: str | None = None) -> Version:
    """Store a notebook (path, JSON, dict or NotebookNode) as the next version of job ``name``; return it."""
    return _manager().put(path_or_notebook, name)


def parameters(name: str, version: int | str | None = None) -> dict[str, dict[str, str]]:
    """The job's parameters: ``{name: {"name", "inferred_type_name", "default", "help"}}``."""
    return _manager().parameters(name, version)


def run(
    name: str,
    parameters: dict[str, Any] | None = None,
    kernel: str | None = None,
    timeout: float | None = None,
    retries: int = 0,
    version: int | str | None = None,
    notify: Any = None,
) -> Any:
    """Queue a run of job ``name`` and return its :class:`~nbdeploy.runs.Run` (see ``JobManager.run``)."""
    return _manager().run(
        name, parameters, kernel=kernel, timeout=timeout, retries=retries, version=version, notify=notify
    )


def get(name: str, version: int | str | None = None) -> Version:
    """The stored version of job ``name`` (newest by default)."""
    return _manager().get(name, version)


def info(name: str) -> dict[str, Any]:
    """Versions, parameters, kernel and schedules of job ``name``."""
    return _manager().info(name)


def versions(name: str) -> builtins.list[Version]:
    """Every version of job ``name``, oldest first."""
    return _manager().versions(name)


def list() -> builtins.list[Version]:
    """The newest version of every job."""
    return _manager().list()


def delete(name: str) -> int:
    """Delete job ``name`` (refused while a schedule uses it); return how many versions were deleted."""
    return _manager().delete(name)
