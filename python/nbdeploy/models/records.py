"""The typed results and requests of the models service: what :class:`ModelManager` returns and the REST API
sends and parses."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..forms import FormField
from ..schema import Id, ListRecord, Name, Record, VersionNumber
from ..store import Version

__all__ = [
    "AliasSet",
    "ModelInfo",
    "ModelList",
    "ModelReport",
    "ModelSignature",
    "ModelVersion",
    "PredictQuery",
    "PredictResult",
    "Prediction",
    "SignatureColumn",
]


@dataclass(frozen=True)
class SignatureColumn(Record):
    """One input column of a model: its name and pandas dtype."""

    name: str
    dtype: str


@dataclass(frozen=True)
class ModelSignature(Record):
    """A model's input, inferred from ``sample_input`` at ``put``: named columns of a DataFrame (``columns``), or
    an array's shape (first axis free, -1) and dtype."""

    type: Literal["dataframe", "ndarray"]
    columns: list[SignatureColumn] | None = None
    shape: list[int] | None = None
    dtype: str | None = None

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> ModelSignature | None:
        if not data:
            return None
        if data.get("type") == "dataframe":
            columns = [SignatureColumn(str(c["name"]), str(c["dtype"])) for c in data.get("columns", [])]
            return cls("dataframe", columns=columns)
        return cls("ndarray", shape=[int(n) for n in data.get("shape", [])], dtype=str(data.get("dtype", "")))


@dataclass(frozen=True)
class ModelVersion(Record):
    """One stored model version: its flavor and format, input signature, metrics, params, tags, the library
    versions it was stored with, its aliases, what predictions call (``method``) and its predict route."""

    name: str
    version: int
    flavor: str
    format: str
    created_at: datetime
    sha256: str
    size: int
    signature: ModelSignature | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    libraries: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    owner: str | None = None
    method: str = "predict"
    serving: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    note: str = ""
    path: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    json_exclude = ("metadata",)

    @classmethod
    def from_version(cls, v: Version) -> ModelVersion:
        m = v.metadata
        return cls(
            name=v.name,
            version=v.version,
            flavor=m.get("flavor", "generic"),
            format=m.get("format", ""),
            created_at=v.created_at,
            sha256=v.sha256,
            size=v.size,
            signature=ModelSignature.of(m.get("signature")),
            metrics=dict(m.get("metrics") or {}),
            params=dict(m.get("params") or {}),
            tags=dict(m.get("tags") or {}),
            libraries=dict(m.get("libraries") or {}),
            aliases=v.aliases,
            owner=v.owner,
            method=m.get("method", "predict"),
            serving=dict(m.get("serving") or {}),
            description=m.get("description") or "",
            note=m.get("note", ""),
            path=f"/nbdeploy/api/models/{v.name}/predict",
            metadata=m,
        )


@dataclass(frozen=True)
class ModelList(ListRecord):
    """Every model's newest version (``GET /models``)."""

    models: list[ModelVersion]


@dataclass(frozen=True)
class ModelInfo(Record):
    """A model: its newest version, every version, its aliases (alias -> version), an example payload of its
    predict route and, for a model of named columns, the form to try one row with."""

    name: str
    latest: ModelVersion
    versions: list[ModelVersion]
    aliases: dict[str, int]
    example: dict[str, Any] | None
    form: list[FormField]


@dataclass(frozen=True)
class Prediction:
    """One request's answer: predictions (as a JSON string), the version that made them, server time."""

    predictions_json: str
    version: int
    duration_ms: float
    batch_rows: int = 0

    @property
    def predictions(self) -> Any:
        return json.loads(self.predictions_json)


@dataclass(frozen=True)
class PredictResult(Record):
    """The body of a predict answer: the predictions (one per input row) and the version that made them."""

    predictions: list[Any]
    version: int


@dataclass(frozen=True)
class ModelReport(Record):
    """Serving statistics of a model over every process that served it, and the input drift of a version."""

    name: str
    stats: dict[str, Any]
    drift: dict[str, Any]


@dataclass(frozen=True)
class AliasSet(Record):
    """``PUT /models/{name}/aliases/{alias}``: the version the alias points at."""

    request = True
    version: VersionNumber


@dataclass(frozen=True)
class PredictQuery(Record):
    """Which version answers: ``?version=N`` or ``?alias=production`` (the newest without either)."""

    request = True
    version: Id | None = None
    alias: Name | None = None
