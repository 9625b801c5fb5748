"""Discover, start and connect to the Dask cluster; the per-process clients.

Every process asks :func:`client` (sync: kernels, CLI, managers in threads) or :func:`async_client` (tornado
handlers) and gets a client that is cached per process (per event loop for the async one) and replaced when it
was closed, the process forked, the settings changed or the advertised cluster was replaced.

For the managed modes (``local``, ``cuda``, ``auto``, a cluster class) a process first looks for the cluster
advertised in ``<home>/runtime/cluster.json`` (see :mod:`.advert`); when there is none, or it is stale, the
process starts one itself, owns it, and advertises it. A server does this at start-up through
:func:`ensure_cluster_async`; :func:`shutdown` stops what this process owns and withdraws its advertisement.
Dask is imported only when a client or cluster is first needed.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Settings, get_settings
from ..exceptions import ClusterError, ConflictError
from . import advert as _adv
from .connect import _close_async_quietly, _close_quietly, connect_timeout, new_async_client, new_sync_client
from .modes import ClusterSpec, parse_cluster_setting
from .owned import OwnedCluster, _dashboard_link, start_cluster_object

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "async_client",
    "client",
    "connect_timeout",
    "ensure_cluster",
    "ensure_cluster_async",
    "shutdown",
    "shutdown_async",
]

log = logging.getLogger("nbdeploy.runtime")


@dataclass
class Target:
    """Where a client should connect: the scheduler address and what is known about the cluster there."""

    address: str
    mode: str  # "local", "cuda", "class" or "address"
    dashboard_link: str | None = None
    advert: _adv.Advertisement | None = None
    runtime_dir: Path | None = None
    owned: bool = False
    advert_mtime: int | None = field(default=None, compare=False)


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
        self.owned: dict[str, OwnedCluster] = {}
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


def _advert_mtime(runtime_dir: Path) -> int | None:
    try:
        return os.stat(_adv.advert_path(runtime_dir)).st_mtime_ns
    except OSError:
        return None


def _target_from_advert(advert: _adv.Advertisement, runtime_dir: Path, mtime: int | None) -> Target:
    return Target(advert.scheduler_address, advert.mode, advert.dashboard_link, advert, runtime_dir, False, mtime)


def _owned_for(runtime_dir: Path) -> OwnedCluster | None:
    with _state.owned_lock:
        return _state.owned.get(str(runtime_dir))


def _no_cluster_error(settings: Settings) -> ClusterError:
    return ClusterError(
        f"no cluster is running for the nbdeploy home {settings.home}: start one with `nbdeploy cluster start` "
        "(or `nbdeploy serve` / Jupyter with the nbdeploy extension), or point NBDEPLOY_CLUSTER at a scheduler"
    )


def _resolve(
    settings: Settings,
    spec: ClusterSpec,
    *,
    start: bool,
    owner_kind: str,
    overrides: Mapping[str, Any] | None = None,
    exclusive: bool = False,
) -> Target:
    """Return where to connect for ``spec``, starting (and advertising) a cluster when ``start`` and none runs.

    ``exclusive``: start a new cluster, and raise :class:`ConflictError` if a live one is advertised.
    Blocking (file lock, TCP probes, cluster start-up): async callers run it in a thread.
    """
    if not spec.managed:
        assert spec.address is not None
        return Target(spec.address, "address")
    runtime_dir = settings.runtime_dir
    owned = _owned_for(runtime_dir)
    if owned is not None and owned.alive() and not exclusive:
        return _owned_target(owned)
    if not exclusive:
        mtime = _advert_mtime(runtime_dir)
        advert = _adv.read_advert(runtime_dir)
        if advert is not None and not advert.owned_by_this_process and spec.accepts(advert.mode, advert.target):
            if _adv.is_live(advert):
                return _target_from_advert(advert, runtime_dir, mtime)
    if not start:
        raise _no_cluster_error(settings)
    with _adv.advert_lock(runtime_dir):
        owned = _owned_for(runtime_dir)  # another thread may have started one meanwhile
        if owned is not None and not owned.alive():
            _discard_owned(owned, holding_lock=True)
            owned = None
        mtime = _advert_mtime(runtime_dir)
        advert = _adv.read_advert(runtime_dir)
        if owned is not None:
            if exclusive:
                raise _already_running(owned.advert)
            return _owned_target(owned)
        if advert is not None and not advert.owned_by_this_process and _adv.is_live(advert):
            if exclusive:
                raise _already_running(advert)
            if spec.accepts(advert.mode, advert.target):
                return _target_from_advert(advert, runtime_dir, mtime)
            raise ClusterError(
                f"the nbdeploy home {settings.home} already runs a {advert.mode} cluster at "
                f"{advert.scheduler_address} (pid {advert.owner_pid}), but the cluster setting asks for "
                f"{spec.setting!r}: stop that one with `nbdeploy cluster stop`, or set NBDEPLOY_CLUSTER to use it"
            )
        if advert is not None:
            log.warning(
                "replacing the stale cluster advertisement %s (pid %s, %s)",
                advert.scheduler_address,
                advert.owner_pid,
                advert.started_at,
            )
            _adv.remove_advert(runtime_dir)
        cluster = start_cluster_object(spec, overrides or {})
        try:
            new = _adv.Advertisement.for_this_process(
                cluster.scheduler_address, _dashboard_link(cluster), spec.kind, owner_kind, spec.target
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
        return _owned_target(owned)


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


def _client_alive(c: Client) -> bool:
    return c.status == "running"


def _target_moved(target: Target | None) -> bool:
    """Whether the advertisement ``target`` came from now names another live cluster (cheap when unchanged)."""
    if target is None or target.runtime_dir is None or target.owned:
        return False
    mtime = _advert_mtime(target.runtime_dir)
    if mtime == target.advert_mtime or mtime is None:
        return False
    target.advert_mtime = mtime
    advert = _adv.read_advert(target.runtime_dir)
    if advert is None or advert.scheduler_address == target.address:
        return False
    return _adv.is_live(advert)


def _forget_stale(target: Target) -> None:
    """The advertised scheduler took TCP but no Dask client: withdraw that advertisement."""
    if target.advert is None or target.runtime_dir is None or target.owned:
        return
    log.warning("the advertised scheduler %s did not accept a client; replacing it", target.address)
    with _adv.advert_lock(target.runtime_dir):
        _adv.remove_advert(target.runtime_dir, only_if=_adv.same_cluster(target.advert))


def _worker_client() -> Client | None:
    """Inside a Dask task, the worker's own client; else ``None``."""
    try:
        from distributed.worker import get_client, get_worker

        get_worker()
    except (ImportError, ValueError):
        return None
    return get_client()


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
        target = _resolve(settings, spec, start=start, owner_kind="process")
        try:
            c = new_sync_client(target.address)
        except ClusterError:
            if target.advert is None or target.owned:
                raise
            _forget_stale(target)
            target = _resolve(settings, spec, start=start, owner_kind="process")
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


