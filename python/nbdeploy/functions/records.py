"""The typed results of the functions service: what :class:`FunctionManager` returns and the REST API sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..forms import FormField
from ..schema import ListRecord, Record
from ..store import Version

__all__ = [
    "Deployment",
    "FunctionInfo",
    "FunctionList",
    "FunctionStats",
    "FunctionSummary",
    "FunctionVersion",
    "InvokeResult",
]

API_PATH = "/nbdeploy/api/functions/{}/invoke"


@dataclass(frozen=True)
class FunctionSummary(Record):
    """A deployed function's newest version: when, by whom, what it does and where to call it."""

    name: str
    version: int
    created_at: datetime
    owner: str | None
    description: str
    handler: str | None
    path: str
    aliases: tuple[str, ...] = ()

    @classmethod
    def of(cls, v: Version) -> FunctionSummary:
        meta = v.metadata
        return cls(
            name=v.name,
            version=v.version,
            created_at=v.created_at,
            owner=v.owner,
            description=meta.get("description", ""),
            handler=meta.get("handler"),
            path=API_PATH.format(v.name),
            aliases=v.aliases,
        )


@dataclass(frozen=True)
class FunctionList(ListRecord):
    """Every deployed function (``GET /functions``)."""

    functions: list[FunctionSummary]


@dataclass(frozen=True)
class FunctionVersion(Record):
    """One version of a function."""

    version: int
    created_at: datetime
    sha256: str
    size: int
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class FunctionInfo(Record):
    """A function with its signature (JSON schemas of its arguments and result) and the form to call it with,
    requirements, captured globals, timeout, source and every version; ``aliases`` maps each alias to the
    version it names."""

    name: str
    latest_version: int
    created_at: datetime
    owner: str | None
    description: str
    handler: str | None
    path: str
    signature: dict[str, Any]
    form: list[FormField]
    requirements: dict[str, str]
    captured: dict[str, str]
    timeout: float
    source: str
    aliases: dict[str, int]
    versions: list[FunctionVersion]


@dataclass(frozen=True)
class Deployment(Record):
    """What a deploy stored: the version, its invoke path, and warnings (e.g. packages the workers lack)."""

    version: Version
    path: str
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def signature(self) -> dict[str, Any]:
        return self.version.metadata.get("signature", {})


@dataclass(frozen=True)
class InvokeResult(Record):
    """One call's answer: the function's result, the version that ran and the server-side time it took."""

    result: Any
    version: int
    duration_ms: float
    result_json: str | None = field(default=None, repr=False)

    json_exclude = ("result_json",)


@dataclass(frozen=True)
class FunctionStats(Record):
    """Serving statistics of a function over every server that served it (``GET /functions/{name}/stats``): the
    calls over HTTP (REST invoke, Open Inference Protocol), errors, calls per HTTP status, latency in milliseconds
    (``mean``/``p50``/``p99``/``max`` of the latest calls; ``p50_le``/``p99_le``: the histogram bucket that holds
    them over every call) and the latency histogram (``le_ms``: bucket upper bounds, ``"+Inf"`` last; ``counts``)."""

    name: str
    processes: int
    requests: int
    errors: int
    statuses: dict[str, int]
    latency_ms: dict[str, Any]
    histogram: dict[str, Any]

    @classmethod
    def of(cls, name: str, stats: dict[str, Any]) -> FunctionStats:
        """From what :meth:`FunctionManager.stats` returns (the raw latencies left out)."""
        return cls(
            name=name,
            processes=int(stats.get("processes", 0)),
            requests=int(stats.get("requests", 0)),
            errors=int(stats.get("errors", 0)),
            statuses=dict(stats.get("statuses") or {}),
            latency_ms=dict(stats.get("latency_ms") or {}),
            histogram=dict(stats.get("histogram") or {}),
        )
