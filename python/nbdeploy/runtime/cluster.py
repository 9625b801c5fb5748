"""Discover, start and connect to the Dask cluster; the per-process clients.

Every process asks :func:`client` (sync: kernels, CLI, managers in threads) or :func:`async_client` (tornado
handlers) and gets a client that is cached per process (per event loop for the async one) and replaced when it
was closed, the process forked, the settings changed or the advertised cluster was replaced.

For the managed modes (``local``, ``cuda``, ``auto``, a cluster class) a process first looks for the cluster
advertised in ``<home>/runtime/cluster.json`` (see :mod:`.advert`); when there is none, or it is stale, it
launches a cluster daemon (:mod:`.daemon`) and connects to the cluster the daemon advertises. The cluster never
runs inside the caller, so a script without an ``if __name__ == "__main__":`` guard works. A server asks through
:func:`ensure_cluster_async` at start-up; a daemon launched that way is the server's, and :func:`shutdown` stops
it. A daemon launched for any other caller exits after ``cluster_idle_timeout`` seconds without clients. Only the
daemon process itself owns a cluster (:func:`start_here`). Dask is imported only when a client is first needed.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Settings, get_settings
from ..exceptions import ClusterError, ConfigError, ConflictError
from . import advert as _adv
from .connect import (
    Target,
    _advert_mtime,
    _client_alive,
    _close_async_quietly,
    _close_quietly,
    _forget_stale,
    _target_from_advert,
    _target_moved,
    _worker_client,
    connect_timeout,
    new_async_client,
    new_sync_client,
)
from .launch import START_TIMEOUT, launch, stop_daemon
from .modes import ClusterSpec, parse_cluster_setting
from .owned import OwnedCluster, _dashboard_link, dashboard_endpoint, preflight, start_cluster_object

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "async_client",
    "client",
    "connect_timeout",
    "ensure_cluster",
    "ensure_cluster_async",
    "launched_daemons",
    "shutdown",
    "shutdown_async",
    "start_here",
]

log = logging.getLogger("nbdeploy.runtime")


@dataclass
class _AsyncEntry:
    client: Client
    target: Target
    key: tuple[str, ...]


class _State:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.RLock()  # guards the sync client
        self.owned_lock = threading.Lock()
        self.sync_client: Client | None = None
        self.sync_target: Target | None = None
        self.sync_key: tuple[str, ...] | None = None
        self.async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncEntry] = (
            weakref.WeakKeyDictionary()
        )
        self.async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self.owned: dict[str, OwnedCluster] = {}  # in the daemon: the cluster it runs, by runtime dir
        self.launched: list[_adv.Advertisement] = []  # daemons this process launched
        self.started: dict[str, _adv.Advertisement] = {}  # daemons launched as a server, stopped by shutdown()
        self.server = False  # this process asked as a server (ensure_cluster): its daemons are its own
        self.spec_for: tuple[Settings, ClusterSpec] | None = None


_state = _State()
_atexit_registered = False


def _check_fork() -> None:
    """After a fork, forget the parent's clients and clusters (they belong to the parent)."""
    global _state
    if _state.pid != os.getpid():
        _state = _State()


def _spec(settings: Settings) -> ClusterSpec:
    cached = _state.spec_for
    if cached is not None and cached[0] is settings:
        return cached[1]
    spec = parse_cluster_setting(settings)
    _state.spec_for = (settings, spec)
    return spec


def _key(settings: Settings, spec: ClusterSpec) -> tuple[str, ...]:
    return (settings.home, spec.kind, spec.setting, spec.address or spec.target or "")


def _owned_for(runtime_dir: Path) -> OwnedCluster | None:
    with _state.owned_lock:
        return _state.owned.get(str(runtime_dir))


def _no_cluster_error(settings: Settings) -> ClusterError:
    return ClusterError(
        f"no cluster is running for the nbdeploy home {settings.home}: start one with `nbdeploy cluster start` "
        "(or `nbdeploy serve` / Jupyter with the nbdeploy extension), or point NBDEPLOY_CLUSTER at a scheduler"
    )


def _live_target(settings: Settings, spec: ClusterSpec, runtime_dir: Path, *, strict: bool) -> Target | None:
    """The live advertised cluster that serves ``spec``, if any; ``strict``: raise when a live one does not."""
    mtime = _advert_mtime(runtime_dir)
    advert = _adv.read_advert(runtime_dir)
    if advert is None or advert.owned_by_this_process or not _adv.is_live(advert):
        return None
    if spec.accepts(advert.mode, advert.target):
        return _target_from_advert(advert, runtime_dir, mtime)
    if not strict:
        return None
    raise ClusterError(
        f"the nbdeploy home {settings.home} already runs a {advert.mode} cluster at {advert.scheduler_address} "
        f"(pid {advert.owner_pid}), but the cluster setting asks for {spec.setting!r}: stop that one with "
        "`nbdeploy cluster stop`, or set NBDEPLOY_CLUSTER to use it"
    )


