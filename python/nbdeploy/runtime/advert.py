"""The advertisement of a long-lived cluster: ``<home>/runtime/cluster.json``.

The process that owns an embedded cluster — the cluster daemon (:mod:`.daemon`), whoever asked for it:
``nbdeploy cluster start``, ``nbdeploy serve``, the Jupyter server extension, a kernel or a script — writes where
its scheduler listens; every other process of the same home connects there instead of starting its own. The
advertisement also says who asked for the daemon (``started_by``, ``requested_by``), which decides how long it
lives. An advertisement is *stale* when its owner process is gone (checked by pid and process start time, on the
same host) or its scheduler does not accept a connection within a short timeout; a stale one is replaced by the
next process that needs a cluster.

Two locks keep one cluster per home: a process that launches a daemon holds ``<home>/runtime/cluster.spawn.lock``
from its last look at the advertisement until the daemon's advertisement is up (:func:`spawn_lock`), so two
processes asking at once launch one daemon; the daemon holds ``<home>/runtime/cluster.lock`` while it checks,
starts and advertises (:func:`advert_lock`). Both are ``flock`` s. Nothing here imports Dask.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._version import __version__
from ..exceptions import ClusterTimeoutError

__all__ = [
    "ADVERT_FILE",
    "Advertisement",
    "advert_lock",
    "is_live",
    "pid_alive",
    "probe_address",
    "process_start_time",
    "read_advert",
    "remove_advert",
    "same_cluster",
    "spawn_lock",
    "write_advert",
]

ADVERT_FILE = "cluster.json"
LOCK_FILE = "cluster.lock"
SPAWN_LOCK_FILE = "cluster.spawn.lock"
PROBE_TIMEOUT = 1.0  # seconds to wait for a TCP connection to an advertised scheduler

# flock excludes processes; these exclude the threads of one process (one lock per lock file)
_thread_locks: dict[str, threading.Lock] = {LOCK_FILE: threading.Lock(), SPAWN_LOCK_FILE: threading.Lock()}


@dataclass(frozen=True)
class Advertisement:
    """One advertised cluster: where its scheduler listens, who owns it, since when."""

    scheduler_address: str
    dashboard_link: str | None
    owner_pid: int
    owner_started: float | None  # the owner process's start time, to tell a reused pid apart
    host: str
    started_at: str  # ISO 8601, UTC
    mode: str  # "local", "cuda" or "class"
    owner_kind: str  # "daemon" (a cluster daemon); older releases also wrote "server" or "process"
    target: str | None = None  # "module:Class" for mode "class"
    nbdeploy_version: str = __version__
    started_by: str | None = None  # "cli" (nbdeploy cluster start), "server" or "process" (a script, a kernel)
    requested_by: int | None = None  # pid of the process that asked for the daemon
    idle_timeout: float | None = None  # seconds without clients after which the daemon exits (None: never)
    dashboard_address: str | None = None  # where the dashboard really listens (http://127.0.0.1:8787), for proxies

    @classmethod
    def for_this_process(
        cls,
        scheduler_address: str,
        dashboard_link: str | None,
        mode: str,
        owner_kind: str,
        target: str | None,
        *,
        started_by: str | None = None,
        requested_by: int | None = None,
        idle_timeout: float | None = None,
        dashboard_address: str | None = None,
    ) -> Advertisement:
        """Build the advertisement of a cluster this process has just started."""
        pid = os.getpid()
        return cls(
            scheduler_address=scheduler_address,
            dashboard_link=dashboard_link,
            owner_pid=pid,
            owner_started=process_start_time(pid),
            host=socket.gethostname(),
            started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            mode=mode,
            owner_kind=owner_kind,
            target=target,
            started_by=started_by,
            requested_by=requested_by,
            idle_timeout=idle_timeout,
            dashboard_address=dashboard_address,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``cluster.json`` holds)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Advertisement:
        """Parse ``cluster.json``'s content; raise ``ValueError`` (or ``TypeError``) when malformed."""
        return cls(
            scheduler_address=str(data["scheduler_address"]),
            dashboard_link=data.get("dashboard_link"),
            owner_pid=int(data["owner_pid"]),
            owner_started=float(data["owner_started"]) if data.get("owner_started") is not None else None,
            host=str(data.get("host") or ""),
            started_at=str(data.get("started_at") or ""),
            mode=str(data.get("mode") or "local"),
            owner_kind=str(data.get("owner_kind") or "process"),
            target=data.get("target"),
            nbdeploy_version=str(data.get("nbdeploy_version") or ""),
            started_by=data.get("started_by"),
            requested_by=int(data["requested_by"]) if data.get("requested_by") is not None else None,
            idle_timeout=float(data["idle_timeout"]) if data.get("idle_timeout") is not None else None,
            dashboard_address=data.get("dashboard_address"),
        )

    @property
    def on_this_host(self) -> bool:
        return self.host == socket.gethostname()

    @property
    def owned_by_this_process(self) -> bool:
        return self.on_this_host and self.owner_pid == os.getpid()


