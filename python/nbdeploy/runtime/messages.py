"""What servers and serving replicas on the workers say to each other: one typed call, one typed outcome.

They travel pickled (over the direct channel or Dask's actor RPC), so both sides import these classes; a
user's exception never crosses as a Python exception, always as an :class:`Outcome` with its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FunctionCall", "ModelCall", "Outcome"]

#: ``ok``: it ran; ``error``: the user's code raised; ``invalid``: the input does not fit the model or function
#: (the caller's fault, a 4xx); ``load_error``: the worker could not load the version (a cluster fault).
Status = Literal["ok", "error", "invalid", "load_error"]


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One call of a deployed function version: ``label`` (``"greet v3"``) names it in tracebacks."""

    sha256: str
    label: str
    arguments: dict[str, Any]
    as_json: bool = False
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One predict request of a model version: rows of ``kind`` "frame" (with ``columns``) or "array"."""

    sha256: str
    kind: str
    columns: tuple[str, ...] | None
    rows: list[Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one call.

    ``value`` is the result (a JSON string when the call asked for JSON, or the predictions' JSON); for a
    failure ``error_type``, ``message``, ``traceback`` (the user's) and, for ``invalid``, ``fields`` (what is
    wrong per field). ``duration_ms`` is the time the user's code took; ``batch_rows`` how many rows the
    model predicted in the batch that carried this call.
    """

    status: Status
    value: Any = None
    error_type: str = ""
    message: str = ""
    traceback: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    duration_ms: float = 0.0
    batch_rows: int = 0

    @classmethod
    def failed(cls, status: Status, exc: BaseException, message: str | None = None, tb: str = "") -> Outcome:
        """An outcome for ``exc`` (its type name, ``message`` or its text, and a traceback)."""
        return cls(status, error_type=type(exc).__name__, message=message or str(exc), traceback=tb)

    @property
    def ok(self) -> bool:
        return self.status == "ok"
