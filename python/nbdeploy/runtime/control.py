"""Cluster status, and the long-lived cluster of ``nbdeploy cluster start`` / ``stop``.

``start_cluster`` runs the cluster in a detached background process (``python -m nbdeploy.runtime.daemon``)
that owns and advertises it, and returns once it is up; ``stop_cluster`` stops the advertised cluster: by
signalling its owner when that is such a background process, else by shutting its scheduler down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Settings, get_settings
from ..exceptions import ClusterError, ClusterTimeoutError, ConfigError
from . import advert as _adv
from . import cluster as _cl
from .connect import new_sync_client
from .modes import ClusterSpec, cluster_options, parse_cluster_setting
from .owned import STOP_OP

__all__ = ["start_cluster", "status", "status_async", "stop_cluster"]

STATUS_TIMEOUT = 15.0
LOG_FILE = "cluster.log"


# --- status -----------------------------------------------------------------------------------------


def _status_json(info: dict[str, Any], spec: ClusterSpec, target: _cl.Target | None) -> dict[str, Any]:
    workers = []
    for address, w in info.get("workers", {}).items():
        counts = (w.get("metrics") or {}).get("task_counts") or {}
        workers.append(
            {
                "address": address,
                "name": str(w.get("name", address)),
                "nthreads": int(w.get("nthreads") or 0),
                "memory_limit": int(w.get("memory_limit") or 0),
                "gpus": int((w.get("resources") or {}).get("GPU", 0) or 0),
                "executing": int(counts.get("executing", 0) or 0),
            }
        )
    workers.sort(key=lambda w: (len(w["name"]), w["name"]))
    address = info.get("address") or (target.address if target else None)
    dashboard = target.dashboard_link if target and target.dashboard_link else _dashboard_from(info)
    advert = target.advert if target else None
    return {
        "mode": target.mode if target else spec.kind,
        "setting": spec.setting,
        "scheduler_address": address,
        "dashboard_link": dashboard,
        "owner_pid": advert.owner_pid if advert else None,
        "started_at": advert.started_at if advert else None,
        "workers": workers,
        "total_threads": sum(w["nthreads"] for w in workers),
        "total_memory": sum(w["memory_limit"] for w in workers),
        "tasks_running": sum(w["executing"] for w in workers),
    }


def _dashboard_from(info: dict[str, Any]) -> str | None:
    port = (info.get("services") or {}).get("dashboard")
    address = info.get("address") or ""
    if not port or "://" not in address:
        return None
    from distributed.utils import format_dashboard_link

    host = address.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
    return format_dashboard_link(host, port)


def status(settings: Settings | None = None, *, start: bool = True) -> dict[str, Any]:
    """Return the cluster's status as a JSON-ready dict.

    Keys: ``mode``, ``setting``, ``scheduler_address``, ``dashboard_link``, ``owner_pid``, ``started_at``,
    ``workers`` (each with ``address``, ``name``, ``nthreads``, ``memory_limit``, ``gpus``, ``executing``),
    ``total_threads``, ``total_memory`` and ``tasks_running``. Task counts come from worker heartbeats, so they
    lag by up to a second. With ``start=False`` no cluster is started: :class:`ClusterError` says none runs.
    Raises :class:`ClusterError` / :class:`ClusterTimeoutError` when the scheduler does not answer.
    """
    settings = settings or get_settings()
    spec = parse_cluster_setting(settings)
    c = _cl.sync_client(settings, start=start)
    try:
        info = c.sync(c.scheduler.identity, n_workers=-1, callback_timeout=STATUS_TIMEOUT)
    except TimeoutError as exc:
        raise ClusterTimeoutError(
            f"the scheduler at {c.scheduler.address} did not answer within {STATUS_TIMEOUT:.0f}s"
        ) from exc
    except OSError as exc:
        raise ClusterError(f"lost the scheduler at {c.scheduler.address}: {exc}") from exc
    return _status_json(info, spec, _cl.current_target())


async def status_async(settings: Settings | None = None) -> dict[str, Any]:
    """:func:`status` for coroutines (tornado handlers), over the loop's async client; raises the same."""
    import asyncio

    settings = settings or get_settings()
    spec = parse_cluster_setting(settings)
    c = await _cl.async_client(settings)
    try:
        info = await asyncio.wait_for(c.scheduler.identity(n_workers=-1), STATUS_TIMEOUT)
    except TimeoutError as exc:
        raise ClusterTimeoutError(
            f"the scheduler at {c.scheduler.address} did not answer within {STATUS_TIMEOUT:.0f}s"
        ) from exc
    except OSError as exc:
        raise ClusterError(f"lost the scheduler at {c.scheduler.address}: {exc}") from exc
    return _status_json(info, spec, _cl.async_target())