def same_cluster(advert: Advertisement) -> Callable[[Advertisement], bool]:
    """A check that another advertisement names the same cluster (address and owner) as ``advert``."""

    def check(current: Advertisement) -> bool:
        return current.scheduler_address == advert.scheduler_address and current.owner_pid == advert.owner_pid

    return check


def advert_path(runtime_dir: Path) -> Path:
    return Path(runtime_dir) / ADVERT_FILE


def read_advert(runtime_dir: Path) -> Advertisement | None:
    """Return the advertisement in ``runtime_dir``, or ``None`` when there is none or it is unreadable."""
    try:
        text = advert_path(runtime_dir).read_text(encoding="utf-8")
        return Advertisement.from_json(json.loads(text))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_advert(runtime_dir: Path, advert: Advertisement) -> None:
    """Write the advertisement atomically (a temporary file, then a rename)."""
    runtime_dir = Path(runtime_dir)
    runtime_dir.mkdir(parents=True, exist_ok=True)
    tmp = runtime_dir / f".{ADVERT_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(json.dumps(advert.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, advert_path(runtime_dir))


def remove_advert(runtime_dir: Path, only_if: Callable[[Advertisement], bool] | None = None) -> bool:
    """Remove the advertisement (only when ``only_if(current)`` holds, if given); return whether it was removed.

    Callers hold :func:`advert_lock` so that the check and the removal are one step.
    """
    path = advert_path(runtime_dir)
    if only_if is not None:
        current = read_advert(runtime_dir)
        if current is None or not only_if(current):
            return False
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def advert_lock(runtime_dir: Path, timeout: float = 120.0) -> Iterator[None]:
    """Hold the advertisement lock of ``runtime_dir`` (across processes and threads): for the process that checks,
    starts and advertises a cluster, and for anyone who withdraws an advertisement.

    Raises :class:`ClusterTimeoutError` when another process holds it longer than ``timeout`` seconds.
    """
    with _file_lock(Path(runtime_dir), LOCK_FILE, timeout, "while starting a cluster"):
        yield


@contextlib.contextmanager
def spawn_lock(runtime_dir: Path, timeout: float = 180.0) -> Iterator[None]:
    """Hold the lock of launching a cluster daemon for ``runtime_dir``: from the last look at the advertisement
    until the new daemon has advertised its cluster (or failed), so that concurrent callers launch one daemon.

    Raises :class:`ClusterTimeoutError` when another process holds it longer than ``timeout`` seconds.
    """
    with _file_lock(Path(runtime_dir), SPAWN_LOCK_FILE, timeout, "while launching a cluster daemon"):
        yield


@contextlib.contextmanager
def _file_lock(runtime_dir: Path, name: str, timeout: float, doing: str) -> Iterator[None]:
    runtime_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    thread_lock = _thread_locks[name]
    if not thread_lock.acquire(timeout=timeout):
        raise ClusterTimeoutError(f"another thread held {runtime_dir / name} for over {timeout:.0f}s {doing}")
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: one process at a time is the user's to ensure
            yield
            return
        fd = os.open(runtime_dir / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ClusterTimeoutError(
                            f"another process held {runtime_dir / name} for over {timeout:.0f}s {doing}; if no "
                            "nbdeploy process is running, delete that file"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        thread_lock.release()


def process_start_time(pid: int) -> float | None:
    """Return the start time of process ``pid`` (seconds since the epoch), or ``None`` if unknown."""
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:
        return None


def pid_alive(pid: int, started: float | None = None) -> bool:
    """Return whether process ``pid`` runs and, when ``started`` is given, is the process started then."""
    if pid <= 0:
        return False
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with distributed
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started is not None and abs(proc.create_time() - started) > 1.0:
            return False  # the pid was reused by another process
        return True
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def probe_address(address: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Return whether a TCP connection to the scheduler ``address`` opens within ``timeout`` seconds.

    Addresses that are not TCP-based (``ucx://``, ``inproc://``) are assumed reachable.
    """
    scheme, _, rest = address.partition("://")
    if scheme not in ("tcp", "tls", "ws", "wss"):
        return True
    rest = rest.split("/", 1)[0]
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]:")
    else:
        host, _, port = rest.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def is_live(advert: Advertisement, probe_timeout: float = PROBE_TIMEOUT) -> bool:
    """Return whether ``advert`` names a running cluster: owner alive (same host) and scheduler reachable."""
    if advert.on_this_host and not pid_alive(advert.owner_pid, advert.owner_started):
        return False
    return probe_address(advert.scheduler_address, probe_timeout)
