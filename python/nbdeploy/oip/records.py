"""Typed records of the Open Inference Protocol's REST API (KServe V2): what the handlers take and answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..schema import R, Record

__all__ = [
    "DATATYPES",
    "InferRequest",
    "InferResponse",
    "Live",
    "ModelMetadata",
    "ModelReady",
    "Ready",
    "RequestedOutput",
    "ServerMetadata",
    "Tensor",
    "TensorInput",
    "TensorMetadata",
]

Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"
]
DATATYPES: tuple[str, ...] = Datatype.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TensorInput(Record):
    """One input tensor: its ``data`` row-major, flat or nested to ``shape`` (absent with binary data)."""

    request = True
    extra_fields = True
    name: str
    shape: list[int]
    datatype: Datatype
    data: Any = None
    parameters: dict[str, Any] | None = None


@dataclass(frozen=True)
class RequestedOutput(Record):
    """An output the client asks for by name (answered as JSON data)."""

    request = True
    extra_fields = True
    name: str
    parameters: dict[str, Any] | None = None


@dataclass(frozen=True)
class InferRequest(Record):
    """``POST /v2/models/{name}/infer``: typed input tensors (one per signature column, or one whole table)."""

    request = True
    extra_fields = True
    inputs: list[TensorInput]
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[RequestedOutput] | None = None

    @classmethod
    def parse(cls: type[R], data: Any, where: str = "", label: str = "") -> R:
        """:meth:`Record.parse`, with a fast path for the usual request: when ``data`` has the plain shape
        :func:`_plain_request` checks (which the schema accepts) the records are built directly; anything else
        (errors included) goes through the full schema validation, so what is refused, and how, is unchanged."""
        fast = _plain_request(data)
        if fast is not None:
            return fast  # type: ignore[return-value]  # R is InferRequest here
        return super().parse(data, where, label)


@dataclass(frozen=True)
class Tensor(Record):
    """An output tensor: ``data`` flat, row-major."""

    name: str
    datatype: Datatype
    shape: list[int]
    data: list[Any]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape, "data": self.data}


@dataclass(frozen=True)
class InferResponse(Record):
    """The answer of an inference: the version that answered and the output tensors."""

    model_name: str
    model_version: str
    id: str | None
    outputs: list[Tensor]

    def to_json(self) -> dict[str, Any]:
        # what Record.to_json gives (every field is JSON already; a tensor's values are encoded as JSON is sent),
        # without its generic walk: this is on every inference's path
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "id": self.id,
            "outputs": [t.to_json() for t in self.outputs],
        }


@dataclass(frozen=True)
class TensorMetadata(Record):
    """A tensor a model takes or gives: name, datatype, shape (``-1``: any length)."""

    name: str
    datatype: Datatype
    shape: list[int]


@dataclass(frozen=True)
class ModelMetadata(Record):
    """A model as the Open Inference Protocol describes it (its inputs from the version's signature)."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


@dataclass(frozen=True)
class ServerMetadata(Record):
    """``GET /v2``: the server's name, version and protocol extensions."""

    name: str
    version: str
    extensions: list[str]


@dataclass(frozen=True)
class Live(Record):
    """``GET /v2/health/live``."""

    live: bool


@dataclass(frozen=True)
class Ready(Record):
    """``GET /v2/health/ready``."""

    ready: bool


@dataclass(frozen=True)
class ModelReady(Record):
    """``GET /v2/models/{name}/ready``: the model has a version to serve."""

    name: str
    ready: bool


# --- the fast path of InferRequest.parse --------------------------------------------------------------------
_SCALARS = (str, int, float, bool, type(None))
_DATATYPE_SET = frozenset(DATATYPES)
_REQUEST_KEYS = frozenset(("inputs", "id", "parameters", "outputs"))
_TENSOR_KEYS = frozenset(("name", "shape", "datatype", "data", "parameters"))
_OUTPUT_KEYS = frozenset(("name", "parameters"))
_PLAIN_DEPTH = 8  # nested lists of ``data`` the fast path takes (deeper ones are validated in full)


def _plain_values(value: Any, depth: int) -> bool:
    """``value`` is a list of JSON scalars, or of such lists, nested at most ``depth`` deep."""
    if type(value) is not list:
        return False
    for item in value:
        if type(item) not in _SCALARS and (depth <= 1 or not _plain_values(item, depth - 1)):
            return False
    return True


def _plain_parameters(value: Any) -> bool:
    return value is None or (type(value) is dict and all(type(v) in _SCALARS for v in value.values()))


def _plain_object(value: Any, keys: frozenset[str]) -> bool:
    """``value`` is a JSON object with no key but ``keys``."""
    return type(value) is dict and keys.issuperset(value)


def _given(record: R, keys: frozenset[str], data: dict[str, Any]) -> R:
    """``record`` marked with the fields ``data`` gave, as :meth:`Record.parse` marks it (``given()``)."""
    object.__setattr__(record, "_given", frozenset(keys.intersection(data)))
    return record


def _plain_request(data: Any) -> InferRequest | None:
    """The request ``data`` stands for when it is plainly valid, else ``None`` (then the schema decides).

    Plain: only the protocol's keys; ``inputs`` a list of tensors with a string ``name``, a ``shape`` of whole
    numbers, a known ``datatype``, ``data`` absent, null or nested lists of JSON scalars, ``parameters`` absent,
    null or an object of scalars; ``id`` absent, null or a string; ``outputs`` absent, null or a list of
    ``{"name", "parameters"}``. Every such request satisfies :meth:`InferRequest.json_schema` and nests far less than
    the depth limit, and the records built are those :meth:`Record.parse` builds (``given()`` included)."""
    if not _plain_object(data, _REQUEST_KEYS):
        return None
    raw_inputs = data.get("inputs")
    if type(raw_inputs) is not list:
        return None
    inputs = []
    for t in raw_inputs:
        if not _plain_object(t, _TENSOR_KEYS):
            return None
        name, shape, datatype = t.get("name"), t.get("shape"), t.get("datatype")
        values, parameters = t.get("data"), t.get("parameters")
        if (
            type(name) is not str
            or type(shape) is not list
            or any(type(d) is not int for d in shape)
            or type(datatype) is not str
            or datatype not in _DATATYPE_SET
            or (values is not None and not _plain_values(values, _PLAIN_DEPTH))
            or not _plain_parameters(parameters)
        ):
            return None
        tensor = TensorInput(name, list(shape), datatype, values, parameters)  # type: ignore[arg-type]  # one of DATATYPES
        inputs.append(_given(tensor, _TENSOR_KEYS, t))
    request_id, parameters, raw_outputs = data.get("id"), data.get("parameters"), data.get("outputs")
    if (request_id is not None and type(request_id) is not str) or not _plain_parameters(parameters):
        return None
    outputs: list[RequestedOutput] | None = None
    if raw_outputs is not None:
        if type(raw_outputs) is not list:
            return None
        outputs = []
        for o in raw_outputs:
            if not _plain_object(o, _OUTPUT_KEYS):
                return None
            if type(o.get("name")) is not str or not _plain_parameters(o.get("parameters")):
                return None
            outputs.append(_given(RequestedOutput(o["name"], o.get("parameters")), _OUTPUT_KEYS, o))
    return _given(InferRequest(inputs, request_id, parameters, outputs), _REQUEST_KEYS, data)