async def async_client(settings: Settings | None = None) -> Client:
    """Return an ``asynchronous=True`` client bound to the running event loop, cached per loop.

    For tornado handlers and other coroutines: the blocking steps (reading the advertisement, probing, starting
    a cluster) run in a thread, so the loop is never blocked for long. Raises as :func:`client` does.
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
        target = await asyncio.to_thread(_resolve, settings, spec, start=True, owner_kind="process")
        try:
            c = await new_async_client(target.address)
        except ClusterError:
            if target.advert is None or target.owned:
                raise
            await asyncio.to_thread(_forget_stale, target)
            target = await asyncio.to_thread(_resolve, settings, spec, start=True, owner_kind="process")
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

    In the managed modes: connect to the live advertised cluster, or else start one owned by this process and
    advertise it in ``<home>/runtime/cluster.json`` (it is stopped by :func:`shutdown` or at exit). For a
    scheduler address: connect to it. Raises :class:`ClusterError`, :class:`MissingDependencyError` or
    :class:`ConfigError`.
    """
    _check_fork()
    settings = settings or get_settings()
    spec = _spec(settings)
    if not spec.managed:
        return str(client(settings).scheduler.address)
    return _resolve(settings, spec, start=True, owner_kind="server").address


async def ensure_cluster_async(settings: Settings | None = None) -> str:
    """:func:`ensure_cluster` for coroutines: start-up runs in a thread; the loop's async client is connected.

    Returns the scheduler address; raises as :func:`ensure_cluster` does.
    """
    _check_fork()
    settings = settings or get_settings()
    spec = _spec(settings)
    if spec.managed:
        await asyncio.to_thread(_resolve, settings, spec, start=True, owner_kind="server")
    c = await async_client(settings)
    return str(c.scheduler.address)


def owned_clusters() -> list[_adv.Advertisement]:
    """The advertisements of the clusters this process owns."""
    with _state.owned_lock:
        return [o.advert for o in _state.owned.values()]


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
    """Close this process's clients; stop the clusters it owns and withdraw their advertisements (if ours)."""
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
    for o in owned:
        o.close()


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
