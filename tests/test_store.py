"""The store's shared suite: the same behaviour on file://, memory:// and S3 (moto's server on loopback)."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nbdeploy.exceptions import InvalidInputError, InvalidNameError, NotFoundError, StoreError
from nbdeploy.store import TEMPORARY_MIN_AGE, Store
from nbdeploy.store.artifacts import ArtifactStore, BlobInfo


@pytest.fixture(params=["file", "memory", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict]]:
    """(store_url, storage_options) for each backend; S3 is a real HTTP endpoint served by moto."""
    if request.param == "file":
        yield f"file://{tmp_path}/store", {}
    elif request.param == "memory":
        yield f"memory://nbd-{uuid.uuid4().hex}/store", {}
    else:
        endpoint = request.getfixturevalue("s3_env")["endpoint_url"]
        import s3fs

        options = {"client_kwargs": {"endpoint_url": endpoint}, "key": "testing", "secret": "testing"}
        bucket = f"nbd-{uuid.uuid4().hex[:12]}"
        fs = s3fs.S3FileSystem(**options)
        fs.mkdir(bucket)
        fs.invalidate_cache()
        yield f"s3://{bucket}/store", options


@pytest.fixture
def store(backend: tuple[str, dict], tmp_path: Path) -> Store:
    url, options = backend
    return Store(url, f"sqlite:///{tmp_path}/catalog.db", storage_options=options)


def test_put_stores_blob_at_content_address(store: Store) -> None:
    v = store.put("model", "churn", b"weights-1", metadata={"acc": 0.9})
    assert (v.kind, v.name, v.version, v.size) == ("model", "churn", 1, 9)
    path = store.artifacts.blob_path(v.sha256)
    assert path.endswith(f"/blobs/sha256/{v.sha256[:2]}/{v.sha256}")
    assert store.artifacts.fs.cat_file(path) == b"weights-1"
    assert store.read("model", "churn") == b"weights-1"
    assert store.get("model", "churn", 1).metadata == {"acc": 0.9}


def test_writing_an_existing_hash_is_a_no_op_and_leaves_no_temporary(store: Store) -> None:
    a = store.artifacts.put_blob(b"same bytes")
    b = store.artifacts.put_blob(io.BytesIO(b"same bytes"))
    assert a == b
    assert list(store.artifacts.iter_blobs()) == [a.sha256]
    tmp = f"{store.artifacts.root}/tmp"
    assert not store.artifacts.fs.exists(tmp) or store.artifacts.fs.ls(tmp) == []


def test_versions_latest_aliases_and_resolve(store: Store) -> None:
    for i in range(3):
        store.put("function", "greet", f"v{i + 1}".encode())
    assert [v.version for v in store.versions("function", "greet")] == [1, 2, 3]
    assert store.latest("function", "greet").version == 3
    store.set_alias("function", "greet", "production", 2)
    assert store.resolve("function", "greet@production").version == 2
    assert store.resolve("function", "greet@1").version == 1
    assert store.resolve("function", "greet@latest").version == 3
    assert store.get("function", "greet").aliases == ()
    assert store.get("function", "greet", 2).aliases == ("production",)
    store.set_alias("function", "greet", "production", 3)  # aliases move
    assert store.resolve("function", "greet@production").version == 3
    with pytest.raises(NotFoundError, match="no alias 'staging'"):
        store.resolve("function", "greet@staging")
    with pytest.raises(InvalidInputError, match="latest"):
        store.set_alias("function", "greet", "latest", 1)


def test_delete_version_never_reuses_its_number_and_gc_frees_its_blob(store: Store) -> None:
    store.put("model", "m", b"one")
    two = store.put("model", "m", b"two")
    store.set_alias("model", "m", "production", 2)
    store.delete_version("model", "m", 2)
    assert store.latest("model", "m").version == 1
    with pytest.raises(NotFoundError):
        store.get("model", "m", 2)
    with pytest.raises(NotFoundError):
        store.resolve("model", "m@production")  # the alias went with the version
    assert store.put("model", "m", b"three").version == 3
    report = store.gc(grace_seconds=0)
    assert report.removed == (two.sha256,)
    assert report.bytes_freed == 3
    assert not store.artifacts.has_blob(two.sha256)
    assert store.read("model", "m", 1) == b"one"  # live blobs are kept
    assert store.gc(grace_seconds=0).removed == ()


def test_gc_keeps_young_unreferenced_blobs(store: Store) -> None:
    blob = store.artifacts.put_blob(b"a put whose version row is not inserted yet")
    assert store.gc(grace_seconds=3600).removed == ()
    assert store.artifacts.has_blob(blob.sha256)


def test_list_shows_the_newest_version_of_each_name(store: Store) -> None:
    store.put("model", "a", b"1")
    store.put("model", "a", b"2")
    store.put("function", "b", b"3")
    assert [(v.kind, v.name, v.version) for v in store.list()] == [("function", "b", 1), ("model", "a", 2)]
    assert [v.name for v in store.list("model")] == ["a"]


def test_failed_write_leaves_no_blob_and_no_version(store: Store) -> None:
    class Exploding(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise OSError("disk on fire")
            return b"x" * 1024

    with pytest.raises(StoreError, match="disk on fire"):
        store.put("model", "broken", Exploding())
    assert list(store.artifacts.iter_blobs()) == []
    assert store.versions("model", "broken") == []
    with pytest.raises(NotFoundError, match="no model named 'broken'"):
        store.latest("model", "broken")


@pytest.mark.parametrize("bad", ["../x", "A B", "", "x/y", "..", "-lead", "a" * 65, "Upper"])
def test_bad_names_raise_with_the_rule(store: Store, bad: str) -> None:
    with pytest.raises(InvalidNameError, match="lower-case letters"):
        store.put("model", bad, b"x")


def test_blob_paths_reject_anything_but_a_digest(store: Store) -> None:
    with pytest.raises(InvalidInputError):
        store.artifacts.blob_path("../../etc/passwd")


def test_put_from_path_and_stream_reads(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    v = store.put("model", "big", src)
    assert v.size == src.stat().st_size
    with store.open("model", "big") as fh:
        assert fh.read() == src.read_bytes()
    out = store.artifacts.download_blob(v.sha256, tmp_path / "copy.bin")
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(NotFoundError):
        store.put("model", "big", tmp_path / "missing.bin")


def test_large_file_is_streamed_not_copied_into_memory(tmp_path: Path) -> None:
    store = ArtifactStore(f"file://{tmp_path}/store")
    src = tmp_path / "large.bin"
    with open(src, "wb") as fh:
        for _ in range(48):
            fh.write(os.urandom(1024 * 1024))
    tracemalloc.start()
    try:
        info = store.put_blob(src)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == 48 * 1024 * 1024
    assert peak < 24 * 1024 * 1024, f"peak Python allocation {peak} bytes while storing a 48 MiB file"


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("anonymous", [True, False], ids=["o_tmpfile", "named-temporary"])
def test_a_failed_local_write_leaves_no_file_anywhere_in_the_store(tmp_path: Path, anonymous: bool) -> None:
    store = ArtifactStore(f"file://{tmp_path}/store")
    store.put_blob(b"warm-up")  # probes O_TMPFILE support once
    if not anonymous:
        store._anonymous = False
    before = _files_under(tmp_path / "store")

    class Exploding(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            raise OSError("disk on fire")

    with pytest.raises(StoreError, match="disk on fire"):
        store.put_blob(Exploding())
    assert _files_under(tmp_path / "store") == before


@pytest.mark.parametrize("anonymous", [True, False], ids=["o_tmpfile", "named-temporary"])
def test_local_puts_of_bytes_files_and_streams_land_whole_at_their_address(tmp_path: Path, anonymous: bool) -> None:
    store = ArtifactStore(f"file://{tmp_path}/store")
    store._anonymous = None if anonymous else False
    payloads = [b"", b"small", os.urandom(3 << 20), os.urandom(17 << 20)]  # inline and pool-thread hashing
    for i, payload in enumerate(payloads):
        src = tmp_path / f"src-{i}.bin"
        src.write_bytes(payload)
        infos = {store.put_blob(payload), store.put_blob(src), store.put_blob(io.BytesIO(payload))}
        assert infos == {BlobInfo(hashlib.sha256(payload).hexdigest(), len(payload))}
        assert store.read_blob(hashlib.sha256(payload).hexdigest()) == payload
    assert sorted(store.iter_blobs()) == sorted(hashlib.sha256(p).hexdigest() for p in payloads)
    assert not (tmp_path / "store" / "tmp").exists() or not any((tmp_path / "store" / "tmp").iterdir())


def test_concurrent_puts_of_the_same_bytes_share_one_blob(tmp_path: Path) -> None:
    store = ArtifactStore(f"file://{tmp_path}/store")
    payload = os.urandom(1 << 20)
    with ThreadPoolExecutor(8) as pool:
        infos = set(pool.map(lambda _: store.put_blob(payload), range(32)))
    assert infos == {BlobInfo(hashlib.sha256(payload).hexdigest(), len(payload))}
    assert _files_under(tmp_path / "store") == [Path(store.blob_path(next(iter(infos)).sha256))]


_CRASHING_WRITER = """
import sys, time
from nbdeploy.store.artifacts import ArtifactStore, BlobInfo

