"""The worker-side artifact cache: load an artifact by ``(store_url, sha256)`` once per worker process.

Functions, models and jobs run on Dask workers as ``load_artifact(store_url, sha256, loader)``: the first call
in a worker process reads the blob from the store and deserialises it; later calls return the same object.
Entries are keyed by ``(store_url, sha256, loader's qualified name)`` — content hashes never go stale — and the
cache is an LRU bounded in bytes (the blob's size counts for its entry) by the ``cache_bytes`` setting
(``NBDEPLOY_CACHE_BYTES``, default 2 GiB). It is thread-safe, and concurrent first loads of one key load once:
the other threads wait for that load and share its result (or its error; errors are not cached).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ..store.artifacts import ArtifactStore

__all__ = ["ArtifactCache", "cache_stats", "clear_cache", "load_artifact"]

log = logging.getLogger("nbdeploy.runtime.cache")

Key = tuple[str, str, str]


def loader_name(loader: Callable[[bytes], Any]) -> str:
    """The part of a cache key naming the loader: ``module.qualname`` (``repr`` when it has none)."""
    module = getattr(loader, "__module__", None) or ""
    qualname = getattr(loader, "__qualname__", None)
    if qualname is None:
        return repr(loader)
    return f"{module}.{qualname}" if module else qualname


@dataclass
class _Pending:
    """A load in progress: the other threads asking for the same key wait on ``done``."""

    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None
    waiting: int = 0


class ArtifactCache:
    """An LRU of deserialised artifacts bounded by ``max_bytes`` (the sum of their blobs' sizes)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._entries: OrderedDict[Key, tuple[Any, int]] = OrderedDict()
        self._pending: dict[Key, _Pending] = {}
        self._stores: dict[str, ArtifactStore] = {}
        self._bytes = 0
        self.loads = self.hits = self.evictions = 0

    def _store(self, url: str) -> ArtifactStore:
        with self._lock:
            store = self._stores.get(url)
        if store is None:
            store = ArtifactStore(url)
            with self._lock:
                store = self._stores.setdefault(url, store)
        return store

    def get(self, store_url: str, sha256: str, loader: Callable[[bytes], Any] = cloudpickle.loads) -> Any:
        """Return the artifact ``sha256`` of ``store_url`` deserialised by ``loader``, loading it at most once.

        Raises what reading the blob raises (:class:`NotFoundError`, :class:`InvalidInputError` for a malformed
        digest, :class:`StoreError`) or what ``loader`` raises; a failed load is not cached.
        """
        key: Key = (store_url, sha256, loader_name(loader))
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[0]
            pending = self._pending.get(key)
            if pending is None:
                pending = self._pending[key] = _Pending()
                owner = True
            else:
                pending.waiting += 1
                owner = False
        if not owner:
            pending.done.wait()
            with self._lock:
                pending.waiting -= 1
                if pending.error is None:
                    self.hits += 1
            if pending.error is not None:
                raise pending.error
            return pending.value
        try:
            data = self._store(store_url).read_blob(sha256)
            value = loader(data)
        except BaseException as exc:
            pending.error = exc
            with self._lock:
                del self._pending[key]
            pending.done.set()
            raise
        pending.value = value
        with self._lock:
            self.loads += 1
            self._insert(key, value, len(data))
            del self._pending[key]
        pending.done.set()
        return value

    def _insert(self, key: Key, value: Any, nbytes: int) -> None:
        if nbytes > self.max_bytes:
            log.warning(
                "artifact %s (%d bytes) is larger than the whole artifact cache (%d bytes, NBDEPLOY_CACHE_BYTES): "
                "it is not cached",
                key[1][:12],
                nbytes,
                self.max_bytes,
            )
            return
        self._entries[key] = (value, nbytes)
        self._bytes += nbytes
        while self._bytes > self.max_bytes and self._entries:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted
            self.evictions += 1

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def keys(self) -> list[Key]:
        """The cached keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def stats(self) -> dict[str, int]:
        """``loads``, ``hits``, ``evictions``, ``bytes``, ``entries``, ``max_bytes`` and ``waiting`` (threads
        waiting for a load in progress)."""
        with self._lock:
            return {
                "loads": self.loads,
                "hits": self.hits,
                "evictions": self.evictions,
                "bytes": self._bytes,
                "entries": len(self._entries),
                "max_bytes": self.max_bytes,
                "waiting": sum(p.waiting for p in self._pending.values()),
            }

    def clear(self) -> None:
        """Drop every entry (loads in progress finish but their results are kept only by their callers)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0


_cache: ArtifactCache | None = None
_cache_lock = threading.Lock()


def _process_cache() -> ArtifactCache:
    global _cache
    cache = _cache
    if cache is None:
        with _cache_lock:
            if _cache is None:
                from ..config import get_settings

                _cache = ArtifactCache(get_settings().cache_bytes)
            cache = _cache
    return cache


def load_artifact(store_url: str, sha256: str, loader: Callable[[bytes], Any] = cloudpickle.loads) -> Any:
    """Return the artifact ``sha256`` from the store at ``store_url``, deserialised by ``loader``.

    Loaded once per process (on a worker: once per worker) and kept in this process's LRU cache bounded by the
    ``cache_bytes`` setting. Raises what :meth:`ArtifactCache.get` raises.
    """
    return _process_cache().get(store_url, sha256, loader)


def cache_stats() -> dict[str, int]:
    """Counters of this process's artifact cache (see :meth:`ArtifactCache.stats`)."""
    return _process_cache().stats()


def clear_cache() -> None:
    """Forget this process's artifact cache and its counters; the next use re-reads ``cache_bytes``."""
    global _cache
    with _cache_lock:
        _cache = None
