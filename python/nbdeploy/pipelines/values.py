"""Data between pipeline nodes: ``nbd.output(name, value)`` inside a node, and ``upstream`` in the next one.

Inside a job run (a pipeline node is one) ``nbd.output("rows", 42)`` appends a record to the run's events file,
as ``nbd.log_metric`` does (:mod:`nbdeploy.jobs.tracking`): a small JSON value inline, anything else (a DataFrame,
an array, a model) written first into the store as a content-addressed blob (Parquet, ``.npy`` or pickle) and
recorded by hash. The dispatcher keeps them with the run (``run_outputs``).

A downstream node's parameter ``upstream`` receives ``{"extract": {"rows": 42, "table": <blob>}}``: inline values
as they are, blobs as markers that papermill's Python translator (replaced on the worker by
:func:`register_translator`) writes as a :class:`LazyOutputs` mapping, which loads a blob from the store the first
time the notebook reads it. Nothing here talks to the catalog.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from typing import Any

from ..exceptions import InvalidInputError, NotFoundError

__all__ = ["BLOB_MARKER", "INLINE_LIMIT", "LazyOutputs", "decode", "encode", "output", "register_translator"]

INLINE_LIMIT = 64 * 1024  # bytes of JSON kept inline in the catalog; larger values become blobs
BLOB_MARKER = "__nbdeploy_output__"
_OUTPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_ENCODINGS = ("json", "pickle", "parquet", "npy")


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def encode(value: Any, inline_limit: int = INLINE_LIMIT) -> tuple[str, Any, bytes | None]:
    """``(encoding, inline value or None, blob bytes or None)`` for ``value``: JSON inline when it is JSON and at
    most ``inline_limit`` bytes; else a pandas DataFrame as Parquet, a NumPy array as ``.npy``, anything else
    pickled (cloudpickle when installed)."""
    try:
        text = _canonical(value)
    except (TypeError, ValueError):
        text = None
    if text is not None and len(text) <= inline_limit:
        return "json", json.loads(text), None
    if text is not None:
        return "json", None, text
    kind = type(value).__module__.split(".")[0]
    if kind == "pandas" and type(value).__name__ == "DataFrame":
        try:
            buffer = io.BytesIO()
            value.to_parquet(buffer)
            return "parquet", None, buffer.getvalue()
        except Exception:  # no Parquet engine, or columns Parquet cannot hold: pickle it
            pass
    if kind == "numpy" and type(value).__name__ == "ndarray" and value.dtype != object:
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return "npy", None, buffer.getvalue()
    try:
        import cloudpickle as pickler
    except ImportError:  # pragma: no cover - cloudpickle comes with Dask
        import pickle as pickler  # type: ignore[no-redef]
    return "pickle", None, pickler.dumps(value)


def decode(encoding: str, data: bytes) -> Any:
    """The value a blob of ``encoding`` holds (see :func:`encode`)."""
    if encoding == "json":
        return json.loads(data)
    if encoding == "parquet":
        import pandas as pd

        return pd.read_parquet(io.BytesIO(data))
    if encoding == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if encoding == "pickle":
        import pickle

        return pickle.loads(data)
    raise InvalidInputError(f"unknown output encoding {encoding!r}", "encoding")


def output(name: str, value: Any) -> dict[str, Any] | None:
    """Record output ``name`` = ``value`` of the current job run (a pipeline node passes it downstream).

    Returns ``{"name", "encoding", "sha256", "size"}``; outside a job run it warns once and returns ``None``.
    Raises :class:`InvalidInputError` for a name that is not an identifier-like string of at most 128 characters.
    """
    from ..jobs import tracking

    if not isinstance(name, str) or not _OUTPUT_NAME.fullmatch(name):
        raise InvalidInputError(
            f"output name {name!r} must start with a letter or '_' and hold at most 128 letters, digits, '_', '.', '-'",
            "name",
        )
    if tracking.current_run() is None:
        tracking._outside_run("output")
        return None
    encoding, inline, blob = encode(value)
    record: dict[str, Any] = {"kind": "output", "seq": next(tracking._seq), "name": name, "encoding": encoding}
    if blob is None:
        data = _canonical(inline)
        record.update(value=inline, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    else:
        from ..store.artifacts import ArtifactStore

        store_url = os.environ.get(tracking.ENV_STORE)
        if not store_url:
            from ..config import get_settings

            store_url = get_settings().store_url
        info = ArtifactStore(store_url).put_blob(blob)
        record.update(sha256=info.sha256, size=info.size)
    tracking._append({**record, "time": time.time()})
    return {k: record[k] for k in ("name", "encoding", "sha256", "size")}


# --- the downstream side -------------------------------------------------------------------------------------
def marker(encoding: str, sha256: str, size: int) -> dict[str, Any]:
    """How a blob output travels in a run's parameters (JSON)."""
    return {BLOB_MARKER: sha256, "encoding": encoding, "size": int(size)}