class Slow:
    sent = 0
    def read(self, n=-1):
        if self.sent >= 4:
            print("writing", flush=True)
            time.sleep(60)
        self.sent += 1
        return b"x" * (1 << 20)

store = ArtifactStore(sys.argv[1])
if sys.argv[2] == "named":
    store._anonymous = False
store.put_blob(Slow())
"""


@pytest.mark.parametrize("mode", ["anonymous", "named"])
def test_a_process_killed_mid_write_leaves_no_blob(tmp_path: Path, mode: str) -> None:
    store_dir = tmp_path / "store"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_WRITER, f"file://{store_dir}", mode], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert list(ArtifactStore(f"file://{store_dir}").iter_blobs()) == []
    leftovers = _files_under(store_dir)
    if mode == "anonymous":
        assert leftovers == []  # the anonymous file died with the process
        return
    assert leftovers and all(p.parent == store_dir / "tmp" for p in leftovers)  # only an unreferenced temporary
    store = Store(f"file://{store_dir}", f"sqlite:///{tmp_path}/catalog.db")
    try:
        young = store_dir / "tmp" / "in-progress"
        young.write_bytes(b"a write still going on")
        assert store.gc(grace_seconds=0).temporaries == 0  # younger than TEMPORARY_MIN_AGE: kept
        old = time.time() - TEMPORARY_MIN_AGE - 60
        for path in leftovers:
            os.utime(path, (old, old))
        report = store.gc(grace_seconds=0)
        assert report.temporaries == len(leftovers) and report.bytes_freed == 4 << 20
        assert set(report.removed) == {f"tmp/{p.name}" for p in leftovers}
        assert _files_under(store_dir) == [young]
    finally:
        store.close()


def test_object_stores_upload_bytes_and_files_straight_to_their_address(tmp_path: Path) -> None:
    store = ArtifactStore(f"memory://nbd-{uuid.uuid4().hex}/store")
    assert store.atomic_writes
    src = tmp_path / "f.bin"
    src.write_bytes(b"file bytes")
    paths = {store.blob_path(store.put_blob(data).sha256) for data in (b"some bytes", src)}
    assert {store.fs._strip_protocol(p) for p in store.fs.find(store.root)} == paths
    assert not store.fs.exists(f"{store.root}/tmp")
