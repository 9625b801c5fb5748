"""nbdeploy: notebooks into deployed functions, scheduled papermill jobs and served models, on Dask.

``import nbdeploy as nbd`` gives the public API; everything heavy (Dask, papermill, jupyter-server) is
imported lazily, on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import store
from ._version import __version__
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
    SignatureError,
    StoreError,
    UserCodeError,
)

# Public names imported on first use ("module" or "module:attribute"), so `import nbdeploy` stays cheap.
_LAZY: dict[str, str] = {
    "runtime": "nbdeploy.runtime",
    "functions": "nbdeploy.functions",
    "deploy": "nbdeploy.functions:deploy",
    "invoke": "nbdeploy.functions:invoke",
    "jobs": "nbdeploy.jobs",
    "schedules": "nbdeploy.jobs.schedules",
    "runs": "nbdeploy.runs",
    "log_metric": "nbdeploy.runs:log_metric",
    "log_artifact": "nbdeploy.runs:log_artifact",
    "models": "nbdeploy.models",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'nbdeploy' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = importlib.import_module(module)
    if attr:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    "NbdeployError",
    "NotFoundError",
    "PayloadTooLargeError",
    "Settings",
    "SignatureError",
    "StoreError",
    "UserCodeError",
    "__version__",
    "deploy",
    "functions",
    "get_settings",
    "invoke",
    "jobs",
    "log_artifact",
    "log_metric",
    "models",
    "runs",
    "runtime",
    "schedules",
    "store",
]
