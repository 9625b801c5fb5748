"""Serving statistics of models and functions, kept in each serving process and shared through the store.

Every prediction a process serves (over HTTP or ``nbd.models.predict``) and every function call it serves over
HTTP (REST invoke, Open Inference Protocol) is recorded here: request and error counts per name and version, a
latency histogram over every request (fixed buckets, so that the histograms of several processes add up exactly),
the latency of the last requests, and for models a reservoir sample of the input rows per version (cheap on the
request path: a few list operations per row). A daemon thread writes a snapshot to
``<store>/monitoring/<kind>/<name>/<process id>.json`` (kind ``model`` or ``function``) every few seconds when
something changed (setting ``model_stats_seconds`` / ``NBDEPLOY_MODEL_STATS_SECONDS``, default 5), so that any
process — a notebook calling ``nbd.models.drift`` or ``nbd.functions.stats`` — sees what every server served:
:func:`read_snapshots` and :func:`merge_snapshots` add them up; :class:`ServingStats` gives a manager its
``monitor`` and ``stats(name)``.
"""

from __future__ import annotations

import atexit
import bisect
import json
import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "Monitor", "ServingStats", "merge_snapshots", "read_snapshots"]

log = logging.getLogger("nbdeploy.serving")
KINDS = ("model", "function")
RESERVOIR_ROWS = 2000
LATENCY_SAMPLES = 2000
# upper bounds (ms) of the latency histogram's buckets; the last one takes everything slower
BUCKETS_MS: tuple[float, ...] = (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, math.inf)


def flush_seconds() -> float:
    """How often statistics are written out (setting ``model_stats_seconds``)."""
    from .config import get_settings

    return max(0.05, get_settings().model_stats_seconds)


@dataclass
class _VersionStats:
    requests: int = 0
    errors: int = 0
    rows_seen: int = 0
    columns: list[str] | None = None
    sample: list[list[Any]] = field(default_factory=list)


@dataclass
class _ModelStats:
    requests: int = 0
    errors: int = 0
    latency_ms_total: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    # (unix time, milliseconds, HTTP-like status) of the latest requests
    latencies: deque[tuple[float, float, int]] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    versions: dict[int, _VersionStats] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS_MS))  # requests per latency bucket


def _row_values(kind: str, row: Any) -> list[Any] | None:
    if kind == "frame":
        return row
    if isinstance(row, list):
        return row if all(not isinstance(v, list) for v in row) else None
    return [row]


class Monitor:
    """Per-process statistics of the served models or functions (``kind``); thread-safe."""

    def __init__(self, store: Any | None = None, kind: str = "model") -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.store = store
        self.kind = kind
        self.process_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._lock = threading.Lock()
        self._models: dict[str, _ModelStats] = {}
        self._dirty: set[str] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._random = random.Random()

    def record(
        self,
        name: str,
        version: int | None,
        ms: float,
        status: int,
        rows: Any = None,
    ) -> None:
        """Record one request to ``name`` (``version`` when it resolved) that ended with ``status`` after
        ``ms``; ``rows`` (a :class:`~.signature.Rows`) feeds the version's input sample."""
        now = time.time()
        with self._lock:
            m = self._models.get(name)
            if m is None:
                m = self._models[name] = _ModelStats()
            m.requests += 1
            m.latency_ms_total += ms
            key = str(status)
            m.statuses[key] = m.statuses.get(key, 0) + 1
            m.latencies.append((now, ms, status))
            m.buckets[bisect.bisect_left(BUCKETS_MS, ms)] += 1
            ok = status < 400
            if not ok:
                m.errors += 1
            if version is not None:
                v = m.versions.get(version)
                if v is None:
                    v = m.versions[version] = _VersionStats()
                v.requests += 1
                if not ok:
                    v.errors += 1
                if ok and rows is not None:
                    self._sample(v, rows)
            self._dirty.add(name)
        self._ensure_thread()

    def _sample(self, v: _VersionStats, rows: Any) -> None:
        """Reservoir sampling (algorithm R) of the request's rows into the version's sample."""
        if v.columns is None:
            v.columns = list(rows.columns) if rows.columns else None
        sample, rand = v.sample, self._random
        for row in rows.data:
            values = _row_values(rows.kind, row)
            if values is None:
                continue
            v.rows_seen += 1
            if len(sample) < RESERVOIR_ROWS:
                sample.append(values)
            else:
                j = int(rand.random() * v.rows_seen)
                if j < RESERVOIR_ROWS:
                    sample[j] = values

    def snapshot(self, name: str) -> dict[str, Any] | None:
        """This process's statistics of ``name`` as JSON, or ``None`` if it served none."""
        with self._lock:
            m = self._models.get(name)
            if m is None:
                return None
            return {
                "process": self.process_id,
                "updated": time.time(),
                "requests": m.requests,
                "errors": m.errors,
                "latency_ms_total": m.latency_ms_total,
                "statuses": dict(m.statuses),
                "latencies": [list(x) for x in m.latencies],
                "buckets": list(m.buckets),
                "versions": {
                    str(k): {
                        "requests": v.requests,
                        "errors": v.errors,
                        "rows_seen": v.rows_seen,
                        "columns": v.columns,
                        "sample": list(v.sample),
                    }
                    for k, v in m.versions.items()
                },
            }

    # --- sharing through the store -----------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None and self.store is not None and not self._stop.is_set():
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name=f"nbdeploy-{self.kind}-stats", daemon=True)
                    self._thread.start()
                    atexit.register(self._flush_quietly)  # what the last interval served is not lost

    def _loop(self) -> None:
        while not self._stop.wait(flush_seconds()):
            try:
                self.flush()
            except Exception as exc:  # the store may be briefly unavailable: try again next time
                log.warning("could not write %s serving statistics: %s", self.kind, exc)

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception:
            pass

    def close(self) -> None:
        """Write what changed one last time and stop the background thread."""
        self._stop.set()
        atexit.unregister(self._flush_quietly)
        self._flush_quietly()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def flush(self) -> None:
        """Write a snapshot of every name that changed since the last flush to the store."""
        if self.store is None:
            return
        with self._lock:
            names, self._dirty = self._dirty, set()
        for name in names:
            snap = self.snapshot(name)
            if snap is not None:
                _write(self.store, name, self.process_id, snap, self.kind)