def _resolve(settings: Settings, spec: ClusterSpec, *, start: bool, server: bool = False) -> Target:
    """Return where to connect for ``spec``, launching a cluster daemon when ``start`` and none runs.

    In the managed modes the cluster always runs in a daemon (:mod:`.daemon`): this process connects to the
    live advertised one, or launches one under the spawn lock and waits for its advertisement. ``server``: the
    daemon is this server's, stopped by :func:`shutdown` (else it exits when idle). Blocking (file lock, TCP
    probes, the daemon's start-up): async callers run it in a thread. Raises :class:`ClusterError`,
    :class:`ClusterTimeoutError`, :class:`MissingDependencyError` or :class:`ConfigError`.
    """
    if not spec.managed:
        assert spec.address is not None
        return Target(spec.address, "address")
    runtime_dir = settings.runtime_dir
    owned = _owned_for(runtime_dir)  # only in the daemon itself
    if owned is not None and owned.alive():
        return _owned_target(owned)
    found = _live_target(settings, spec, runtime_dir, strict=False)
    if found is not None:
        return found
    if not start:
        raise _no_cluster_error(settings)
    preflight(spec)  # a missing package or GPU fails here, at once and with its own error
    started_by = "server" if server or _state.server else "process"
    with _adv.spawn_lock(runtime_dir, timeout=START_TIMEOUT + 60):
        found = _live_target(settings, spec, runtime_dir, strict=True)
        if found is not None:
            return found
        advert = launch(settings, spec, started_by=started_by)
    ours = started_by == "server" and advert.requested_by == os.getpid()  # not one that won a race
    with _state.owned_lock:
        _state.launched.append(advert)
        if ours:
            _state.started[str(runtime_dir)] = advert
    if ours:
        _register_atexit()
    log.info("launched a cluster daemon (pid %s) at %s", advert.owner_pid, advert.scheduler_address)
    return _target_from_advert(advert, runtime_dir, _advert_mtime(runtime_dir))


def start_here(
    settings: Settings,
    spec: ClusterSpec,
    overrides: Mapping[str, Any] | None = None,
    *,
    started_by: str = "cli",
    requested_by: int | None = None,
    idle_timeout: float | None = None,
) -> OwnedCluster:
    """Start the cluster of ``spec`` in this process, own it and advertise it: the cluster daemon's start-up.

    Under the advertisement lock: a live advertised cluster is a :class:`ConflictError`; a stale advertisement is
    replaced. Raises :class:`ClusterError`, :class:`MissingDependencyError` or :class:`ConfigError` as the start
    fails.
    """
    if not spec.managed:
        raise ConfigError(f"the cluster setting {spec.setting!r} is a scheduler address: nothing to start")
    runtime_dir = settings.runtime_dir
    with _adv.advert_lock(runtime_dir):
        owned = _owned_for(runtime_dir)
        if owned is not None and not owned.alive():
            _discard_owned(owned, holding_lock=True)
            owned = None
        if owned is not None:
            raise _already_running(owned.advert)
        advert = _adv.read_advert(runtime_dir)
        if advert is not None and not advert.owned_by_this_process and _adv.is_live(advert):
            raise _already_running(advert)
        if advert is not None:
            log.warning(
                "replacing the stale cluster advertisement %s (pid %s, %s)",
                advert.scheduler_address,
                advert.owner_pid,
                advert.started_at,
            )
            _adv.remove_advert(runtime_dir)
        cluster = start_cluster_object(spec, overrides or {}, settings.dashboard_address)
        try:
            link = _dashboard_link(cluster)
            new = _adv.Advertisement.for_this_process(
                cluster.scheduler_address,
                link,
                spec.kind,
                "daemon",
                spec.target,
                started_by=started_by,
                requested_by=requested_by,
                idle_timeout=idle_timeout,
                dashboard_address=dashboard_endpoint(cluster) if link else None,
            )
            _adv.write_advert(runtime_dir, new)
        except BaseException:
            cluster.close()
            raise
        owned = OwnedCluster(cluster, new, runtime_dir, on_stop_request=_discard_owned)
        with _state.owned_lock:
            _state.owned[str(runtime_dir)] = owned
        _register_atexit()
        log.info("started a %s cluster at %s (dashboard %s)", spec.kind, new.scheduler_address, new.dashboard_link)
        return owned


