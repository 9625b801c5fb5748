"""The typed results of the datasets service: what :class:`DatasetManager` returns and the REST API sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from ..schema import Record, Rule, VersionNumber
from ..store import Version

__all__ = [
    "Column",
    "DatasetDiff",
    "DatasetInfo",
    "DatasetList",
    "DatasetProfileInfo",
    "DatasetVersion",
    "Lineage",
    "LineageEvent",
    "LineageVersion",
    "Rows",
    "RowsQuery",
]


@dataclass(frozen=True)
class Column(Record):
    """A column of a dataset version: its name, Arrow type and whether it may hold nulls."""

    name: str
    type: str
    nullable: bool = True


@dataclass(frozen=True)
class DatasetVersion(Record):
    """One immutable version of a dataset: its columns, row count, size, content hash and where its Parquet files
    are (``url``: hand it to any tool that reads Parquet)."""

    name: str
    version: int
    created_at: datetime
    owner: str | None
    rows: int
    size: int
    sha256: str
    columns: list[Column]
    files: int
    url: str
    source: str
    description: str
    appended_to: int | None
    profiled: bool
    aliases: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    json_exclude = ("metadata",)

    @classmethod
    def of(cls, v: Version, store_url: str, profiled: bool = False) -> DatasetVersion:
        meta = v.metadata
        return cls(
            name=v.name,
            version=v.version,
            created_at=v.created_at,
            owner=v.owner,
            rows=int(meta.get("rows") or 0),
            size=v.size,
            sha256=v.sha256,
            columns=[Column(c["name"], c["type"], bool(c.get("nullable", True))) for c in meta.get("schema", [])],
            files=len(meta.get("files", [])),
            url=f"{store_url.rstrip('/')}/{meta.get('prefix', '')}",
            source=str(meta.get("source") or ""),
            description=str(meta.get("description") or ""),
            appended_to=meta.get("appended_to"),
            profiled=profiled,
            aliases=v.aliases,
            metadata=meta,
        )

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class DatasetList(Record):
    """Every dataset's newest version (``GET /datasets``)."""

    datasets: list[DatasetVersion]


@dataclass(frozen=True)
class DatasetInfo(Record):
    """A dataset: its newest version, every version and the aliases (alias -> version)."""

    name: str
    latest: DatasetVersion
    versions: list[DatasetVersion]
    aliases: dict[str, int]


@dataclass(frozen=True)
class DatasetDiff(Record):
    """How version ``v2`` differs from ``v1``: columns added, removed or retyped, and the row counts."""

    name: str
    v1: int
    v2: int
    added: list[Column]
    removed: list[Column]
    changed: list[dict[str, str]]
    rows_v1: int
    rows_v2: int
    rows_delta: int
    same_content: bool


@dataclass(frozen=True)
class LineageEvent(Record):
    """A run that read or wrote a version: ``run_kind`` (job, pipeline, function, tracked) and its reference
    (a job run id, ``function@version``, an MLflow run id), with a label to show."""

    run_kind: str
    run_ref: str
    label: str
    direction: str
    at: datetime


@dataclass(frozen=True)
class LineageVersion(Record):
    """One version's lineage: the run that produced it (``None`` when written outside a run) and the runs that
    read it."""

    version: int
    produced_by: LineageEvent | None
    read_by: list[LineageEvent]


@dataclass(frozen=True)
class Lineage(Record):
    """Which run produced each version of a dataset and which runs read it."""

    name: str
    versions: list[LineageVersion]


@dataclass(frozen=True)
class DatasetProfileInfo(Record):
    """A stored profile of a version: the engine, when and how long it took, and where its HTML report is."""

    name: str
    version: int
    engine: str
    created_at: datetime
    milliseconds: int | None
    html_path: str
    summary: dict[str, Any]


@dataclass(frozen=True)
class RowsQuery(Record):
    """The first rows of a version (``limit``), optionally only some ``columns`` (comma-separated)."""

    request = True
    limit: Annotated[int, Rule(minimum=1, maximum=1000)] = 20
    columns: Annotated[str, Rule(max_length=4096)] | None = None
    version: VersionNumber | None = None
    alias: Annotated[str, Rule(max_length=64)] | None = None


@dataclass(frozen=True)
class Rows(Record):
    """Rows of a version, as column names and row lists (JSON values)."""

    name: str
    version: int
    columns: list[str]
    data: list[list[Any]]
    total_rows: int


@dataclass(frozen=True)
class DatasetCreate(Record):
    """``POST /datasets``: store ``records`` (a list of JSON objects, one per row) as the next version of
    ``name`` (``append``: after the newest version's rows)."""

    request = True
    name: Annotated[str, Rule(pattern=r"^[a-z0-9](?:[a-z0-9_-]|\.[a-z0-9_-])*\.?$", max_length=64)]
    records: Annotated[list[dict[str, Any]], Rule(description="rows as JSON objects")]
    append: bool = False
    description: Annotated[str, Rule(max_length=1000)] | None = None
    alias: Annotated[str, Rule(pattern=r"^[a-z0-9](?:[a-z0-9_-]|\.[a-z0-9_-])*\.?$", max_length=64)] | None = None


@dataclass(frozen=True)
class DiffQuery(Record):
    """The versions to compare: ``v1`` against ``v2`` (the newest when left out)."""

    request = True
    v1: VersionNumber
    v2: VersionNumber | None = None


@dataclass(frozen=True)
class ProfileRequest(Record):
    """``POST …/profile``: which engine (``builtin`` or ``fg-data-profiling``), and whether to compute it again."""

    request = True
    engine: Literal["builtin", "fg-data-profiling"] = "builtin"
    refresh: bool = False


@dataclass(frozen=True)
class ProfileQuery(Record):
    """Which engine's report."""

    request = True
    engine: Literal["builtin", "fg-data-profiling"] = "builtin"