def is_marker(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get(BLOB_MARKER), str)


class BlobOutput:
    """A node's output kept as a store blob; :meth:`load` reads it (once)."""

    def __init__(self, sha256: str, encoding: str, size: int, store_url: str | None = None) -> None:
        if not _SHA.fullmatch(sha256) or encoding not in _ENCODINGS:
            raise InvalidInputError(f"not an output blob: {sha256!r} ({encoding!r})", "upstream")
        self.sha256, self.encoding, self.size, self.store_url = sha256, encoding, int(size), store_url
        self._value: Any = None
        self._loaded = False

    def load(self) -> Any:
        """The value (read from the store the first time)."""
        if not self._loaded:
            from ..store.artifacts import ArtifactStore

            url = self.store_url or os.environ.get("NBDEPLOY_STORE_URL")
            if not url:
                from ..config import get_settings

                url = get_settings().store_url
            try:
                data = ArtifactStore(url).read_blob(self.sha256)
            except FileNotFoundError as exc:
                raise NotFoundError(f"output blob {self.sha256[:12]} is not in the store {url}") from exc
            self._value, self._loaded = decode(self.encoding, data), True
        return self._value

    def __repr__(self) -> str:
        return f"<output blob {self.sha256[:12]} {self.encoding} {self.size} bytes>"


class LazyOutputs(dict):  # type: ignore[type-arg]
    """One upstream node's outputs: reading a key that holds a blob loads it (once); ``.ref(key)`` gives the
    :class:`BlobOutput` itself without loading it."""

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        return value.load() if isinstance(value, BlobOutput) else value

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self else default

    def ref(self, key: Any) -> Any:
        return super().__getitem__(key)

    def values(self) -> Any:  # type: ignore[override]
        return [self[k] for k in self]

    def items(self) -> Any:  # type: ignore[override]
        return [(k, self[k]) for k in self]


def lazy(value: Any, store_url: str | None = None) -> Any:
    """``value`` with blob markers turned into :class:`BlobOutput` and the mappings holding them into
    :class:`LazyOutputs` (what the injected ``upstream = …`` line builds in the kernel)."""
    if is_marker(value):
        return BlobOutput(value[BLOB_MARKER], str(value.get("encoding")), int(value.get("size") or 0), store_url)
    if isinstance(value, dict):
        items = {k: lazy(v, store_url) for k, v in value.items()}
        if any(isinstance(v, BlobOutput) for v in items.values()):
            return LazyOutputs(items)
        return items
    if isinstance(value, list):
        return [lazy(v, store_url) for v in value]
    return value


def _contains_marker(value: Any) -> bool:
    if is_marker(value):
        return True
    if isinstance(value, dict):
        return any(_contains_marker(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_marker(v) for v in value)
    return False


_registered = False


def register_translator() -> None:
    """Make papermill write a Python parameter that holds blob markers as ``lazy({...})`` (its JSON, parsed in the
    kernel), so that ``upstream["clean"]["table"]`` is the DataFrame itself, loaded on first use. Idempotent; other
    values are written exactly as papermill's own translator writes them."""
    global _registered
    if _registered:
        return
    from papermill.translators import PythonTranslator, papermill_translators

    class NbdeployPythonTranslator(PythonTranslator):  # type: ignore[misc]
        @classmethod
        def translate(cls, val: Any) -> str:
            if _contains_marker(val):
                text = json.dumps(json.dumps(val))  # a Python string literal of the JSON
                return (
                    f"__import__('nbdeploy.pipelines.values', fromlist=['lazy']).lazy(__import__('json').loads({text}))"
                )
            return str(super().translate(val))

    papermill_translators.register("python", NbdeployPythonTranslator)
    _registered = True
