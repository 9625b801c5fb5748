"""What servers and serving replicas on the workers say to each other: one typed call, one typed outcome.

They travel pickled (over the direct channel or Dask's actor RPC), so both sides import these classes; a
user's exception never crosses as a Python exception, always as an :class:`Outcome` with its traceback. Each
call and each outcome is pickled on its own (:func:`encode_call`, :func:`encode_outcome`): a call that cannot be
pickled, read on the worker or sent back fails alone, never its batch, its replica or other callers.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

__all__ = [
    "MAX_CALL_BYTES",
    "EncodingError",
    "FunctionCall",
    "ModelCall",
    "Outcome",
    "decode_call",
    "decode_calls",
    "decode_outcome",
    "encode_call",
    "encode_outcome",
    "merge_outcomes",
]

#: ``ok``: it ran; ``error``: the user's code raised; ``invalid``: the input does not fit the model or function
#: (the caller's fault, a 4xx); ``load_error``: the worker could not load the version (a cluster fault).
Status = Literal["ok", "error", "invalid", "load_error"]

_T = TypeVar("_T", bound=type)


def _pickled_as_fields(cls: _T) -> _T:
    """Pickle the dataclass ``cls`` as its constructor and its fields' values, in order: a plain tuple, half the time
    of a slotted dataclass's state (calls and outcomes are pickled one by one on every request)."""
    state: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*(f.name for f in dataclasses.fields(cls)))

    def __reduce__(self: Any) -> tuple[Any, ...]:
        return (cls, state(self))

    cls.__reduce__ = __reduce__  # type: ignore[method-assign,assignment]
    return cls


@_pickled_as_fields
@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One call of a deployed function version: ``label`` (``"greet v3"``) names it in tracebacks."""

    sha256: str
    label: str
    arguments: dict[str, Any]
    as_json: bool = False
    timeout: float | None = None


@_pickled_as_fields
@dataclass(frozen=True, slots=True)
class ModelCall:
    """One predict request of a model version: rows of ``kind`` "frame" (with ``columns``) or "array"."""

    sha256: str
    kind: str
    columns: tuple[str, ...] | None
    rows: list[Any]


@_pickled_as_fields
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


# --- one call, one payload ------------------------------------------------------------------------------------
# Each call and each outcome travels as a pickle of its own, so a call whose arguments cannot be pickled (or
# unpickled on the worker, or are too large) fails alone: its caller gets a 4xx, the batch and the replica are
# untouched. The batch itself is a list of bytes, which always pickles.

#: ``error_type`` of the outcome of a call the worker could not unpickle (a 400 for its caller)
UNREADABLE = "UnreadableCallError"
#: the largest one call (or one outcome) may be once pickled; a channel frame holds at most 4 GiB
MAX_CALL_BYTES = 1 << 30


class EncodingError(ValueError):
    """One call or outcome could not be pickled (or unpickled): its own fault, never its batch's or replica's."""


def _pickle(obj: Any) -> bytes:
    import pickle

    try:
        return pickle.dumps(obj, protocol=5)
    except RecursionError as exc:
        raise EncodingError("it nests too deeply to be sent (a RecursionError while pickling)") from exc
    except Exception:  # lambdas, classes defined in a notebook: what Dask itself would cloudpickle
        import cloudpickle

        try:
            return cloudpickle.dumps(obj, protocol=5)
        except RecursionError as exc:
            raise EncodingError("it nests too deeply to be sent (a RecursionError while pickling)") from exc
        except Exception as exc:
            raise EncodingError(f"it cannot be pickled: {type(exc).__name__}: {exc}") from exc


def encode_call(call: Any) -> bytes:
    """Pickle one call for a worker. Raises :class:`InvalidInputError` (400) when its arguments cannot be
    pickled or nest too deeply, and :class:`PayloadTooLargeError` (413) past :data:`MAX_CALL_BYTES`."""
    from ..exceptions import InvalidInputError, PayloadTooLargeError

    try:
        payload = _pickle(call)
    except EncodingError as exc:
        raise InvalidInputError(f"the call's input cannot be sent to a worker: {exc}", "arguments") from exc
    if len(payload) > MAX_CALL_BYTES:
        raise PayloadTooLargeError(
            f"the call's input is {len(payload):,d} bytes once pickled, over the limit of {MAX_CALL_BYTES:,d}: "
            "send large data through the store (nbd.datasets or a URL) and pass its name"
        )
    return payload


def decode_call(payload: bytes | bytearray | memoryview) -> Any:
    """Unpickle one call on the worker; an :class:`Outcome` (``invalid``) in its place when it cannot be read
    there (e.g. an argument of a class the worker cannot import)."""
    import pickle

    try:
        return pickle.loads(payload)
    except Exception as exc:
        return Outcome(
            "invalid",
            error_type=UNREADABLE,
            message=f"the worker could not read this call's input: {type(exc).__name__}: {exc} (is every class "
            "in the arguments importable on the workers?)",
            fields={"arguments": str(exc)[:200]},
        )


def encode_outcome(outcome: Outcome, label: str = "the call") -> bytes:
    """Pickle one outcome on the worker; when its value cannot be pickled or is too large, an ``error`` outcome
    naming the user's code (a 500) is sent in its place."""
    try:
        payload = _pickle(outcome)
    except EncodingError as exc:
        message = f"the result of {label} cannot be sent back from the worker: {exc}; return plain data"
        return _pickle(Outcome("error", error_type="ResultEncodingError", message=message))
    if len(payload) > MAX_CALL_BYTES:
        message = (
            f"the result of {label} is {len(payload):,d} bytes once pickled, over the limit of {MAX_CALL_BYTES:,d}: "
            "write large results to the store and return their name"
        )
        return _pickle(Outcome("error", error_type="ResultTooLargeError", message=message))
    return payload


def decode_outcome(payload: bytes) -> Outcome:
    """Unpickle one outcome in the server (an ``error`` outcome when it cannot be read here)."""
    import pickle

    try:
        outcome = pickle.loads(payload)
    except Exception as exc:
        message = (
            f"the worker's answer cannot be read in this process: {type(exc).__name__}: {exc} (a result of a class "
            "this process cannot import?)"
        )
        return Outcome("error", error_type="ResultEncodingError", message=message)
    return outcome if isinstance(outcome, Outcome) else Outcome("ok", outcome)


def decode_calls(payloads: list[Any]) -> tuple[list[Any], dict[int, Outcome]]:
    """The calls of a batch (payloads, or calls already unpickled by Dask's RPC) and, by position, the outcomes
    of those that could not be read."""
    calls: list[Any] = []
    failed: dict[int, Outcome] = {}
    for i, payload in enumerate(payloads):
        call = decode_call(payload) if isinstance(payload, bytes | bytearray | memoryview) else payload
        if isinstance(call, Outcome):
            failed[i] = call
        else:
            calls.append(call)
    return calls, failed


def merge_outcomes(total: int, outcomes: list[Any], failed: dict[int, Any]) -> list[Any]:
    """Put the outcomes of the readable calls back between those of the unreadable ones (by position)."""
    if not failed:
        return outcomes
    it = iter(outcomes)
    return [failed[i] if i in failed else next(it) for i in range(total)]