def _owned_target(owned: OwnedCluster) -> Target:
    a = owned.advert
    return Target(a.scheduler_address, a.mode, a.dashboard_link, a, owned.runtime_dir, owned=True)


def _already_running(advert: _adv.Advertisement) -> ConflictError:
    return ConflictError(
        f"a cluster is already running at {advert.scheduler_address} (pid {advert.owner_pid}, started "
        f"{advert.started_at}): use it, or stop it first with `nbdeploy cluster stop`"
    )


def _discard_owned(owned: OwnedCluster, *, holding_lock: bool = False) -> None:
    with _state.owned_lock:
        if _state.owned.get(str(owned.runtime_dir)) is owned:
            del _state.owned[str(owned.runtime_dir)]
    owned.close(holding_lock=holding_lock)


# --- clients ----------------------------------------------------------------------------------------


def sync_client(settings: Settings | None = None, *, start: bool = True) -> Client:
    """Return the process's sync client; with ``start=False`` never start a cluster (raise ClusterError)."""
    _check_fork()
    in_task = _worker_client()
    if in_task is not None:
        return in_task
    settings = settings or get_settings()
    spec = _spec(settings)
    key = _key(settings, spec)
    st = _state
    c = st.sync_client
    if c is not None and st.sync_key == key and _client_alive(c) and not _target_moved(st.sync_target):
        return c
    with st.lock:
        c = st.sync_client
        if c is not None and st.sync_key == key and _client_alive(c) and not _target_moved(st.sync_target):
            return c
        st.sync_client = st.sync_target = st.sync_key = None
        if c is not None:
            _close_quietly(c)
        target = _resolve(settings, spec, start=start)
        try:
            c = new_sync_client(target.address)
        except ClusterError:
            if target.advert is None or target.owned:
                raise
            _forget_stale(target)
            target = _resolve(settings, spec, start=start)
            c = new_sync_client(target.address)
        st.sync_client, st.sync_target, st.sync_key = c, target, key
        return c


def client(settings: Settings | None = None) -> Client:
    """Return this process's synchronous :class:`distributed.Client`, connecting on first use.

    The client is cached per process and replaced when it was closed, the cluster it talked to was replaced,
    or the settings changed. Inside a Dask task it is the worker's own client. In the managed modes a process
    that finds no live advertised cluster starts one (see :func:`ensure_cluster`). Raises :class:`ClusterError`
    when the cluster cannot be reached and :class:`MissingDependencyError` when its package is missing.
    """
    return sync_client(settings, start=True)


def current_target() -> Target | None:
    """What the sync client of this process is connected to, if it has one."""
    return _state.sync_target


async def async_client(settings: Settings | None = None, *, start: bool = True) -> Client:
    """Return an ``asynchronous=True`` client bound to the running event loop, cached per loop.

    For tornado handlers and other coroutines: the blocking steps (reading the advertisement, probing, starting
    a cluster) run in a thread, so the loop is never blocked for long. With ``start=False`` it never starts a
    cluster (a :class:`ClusterError` when none runs). Raises as :func:`client` does.
    """
    _check_fork()
    loop = asyncio.get_running_loop()
    settings = settings or get_settings()
    spec = _spec(settings)
    key = _key(settings, spec)
    entry = _state.async_clients.get(loop)
    if entry is not None and entry.key == key and _client_alive(entry.client) and not _target_moved(entry.target):
        return entry.client
    lock = _state.async_locks.get(loop)
    if lock is None:
        lock = _state.async_locks.setdefault(loop, asyncio.Lock())
    async with lock:
        entry = _state.async_clients.get(loop)
        if entry is not None:
            if entry.key == key and _client_alive(entry.client) and not _target_moved(entry.target):
                return entry.client
            _state.async_clients.pop(loop, None)
            await _close_async_quietly(entry.client)
        target = await asyncio.to_thread(_resolve, settings, spec, start=start)
        try:
            c = await new_async_client(target.address)
        except ClusterError:
            if target.advert is None or target.owned:
                raise
            await asyncio.to_thread(_forget_stale, target)
            target = await asyncio.to_thread(_resolve, settings, spec, start=start)
            c = await new_async_client(target.address)
        _state.async_clients[loop] = _AsyncEntry(c, target, key)
        return c


