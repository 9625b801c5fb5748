"""nbdeploy: notebooks into deployed functions, scheduled papermill jobs and served models, on Dask.

``import nbdeploy as nbd`` gives the public API; everything heavy (Dask, papermill, jupyter-server) is
imported lazily, on first use.
"""

from __future__ import annotations

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
    "get_settings",
    "store",
]
