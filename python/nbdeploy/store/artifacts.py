"""Content-addressed blobs on any fsspec filesystem.

A blob lives at ``<store_url>/blobs/sha256/<first two hex>/<hash>`` and appears there whole or not at all;
writing a hash that already exists is a no-op. How each backend gets that guarantee cheaply:

- a local filesystem: the bytes go into an anonymous file that is linked at its address once written
  (:mod:`.localfs`; a named temporary and a rename where that is unavailable) — a crash leaves nothing behind;
- object stores (S3, GCS, Azure) and ``memory://``, where an object is visible only once its upload completes:
  bytes and files are hashed first and uploaded straight to their final key (no temporary, no copy and delete);
- a stream of unknown content on any other backend: a temporary key under ``tmp/``, then a move.

Where the time goes, and what keeps a put close to the raw backend's: the bytes are written once, straight
from the caller's buffer or copied by the kernel (no Python buffer in between); the sha256 (the public
address of a blob, so it stays sha256) is computed from a memory map for files, and for blobs of
:data:`PARALLEL_HASH_BYTES` or more in a thread of one shared pool *while* the bytes are written (hashlib and
file I/O both release the GIL); folders known to exist are not created again (the fan-out folders are
remembered per store object); no fsync, as raw fsspec does none (the catalog commits in WAL mode with
``synchronous = NORMAL``); one catalog insert per put. A file is copied by the kernel and hashed from the page
cache rather than read once into a Python buffer, hashed and written: that single pass was measured slower here
(1 MB: 255-337 against 611-754 MB/s; 200 MB: 194-326 against 207-713 MB/s, benchmarks/store.py, load 5-6 on
2 cores) — ``write()`` from a user buffer costs more than ``copy_file_range``, and the second read hits the page
cache. On a local filesystem the sha256 is most of what a put adds: ``benchmarks/store.py`` prints the ratio
with the hashing time taken out beside the real one.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import fsspec

from ..exceptions import InvalidInputError, MissingDependencyError, NotFoundError, StoreError
from .localfs import LocalTarget, anonymous_files_work, copy_into, sha256_of_file, write_all

__all__ = ["ArtifactStore", "BlobInfo", "Data"]

CHUNK = 8 * 1024 * 1024
#: from this size on, bytes are hashed in a pool thread while they are written. Below it the caller's thread
#: hashes them itself: waking another thread costs more than it saves on a busy machine (measured: 1 MB puts
#: took 3-5 ms waiting for the hashing thread to be scheduled, against 0.7 ms to hash them inline)
PARALLEL_HASH_BYTES = 16 * 1024 * 1024
#: backends on which a written object becomes visible only when its upload completes (whole or not at all)
ATOMIC_WRITE_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "abfs", "az", "abfss", "memory"}
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")

# protocol -> (package, extra) for a clear hint when an optional backend is missing
_BACKEND_HINTS = {
    "s3": ("s3fs", "s3"),
    "s3a": ("s3fs", "s3"),
    "gs": ("gcsfs", None),
    "gcs": ("gcsfs", None),
    "abfs": ("adlfs", None),
    "az": ("adlfs", None),
}

Data = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO


_hasher_pool: tuple[int, ThreadPoolExecutor] | None = None
_hasher_lock = threading.Lock()


def _in_background(fn: Any, *args: Any) -> Future:
    """Run ``fn(*args)`` in the shared hashing pool (two threads, started on first use in this process, never
    per call; a forked child starts its own)."""
    global _hasher_pool
    pool = _hasher_pool
    if pool is None or pool[0] != os.getpid():
        with _hasher_lock:
            pool = _hasher_pool
            if pool is None or pool[0] != os.getpid():
                pool = _hasher_pool = (os.getpid(), ThreadPoolExecutor(2, thread_name_prefix="nbdeploy-hash"))
    return pool[1].submit(fn, *args)


def _sha256_of_view(view: memoryview) -> str:
    return hashlib.sha256(view).hexdigest()


def _as_bytes(view: memoryview) -> bytes:
    """``view``'s bytes, without a copy when it already covers a whole ``bytes`` object."""
    if isinstance(view.obj, bytes) and len(view.obj) == view.nbytes:
        return view.obj
    return view.tobytes()


