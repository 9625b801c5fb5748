"""The datasets service: versioned Parquet data in the store, described in the catalog, with lineage and
profiles. No tornado here: the REST handlers, the CLI, the magics and ``nbd.datasets`` all call
:class:`DatasetManager`.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..exceptions import InvalidInputError, NotFoundError
from ..names import validate_name
from ..store import Store, Version
from . import lineage_log as lineage
from . import storage
from .records import (
    Column,
    DatasetDiff,
    DatasetInfo,
    DatasetList,
    DatasetVersion,
    Lineage,
    LineageEvent,
    LineageVersion,
    Rows,
)

if TYPE_CHECKING:
    from ..app import Nbdeploy

__all__ = ["DatasetManager"]

KIND = "dataset"
log = logging.getLogger("nbdeploy.datasets")


class DatasetManager:
    """Put, read, describe, compare, profile and trace the datasets of ``app`` (``app.datasets``)."""

    #: lazy Dask DataFrames kept per (folder, columns, filters): a version never changes once written
    FRAMES_KEPT = 64

    def __init__(self, app: Nbdeploy) -> None:
        self.app = app
        self._frames: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._frames_lock = threading.Lock()

    @property
    def store(self) -> Store:
        return self.app.store

    def close(self) -> None:
        """Nothing to release (the store is the app's)."""

    # --- writing ----------------------------------------------------------------------------------------------
    def put(
        self,
        data: Any,
        name: str,
        *,
        append: bool = False,
        alias: str | None = None,
        description: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> DatasetVersion:
        """Store ``data`` as the next version of dataset ``name`` (Parquet) and return it.

        ``data`` is a pandas or Dask DataFrame, a numpy array, a list of records, a local file or folder, or an
        fsspec URL (``s3://bucket/x/*.parquet``, ``https://…/x.csv``; ``storage_options`` for its filesystem).
        Big inputs are written as several part files, streamed (a Dask DataFrame by the workers). With
        ``append=True`` the new version holds the newest version's rows and then these (the columns must
        match). ``alias`` is pointed at the new version.

        Raises :class:`InvalidNameError`, :class:`InvalidInputError` (an unsupported type, a schema change on
        append, data Parquet cannot hold), :class:`NotFoundError` (a missing file, or nothing to append to) and
        :class:`StoreError`; nothing is stored when any of these is raised.
        """
        validate_name(name)
        if alias is not None:
            validate_name(alias, "alias")
        base: Version | None = None
        if append:
            try:
                base = self.store.get(KIND, name, with_aliases=False)
            except NotFoundError:
                raise NotFoundError(
                    f"no dataset named {name!r} to append to: put it once without append=True first"
                ) from None
        base_schema = storage.schema_from_text(base.metadata["arrow_schema"]) if base is not None else None
        artifacts = self.store.artifacts
        prefix, folder = storage.new_folder(artifacts.root, name)
        first_index = len(base.metadata.get("files", [])) if base is not None else 0
        source, written = "", False
        parts: list[storage.WrittenPart] = []
        try:
            if base is not None:
                parts = self._carry_over(base, folder)
                written = True
            kind, schema, parts_new = self._write(data, folder, base_schema, first_index, storage_options)
            written = True
            source = kind
            parts += parts_new
            schema_text = storage.schema_to_text(schema)
            metadata: dict[str, Any] = {
                "format": "parquet",
                "prefix": prefix,
                "files": [p.to_json() for p in parts],
                "rows": sum(p.rows for p in parts),
                "schema": storage.schema_json(schema),
                "arrow_schema": schema_text,
                "source": source,
                "description": description or (base.metadata.get("description", "") if base else ""),
                "appended_to": base.version if base is not None else None,
            }
            sha = storage.content_hash(schema_text, parts)
            row = self.store.catalog.add_version(KIND, name, sha, sum(p.size for p in parts), _owner(), metadata)
        except BaseException:
            if written or artifacts.fs.exists(folder):
                self._remove_folder(folder)
            raise
        version = self.store.get(KIND, name, row.version)
        if alias is not None:
            version = self.store.set_alias(KIND, name, alias, row.version)
        lineage.record(self.store.catalog, KIND, name, row.version, "write")
        return DatasetVersion.of(version, self.store.url)

    def _write(
        self, data: Any, folder: str, base_schema: Any, first_index: int, storage_options: dict[str, Any] | None
    ) -> tuple[str, Any, builtins.list[storage.WrittenPart]]:
        """Write ``data`` into ``folder``: ``(what it was, its Arrow schema, the parts)``."""
        import os

        if _is_dask(data):
            return self._write_dask(data, folder, base_schema, first_index)
        if isinstance(data, str | os.PathLike):
            fs, files = storage.source_files(data, storage_options)
            writer = storage.PartWriter(self.store.artifacts.fs, folder, base_schema, first_index)
            return self._drain(writer, storage.file_batches(fs, files), base_schema, os.fspath(data))
        frame = data if _is_pandas(data) else storage.as_frame(data)
        schema, keep_index = storage.frame_schema(frame)
        _check_append(base_schema, schema)
        writer = storage.PartWriter(self.store.artifacts.fs, folder, base_schema or schema, first_index)
        try:
            storage.write_frame(writer, frame, keep_index)
            parts = writer.close()
        except BaseException:
            writer.abort()
            raise
        kind = "pandas.DataFrame" if _is_pandas(data) else type(data).__name__
        return kind, base_schema or schema, parts

    def _drain(
        self, writer: storage.PartWriter, batches: Any, base_schema: Any, source: str
    ) -> tuple[str, Any, builtins.list[storage.WrittenPart]]:
        try:
            first = True
            for batch in batches:
                if first:
                    _check_append(base_schema, batch.schema)
                    first = False
                writer.add(batch)
            parts = writer.close()
        except BaseException:
            writer.abort()
            raise
        if writer.schema is None:
            raise InvalidInputError(f"{source!r} holds no rows and no columns", "data")
        return source, writer.schema, parts

    def _write_dask(
        self, ddf: Any, folder: str, base_schema: Any, first_index: int
    ) -> tuple[str, Any, builtins.list[storage.WrittenPart]]:
        import dask
        import pandas as pd

        meta = ddf._meta
        keep_index = not isinstance(meta.index, pd.RangeIndex) and meta.index.name is not None
        schema, _ = storage.frame_schema(meta if keep_index else meta.reset_index(drop=True))
        if base_schema is not None:
            _check_append(base_schema, schema)
            schema = base_schema
        schema_text = storage.schema_to_text(schema)
        self.store.artifacts.fs.makedirs(folder, exist_ok=True)
        tasks = [
            dask.delayed(storage.write_partition)(
                part, self.store.url, folder, first_index + i, schema_text, keep_index
            )
            for i, part in enumerate(ddf.to_delayed())
        ]
        client = self.app.runtime.client()
        results = client.gather(client.compute(tasks))
        parts = [storage.WrittenPart(**r) for r in results if r is not None]
        if not parts:
            import pyarrow as pa

            writer = storage.PartWriter(self.store.artifacts.fs, folder, schema, first_index)
            writer.add(pa.Table.from_batches([], schema))
            parts = writer.close()
        return "dask.DataFrame", schema, parts

    def _carry_over(self, base: Version, folder: str) -> builtins.list[storage.WrittenPart]:
        """The parts of ``base`` in the new version's folder (hard links locally, copies elsewhere)."""
        import os

        artifacts = self.store.artifacts
        source = f"{artifacts.root}/{base.metadata['prefix']}"
        artifacts.fs.makedirs(folder, exist_ok=True)
        parts = []
        for entry in base.metadata.get("files", []):
            src, dst = f"{source}/{entry['name']}", f"{folder}/{entry['name']}"
            if artifacts.local:
                try:
                    os.link(src, dst)  # the parts are immutable: sharing them is safe
                except OSError:
                    artifacts.fs.cp_file(src, dst)
            else:
                artifacts.fs.cp_file(src, dst)
            parts.append(storage.WrittenPart(entry["name"], entry["sha256"], entry["size"], entry["rows"]))
        return parts

    def _remove_folder(self, folder: str) -> None:
        fs = self.store.artifacts.fs
        try:
            fs.rm(folder, recursive=True)
            parent = folder.rsplit("/", 1)[0]  # the dataset's own folder, when this was its first version
            if fs.exists(parent) and not fs.ls(parent, detail=False):
                fs.rmdir(parent)
        except Exception:
            log.warning("could not remove the partly written %s", folder, exc_info=True)

    # --- reading ----------------------------------------------------------------------------------------------
    def _version(self, name: str, version: int | str | None) -> Version:
        try:
            return self.store.get(KIND, name, version)
        except NotFoundError as exc:
            if version is None and "@" not in name:
                raise NotFoundError(f"no dataset named {name!r}: `nbd.datasets.list()` shows the stored ones") from exc
            raise

    def version(self, name: str, version: int | str | None = None) -> DatasetVersion:
        """One version's description (the newest, a number or an alias); raises :class:`NotFoundError`."""
        v = self._version(name, version)
        return DatasetVersion.of(v, self.store.url, self._profiled(v))

    def _folder(self, v: Version) -> str:
        return f"{self.store.artifacts.root}/{v.metadata['prefix']}"

    def path(self, name: str, version: int | str | None = None) -> str:
        """The fsspec URL of a version's folder of Parquet files, to hand to other tools (Spark, DuckDB,
        ``pd.read_parquet``); raises :class:`NotFoundError`."""
        v = self._version(name, version)
        lineage.record(self.store.catalog, KIND, v.name, v.version, "read")
        return f"{self.store.url.rstrip('/')}/{v.metadata['prefix']}"

    def _check_columns(self, v: Version, columns: Any, filters: Any) -> builtins.list[str] | None:
        known = [c["name"] for c in v.metadata.get("schema", [])]
        wanted: builtins.list[str] | None = None
        if columns is not None:
            if isinstance(columns, str):
                columns = [columns]
            wanted = [str(c) for c in columns]
            missing = [c for c in wanted if c not in known]
            if missing:
                raise InvalidInputError(
                    f"dataset {v.name} v{v.version} has no column(s) {', '.join(map(repr, missing))}; "
                    f"its columns: {', '.join(known)}",
                    "columns",
                )
        for term in _filter_terms(filters):
            if term[0] not in known:
                raise InvalidInputError(
                    f"a filter names the column {term[0]!r}, which dataset {v.name} v{v.version} does not have; "
                    f"its columns: {', '.join(known)}",
                    "filters",
                )
        return wanted

    def get(
        self,
        name: str,
        version: int | str | None = None,
        columns: builtins.list[str] | None = None,
        filters: Any = None,
    ) -> Any:
        """Read a version into a pandas DataFrame: only ``columns`` when given, only rows matching ``filters``
        (pyarrow's form: ``[("year", ">=", 2024)]``). Raises :class:`NotFoundError` and
        :class:`InvalidInputError` (a column the version does not have)."""
        import pandas as pd

        v = self._version(name, version)
        wanted = self._check_columns(v, columns, filters)
        lineage.record(self.store.catalog, KIND, v.name, v.version, "read")
        artifacts = self.store.artifacts
        options: dict[str, Any] = {} if artifacts.local else {"filesystem": artifacts.fs}
        return pd.read_parquet(self._folder(v), columns=wanted, filters=_filters(filters), **options)

    def dask(
        self,
        name: str,
        version: int | str | None = None,
        columns: builtins.list[str] | None = None,
        filters: Any = None,
    ) -> Any:
        """A lazy Dask DataFrame over a version's Parquet files (one partition per file); raises as :meth:`get`.

        It is ``dd.read_parquet`` of the version's folder. A version's files never change, so the frame built for
        a folder, columns and filters is kept (the last :data:`FRAMES_KEPT`) and handed out again: Dask's
        ``read_parquet`` lists the folder and reads a footer on every call (some 10 ms), a kept frame costs the
        version lookup only. Dask collections are immutable, so sharing one is safe."""
        import dask.dataframe as dd

        v = self._version(name, version)
        wanted = self._check_columns(v, columns, filters)
        lineage.record(self.store.catalog, KIND, v.name, v.version, "read")
        url = f"{self.store.url.rstrip('/')}/{v.metadata['prefix']}"
        key = (url, repr((wanted, filters)))
        with self._frames_lock:
            frame = self._frames.get(key)
            if frame is not None:
                self._frames.move_to_end(key)
                return frame
        frame = dd.read_parquet(url, columns=wanted, filters=_filters(filters))
        with self._frames_lock:
            self._frames[key] = frame
            while len(self._frames) > self.FRAMES_KEPT:
                self._frames.popitem(last=False)
        return frame

    def head(self, name: str, limit: int = 20, columns: Any = None, version: int | str | None = None) -> Rows:
        """The first ``limit`` rows of a version as JSON values (what the lab shows)."""
        import pyarrow.parquet as pq

        from ..runtime.encoding import to_jsonable

        v = self._version(name, version)
        wanted = self._check_columns(v, columns, None)
        artifacts = self.store.artifacts
        files = v.metadata.get("files", [])
        rows: builtins.list[builtins.list[Any]] = []
        names = wanted or [c["name"] for c in v.metadata.get("schema", [])]
        for entry in files:
            if len(rows) >= limit:
                break
            with artifacts.fs.open(f"{self._folder(v)}/{entry['name']}", "rb") as fh:
                for batch in pq.ParquetFile(fh).iter_batches(batch_size=limit, columns=names):
                    frame = batch.to_pandas()
                    rows += frame.astype(object).where(frame.notna(), None).values.tolist()[: limit - len(rows)]
                    if len(rows) >= limit:
                        break
        return Rows(v.name, v.version, names, to_jsonable(rows), int(v.metadata.get("rows") or 0))

    # --- describing -------------------------------------------------------------------------------------------
    def list(self) -> DatasetList:
        """Every dataset's newest version."""
        return DatasetList([DatasetVersion.of(v, self.store.url) for v in self.store.list(KIND)])

    def versions(self, name: str) -> builtins.list[DatasetVersion]:
        """Every live version of ``name``, oldest first; raises :class:`NotFoundError` when there is none."""
        found = self.store.versions(KIND, name)
        if not found:
            raise NotFoundError(f"no dataset named {name!r}: `nbd.datasets.list()` shows the stored ones")
        profiled = self._profiled_versions(name)
        return [DatasetVersion.of(v, self.store.url, v.version in profiled) for v in found]

    def info(self, name: str) -> DatasetInfo:
        """A dataset: its newest version, every version and its aliases."""
        versions = self.versions(name)
        return DatasetInfo(name, versions[-1], versions, self.store.catalog.aliases(KIND, name))

    def set_alias(self, name: str, alias: str, version: int) -> DatasetVersion:
        """Point ``alias`` (e.g. ``training``) at ``version`` of ``name`` and return that version."""
        return DatasetVersion.of(self.store.set_alias(KIND, name, alias, version), self.store.url)

    def delete(self, name: str, version: int | None = None) -> int:
        """Delete one version (``version``) or every version of ``name``; return how many. Readers holding a
        version's URL keep reading until ``nbdeploy store gc`` frees its files."""
        if version is not None:
            self.store.delete_version(KIND, name, int(version))
            return 1
        return self.store.delete(KIND, name)

    def diff(self, name: str, v1: int | str, v2: int | str | None = None) -> DatasetDiff:
        """How version ``v2`` (default: the newest) differs from ``v1``: columns added, removed or retyped, and the
        row counts. Raises :class:`NotFoundError`."""
        a, b = self._version(name, v1), self._version(name, v2)
        cols_a = {c["name"]: c for c in a.metadata.get("schema", [])}
        cols_b = {c["name"]: c for c in b.metadata.get("schema", [])}

        def column(c: dict[str, Any]) -> Column:
            return Column(c["name"], c["type"], bool(c.get("nullable", True)))

        rows_a, rows_b = int(a.metadata.get("rows") or 0), int(b.metadata.get("rows") or 0)
        return DatasetDiff(
            name=a.name,
            v1=a.version,
            v2=b.version,
            added=[column(c) for n, c in cols_b.items() if n not in cols_a],
            removed=[column(c) for n, c in cols_a.items() if n not in cols_b],
            changed=[
                {"name": n, "from": cols_a[n]["type"], "to": c["type"]}
                for n, c in cols_b.items()
                if n in cols_a and cols_a[n]["type"] != c["type"]
            ],
            rows_v1=rows_a,
            rows_v2=rows_b,
            rows_delta=rows_b - rows_a,
            same_content=a.sha256 == b.sha256,
        )

    def lineage(self, name: str) -> Lineage:
        """Which run produced each version of ``name`` and which runs read it (oldest version first)."""
        validate_name(name)
        versions = self.store.versions(KIND, name)
        if not versions:
            raise NotFoundError(f"no dataset named {name!r}: `nbd.datasets.list()` shows the stored ones")
        rows = lineage.entries(self.store.catalog, KIND, name)
        labels = _run_labels(self.store.catalog, rows)
        out = []
        for v in versions:
            mine = [r for r in rows if r.version == v.version]
            events = [
                LineageEvent(r.run_kind, r.run_ref, labels.get((r.run_kind, r.run_ref), r.run_ref), r.direction, r.at)
                for r in mine
            ]
            produced = next((e for e in events if e.direction == "write"), None)
            out.append(LineageVersion(v.version, produced, [e for e in events if e.direction == "read"]))
        return Lineage(name, out)

    # --- profiles ---------------------------------------------------------------------------------------------
    def profile(
        self, name: str, version: int | str | None = None, *, engine: str = "builtin", refresh: bool = False
    ) -> Any:
        """Profile a version on the cluster (auto-EDA) and store the report with it; return a
        :class:`~.profile.DatasetProfile` (its HTML shows in a notebook). A stored profile is returned as it is
        unless ``refresh``. ``engine="fg-data-profiling"`` uses the optional extra ``eda`` for the full report.
        Raises :class:`NotFoundError` and :class:`MissingDependencyError`."""
        from .profiles import profile_version

        v = self._version(name, version)
        return profile_version(self, v, engine=engine, refresh=refresh)

    def profile_html(self, name: str, version: int | str | None = None, engine: str = "builtin") -> str:
        """The stored HTML report of a version (computing it first when there is none)."""
        return self.profile(name, version, engine=engine).html

    def _profiled_versions(self, name: str) -> set[int]:
        import sqlalchemy as sa

        from .tables import DatasetProfileRow

        with self.store.catalog.session(readonly=True) as s:
            return set(s.scalars(sa.select(DatasetProfileRow.version).where(DatasetProfileRow.name == name)))

    def _profiled(self, v: Version) -> bool:
        return v.version in self._profiled_versions(v.name)


def _owner() -> str | None:
    from ..store import _owner as owner

    return owner()


def _is_pandas(obj: Any) -> bool:
    module = type(obj).__module__
    return module.startswith("pandas") and type(obj).__name__ == "DataFrame"


def _is_dask(obj: Any) -> bool:
    module = type(obj).__module__
    return module.startswith(("dask", "dask_expr")) and hasattr(obj, "to_delayed") and hasattr(obj, "_meta")


def _check_append(base_schema: Any, schema: Any) -> None:
    if base_schema is None:
        return
    changes = storage.schema_changes(base_schema, schema)
    if changes:
        raise InvalidInputError(
            "cannot append: the columns differ from the newest version's (" + "; ".join(changes) + "); "
            "put without append=True to start a version with the new columns",
            "data",
        )


def _filter_terms(filters: Any) -> builtins.list[tuple[Any, ...]]:
    """The ``(column, op, value)`` terms of pyarrow-style filters (a list, or a list of lists)."""
    if filters is None:
        return []
    if not isinstance(filters, list | tuple) or not filters:
        raise InvalidInputError(
            "filters must be a list of (column, op, value) tuples, or a list of such lists", "filters"
        )
    groups = filters if isinstance(filters[0], list) else [filters]
    terms = []
    for group in groups:
        for term in group:
            if not isinstance(term, list | tuple) or len(term) != 3:
                raise InvalidInputError(f"a filter must be (column, op, value), got {term!r}", "filters")
            terms.append(tuple(term))
    return terms


def _filters(filters: Any) -> Any:
    if filters is None:
        return None
    if isinstance(filters[0], list):
        return [[tuple(t) for t in group] for group in filters]
    return [tuple(t) for t in filters]


def _run_labels(catalog: Any, rows: builtins.list[Any]) -> dict[tuple[str, str], str]:
    """A label per run a lineage names: ``job quick, run 12``, ``function greet@3``, ``tracked run <name>``."""
    import sqlalchemy as sa

    labels: dict[tuple[str, str], str] = {}
    job_ids = {int(r.run_ref) for r in rows if r.run_kind in ("job", "pipeline") and r.run_ref.isdigit()}
    tracked = {r.run_ref for r in rows if r.run_kind == "tracked"}
    with catalog.session(readonly=True) as s:
        if job_ids:
            from ..jobs.tables import RunRow

            for run in s.execute(sa.select(RunRow.id, RunRow.job).where(RunRow.id.in_(job_ids))):
                for kind in ("job", "pipeline"):
                    labels[(kind, str(run.id))] = f"{kind} {run.job}, run {run.id}"
        if tracked:
            from ..tracking.tables import TrackedRunRow

            for run in s.execute(
                sa.select(TrackedRunRow.run_uuid, TrackedRunRow.name).where(TrackedRunRow.run_uuid.in_(tracked))
            ):
                labels[("tracked", run.run_uuid)] = f"tracked run {run.name or run.run_uuid[:8]}"
    for r in rows:
        labels.setdefault((r.run_kind, r.run_ref), f"{r.run_kind} {r.run_ref}")
    return labels
