"""Typed records of the Open Inference Protocol's REST API (KServe V2): what the handlers take and answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..schema import Record

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


@dataclass(frozen=True)
class Tensor(Record):
    """An output tensor: ``data`` flat, row-major."""

    name: str
    datatype: Datatype
    shape: list[int]
    data: list[Any]


@dataclass(frozen=True)
class InferResponse(Record):
    """The answer of an inference: the version that answered and the output tensors."""

    model_name: str
    model_version: str
    id: str | None
    outputs: list[Tensor]


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