# --- start / stop -----------------------------------------------------------------------------------

# A short-lived intermediate process starts the daemon in its own session and exits at once, so the daemon
# is nobody's child (no zombie in a long-lived caller) and survives the terminal that started it.
_SPAWN = (
    "import subprocess, sys\n"
    "log = open(sys.argv[1], 'ab')\n"
    "p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,"
    " start_new_session=True)\n"
    "print(p.pid, flush=True)\n"
)


def _managed_spec(settings: Settings, action: str) -> ClusterSpec:
    spec = parse_cluster_setting(settings)
    if not spec.managed:
        raise ConfigError(
            f"the cluster setting is the address of an existing scheduler ({spec.address}), which nbdeploy does "
            f"not {action}: manage it where it was started, or set NBDEPLOY_CLUSTER=local"
        )
    return spec


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_cluster(
    workers: int | None = None,
    threads: int | None = None,
    memory_limit: str | int | None = None,
    settings: Settings | None = None,
    *,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Start a long-lived cluster in a background process that owns and advertises it; return its advertisement.

    ``workers``, ``threads`` (per worker) and ``memory_limit`` (per worker, e.g. ``"4GiB"``) override the
    ``cluster_options``. The process logs to ``<home>/runtime/cluster.log`` and runs until
    :func:`stop_cluster`. Raises :class:`ConflictError` when a live cluster is already advertised,
    :class:`ConfigError` for a scheduler-address setting, :class:`ClusterError` when the process dies before
    its cluster is up (with the end of its log) and :class:`ClusterTimeoutError` after ``timeout`` seconds.
    """
    settings = settings or get_settings()
    spec = _managed_spec(settings, "start")
    runtime_dir = settings.runtime_dir
    current = _adv.read_advert(runtime_dir)
    if current is not None and _adv.is_live(current):
        raise _cl._already_running(current)
    runtime_dir.mkdir(parents=True, exist_ok=True)
    log_path = runtime_dir / LOG_FILE
    env = dict(os.environ, NBDEPLOY_HOME=settings.home, NBDEPLOY_CLUSTER=spec.setting)
    options = cluster_options(settings)
    if options:
        env["NBDEPLOY_CLUSTER_OPTIONS"] = json.dumps(options)
    args = [sys.executable, "-m", "nbdeploy.runtime.daemon"]
    for flag, value in (("--workers", workers), ("--threads", threads), ("--memory-limit", memory_limit)):
        if value is not None:
            args += [flag, str(value)]
    spawned = subprocess.run(
        [sys.executable, "-c", _SPAWN, str(log_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    if spawned.returncode != 0 or not spawned.stdout.strip().isdigit():
        raise ClusterError(f"could not launch the cluster process: {spawned.stderr.strip() or spawned.stdout}")
    pid = int(spawned.stdout.strip())
    started = _adv.process_start_time(pid)
    deadline = time.monotonic() + timeout
    while True:
        advert = _adv.read_advert(runtime_dir)
        if advert is not None and advert.owner_pid == pid and advert.on_this_host:
            return advert.to_json()
        if not _adv.pid_alive(pid, started):
            raise ClusterError(
                f"the cluster process (pid {pid}) exited before its cluster was up; the end of {log_path}:\n"
                + _log_tail(log_path)
            )
        if time.monotonic() > deadline:
            _signal(pid, started, signal.SIGTERM)
            raise ClusterTimeoutError(
                f"the cluster was not up after {timeout:.0f}s (pid {pid} stopped); see {log_path}"
            )
        time.sleep(0.1)


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
        time.sleep(0.1)
    return True


def _shutdown_scheduler(address: str) -> None:
    try:
        with new_sync_client(address, set_as_default=False) as c:
            c.shutdown()
    except Exception as exc:  # already gone: fine
        _cl.log.info("shutting down the scheduler at %s: %s", address, exc)


def _ask_owner_to_stop(address: str) -> bool:
    """Ask the owner of the in-process scheduler at ``address`` to close its cluster; return whether it agreed."""
    try:
        with new_sync_client(address, set_as_default=False) as c:
            return c.sync(getattr(c.scheduler, STOP_OP), callback_timeout=10) == "OK"
    except Exception as exc:  # not an nbdeploy-owned scheduler, or already gone
        _cl.log.info("asking the owner of %s to stop: %s", address, exc)
        return False


def _wait_withdrawn(runtime_dir: Path, advert: _adv.Advertisement, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    same = _adv.same_cluster(advert)
    while True:
        current = _adv.read_advert(runtime_dir)
        if current is None or not same(current):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def stop_cluster(settings: Settings | None = None, *, timeout: float = 60.0) -> dict[str, Any] | None:
    """Stop the advertised cluster of this home; return its advertisement, or ``None`` when none was running.

    The owner process (``nbdeploy cluster start``'s background process, a server or a kernel) is asked through
    its scheduler to close the cluster and withdraw the advertisement; the background process then exits, a
    server or kernel keeps running and starts a new cluster when it next needs one. When the owner cannot be
    asked (a cluster class whose scheduler runs elsewhere), the scheduler is shut down. A stale advertisement
    is just removed. Raises :class:`ConfigError` for a scheduler-address setting.
    """
    settings = settings or get_settings()
    _managed_spec(settings, "stop")
    runtime_dir = settings.runtime_dir
    owned = _cl._owned_for(runtime_dir)
    if owned is not None:
        _cl.drop_clients(owned.advert.scheduler_address)
        _cl._discard_owned(owned)
        return owned.advert.to_json()
    advert = _adv.read_advert(runtime_dir)
    if advert is None:
        return None
    same = _adv.same_cluster(advert)
    if advert.on_this_host and not _adv.pid_alive(advert.owner_pid, advert.owner_started):
        with _adv.advert_lock(runtime_dir):
            _adv.remove_advert(runtime_dir, only_if=same)
        return None
    _cl.drop_clients(advert.scheduler_address)
    daemon = advert.on_this_host and advert.owner_kind == "daemon"
    stopped = _ask_owner_to_stop(advert.scheduler_address) and _wait_withdrawn(runtime_dir, advert, timeout)
    if not stopped and daemon and _signal(advert.owner_pid, advert.owner_started, signal.SIGTERM):
        stopped = _wait_withdrawn(runtime_dir, advert, timeout)
    if not stopped:
        _shutdown_scheduler(advert.scheduler_address)
    if daemon and not _wait_gone(advert.owner_pid, advert.owner_started, timeout):
        _signal(advert.owner_pid, advert.owner_started, signal.SIGKILL)
    with _adv.advert_lock(runtime_dir):
        _adv.remove_advert(runtime_dir, only_if=same)
    return advert.to_json()


def run_daemon(
    workers: int | None = None,
    threads: int | None = None,
    memory_limit: str | int | None = None,
    settings: Settings | None = None,
    on_ready: Callable[[_cl.Target], None] | None = None,
) -> int:
    """Start, own and advertise a cluster in this process and serve until SIGTERM/SIGINT or until it dies.

    Returns the exit status: 0 after a clean stop, 3 when it could not start (the reason printed to stderr).
    """
    settings = settings or get_settings()
    spec = parse_cluster_setting(settings)
    overrides = {"workers": workers, "threads": threads, "memory_limit": memory_limit}
    try:
        target = _cl._resolve(settings, spec, start=True, owner_kind="daemon", overrides=overrides, exclusive=True)
    except Exception as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        return 3
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        if on_ready is not None:
            on_ready(target)
        print(f"nbdeploy cluster {target.address} (dashboard {target.dashboard_link}) pid {os.getpid()}", flush=True)
        while not stop.wait(0.5):
            if not _cl._owned_alive(settings.runtime_dir):
                print("the cluster was shut down from outside; exiting", flush=True)
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _cl.shutdown()
    return 0
