"""Functions: ``%%deploy`` a cell (or ``nbd.deploy(fn)``), get a versioned HTTP endpoint, invoke it anywhere.

The module-level functions use one process-wide :class:`FunctionManager` over the default store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..store import Version
from .manager import Deployment, FunctionManager, Invocation

__all__ = [
    "Deployment",
    "FunctionManager",
    "Invocation",
    "default_manager",
    "delete",
    "deploy",
    "deploy_file",
    "get",
    "invoke",
    "list",
    "submit",
    "versions",
]

_manager: FunctionManager | None = None


def default_manager() -> FunctionManager:
    """The process-wide manager (over the default store, which follows the settings)."""
    global _manager
    if _manager is None:
        _manager = FunctionManager()
    return _manager


def deploy(
    fn: Callable[..., Any] | None = None,
    name: str | None = None,
    *,
    capture: Iterable[str] | None = None,
    requirements: str | Iterable[str] | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> Any:
    """Deploy ``fn`` (or decorate: ``@nbd.deploy(name="greet")``); see :meth:`FunctionManager.deploy`."""
    return default_manager().deploy(
        fn, name, capture=capture, requirements=requirements, description=description, timeout=timeout
    )


def deploy_file(path: str | Path, name: str | None = None, *, handler: str | None = None, **options: Any) -> Deployment:
    """Deploy a handler from a ``.py`` file or a notebook."""
    return default_manager().deploy_file(path, name, handler=handler, **options)


def invoke(name: str, /, *, version: int | str | None = None, **kwargs: Any) -> Any:
    """Call a deployed function with keyword arguments and return its result."""
    return default_manager().invoke(name, version=version, **kwargs)


def submit(name: str, /, *, version: int | str | None = None, **kwargs: Any) -> Any:
    """Run a call as a plain Dask task; returns a ``distributed.Future``."""
    return default_manager().submit(name, version=version, **kwargs)


def list() -> list[dict[str, Any]]:
    """Summaries of every deployed function."""
    return default_manager().list()


def get(name: str) -> dict[str, Any]:
    """The newest version of ``name`` with its signature and every version."""
    return default_manager().get(name)


def versions(name: str) -> list[Version]:  # type: ignore[valid-type]
    """Every version of ``name``, oldest first."""
    return default_manager().versions(name)


def delete(name: str) -> int:
    """Delete every version of ``name``."""
    return default_manager().delete(name)
