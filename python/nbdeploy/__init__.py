"""nbdeploy: notebooks into deployed functions, scheduled papermill jobs and served models, on Dask.

``import nbdeploy as nbd`` gives the public API: ``nbd.Nbdeploy(settings)`` builds the one API object
(``app.functions``, ``app.jobs``, ``app.schedules``, ``app.runs``, ``app.models``, ``app.store``,
``app.runtime``, also ``nbd.cluster``); ``nbd.deploy``, ``nbd.invoke``, ``nbd.jobs.run``, ``nbd.schedules.add``, ``nbd.runs.list``,
``nbd.pipelines.run``, ``nbd.output`` (inside a pipeline node), ``nbd.models.put`` … call the managers of a default instance built from the settings. Everything heavy (Dask,
papermill, jupyter-server) is imported lazily, on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .app import EXPORTS, MANAGERS, Nbdeploy, default, export
from .config import Settings, get_settings
from .exceptions import (
    AuthError,
    ClusterError,
    ClusterTimeoutError,
    ConfigError,
    ConflictError,
    InvalidInputError,
    InvalidNameError,
    MissingDependencyError,
    NbdeployError,
    NotFoundError,
    PayloadTooLargeError,
    RunFailedError,
    SignatureError,
    StoreError,
    UserCodeError,
)

# Service packages: ``nbd.functions.invoke`` etc. delegate to the default app's manager of the same name.
_PACKAGES = ("datasets", "functions", "jobs", "models", "pipelines", "runtime", "store", "tokens", "tracking")


def __getattr__(name: str) -> Any:
    if name in _PACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in EXPORTS:
        return export(name)
    if name in MANAGERS:  # managers without a package of their own: nbd.schedules, nbd.runs
        return default().__getattr__(name)
    if name == "cluster":  # the runtime manager by the name notebooks use: nbd.cluster.status(), .scale(n)
        return default().runtime
    raise AttributeError(f"module 'nbdeploy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PACKAGES) | set(EXPORTS) | set(MANAGERS) | {"cluster"})


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbdeploy``: register the nbdeploy magics."""
    from .magics import load_ipython_extension as load

    load(ipython)


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    from .server_extension.app import NbdeployExtension

    return [{"module": "nbdeploy", "app": NbdeployExtension}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "nbdeploy"}]


__all__ = [
    "AuthError",
    "ClusterError",
    "ClusterTimeoutError",
    "ConfigError",
    "ConflictError",
    "InvalidInputError",
    "InvalidNameError",
    "MissingDependencyError",
    "Nbdeploy",
    "NbdeployError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RunFailedError",
    "Settings",
    "SignatureError",
    "StoreError",
    "UserCodeError",
    "__version__",
    "cluster",
    "datasets",
    "default",
    "deploy",
    "functions",
    "get_settings",
    "invoke",
    "jobs",
    "log_artifact",
    "log_metric",
    "models",
    "output",
    "pipelines",
    "runs",
    "runtime",
    "schedules",
    "store",
    "tokens",
    "tracking",
]
