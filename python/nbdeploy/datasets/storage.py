"""Writing dataset versions: any supported input becomes Parquet part files under a folder of its own.

A version lives at ``<store>/datasets/<name>/<token>/part-NNNNN.parquet``; the folder is new for every put and
only ever written once. The catalog row (schema, rows, size, content hash, the files) is inserted after the
last part is in place, so a version is visible only when it is whole; a failed put removes what it wrote, and
``store gc`` removes folders that a crash left without a row.

Inputs are streamed: a pandas DataFrame is cut into slices of about :data:`PART_BYTES` (each converted, encoded
and written while the next one is prepared, never a copy of the whole frame), files and URLs are read batch by
batch, and a Dask DataFrame's partitions are written by the workers (:func:`write_partition`), never collected
into the caller.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import InvalidInputError, NotFoundError, StoreError

__all__ = ["PART_BYTES", "PartWriter", "WrittenPart", "schema_json", "write_partition"]

PART_BYTES = 32 * 1024 * 1024  # in-memory bytes per part file: one Dask partition, a few per worker
_FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".parq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".feather": "ipc",
    ".arrow": "ipc",
    ".ipc": "ipc",
}
SUPPORTED = (
    "a pandas or Dask DataFrame, a numpy array, a list of records (dicts), a local file or folder "
    "(.parquet, .csv, .json/.jsonl, .feather) or an fsspec URL (s3://bucket/data/*.parquet, https://…/x.csv)"
)


@dataclass(frozen=True)
class WrittenPart:
    """One part file of a version: its name in the version's folder, sha256, size in bytes and row count."""

    name: str
    sha256: str
    size: int
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size": self.size, "rows": self.rows}


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def schema_json(schema: Any) -> list[dict[str, Any]]:
    """``[{"name", "type", "nullable"}]`` of an Arrow schema (what the catalog and the REST API show)."""
    return [{"name": f.name, "type": str(f.type), "nullable": bool(f.nullable)} for f in schema]


def schema_to_text(schema: Any) -> str:
    """An Arrow schema as base64 text (kept in the catalog, to compare schemas without reading a file)."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def schema_from_text(text: str) -> Any:
    import pyarrow as pa

    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def schema_changes(old: Any, new: Any) -> list[str]:
    """What differs between two Arrow schemas, in words (empty when they match, metadata aside)."""
    old_types = {f.name: str(f.type) for f in old}
    new_types = {f.name: str(f.type) for f in new}
    changes = [f"column {c!r} is new ({t})" for c, t in new_types.items() if c not in old_types]
    changes += [f"column {c!r} is missing (was {t})" for c, t in old_types.items() if c not in new_types]
    changes += [
        f"column {c!r} changed type from {old_types[c]} to {t}"
        for c, t in new_types.items()
        if c in old_types and old_types[c] != t
    ]
    if not changes and list(old_types) != list(new_types):
        changes.append(f"the columns are in another order: {list(new_types)} instead of {list(old_types)}")
    return changes


def encode_part(table: Any) -> tuple[Any, str]:
    """``(parquet bytes as an Arrow buffer, their sha256)`` of one part; raises :class:`InvalidInputError` for
    columns Parquet cannot hold (a struct without fields)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    try:
        pq.write_table(table, sink, compression="snappy")
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # e.g. an empty struct
        raise InvalidInputError(f"a column cannot be stored as Parquet: {exc}", "data") from exc
    buffer = sink.getvalue()
    return buffer, hashlib.sha256(memoryview(buffer)).hexdigest()


def write_bytes(fs: Any, path: str, buffer: Any) -> None:
    """Write ``buffer`` to ``path`` on ``fs`` (straight from the Arrow buffer, no copy into ``bytes``)."""
    with fs.open(path, "wb") as out:
        out.write(memoryview(buffer))


