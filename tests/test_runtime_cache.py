"""The artifact cache in one process, against a real file store (the worker side is in test_runtime_tcp.py)."""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path

import cloudpickle
import pytest

import nbdeploy.config
from nbdeploy.exceptions import InvalidInputError, NotFoundError
from nbdeploy.runtime import ArtifactCache, cache_stats, clear_cache, load_artifact
from nbdeploy.store import ArtifactStore


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(f"file://{tmp_path}/store")


def _put(store: ArtifactStore, obj: object) -> str:
    return store.put_blob(cloudpickle.dumps(obj)).sha256


def _wait_until(condition, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.005)


def test_an_artifact_is_loaded_once_and_then_served_from_memory(store: ArtifactStore) -> None:
    sha = _put(store, {"weights": [1, 2, 3]})
    cache = ArtifactCache(max_bytes=10_000)
    first = cache.get(store.url, sha)
    second = cache.get(store.url, sha)
    assert first == {"weights": [1, 2, 3]}
    assert second is first
    stats = cache.stats()
    assert (stats["loads"], stats["hits"], stats["entries"]) == (1, 1, 1)
    assert stats["bytes"] == len(store.read_blob(sha))


def _tagged(data: bytes) -> object:
    return ("tagged", cloudpickle.loads(data))


def test_the_loader_is_part_of_the_key(store: ArtifactStore) -> None:
    sha = _put(store, [1, 2])
    cache = ArtifactCache(max_bytes=10_000)
    assert cache.get(store.url, sha) == [1, 2]
    assert cache.get(store.url, sha, loader=bytes) == store.read_blob(sha)
    assert cache.get(store.url, sha, loader=pickle.loads) == [1, 2]  # the same function as cloudpickle.loads
    assert cache.get(store.url, sha, loader=_tagged) == ("tagged", [1, 2])
    assert cache.stats()["loads"] == 3
    assert cache.stats()["hits"] == 1
    assert cache.stats()["entries"] == 3


def test_least_recently_used_entries_are_evicted_by_size(store: ArtifactStore) -> None:
    a, b, c = (_put(store, bytes([i]) * 1000) for i in range(3))
    size = len(store.read_blob(a))
    cache = ArtifactCache(max_bytes=int(size * 2.5))
    cache.get(store.url, a)
    cache.get(store.url, b)
    cache.get(store.url, a)  # a is now the most recently used
    cache.get(store.url, c)  # over the limit: b goes
    kept = [key[1] for key in cache.keys()]
    assert kept == [a, c]
    stats = cache.stats()
    assert stats["evictions"] == 1
    assert stats["bytes"] == 2 * size <= cache.max_bytes
    cache.get(store.url, b)  # loaded again, evicting a
    assert [key[1] for key in cache.keys()] == [c, b]
    assert cache.stats()["loads"] == 4


def test_an_artifact_larger_than_the_cache_is_returned_but_not_kept(store: ArtifactStore) -> None:
    sha = _put(store, b"x" * 5000)
    cache = ArtifactCache(max_bytes=1000)
    assert cache.get(store.url, sha) == b"x" * 5000
    assert cache.get(store.url, sha) == b"x" * 5000
    stats = cache.stats()
    assert (stats["loads"], stats["entries"], stats["bytes"], stats["evictions"]) == (2, 0, 0, 0)


def test_concurrent_first_loads_of_one_key_load_once(store: ArtifactStore) -> None:
    sha = _put(store, "model")
    cache = ArtifactCache(max_bytes=10_000)
    release = threading.Event()
    calls = []

    def slow_loader(data: bytes) -> object:
        calls.append(1)
        release.wait(30)
        return cloudpickle.loads(data)

    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get(store.url, sha, slow_loader))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    # one thread loads (blocked in the loader); the other seven must be waiting for it, not loading too
    _wait_until(lambda: cache.stats()["waiting"] == 7, "seven threads wait for the first load")
    release.set()
    for t in threads:
        t.join(30)
    assert results == ["model"] * 8
    assert len({id(r) for r in results}) == 1
    assert len(calls) == 1
    stats = cache.stats()
    assert (stats["loads"], stats["hits"], stats["waiting"]) == (1, 7, 0)


def test_a_failed_load_is_not_cached_and_reaches_every_waiter(store: ArtifactStore) -> None:
    sha = _put(store, "fine")
    cache = ArtifactCache(max_bytes=10_000)
    attempts = []

    def flaky(data: bytes) -> object:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("corrupt model file")
        return cloudpickle.loads(data)

    with pytest.raises(ValueError, match="corrupt model file"):
        cache.get(store.url, sha, flaky)
    assert cache.get(store.url, sha, flaky) == "fine"
    assert cache.stats()["loads"] == 1
    assert len(attempts) == 2


def test_missing_or_malformed_digests_raise_store_errors(store: ArtifactStore) -> None:
    cache = ArtifactCache(max_bytes=10_000)
    with pytest.raises(NotFoundError, match="not in the store"):
        cache.get(store.url, "0" * 64)
    with pytest.raises(InvalidInputError):
        cache.get(store.url, "../../etc/passwd")
    assert cache.stats()["entries"] == 0


def test_load_artifact_uses_the_process_cache_sized_by_the_setting(
    store: ArtifactStore, nbd_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBDEPLOY_CACHE_BYTES", "12345")
    nbdeploy.config.reset_settings()
    clear_cache()
    try:
        sha = _put(store, {"a": 1})
        assert load_artifact(store.url, sha) is load_artifact(store.url, sha)
        stats = cache_stats()
        assert (stats["max_bytes"], stats["loads"], stats["hits"]) == (12345, 1, 1)
        clear_cache()
        assert cache_stats()["loads"] == 0
    finally:
        clear_cache()
