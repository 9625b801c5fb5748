"""Content-addressed blobs on any fsspec filesystem.

A blob lives at ``<store_url>/blobs/sha256/<first two hex>/<hash>``. A write streams into a temporary key
under ``<store_url>/tmp/`` while hashing, then moves it into place, so a crash never leaves a partial blob
at a final key; writing a hash that already exists is a no-op.

Where the time goes, and what keeps a put close to the raw backend's: the bytes are written once, straight
from the caller's buffer (no copy into a stream and out again); the sha256 is computed in a thread of one
shared pool *while* the backend writes (hashlib and file I/O both release the GIL), not in a pass of its own;
folders known to exist are not created again.
"""

from __future__ import annotations

import hashlib
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

__all__ = ["ArtifactStore", "BlobInfo", "Data"]

CHUNK = 8 * 1024 * 1024
PARALLEL_HASH_BYTES = 256 * 1024  # from this size on, bytes are hashed in a thread while they are written
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


def _sha256_of_file(path: str) -> str:
    with open(path, "rb", buffering=0) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()  # a small reused buffer, no big allocation


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
        if self.local:
            self.fs.makedirs(self.root, exist_ok=True)

    # --- keys -------------------------------------------------------------------------------------
    def blob_path(self, sha256: str) -> str:
        """Return the filesystem path of the blob with this hex digest (validated, inside the store)."""
        if not isinstance(sha256, str) or not _SHA_RE.fullmatch(sha256):
            raise InvalidInputError(f"{sha256!r} is not a sha256 hex digest", "sha256")
        return f"{self.root}/blobs/sha256/{sha256[:2]}/{sha256}"

    def _tmp_path(self) -> str:
        return f"{self.root}/tmp/{uuid.uuid4().hex}"

    # --- writing ----------------------------------------------------------------------------------
    def _makedirs(self, folder: str) -> None:
        if folder not in self._made:
            self.fs.makedirs(folder, exist_ok=True)
            self._made.add(folder)

    def put_blob(self, data: Data) -> BlobInfo:
        """Store ``data`` (bytes, a local file path, or a readable binary file object) and return its info.

        Data is streamed in chunks (a path or file object is never read whole into memory). Raises
        :class:`StoreError` when the backend fails and :class:`NotFoundError` for a missing file path.
        """
        if isinstance(data, bytes | bytearray | memoryview):
            return self._put_bytes(memoryview(data).cast("B"))
        if isinstance(data, str | os.PathLike):
            path = Path(data)
            if not path.is_file():
                raise NotFoundError(f"no file at {str(path)!r} to store")
            return self._put_path(path)
        if hasattr(data, "read"):
            return self._put_stream(data)
        raise InvalidInputError(
            f"cannot store a {type(data).__name__}: pass bytes, a file path or a binary file object", "data"
        )

    def _put_bytes(self, view: memoryview) -> BlobInfo:
        tmp = self._tmp_path()
        # Large buffers are hashed in a pool thread while this one writes them (both release the GIL).
        digest = _in_background(_sha256_of_view, view) if len(view) >= PARALLEL_HASH_BYTES else None
        try:
            self._makedirs(f"{self.root}/tmp")
            with self.fs.open(tmp, "wb") as out:
                if self.local or len(view) <= CHUNK:
                    out.write(view)
                else:
                    for start in range(0, len(view), CHUNK):
                        out.write(view[start : start + CHUNK])
        except Exception as exc:
            if digest is not None:
                digest.exception()
            self._discard(tmp)
            raise StoreError(f"writing to the store {self.url!r} failed: {exc}") from exc
        sha = digest.result() if digest is not None else _sha256_of_view(view)
        return self._commit(tmp, sha, len(view))

    def _put_path(self, path: Path) -> BlobInfo:
        # Let the backend copy the file (a kernel copy locally, a multipart upload on S3) while a pool thread
        # hashes it: both release the GIL, so a put costs about max(copy, hash), not their sum.
        tmp = self._tmp_path()
        size = path.stat().st_size
        sha = _in_background(_sha256_of_file, str(path))
        try:
            self._makedirs(f"{self.root}/tmp")
            self.fs.put_file(str(path), tmp)
        except Exception as exc:
            sha.exception()
            self._discard(tmp)
            raise StoreError(f"writing to the store {self.url!r} failed: {exc}") from exc
        return self._commit(tmp, sha.result(), size)

    def _put_stream(self, stream: IO[bytes]) -> BlobInfo:
        tmp = self._tmp_path()
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
        return self._commit(tmp, hasher.hexdigest(), size)

    def _commit(self, tmp: str, sha: str, size: int) -> BlobInfo:
        final = self.blob_path(sha)
        try:
            if self.fs.exists(final):
                self._discard(tmp)
            elif self.local:
                folder = final.rsplit("/", 1)[0]
                if folder not in self._made:
                    os.makedirs(folder, exist_ok=True)
                    self._made.add(folder)
                os.replace(tmp, final)  # atomic on one filesystem: a reader sees no blob or the whole blob
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

    def delete_blob(self, sha256: str) -> None:
        """Remove a blob (missing blobs are ignored)."""
        self._discard(self.blob_path(sha256))

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"