def _folder(store: Any, name: str, kind: str = "model") -> str:
    return f"{store.artifacts.root}/monitoring/{kind}/{name}"


def _write(store: Any, name: str, process_id: str, snapshot: dict[str, Any], kind: str = "model") -> None:
    fs = store.artifacts.fs
    folder = _folder(store, name, kind)
    tmp = f"{store.artifacts.root}/tmp/stats-{uuid.uuid4().hex}"
    fs.makedirs(f"{store.artifacts.root}/tmp", exist_ok=True)
    fs.makedirs(folder, exist_ok=True)
    fs.pipe_file(tmp, json.dumps(snapshot, separators=(",", ":")).encode())
    fs.mv(tmp, f"{folder}/{process_id}.json")  # readers never see half a file


def read_snapshots(store: Any, name: str, skip: str | None = None, kind: str = "model") -> list[dict[str, Any]]:
    """Every process's last snapshot of the model or function (``kind``) ``name`` in the store (``skip``: a
    process id to leave out)."""
    fs = store.artifacts.fs
    try:
        paths = fs.glob(f"{_folder(store, name, kind)}/*.json")
    except FileNotFoundError:
        return []
    out = []
    for path in paths:
        if skip and path.rsplit("/", 1)[-1] == f"{skip}.json":
            continue
        try:
            out.append(json.loads(fs.cat_file(path)))
        except (OSError, ValueError):
            continue  # removed or replaced meanwhile
    return out


def merge_snapshots(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up several processes' snapshots: counts summed, latencies and samples concatenated."""
    merged: dict[str, Any] = {
        "processes": len(snapshots),
        "requests": 0,
        "errors": 0,
        "latency_ms_total": 0.0,
        "statuses": {},
        "latencies": [],
        "versions": {},
        "histogram": {"le_ms": [_le(b) for b in BUCKETS_MS], "counts": [0] * len(BUCKETS_MS)},
    }
    counts = merged["histogram"]["counts"]
    for snap in snapshots:
        for i, n in enumerate(snap.get("buckets") or ()):
            if i < len(counts):
                counts[i] += n
        merged["requests"] += snap.get("requests", 0)
        merged["errors"] += snap.get("errors", 0)
        merged["latency_ms_total"] += snap.get("latency_ms_total", 0.0)
        for k, n in snap.get("statuses", {}).items():
            merged["statuses"][k] = merged["statuses"].get(k, 0) + n
        merged["latencies"].extend(snap.get("latencies", []))
        for k, v in snap.get("versions", {}).items():
            into = merged["versions"].setdefault(
                k, {"requests": 0, "errors": 0, "rows_seen": 0, "columns": v.get("columns"), "sample": []}
            )
            into["requests"] += v.get("requests", 0)
            into["errors"] += v.get("errors", 0)
            into["rows_seen"] += v.get("rows_seen", 0)
            into["columns"] = into["columns"] or v.get("columns")
            into["sample"].extend(v.get("sample", []))
    merged["latencies"].sort()
    lat = sorted(x[1] for x in merged["latencies"])
    if lat:
        merged["latency_ms"] = {
            "mean": merged["latency_ms_total"] / max(1, merged["requests"]),
            "p50": lat[len(lat) // 2],
            "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "max": lat[-1],
        }
    if sum(counts):  # over every request of every process, to the bucket's upper bound
        merged.setdefault("latency_ms", {}).update(
            {"p50_le": _quantile_le(counts, 0.5), "p99_le": _quantile_le(counts, 0.99)}
        )
    return merged


def _le(bound: float) -> float | str:
    return "+Inf" if math.isinf(bound) else bound


def _quantile_le(counts: list[int], q: float) -> float | str:
    """The upper bound (ms) of the histogram bucket that holds quantile ``q`` of the requests counted."""
    rank, seen = q * sum(counts), 0
    for bound, n in zip(BUCKETS_MS, counts, strict=True):
        seen += n
        if seen >= rank and n:
            return _le(bound)
    return _le(BUCKETS_MS[-1])


class ServingStats:
    """What a manager of served things (models, functions) shares: its process's :class:`Monitor` and the
    statistics merged over every process that served a name. Subclasses set ``stats_kind`` and have a ``store``."""

    stats_kind: str = "model"
    store: Any
    _monitor: Monitor | None = None

    @property
    def monitor(self) -> Monitor:
        """This process's monitor (made on first use; it writes its snapshots to the store)."""
        monitor = self._monitor
        if monitor is None:
            monitor = self._monitor = Monitor(self.store, self.stats_kind)
        return monitor

    def merged_stats(self, name: str) -> dict[str, Any]:
        """Serving statistics of ``name`` merged over every process that served it (this one included)."""
        own = self.monitor.snapshot(name)
        snaps = read_snapshots(self.store, name, skip=self.monitor.process_id, kind=self.stats_kind)
        return merge_snapshots([*snaps, *([own] if own else [])])

    def close_monitor(self) -> None:
        """Write the statistics out one last time and stop the monitor (a new one starts if it serves again)."""
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            monitor.close()