def modified_time(fs: fsspec.AbstractFileSystem, path: str, info: dict[str, Any]) -> float:
    """A file's modification time (seconds since the epoch) from its ``info``, else asked; 0 when unknown."""
    from datetime import datetime

    for key in ("mtime", "LastModified", "created", "last_modified"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
    try:
        return float(fs.modified(path).timestamp())
    except Exception:
        return 0.0


def _protocols(fs: fsspec.AbstractFileSystem) -> set[str]:
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol or ())


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its sha256 hex digest and size in bytes."""

    sha256: str
    size: int


def _open_filesystem(url: str, storage_options: dict[str, Any] | None) -> tuple[fsspec.AbstractFileSystem, str]:
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    try:
        fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as exc:
        package, extra = _BACKEND_HINTS.get(protocol, (protocol + "fs", None))
        raise MissingDependencyError(f"the store {url!r}", package, extra) from exc
    except ValueError as exc:
        raise InvalidInputError(f"store_url {url!r} is not a URL fsspec understands: {exc}", "store_url") from exc
    return fs, root.rstrip("/")


class ArtifactStore:
    """Blobs addressed by their sha256, on the fsspec filesystem named by ``url``."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.fs, self.root = _open_filesystem(url, storage_options)
        self.local = self.fs.protocol in ("file", "local") or "file" in (self.fs.protocol or ())
        self._made: set[str] = set()  # folders this object created or saw (not created again)
        self._anonymous: bool | None = None  # whether O_TMPFILE works here (probed on the first local write)
        #: whether an object written to this backend appears only once complete, so a blob can be written
        #: straight to its final key (object stores; a local or network filesystem shows partial files)
        self.atomic_writes = _protocols(self.fs) & ATOMIC_WRITE_PROTOCOLS != set()
        if self.local:
            self.fs.makedirs(self.root, exist_ok=True)

    # --- keys -------------------------------------------------------------------------------------
    def blob_path(self, sha256: str) -> str:
        """Return the filesystem path of the blob with this hex digest (validated, inside the store)."""
        if not isinstance(sha256, str) or not _SHA_RE.fullmatch(sha256):
            raise InvalidInputError(f"{sha256!r} is not a sha256 hex digest", "sha256")
        return f"{self.root}/blobs/sha256/{sha256[:2]}/{sha256}"

    # --- writing ----------------------------------------------------------------------------------
    def _makedirs(self, folder: str) -> None:
        if folder not in self._made:
            self.fs.makedirs(folder, exist_ok=True)
            self._made.add(folder)

    def put_blob(self, data: Data) -> BlobInfo:
        """Store ``data`` (bytes, a local file path, or a readable binary file object) and return its info.

        Data is streamed in chunks (a path or file object is never read whole into memory); the blob appears at
        its content address whole or not at all. Raises :class:`StoreError` when the backend fails and
        :class:`NotFoundError` for a missing file path.
        """
        if isinstance(data, bytes | bytearray | memoryview):
            view = memoryview(data).cast("B")
            return self._put_bytes_local(view) if self.local else self._put_bytes_remote(view)
        if isinstance(data, str | os.PathLike):
            path = Path(data)
            if not path.is_file():
                raise NotFoundError(f"no file at {str(path)!r} to store")
            return self._put_path_local(path) if self.local else self._put_path_remote(path)
        if hasattr(data, "read"):
            return self._put_stream_local(data) if self.local else self._put_stream_remote(data)
        raise InvalidInputError(
            f"cannot store a {type(data).__name__}: pass bytes, a file path or a binary file object", "data"
        )

    # local filesystem: an anonymous file linked at its content address (see .localfs)
    def _local_target(self) -> LocalTarget:
        if self._anonymous is None:
            self._makedirs(f"{self.root}/blobs")
            self._anonymous = anonymous_files_work(f"{self.root}/blobs")
        return LocalTarget.open(f"{self.root}/blobs", f"{self.root}/tmp", self._anonymous)

    def _publish_local(self, target: LocalTarget, sha: str, size: int) -> BlobInfo:
        final = self.blob_path(sha)
        folder = final.rsplit("/", 1)[0]
        try:
            if folder not in self._made:
                os.makedirs(folder, exist_ok=True)
                self._made.add(folder)
            target.publish(final)
        except OSError as exc:
            target.discard()
            raise StoreError(f"moving a blob into place in {self.url!r} failed: {exc}") from exc
        return BlobInfo(sha, size)

    def _put_bytes_local(self, view: memoryview) -> BlobInfo:
        # Large buffers are hashed in a pool thread while this one writes them (both release the GIL).
        digest = _in_background(_sha256_of_view, view) if len(view) >= PARALLEL_HASH_BYTES else None
        try:
            target = self._local_target()
            try:
                write_all(target.fd, view)
            except BaseException:
                target.discard()
                raise
        except Exception as exc:
            if digest is not None:
                digest.exception()
            raise StoreError(f"writing to the store {self.url!r} failed: {exc}") from exc
        sha = digest.result() if digest is not None else _sha256_of_view(view)
        return self._publish_local(target, sha, len(view))

    def _put_path_local(self, path: Path) -> BlobInfo:
        # The kernel copies the file (copy_file_range) while a pool thread hashes a memory map of it: both
        # release the GIL, so a put costs about max(copy, hash), not their sum, and no byte enters Python.
        size = path.stat().st_size
        digest = _in_background(sha256_of_file, str(path), size) if size >= PARALLEL_HASH_BYTES else None
        try:
            target = self._local_target()
            try:
                with open(path, "rb", buffering=0) as src:
                    copy_into(src.fileno(), target.fd, size)
            except BaseException:
                target.discard()
                raise
        except Exception as exc:
            if digest is not None:
                digest.exception()
            raise StoreError(f"writing to the store {self.url!r} failed: {exc}") from exc
        sha = digest.result() if digest is not None else sha256_of_file(str(path), size)
        return self._publish_local(target, sha, size)

    def _put_stream_local(self, stream: IO[bytes]) -> BlobInfo:
        hasher = hashlib.sha256()
        size = 0
        try:
            target = self._local_target()
            try:
                while chunk := stream.read(CHUNK):
                    hasher.update(chunk)
                    write_all(target.fd, memoryview(chunk))
                    size += len(chunk)
            except BaseException:
                target.discard()
                raise
        except Exception as exc:
            raise StoreError(f"writing to the store {self.url!r} failed: {exc}") from exc
        return self._publish_local(target, hasher.hexdigest(), size)

    # object stores and other backends
    def _put_bytes_remote(self, view: memoryview) -> BlobInfo:
        # The digest is known before the write, so where an object appears only once its upload completes
        # (S3, GCS, Azure, memory) the bytes go straight to their final key: one upload, no copy and delete.
        sha = _sha256_of_view(view)
        final = self.blob_path(sha)
        if self.fs.exists(final):
            return BlobInfo(sha, len(view))
        if self.atomic_writes:
            try:
                self._makedirs(final.rsplit("/", 1)[0])
                self.fs.pipe_file(final, _as_bytes(view))
            except Exception as exc:  # nothing to remove: a failed upload leaves no object
                raise StoreError(f"writing to the store {self.url!r} failed: {exc}") from exc
            return BlobInfo(sha, len(view))
        return self._put_stream_remote(io.BytesIO(view))

    def _put_path_remote(self, path: Path) -> BlobInfo:
        size = path.stat().st_size
        if not self.atomic_writes:
            with open(path, "rb") as fh:
                return self._put_stream_remote(fh)
        sha = sha256_of_file(str(path), size)
        final = self.blob_path(sha)
        if self.fs.exists(final):
            return BlobInfo(sha, size)
        try:
            self._makedirs(final.rsplit("/", 1)[0])
            self.fs.put_file(str(path), final)  # a multipart upload on S3: the object appears when it completes
        except Exception as exc:  # nothing to remove: a failed upload leaves no object
            raise StoreError(f"writing to the store {self.url!r} failed: {exc}") from exc
        return BlobInfo(sha, size)

    def _put_stream_remote(self, stream: IO[bytes]) -> BlobInfo:
        # The digest is known only at the end: write a temporary key, then move it to the content address.
        tmp = f"{self.root}/tmp/{uuid.uuid4().hex}"
        hasher = hashlib.sha256()
        size = 0
        try:
            self._makedirs(f"{self.root}/tmp")
            with self.fs.open(tmp, "wb") as out:
                while chunk := stream.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except Exception as exc:
            self._discard(tmp)
            raise StoreError(f"writing to the store {self.url!r} failed: {exc}") from exc
        sha = hasher.hexdigest()
        final = self.blob_path(sha)
        try:
            if self.fs.exists(final):
                self._discard(tmp)
            else:
                self._makedirs(final.rsplit("/", 1)[0])
                self.fs.mv(tmp, final)
        except Exception as exc:
            self._discard(tmp)
            raise StoreError(f"moving a blob into place in {self.url!r} failed: {exc}") from exc
        return BlobInfo(sha, size)

    def _discard(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except Exception:
            pass

    # --- reading ----------------------------------------------------------------------------------
    def has_blob(self, sha256: str) -> bool:
        """Return whether a blob with this digest is stored."""
        return bool(self.fs.exists(self.blob_path(sha256)))

    def read_blob(self, sha256: str) -> bytes:
        """Return the blob's bytes; raise :class:`NotFoundError` when it is not stored."""
        try:
            if self.local:  # Python's own file object: fsspec's local file wrapper adds nothing here
                with open(self.blob_path(sha256), "rb", buffering=0) as fh:
                    return fh.readall()
            return self.fs.cat_file(self.blob_path(sha256))
        except FileNotFoundError as exc:
            raise NotFoundError(f"blob {sha256} is not in the store {self.url!r}") from exc

    def open_blob(self, sha256: str) -> IO[bytes]:
        """Open the blob for streaming reads (the caller closes it)."""
        try:
            return self.fs.open(self.blob_path(sha256), "rb")
        except FileNotFoundError as exc:
            raise NotFoundError(f"blob {sha256} is not in the store {self.url!r}") from exc

    def download_blob(self, sha256: str, path: str | os.PathLike) -> Path:
        """Copy the blob to the local file ``path`` (streamed) and return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.local:
                import shutil

                shutil.copyfile(self.blob_path(sha256), target)  # a kernel copy (sendfile / copy_file_range)
            else:
                self.fs.get_file(self.blob_path(sha256), str(target))
        except FileNotFoundError as exc:
            raise NotFoundError(f"blob {sha256} is not in the store {self.url!r}") from exc
        return target

    def iter_blobs(self) -> Iterator[str]:
        """Yield the digest of every stored blob."""
        base = f"{self.root}/blobs/sha256"
        try:
            paths = self.fs.find(base)
        except FileNotFoundError:
            return
        for p in paths:
            name = p.rsplit("/", 1)[-1]
            if _SHA_RE.fullmatch(name):
                yield name

    def remove_stale_temporaries(self, min_age_seconds: float, now: float) -> list[tuple[str, int]]:
        """Remove the named temporary files under ``tmp/`` not modified for ``min_age_seconds``: what a process
        killed mid-write leaves behind where anonymous files are unavailable (the local fallback, streams to
        non-atomic backends). A write in progress touches its file with every chunk, so it is younger. Returns
        ``(path relative to the store, bytes)`` of each removed file."""
        base = f"{self.root}/tmp"
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return []
        removed = []
        for path, info in found.items():
            if info.get("type", "file") != "file" or now - modified_time(self.fs, path, info) < min_age_seconds:
                continue
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                continue
            stripped = self.fs._strip_protocol(path)
            removed.append(
                (
                    stripped[len(self.root) + 1 :] if stripped.startswith(self.root + "/") else stripped,
                    int(info.get("size") or 0),
                )
            )
        return removed

    def delete_blob(self, sha256: str) -> None:
        """Remove a blob (missing blobs are ignored)."""
        self._discard(self.blob_path(sha256))

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"