class PartWriter:
    """Collects Arrow tables and writes them as part files of about :data:`PART_BYTES` into ``folder`` on ``fs``.

    Parts are encoded and written in two background threads while the caller prepares the next (pyarrow's
    Parquet writer and file I/O release the GIL); at most two parts are in flight, so memory stays bounded.
    ``schema`` (when given) is what every table is cast to; a table that cannot be is an
    :class:`InvalidInputError`. :meth:`abort` removes every file written.
    """

    def __init__(self, fs: Any, folder: str, schema: Any = None, first_index: int = 0) -> None:
        self.fs, self.folder, self.schema = fs, folder, schema
        self.index = first_index
        self.parts: list[WrittenPart] = []
        self._pending: list[Any] = []
        self._pending_bytes = 0
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="nbdeploy-parquet")
        self._futures: list[Future] = []
        self._written: list[str] = []
        fs.makedirs(folder, exist_ok=True)

    def add(self, table: Any, whole: bool = False) -> None:
        """Add rows (an Arrow table or record batch) to the version; ``whole``: they make a part of their own."""
        import pyarrow as pa

        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if self.schema is None:
            self.schema = table.schema
        elif not table.schema.equals(self.schema, check_metadata=False):
            changes = schema_changes(self.schema, table.schema)
            try:
                table = table.select(self.schema.names).cast(self.schema)
            except (pa.ArrowException, KeyError) as exc:
                raise InvalidInputError(
                    "the data changes its columns part-way: " + "; ".join(changes or [str(exc)]), "data"
                ) from exc
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_bytes += table.nbytes
        if whole or self._pending_bytes >= PART_BYTES:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        table = pa.concat_tables(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending, self._pending_bytes = [], 0
        name = part_name(self.index)
        self.index += 1
        while len([f for f in self._futures if not f.done()]) >= 2:  # bound the memory in flight
            next(f for f in self._futures if not f.done()).result()
        self._futures.append(self._pool.submit(self._write, table, name))

    def _write(self, table: Any, name: str) -> WrittenPart:
        buffer, sha = encode_part(table)
        path = f"{self.folder}/{name}"
        self._written.append(path)
        write_bytes(self.fs, path, buffer)
        return WrittenPart(name, sha, buffer.size, table.num_rows)

    def close(self) -> list[WrittenPart]:
        """Write what is left and return every part, in order (one empty part when no row came)."""
        import pyarrow as pa

        try:
            self._flush()
            for future in self._futures:
                self.parts.append(future.result())
            if not self.parts and self.index == 0 and self.schema is not None:
                self._futures = [self._pool.submit(self._write, pa.Table.from_batches([], self.schema), part_name(0))]
                self.parts.append(self._futures[0].result())
        except InvalidInputError:
            raise
        except Exception as exc:
            raise StoreError(f"writing the dataset to {self.folder!r} failed: {exc}") from exc
        finally:
            self._pool.shutdown(wait=True)
        return self.parts

    def abort(self) -> None:
        """Stop, and remove every file written so far."""
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True)
        for path in self._written:
            try:
                self.fs.rm_file(path)
            except Exception:
                pass


# --- inputs ----------------------------------------------------------------------------------------------
def new_folder(root: str, name: str) -> tuple[str, str]:
    """``(prefix relative to the store root, absolute path)`` of a new version folder of dataset ``name``."""
    prefix = f"datasets/{name}/{uuid.uuid4().hex}"
    return prefix, f"{root}/{prefix}"


def frame_schema(df: Any) -> tuple[Any, bool]:
    """The Arrow schema a pandas DataFrame is stored with, and whether its index is kept (a non-default index
    is stored as columns; a plain 0..n-1 index is not stored)."""
    import pandas as pd
    import pyarrow as pa

    keep_index = not isinstance(df.index, pd.RangeIndex)
    head = df.iloc[: min(len(df), 10_000)]
    try:
        schema = pa.Schema.from_pandas(head, preserve_index=keep_index)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InvalidInputError(f"a column cannot be stored as Parquet: {exc}", "data") from exc
    fields = list(schema)
    for i, f in enumerate(fields):  # a column empty at the top: take its type from its first value
        if pa.types.is_null(f.type) and f.name in df.columns:
            first = df[f.name].first_valid_index()
            if first is not None:
                sample = df[f.name].loc[[first]]
                fields[i] = pa.field(f.name, pa.Schema.from_pandas(sample.to_frame(), preserve_index=False)[0].type)
    return pa.schema(fields, metadata=schema.metadata), keep_index


def frame_slices(df: Any) -> Iterator[Any]:
    """Row slices of a pandas DataFrame of about :data:`PART_BYTES` each (views where pandas can)."""
    rows = len(df)
    if rows == 0:
        yield df
        return
    head = df.iloc[: min(rows, 1000)]
    per_row = max(1.0, float(head.memory_usage(index=False, deep=True).sum()) / max(1, len(head)))
    parts = max(1, math.ceil(rows * per_row / PART_BYTES))
    step = math.ceil(rows / parts)  # parts of even size: Dask partitions of even work
    for start in range(0, rows, step):
        yield df.iloc[start : start + step]


def write_frame(writer: PartWriter, df: Any, keep_index: bool) -> None:
    """Stream a pandas DataFrame into ``writer``, slice by slice."""
    import pyarrow as pa

    for piece in frame_slices(df):
        try:
            table = pa.Table.from_pandas(piece, schema=writer.schema, preserve_index=keep_index)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise InvalidInputError(f"a column cannot be stored as Parquet: {exc}", "data") from exc
        writer.add(table, whole=True)