def async_target() -> Target | None:
    """What the async client of the running loop is connected to, if it has one."""
    try:
        entry = _state.async_clients.get(asyncio.get_running_loop())
    except RuntimeError:
        return None
    return entry.target if entry is not None else None


# --- servers ----------------------------------------------------------------------------------------


def ensure_cluster(settings: Settings | None = None) -> str:
    """Make sure the cluster of ``settings`` runs; return its scheduler address. For server processes.

    In the managed modes: use the live advertised cluster, or else launch a cluster daemon that advertises one in
    ``<home>/runtime/cluster.json``; that daemon is this server's, stopped by :func:`shutdown` (or at exit). From
    then on, daemons this process launches are its own too. For a scheduler address: connect to it. Raises
    :class:`ClusterError`, :class:`MissingDependencyError` or :class:`ConfigError`.
    """
    _check_fork()
    settings = settings or get_settings()
    spec = _spec(settings)
    if not spec.managed:
        return str(client(settings).scheduler.address)
    _state.server = True
    return _resolve(settings, spec, start=True, server=True).address


async def ensure_cluster_async(settings: Settings | None = None) -> str:
    """:func:`ensure_cluster` for coroutines: start-up runs in a thread; the loop's async client is connected.

    Returns the scheduler address; raises as :func:`ensure_cluster` does.
    """
    _check_fork()
    settings = settings or get_settings()
    spec = _spec(settings)
    if spec.managed:
        _state.server = True
        await asyncio.to_thread(_resolve, settings, spec, start=True, server=True)
    c = await async_client(settings)
    return str(c.scheduler.address)


def owned_clusters() -> list[_adv.Advertisement]:
    """The advertisements of the clusters this process runs itself (only a cluster daemon does)."""
    with _state.owned_lock:
        return [o.advert for o in _state.owned.values()]


def launched_daemons() -> list[_adv.Advertisement]:
    """The advertisements of the cluster daemons this process launched (running or not)."""
    with _state.owned_lock:
        return list(_state.launched)


def _owned_alive(runtime_dir: Path) -> bool:
    owned = _owned_for(runtime_dir)
    return owned is not None and owned.alive()


def drop_clients(address: str | None = None) -> None:
    """Close this process's sync client (if connected to ``address``, when given); async clients are dropped."""
    with _state.lock:
        c = _state.sync_client
        if c is not None and (address is None or (_state.sync_target and _state.sync_target.address == address)):
            _state.sync_client = _state.sync_target = _state.sync_key = None
            _close_quietly(c)


def shutdown() -> None:
    """Close this process's clients; stop the daemons it launched as a server and the cluster it runs (a daemon),
    withdrawing their advertisements. Daemons launched for a script or kernel are left to their idle timeout."""
    _check_fork()
    drop_clients()
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    for loop, entry in list(_state.async_clients.items()):
        _state.async_clients.pop(loop, None)
        if loop is current or loop.is_closed() or not loop.is_running():
            continue  # cannot await here; the connection goes with the loop
        try:
            asyncio.run_coroutine_threadsafe(entry.client.close(), loop)
        except RuntimeError:
            pass
    with _state.owned_lock:
        owned = list(_state.owned.values())
        _state.owned.clear()
        started = list(_state.started.items())
        _state.started.clear()
        _state.server = False  # a server that shut down no longer serves
    for o in owned:
        o.close()
    for runtime_dir, advert in started:
        try:
            stop_daemon(Path(runtime_dir), advert)
        except Exception:
            log.warning("stopping the cluster daemon (pid %s) failed", advert.owner_pid, exc_info=True)


def forget_started(advert: _adv.Advertisement) -> None:
    """Forget that this process launched the daemon of ``advert`` as its own (it was stopped otherwise)."""
    same = _adv.same_cluster(advert)
    with _state.owned_lock:
        for key, mine in list(_state.started.items()):
            if same(mine):
                del _state.started[key]


async def shutdown_async() -> None:
    """:func:`shutdown` for coroutines: the loop's async client is awaited closed; the rest runs in a thread."""
    _check_fork()
    try:
        loop = asyncio.get_running_loop()
        entry = _state.async_clients.pop(loop, None)
    except RuntimeError:
        entry = None
    if entry is not None:
        await _close_async_quietly(entry.client)
    await asyncio.to_thread(shutdown)


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_at_exit)
        _atexit_registered = True


def _at_exit() -> None:
    if _state.pid != os.getpid():
        return
    try:
        shutdown()
    except Exception:  # pragma: no cover - best effort at interpreter exit
        log.debug("runtime shutdown at exit failed", exc_info=True)
