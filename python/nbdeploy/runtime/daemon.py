"""The cluster daemon: ``python -m nbdeploy.runtime.daemon``, the one process that runs an embedded cluster.

No process but this one starts a Dask cluster in itself: a script, a kernel, the CLI or a server that needs the
embedded cluster (modes ``local``, ``cuda``, ``auto`` and cluster classes) and finds none advertised in
``<home>/runtime/cluster.json`` launches a daemon (:func:`launch`) and connects to it as a client. So a plain
script without an ``if __name__ == "__main__":`` guard works: Dask's worker processes are started by the daemon,
whose entry point has the guard, never by the caller.

Lifecycle — the advertisement records who asked (``started_by``) and which process (``requested_by``):

``cli`` (``nbdeploy cluster start``)
    lives until ``nbdeploy cluster stop`` (SIGTERM, or the stop request through its scheduler).
``server`` (``nbdeploy serve``, the Jupyter server extension, :func:`nbdeploy.runtime.ensure_cluster`)
    the server stops it when the server stops (:func:`nbdeploy.runtime.shutdown`). Should the server die without
    stopping it, the daemon goes on as a ``process`` daemon.
``process`` (a script, a kernel, any other caller)
    exits once its scheduler has had no client but the cluster's own (the daemon's, Dask's ``fire-and-forget``,
    the workers' clients) and no task for ``cluster_idle_timeout`` seconds (default 600; 0 keeps it until
    ``nbdeploy cluster stop``); one that never had a client waits at least a minute. The next caller launches a
    new one.

The daemon also exits when its cluster is shut down from outside. It logs to ``<home>/runtime/cluster.log``. The
caller holds :func:`~.advert.spawn_lock` while it launches, so processes asking at once share one daemon; the
daemon itself checks, starts and advertises under :func:`~.advert.advert_lock`, replacing a stale advertisement.
Importing this module is cheap (no Dask).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import ClusterError, ClusterTimeoutError
from . import advert as _adv

if TYPE_CHECKING:
    from ..config import Settings
    from .cluster import Target
    from .modes import ClusterSpec
    from .owned import OwnedCluster

__all__ = ["LOG_FILE", "START_TIMEOUT", "IdleWatch", "launch", "main", "run_daemon", "stop_daemon"]

LOG_FILE = "cluster.log"
START_TIMEOUT = 120.0  # seconds for a daemon to advertise its cluster
STARTED_BY = ("cli", "server", "process")
FIRST_CLIENT_GRACE = 60.0  # an idle daemon that never had a client waits at least this long for its requester

# A short-lived intermediate process starts the daemon in its own session and exits at once, so the daemon
# is nobody's child (no zombie in a long-lived caller) and survives the terminal that started it.
_SPAWN = (
    "import subprocess, sys\n"
    "log = open(sys.argv[1], 'ab')\n"
    "p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,"
    " start_new_session=True)\n"
    "print(p.pid, flush=True)\n"
)


# The daemon runs as `python -c` rather than `-m`: Dask's worker processes (multiprocessing "spawn") then
# re-import no main module, which saves each of them importing nbdeploy before it can start.
_ENTRY = "import sys; from nbdeploy.runtime.daemon import main; sys.exit(main())"

# --- launching (the caller's side) ----------------------------------------------------------------------------


def _settings_env(settings: Settings, spec: ClusterSpec) -> dict[str, str]:
    """The environment of a daemon for ``settings``: this one, plus every setting not left at its default."""
    from ..config import _DEFAULTS, SECRET_KEYS
    from .modes import cluster_options

    env = dict(os.environ)
    for name, (variable, _) in _DEFAULTS.items():
        value = getattr(settings, name, None)
        if name in SECRET_KEYS or value is None or settings.sources.get(name, "default") == "default":
            continue
        env[variable] = json.dumps(value) if isinstance(value, dict) else str(value)
    env["NBDEPLOY_HOME"] = settings.home
    env["NBDEPLOY_CLUSTER"] = spec.setting  # explicit, so DASK_SCHEDULER_ADDRESS cannot turn it into a client
    options = cluster_options(settings)
    if options:
        env["NBDEPLOY_CLUSTER_OPTIONS"] = json.dumps(options)
    return env


def _log_since(path: Path, offset: int, lines: int = 15) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(nothing logged)"


def launch(
    settings: Settings,
    spec: ClusterSpec,
    *,
    started_by: str,
    workers: int | None = None,
    threads: int | None = None,
    memory_limit: str | int | None = None,
    timeout: float = START_TIMEOUT,
) -> _adv.Advertisement:
    """Launch a cluster daemon for ``settings`` and return the advertisement of the cluster it started.

    The caller holds :func:`~.advert.spawn_lock` and found no live cluster advertised. ``started_by`` (``cli``,
    ``server`` or ``process``) sets the daemon's lifetime (see the module docstring). Raises
    :class:`ClusterError` when the daemon exits before its cluster is up (with the end of its log; the error's
    ``retryable`` is false: launching again would fail the same way) and :class:`ClusterTimeoutError` after
    ``timeout`` seconds (the daemon is then stopped).
    """
    if started_by not in STARTED_BY:
        raise ValueError(f"started_by must be one of {STARTED_BY}")
    runtime_dir = settings.runtime_dir
    runtime_dir.mkdir(parents=True, exist_ok=True)
    log_path = runtime_dir / LOG_FILE
    try:
        offset = log_path.stat().st_size
    except OSError:
        offset = 0
    args = [sys.executable, "-c", _ENTRY, "--started-by", started_by]
    args += ["--requested-by", str(os.getpid())]
    idle = settings.cluster_idle_timeout if started_by != "cli" else 0
    args += ["--idle-timeout", str(idle)]
    for flag, value in (("--workers", workers), ("--threads", threads), ("--memory-limit", memory_limit)):
        if value is not None:
            args += [flag, str(value)]
    spawned = subprocess.run(
        [sys.executable, "-c", _SPAWN, str(log_path), *args],
        capture_output=True,
        text=True,
        env=_settings_env(settings, spec),
        timeout=60,
        check=False,
    )
    if spawned.returncode != 0 or not spawned.stdout.strip().isdigit():
        raise ClusterError(f"could not launch the cluster daemon: {spawned.stderr.strip() or spawned.stdout}")
    pid = int(spawned.stdout.strip())
    started = _adv.process_start_time(pid)
    deadline = time.monotonic() + timeout
    while True:
        advert = _adv.read_advert(runtime_dir)
        if advert is not None and advert.owner_pid == pid and advert.on_this_host:
            return advert
        if not _adv.pid_alive(pid, started):
            advert = _adv.read_advert(runtime_dir)  # lost a race to a daemon launched without the spawn lock?
            if advert is not None and _adv.is_live(advert) and spec.accepts(advert.mode, advert.target):
                return advert
            tail = _log_since(log_path, offset)
            reason = next((line[7:] for line in reversed(tail.splitlines()) if line.startswith("Error: ")), None)
            if reason:  # the daemon's own error, which says what to do
                error = ClusterError(f"the cluster daemon (pid {pid}) exited: {reason} (its log: {log_path})")
            else:
                error = ClusterError(
                    f"the cluster daemon (pid {pid}) exited before its {spec.setting!r} cluster was up. Check the "
                    f"cluster setting (NBDEPLOY_CLUSTER, NBDEPLOY_CLUSTER_OPTIONS); the end of {log_path}:\n{tail}"
                )
            error.retryable = False  # type: ignore[attr-defined]
            raise error
        if time.monotonic() > deadline:
            _signal(pid, started, signal.SIGTERM)
            raise ClusterTimeoutError(
                f"the cluster daemon (pid {pid}) had not started its cluster after {timeout:.0f}s and was stopped; "
                f"see {log_path}"
            )
        time.sleep(0.05)


# --- stopping -----------------------------------------------------------------------------------------------


def _signal(pid: int, started: float | None, sig: int) -> bool:
    if not _adv.pid_alive(pid, started):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def _wait_gone(pid: int, started: float | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _adv.pid_alive(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _wait_withdrawn(runtime_dir: Path, advert: _adv.Advertisement, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    same = _adv.same_cluster(advert)
    while True:
        current = _adv.read_advert(runtime_dir)
        if current is None or not same(current):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _ask_owner_to_stop(address: str) -> bool:
    """Ask the owner of the in-process scheduler at ``address`` to close its cluster; return whether it agreed."""
    from .connect import new_sync_client
    from .owned import STOP_OP

    try:
        with new_sync_client(address, set_as_default=False) as c:
            return c.sync(getattr(c.scheduler, STOP_OP), callback_timeout=10) == "OK"
    except Exception as exc:  # not an nbdeploy-owned scheduler, or already gone
        _log().info("asking the owner of %s to stop: %s", address, exc)
        return False


def _shutdown_scheduler(address: str) -> None:
    from .connect import new_sync_client

    try:
        with new_sync_client(address, set_as_default=False) as c:
            c.shutdown()
    except Exception as exc:  # already gone: fine
        _log().info("shutting down the scheduler at %s: %s", address, exc)


def stop_daemon(runtime_dir: Path, advert: _adv.Advertisement, timeout: float = 60.0) -> None:
    """Stop the cluster of ``advert`` and, when its owner is a daemon on this host, the daemon (by pid).

    The owner is asked through its scheduler to close the cluster and withdraw the advertisement; a daemon that
    does not is sent SIGTERM, then SIGKILL. An owner that cannot be asked (a cluster class whose scheduler runs
    elsewhere) has its scheduler shut down. The advertisement is removed if it still names this cluster.
    """
    same = _adv.same_cluster(advert)
    daemon = advert.on_this_host and advert.owner_kind == "daemon"
    if advert.on_this_host and not _adv.pid_alive(advert.owner_pid, advert.owner_started):
        pass  # the owner is gone: only its advertisement is left
    else:
        stopped = _ask_owner_to_stop(advert.scheduler_address) and _wait_withdrawn(runtime_dir, advert, timeout)
        if not stopped and daemon and _signal(advert.owner_pid, advert.owner_started, signal.SIGTERM):
            stopped = _wait_withdrawn(runtime_dir, advert, timeout)
        if not stopped:
            _shutdown_scheduler(advert.scheduler_address)
        if daemon and not _wait_gone(advert.owner_pid, advert.owner_started, timeout):
            _signal(advert.owner_pid, advert.owner_started, signal.SIGKILL)
            _wait_gone(advert.owner_pid, advert.owner_started, 10)
    with _adv.advert_lock(runtime_dir):
        _adv.remove_advert(runtime_dir, only_if=same)


# --- the daemon's side ----------------------------------------------------------------------------------------


class IdleWatch:
    """Decides when a daemon has outlived its purpose (see the module docstring); ``reason_to_exit`` is polled.

    ``activity`` returns ``(clients, tasks)`` of the scheduler — clients other than Dask's ``fire-and-forget``
    and the daemon's own — or ``None`` when unknown (then the daemon never counts as idle).
    """

    def __init__(
        self,
        activity: Callable[[], tuple[int, int] | None],
        started_by: str,
        requested_by: int | None,
        idle_timeout: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.activity, self.started_by, self.clock = activity, started_by, clock
        self.requested_by = requested_by
        self.requester_started = _adv.process_start_time(requested_by) if requested_by else None
        self.idle_timeout = idle_timeout if idle_timeout and idle_timeout > 0 and started_by != "cli" else None
        self.seen_client = False
        self.idle_since: float | None = None
        self.next_check = 0.0

    def _server_alive(self) -> bool:
        return bool(self.requested_by) and _adv.pid_alive(self.requested_by or 0, self.requester_started)

    def reason_to_exit(self) -> str | None:
        """A sentence saying why the daemon should exit now, or ``None`` to keep running."""
        if self.idle_timeout is None:
            return None
        now = self.clock()
        if now < self.next_check:
            return None
        self.next_check = now + min(5.0, max(0.2, self.idle_timeout / 5))
        if self.started_by == "server" and self._server_alive():
            self.idle_since = None
            return None
        counts = self.activity()
        if counts is None:
            return None
        clients, tasks = counts
        if clients or tasks:
            self.seen_client = self.seen_client or clients > 0
            self.idle_since = None
            return None
        if self.idle_since is None:
            self.idle_since = now
        wait = self.idle_timeout if self.seen_client else max(self.idle_timeout, FIRST_CLIENT_GRACE)
        if now - self.idle_since >= wait:
            return f"no client for {wait:.0f}s (cluster_idle_timeout); exiting"
        return None


def _remote_activity(owned: OwnedCluster) -> Callable[[], tuple[int, int] | None]:
    """``activity`` for a cluster whose scheduler is not in this process: asked through a client of our own."""
    state: dict[str, Any] = {}

    def activity() -> tuple[int, int] | None:
        local = owned.activity()
        if local is not None or state.get("failed"):
            return local
        try:
            if state.get("client") is None:
                from .connect import new_sync_client

                state["client"] = new_sync_client(owned.advert.scheduler_address, set_as_default=False)
            c = state["client"]
            ignore = {c.id, *owned.ignore_clients}

            def read(dask_scheduler: Any) -> tuple[int, int]:  # nested: pickled by value (see OwnedCluster.activity)
                names = [
                    k
                    for k in dask_scheduler.clients
                    if k != "fire-and-forget" and not k.startswith("Client-worker-") and k not in ignore
                ]
                return len(names), len(dask_scheduler.tasks)

            return tuple(c.run_on_scheduler(read))  # type: ignore[return-value]
        except Exception as exc:
            state["failed"] = True
            _log().warning("cannot watch the scheduler's clients (%s): this daemon will not exit when idle", exc)
            return None

    return activity


def run_daemon(
    workers: int | None = None,
    threads: int | None = None,
    memory_limit: str | int | None = None,
    settings: Settings | None = None,
    on_ready: Callable[[Target], None] | None = None,
    *,
    started_by: str = "cli",
    requested_by: int | None = None,
    idle_timeout: float | None = None,
) -> int:
    """Start, own and advertise a cluster in this process and serve until SIGTERM/SIGINT, until it dies, or until
    it has been idle too long (see the module docstring).

    Returns the exit status: 0 after a clean stop, 3 when it could not start (the reason printed to stderr as
    ``Error: …``, which :func:`launch` reports).
    """
    from ..config import get_settings
    from . import cluster as _cl
    from .modes import parse_cluster_setting

    settings = settings or get_settings()
    overrides = {"workers": workers, "threads": threads, "memory_limit": memory_limit}
    try:
        spec = parse_cluster_setting(settings)
        owned = _cl.start_here(
            settings, spec, overrides, started_by=started_by, requested_by=requested_by, idle_timeout=idle_timeout
        )
    except Exception as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        return 3
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    watch = IdleWatch(_remote_activity(owned), started_by, requested_by, idle_timeout)
    try:
        target = _cl._owned_target(owned)
        if on_ready is not None:
            on_ready(target)
        print(
            f"nbdeploy cluster {target.address} (dashboard {target.dashboard_link}) pid {os.getpid()}, started by "
            f"{started_by} (pid {requested_by or '-'}), idle timeout {watch.idle_timeout or 'none'}",
            flush=True,
        )
        while not stop.wait(0.2):
            if not owned.alive():
                why = "stopped on request" if owned.stop_requested else "shut down from outside"
                print(f"the cluster was {why}; exiting", flush=True)
                break
            reason = watch.reason_to_exit()
            if reason is not None:
                print(reason, flush=True)
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _cl.shutdown()  # closes the cluster, unless a stop request is closing it in a thread of its own
        owned.closed.wait(60)
    return 0


def _log() -> Any:
    import logging

    return logging.getLogger("nbdeploy.runtime")


def main(argv: list[str] | None = None) -> int:
    """Parse the daemon's arguments and run the cluster; return the exit status."""
    parser = argparse.ArgumentParser(prog="nbdeploy-cluster-daemon")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--memory-limit", default=None)
    parser.add_argument("--started-by", choices=STARTED_BY, default="cli")
    parser.add_argument("--requested-by", type=int, default=None, help="pid of the process that asked")
    parser.add_argument("--idle-timeout", type=float, default=0.0, help="seconds without clients; 0: never")
    args = parser.parse_args(argv)
    return run_daemon(
        args.workers,
        args.threads,
        args.memory_limit,
        started_by=args.started_by,
        requested_by=args.requested_by,
        idle_timeout=args.idle_timeout or None,
    )


if __name__ == "__main__":  # worker processes (spawned) import this module too: keep the guard
    sys.exit(main())
