"""Profiling a stored version and keeping its report: the built-in profile on the cluster (:mod:`.profile`,
rendered by :mod:`.report`), or fg-data-profiling's full report (the optional extra ``eda``). The numbers (a
JSON blob) and the page (an HTML blob) are stored, and a row of ``dataset_profiles`` ties them to the version."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..exceptions import InvalidInputError, MissingDependencyError
from ..store import Version
from ..store.tables import utcnow
from .records import DatasetProfileInfo
from .tables import DatasetProfileRow

if TYPE_CHECKING:
    from .manager import DatasetManager

__all__ = ["ENGINES", "DatasetProfile", "profile_version"]

ENGINES = ("builtin", "fg-data-profiling")


@dataclass
class DatasetProfile:
    """A stored profile of one dataset version: ``numbers`` (per column: type, missing, distinct, statistics,
    quantiles, top values, histogram; correlations, duplicates, warnings, the drift ``baseline``) and ``html``
    (the report, shown as the cell's output in a notebook)."""

    name: str
    version: int
    engine: str
    numbers: dict[str, Any]
    html: str
    created_at: datetime
    milliseconds: int | None

    @property
    def warnings(self) -> list[dict[str, str]]:
        return list(self.numbers.get("warnings") or [])

    @property
    def baseline(self) -> dict[str, Any]:
        """The drift baseline a model trained on this version is compared against."""
        return dict(self.numbers.get("baseline") or {})

    def info(self) -> DatasetProfileInfo:
        summary = {k: self.numbers.get(k) for k in ("rows", "columns_count", "duplicates", "partitions")}
        summary["warnings"] = len(self.warnings)
        return DatasetProfileInfo(
            self.name,
            self.version,
            self.engine,
            self.created_at,
            self.milliseconds,
            f"/nbdeploy/api/datasets/{self.name}/versions/{self.version}/profile.html",
            summary,
        )

    def to_json(self) -> dict[str, Any]:
        return self.info().to_json()

    def _repr_html_(self) -> str:
        import html

        return (
            f"<iframe srcdoc='{html.escape(self.html, quote=True)}' style='width:100%;height:640px;border:0'></iframe>"
        )

    def __repr__(self) -> str:
        return f"<DatasetProfile {self.name} v{self.version} ({self.engine}): {len(self.warnings)} warning(s)>"


def _stored(manager: DatasetManager, v: Version, engine: str) -> DatasetProfile | None:
    store = manager.store
    with store.catalog.session(readonly=True) as s:
        row = s.scalar(
            sa.select(DatasetProfileRow).where(
                DatasetProfileRow.name == v.name,
                DatasetProfileRow.version == v.version,
                DatasetProfileRow.engine == engine,
            )
        )
    if row is None:
        return None
    numbers = json.loads(store.artifacts.read_blob(row.json_sha256))
    page = store.artifacts.read_blob(row.html_sha256).decode("utf-8")
    return DatasetProfile(v.name, v.version, engine, numbers, page, row.created_at, row.milliseconds)


def _builtin(manager: DatasetManager, v: Version) -> tuple[dict[str, Any], str]:
    from .profiling import profile_dask
    from .report import render_html

    ddf = manager.dask(v.name, v.version)
    started = time.perf_counter()
    rows, columns = v.metadata.get("rows"), len(v.metadata.get("schema") or ddf.columns)
    # in memory, about 8 bytes a value and a string's length more: twice the numbers' share is a safe estimate
    nbytes = int(rows) * max(1, columns) * 16 if rows is not None else None
    numbers = profile_dask(ddf, manager.app.runtime.client(), nbytes=nbytes)
    numbers["seconds"] = time.perf_counter() - started
    return numbers, render_html(f"{v.name} v{v.version}", numbers)


def _fg(manager: DatasetManager, v: Version) -> tuple[dict[str, Any], str]:
    try:
        from data_profiling import ProfileReport  # fg-data-profiling
    except ImportError:
        try:
            from ydata_profiling import ProfileReport
        except ImportError as exc:
            raise MissingDependencyError("the fg-data-profiling report", "fg-data-profiling", "eda") from exc
    frame = manager.get(v.name, v.version)
    report = ProfileReport(frame, title=f"{v.name} v{v.version}", minimal=True, progress_bar=False)
    numbers = json.loads(report.to_json())
    return {"engine": "fg-data-profiling", "report": numbers}, report.to_html()


def profile_version(
    manager: DatasetManager, v: Version, *, engine: str = "builtin", refresh: bool = False
) -> DatasetProfile:
    """Profile ``v`` with ``engine`` (or return its stored profile) and store the numbers and the page."""
    if engine not in ENGINES:
        raise InvalidInputError(f"unknown profile engine {engine!r}: use one of {', '.join(ENGINES)}", "engine")
    if not refresh:
        found = _stored(manager, v, engine)
        if found is not None:
            return found
    started = time.perf_counter()
    numbers, page = _builtin(manager, v) if engine == "builtin" else _fg(manager, v)
    elapsed = int((time.perf_counter() - started) * 1000)
    store = manager.store
    numbers_blob = store.artifacts.put_blob(json.dumps(numbers, default=_default).encode())
    page_blob = store.artifacts.put_blob(page.encode("utf-8"))
    created = utcnow()
    with store.catalog.session() as s:
        s.execute(
            sa.delete(DatasetProfileRow).where(
                DatasetProfileRow.name == v.name,
                DatasetProfileRow.version == v.version,
                DatasetProfileRow.engine == engine,
            )
        )
        s.add(
            DatasetProfileRow(
                name=v.name,
                version=v.version,
                engine=engine,
                json_sha256=numbers_blob.sha256,
                html_sha256=page_blob.sha256,
                milliseconds=elapsed,
                created_at=created,
            )
        )
    return DatasetProfile(v.name, v.version, engine, numbers, page, created, elapsed)


def _default(value: Any) -> Any:
    from ..runtime.encoding import to_jsonable

    return to_jsonable(value)
