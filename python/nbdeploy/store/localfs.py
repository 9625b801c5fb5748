"""Writing a blob on a local filesystem so that it appears whole at its final path or not at all.

On Linux the bytes go into an *anonymous* file (``O_TMPFILE``) in the store's ``blobs`` folder, which is linked
at its content address once written (``linkat``): a process that dies mid-write leaves nothing behind — no
partial blob and no temporary file to clean up — and a put costs one directory entry instead of a create and a
rename. Where ``O_TMPFILE`` or ``/proc`` is unavailable, a named file under ``tmp/`` is written and renamed into
place (``os.replace``, atomic on one filesystem).

Files are copied by the kernel (``copy_file_range``, else ``sendfile``) while a pool thread hashes a read-only
memory map of the source: no byte passes through a Python buffer, and hashing and copying overlap.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import uuid
from dataclasses import dataclass

__all__ = ["LocalTarget", "copy_into", "sha256_of_file", "write_all"]

_ROOT_FD: int | None = None


def _root_fd() -> int:
    """A descriptor of ``/`` for ``linkat(…, AT_SYMLINK_FOLLOW)`` (``os.link`` uses plain ``link`` otherwise)."""
    global _ROOT_FD
    if _ROOT_FD is None:
        _ROOT_FD = os.open("/", os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_DIRECTORY", 0))
    return _ROOT_FD


@dataclass
class LocalTarget:
    """An open file that becomes the blob at ``final`` on :meth:`publish`; :meth:`discard` drops it instead."""

    fd: int
    tmp: str | None  # the named temporary file, or None for an anonymous (O_TMPFILE) one

    @classmethod
    def open(cls, folder: str, tmp_folder: str, anonymous: bool) -> LocalTarget:
        """Open an anonymous file in ``folder`` when ``anonymous`` (Linux), else a new named file in
        ``tmp_folder``. Raises :class:`OSError` when neither can be created."""
        if anonymous:
            return cls(os.open(folder, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666), None)
        os.makedirs(tmp_folder, exist_ok=True)
        tmp = f"{tmp_folder}/{uuid.uuid4().hex}"
        return cls(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), tmp)

    def publish(self, final: str) -> None:
        """Make the written file visible at ``final`` in one step (an existing blob there is the same content
        and is kept) and close it. Raises :class:`OSError`."""
        try:
            if self.tmp is None:
                try:
                    os.link(f"/proc/self/fd/{self.fd}", final, src_dir_fd=_root_fd(), follow_symlinks=True)
                except FileExistsError:
                    pass  # a concurrent put stored the same bytes first
            else:
                os.replace(self.tmp, final)
                self.tmp = None
        finally:
            self.discard()

    def discard(self) -> None:
        """Close the file and remove the named temporary, if any (an anonymous file simply vanishes)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass
            self.tmp = None


def anonymous_files_work(folder: str) -> bool:
    """Whether ``O_TMPFILE`` plus ``linkat`` through ``/proc/self/fd`` works in ``folder`` (probed once per store:
    not every filesystem, kernel or container supports it)."""
    if not hasattr(os, "O_TMPFILE"):
        return False
    probe = f"{folder}/.probe-{uuid.uuid4().hex}"
    try:
        target = LocalTarget.open(folder, folder, True)
        target.publish(probe)
        os.unlink(probe)
        return True
    except OSError:
        return False


def write_all(fd: int, view: memoryview) -> None:
    """Write every byte of ``view`` to ``fd`` (``os.write`` may write less than asked)."""
    while view:
        written = os.write(fd, view)
        view = view[written:]


def copy_into(src: int, dst: int, size: int) -> None:
    """Copy ``size`` bytes from descriptor ``src`` to ``dst`` inside the kernel (``copy_file_range``, then
    ``sendfile``, then plain reads and writes where neither applies). Raises :class:`OSError`."""
    left = size
    if hasattr(os, "copy_file_range"):
        try:
            while left > 0:
                n = os.copy_file_range(src, dst, min(left, 1 << 30))
                if n == 0:
                    break
                left -= n
            return _check_copied(left)
        except OSError as exc:  # e.g. EXDEV on old kernels, ENOSYS, EINVAL on some filesystems
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP) or left != size:
                raise
    offset = size - left
    try:
        while left > 0:
            n = os.sendfile(dst, src, offset, min(left, 1 << 30))
            if n == 0:
                break
            offset += n
            left -= n
        return _check_copied(left)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS) or left != size:
            raise
    while left > 0:
        chunk = os.read(src, min(left, 8 << 20))
        if not chunk:
            break
        write_all(dst, memoryview(chunk))
        left -= len(chunk)
    _check_copied(left)


def _check_copied(left: int) -> None:
    if left > 0:
        raise OSError(errno.EIO, f"the source file shrank while it was copied ({left} bytes missing)")


def sha256_of_file(path: str, size: int) -> str:
    """The sha256 hex digest of the first ``size`` bytes of the file at ``path``, hashed from a read-only memory
    map (no copy into a Python buffer)."""
    if size == 0:
        return hashlib.sha256(b"").hexdigest()
    with open(path, "rb", buffering=0) as fh, mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ) as mapped:
        if hasattr(mmap, "MADV_SEQUENTIAL"):
            mapped.madvise(mmap.MADV_SEQUENTIAL)
        return hashlib.sha256(mapped).hexdigest()
