"""The nbdeploy error tree.

Every failure nbdeploy raises on purpose is an :class:`NbdeployError` whose message says what went wrong
and what to do about it. REST handlers map the tree onto HTTP status codes through ``http_status``::

    NbdeployError (500)
    ├── ConfigError (500)                 a setting is malformed
    ├── MissingDependencyError (500)      an optional package is not installed (message holds the pip hint)
    ├── InvalidInputError (400)           malformed input; ``field`` names the offending field
    │   └── InvalidNameError (400)        a name breaks ^[a-z0-9][a-z0-9._-]{0,63}$
    ├── SignatureError (422)              input fails a function's or model's signature; ``errors`` per field
    ├── AuthError (401)                   missing or wrong credentials
    ├── ForbiddenError (403)              the credentials do not allow this (a token's scopes)
    ├── NotFoundError (404)               unknown name, version, alias, run, …
    ├── ConflictError (409)               the request conflicts with the current state
    ├── PayloadTooLargeError (413)        a request body over the limit
    ├── UnsupportedMediaTypeError (415)   a request body of a content type the route does not take
    ├── StoreError (500)                  the artifact store or the catalog failed
    ├── ClusterError (502)                the Dask cluster is unreachable or a worker died
    │   └── ClusterTimeoutError (504)     the cluster or a task did not answer in time
    ├── UserCodeError (500)               the user's own code raised; carries ``type``, ``message``, ``traceback``
    └── RunFailedError (500)              a job run ended failed, cancelled or timed out (``run.raise_for_status()``)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "ClusterError",
    "ClusterTimeoutError",
    "ConfigError",
    "ConflictError",
    "ForbiddenError",
    "InvalidInputError",
    "InvalidNameError",
    "MissingDependencyError",
    "NbdeployError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RunFailedError",
    "SignatureError",
    "StoreError",
    "UnsupportedMediaTypeError",
    "UserCodeError",
]


class NbdeployError(Exception):
    """Base class of every error nbdeploy raises on purpose."""

    http_status: int = 500

    def to_json(self) -> dict[str, Any]:
        """Return the JSON error body the REST API sends for this error."""
        return {"error": {"type": type(self).__name__, "message": str(self)}}


class ConfigError(NbdeployError):
    """A setting has a value nbdeploy cannot use."""


class MissingDependencyError(NbdeployError, ImportError):
    """An optional package is needed for what was asked; the message carries the install hint."""

    def __init__(self, what: str, package: str, extra: str | None = None) -> None:
        hint = f'pip install "nbdeploy[{extra}]"' if extra else f"pip install {package}"
        super().__init__(f"{what} needs the package {package!r}, which is not installed: run `{hint}`.")
        self.package = package


class InvalidInputError(NbdeployError, ValueError):
    """Malformed input; ``field`` names the offending field when there is one."""

    http_status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def to_json(self) -> dict[str, Any]:
        body = super().to_json()
        if self.field is not None:
            body["error"]["field"] = self.field
        return body


class InvalidNameError(InvalidInputError):
    """A name that does not match ``^[a-z0-9][a-z0-9._-]{0,63}$``."""


class SignatureError(NbdeployError, ValueError):
    """Input that does not fit a function's or model's signature; ``errors`` maps each field to its fault."""

    http_status = 422

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = dict(errors or {})

    def to_json(self) -> dict[str, Any]:
        body = super().to_json()
        body["error"]["fields"] = self.errors
        return body


class AuthError(NbdeployError):
    """Missing or wrong credentials."""

    http_status = 401


class ForbiddenError(NbdeployError):
    """The credentials are valid but do not allow this request (a token without the scope it needs)."""

    http_status = 403


class NotFoundError(NbdeployError, LookupError):
    """An unknown name, version, alias or id."""

    http_status = 404


class ConflictError(NbdeployError):
    """The request conflicts with the current state (e.g. deleting an aliased version)."""

    http_status = 409


class PayloadTooLargeError(NbdeployError):
    """A request body over the configured limit."""

    http_status = 413


class UnsupportedMediaTypeError(NbdeployError):
    """A request body of a content type the route does not accept."""

    http_status = 415


class StoreError(NbdeployError, OSError):
    """The artifact store or the catalog failed."""


class ClusterError(NbdeployError):
    """The Dask cluster could not be reached, or a worker died under a task."""

    http_status = 502


class ClusterTimeoutError(ClusterError, TimeoutError):
    """The cluster or a task did not answer within its time limit."""

    http_status = 504


class UserCodeError(NbdeployError):
    """The user's own code raised. ``type``, ``message`` and ``traceback`` describe the original exception."""

    http_status = 500

    def __init__(self, type_: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{type_}: {message}")
        self.type = type_
        self.message = message
        self.traceback = traceback

    def to_json(self, include_traceback: bool = True) -> dict[str, Any]:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if include_traceback:
            err["traceback"] = self.traceback
        return {"error": err}


class RunFailedError(NbdeployError):
    """A job run ended ``failed``, ``cancelled`` or ``timed_out`` (raised by ``run.raise_for_status()``); ``run``
    is its snapshot."""

    def __init__(self, run: Any) -> None:
        where = f" in cell {run.error_cell}" if run.error_cell is not None else ""
        super().__init__(
            f"run {run.id} of job {run.job!r} {run.status}{where}: {run.error_type or ''}: {run.error_message or ''}"
            f" — `nbdeploy runs log {run.id}` shows its log, `nbdeploy runs output {run.id}` its notebook"
        )
        self.run = run