def as_frame(obj: Any) -> Any:
    """A numpy array or a list of records as a pandas DataFrame (columns ``x0``, ``x1`` … for plain arrays)."""
    import numpy as np
    import pandas as pd

    if isinstance(obj, np.ndarray):
        if obj.dtype.names:
            return pd.DataFrame(obj)
        if obj.ndim == 1:
            return pd.DataFrame({"x0": obj})
        if obj.ndim == 2:
            return pd.DataFrame(obj, columns=[f"x{i}" for i in range(obj.shape[1])])
        raise InvalidInputError(f"a {obj.ndim}-dimensional array cannot be a table: pass 1 or 2 dimensions", "data")
    if isinstance(obj, list | tuple):
        if not obj:
            raise InvalidInputError("the list is empty: a dataset needs at least its columns", "data")
        if all(isinstance(r, dict) for r in obj):
            return pd.DataFrame.from_records(list(obj))
        if all(isinstance(r, list | tuple) for r in obj):
            width = len(obj[0])
            return pd.DataFrame(list(obj), columns=[f"x{i}" for i in range(width)])
        raise InvalidInputError("a list must hold records (dicts) or rows (lists), all of one kind", "data")
    raise InvalidInputError(f"cannot store a {type(obj).__name__} as a dataset: pass {SUPPORTED}", "data")


def source_files(source: str | os.PathLike, storage_options: dict[str, Any] | None = None) -> tuple[Any, list[str]]:
    """``(filesystem, files)`` of a local file or folder, a glob or an fsspec URL; raises NotFoundError when
    nothing matches and InvalidInputError for a format that is not supported."""
    import fsspec

    text = os.fspath(source)
    if "://" not in text:
        path = Path(text).expanduser()
        if not path.exists():
            raise NotFoundError(f"no file or folder at {text!r} to store as a dataset")
        text = str(path.resolve())
    try:
        fs, root = fsspec.core.url_to_fs(text, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise InvalidInputError(f"cannot open {text!r}: {exc}", "data") from exc
    if any(ch in root for ch in "*?["):
        files = sorted(fs.glob(root))
    elif fs.isdir(root):
        files = sorted(f for f in fs.find(root) if _format_of(f) is not None)
    elif fs.exists(root):
        files = [root]
    else:
        raise NotFoundError(f"nothing at {text!r} to store as a dataset")
    files = [f for f in files if not fs.isdir(f)]
    if not files:
        raise NotFoundError(f"no data files at {text!r}: use .parquet, .csv, .json/.jsonl or .feather files")
    for f in files:
        if _format_of(f) is None:
            raise InvalidInputError(
                f"{f!r} is not a supported file: use .parquet, .csv, .json/.jsonl or .feather", "data"
            )
    return fs, files


def _format_of(path: str) -> str | None:
    name = path.lower()
    for compressed in (".gz", ".bz2", ".zst"):
        name = name.removesuffix(compressed)
    return _FORMATS.get(os.path.splitext(name)[1])


def file_batches(fs: Any, files: list[str]) -> Iterable[Any]:
    """Arrow record batches of every file in turn (streamed for Parquet, CSV and Arrow IPC files)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson
    import pyarrow.parquet as pq

    for path in files:
        kind = _format_of(path)
        compression = "infer" if path.lower().endswith((".gz", ".bz2", ".zst")) else None
        with fs.open(path, "rb", compression=compression) as fh:
            try:
                if kind == "parquet":
                    yield from pq.ParquetFile(fh).iter_batches(batch_size=256 * 1024)
                elif kind == "csv":
                    delimiter = "\t" if ".tsv" in path.lower() else ","
                    reader = pcsv.open_csv(
                        fh,
                        read_options=pcsv.ReadOptions(block_size=16 << 20),
                        parse_options=pcsv.ParseOptions(delimiter=delimiter),
                    )
                    yield from reader
                elif kind == "json":
                    yield from pjson.read_json(fh).to_batches()
                else:
                    reader = pa.ipc.open_file(fh)
                    for i in range(reader.num_record_batches):
                        yield reader.get_batch(i)
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise InvalidInputError(f"cannot read {path!r} as {kind}: {exc}", "data") from exc


# --- on the workers ----------------------------------------------------------------------------------------
def write_partition(
    part: Any, store_url: str, folder: str, index: int, schema_text: str, keep_index: bool
) -> dict[str, Any] | None:
    """Write one pandas partition of a Dask DataFrame as part ``index`` (runs on a worker); return the part's
    JSON (``None`` for an empty partition)."""
    import pyarrow as pa

    from ..store.artifacts import ArtifactStore

    if len(part) == 0:
        return None
    schema = schema_from_text(schema_text)
    try:
        table = pa.Table.from_pandas(part, schema=schema, preserve_index=keep_index)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"partition {index} cannot be stored with the columns of the others: {exc}", "data"
        ) from exc
    buffer, sha = encode_part(table)
    fs = ArtifactStore(store_url).fs
    write_bytes(fs, f"{folder}/{part_name(index)}", buffer)
    return WrittenPart(part_name(index), sha, buffer.size, table.num_rows).to_json()


def content_hash(schema_text: str, parts: list[WrittenPart]) -> str:
    """The content hash of a version: its schema and its parts' hashes, in order."""
    hasher = hashlib.sha256(schema_text.encode())
    for part in parts:
        hasher.update(f"\n{part.sha256}:{part.rows}".encode())
    return hasher.hexdigest()
