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
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import advert as _adv

if TYPE_CHECKING:
    from ..config import Settings
    from .cluster import Target
    from .owned import OwnedCluster

from .launch import FIRST_CLIENT_GRACE, STARTED_BY


class IdleWatch:
    """Decides when a daemon has outlived its purpose (see the module docstring); ``reason_to_exit`` is polled.

    ``activity`` returns ``(clients, tasks)`` of the scheduler — clients other than Dask's ``fire-and-forget``
    and the daemon's own — optionally followed by how many such clients ever connected (a client that came and went
    between two looks still counts as seen), or ``None`` when unknown (then the daemon never counts as idle).
    """

    def __init__(
        self,
        activity: Callable[[], tuple[int, ...] | None],
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
            if not self.seen_client:  # the server's own client counts: once it dies, the usual idle timeout applies
                self._saw(self.activity())
            return None
        counts = self.activity()
        if counts is None:
            return None
        self._saw(counts)
        clients, tasks = counts[0], counts[1]
        if clients or tasks:
            self.idle_since = None
            return None
        if self.idle_since is None:
            self.idle_since = now
        wait = self.idle_timeout if self.seen_client else max(self.idle_timeout, FIRST_CLIENT_GRACE)
        if now - self.idle_since >= wait:
            return f"no client for {wait:.0f}s (cluster_idle_timeout); exiting"
        return None

    def _saw(self, counts: tuple[int, ...] | None) -> None:
        """Note whether a client has connected (one now, or one ever: ``counts[2]`` when the reader knows it)."""
        if counts is not None and (counts[0] > 0 or (len(counts) > 2 and counts[2] > 0)):
            self.seen_client = True


def _remote_activity(owned: OwnedCluster) -> Callable[[], tuple[int, ...] | None]:
    """``activity`` for a cluster whose scheduler is not in this process: asked through a client of our own."""
    state: dict[str, Any] = {}

    def activity() -> tuple[int, ...] | None:
        local = owned.activity()
        if local is not None or state.get("failed"):
            return local
        try:
            if state.get("client") is None:
                from .connect import new_sync_client

                state["client"] = new_sync_client(owned.advert.scheduler_address, set_as_default=False)
            c = state["client"]
            ignore = {c.id, *owned.ignore_clients}

            def read(
                dask_scheduler: Any,
            ) -> tuple[int, int, int]:  # nested: pickled by value (see OwnedCluster.activity)
                def counted(k: str) -> bool:
                    return k != "fire-and-forget" and not k.startswith("Client-worker-") and k not in ignore

                events = dask_scheduler.get_events("all") if hasattr(dask_scheduler, "get_events") else ()
                ever = {m["client"] for _, m in events if isinstance(m, dict) and m.get("action") == "add-client"}
                return (
                    len([k for k in dask_scheduler.clients if counted(k)]),
                    len(dask_scheduler.tasks),
                    len([k for k in ever if counted(k)]),
                )

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
