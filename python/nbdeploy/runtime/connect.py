"""Connecting clients to a scheduler, bounded in time: a refused port or a listener that is no Dask scheduler
is a :class:`ClusterError` within the connect timeout, never a hang. Also: where a client connects
(:class:`Target`) and whether the advertisement it came from still holds."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..exceptions import ClusterError
from . import advert as _adv

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["Target", "connect_timeout", "new_async_client", "new_sync_client"]

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


def _advert_mtime(runtime_dir: Path) -> int | None:
    try:
        return os.stat(_adv.advert_path(runtime_dir)).st_mtime_ns
    except OSError:
        return None


def _target_from_advert(advert: _adv.Advertisement, runtime_dir: Path, mtime: int | None) -> Target:
    return Target(advert.scheduler_address, advert.mode, advert.dashboard_link, advert, runtime_dir, False, mtime)


def _client_alive(c: Client) -> bool:
    return c.status == "running"


def _target_moved(target: Target | None) -> bool:
    """Whether the advertisement ``target`` came from was withdrawn (its cluster stopped) or now names another live
    cluster (cheap when unchanged: one ``stat``)."""
    if target is None or target.runtime_dir is None or target.owned:
        return False
    mtime = _advert_mtime(target.runtime_dir)
    if mtime is None:
        return target.advert_mtime is not None  # withdrawn: its owner stopped the cluster
    if mtime == target.advert_mtime:
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


def connect_timeout() -> float:
    """Seconds to wait for a scheduler to accept a client (setting ``connect_timeout``, default 10)."""
    from ..config import get_settings

    return max(0.5, get_settings().connect_timeout)


def _connection_error(address: str, exc: BaseException) -> ClusterError:
    return ClusterError(
        f"could not connect to the Dask scheduler at {address} ({type(exc).__name__}: {exc}). Check that it "
        "runs (`nbdeploy cluster status`), or change NBDEPLOY_CLUSTER / c.Nbdeploy.cluster"
    )


async def _dask_handshake(address: str, timeout: float) -> None:
    """Open a comm to ``address`` and complete Dask's handshake within ``timeout`` seconds, then close it.

    ``distributed.comm.connect`` bounds the TCP connect but waits for the peer's handshake without a limit,
    so a listener that is not a Dask scheduler would hang a client forever; this bounds the whole exchange.
    """
    from distributed.comm import connect
    from distributed.security import Security

    args = Security().get_connection_args("client")  # TLS settings from the Dask config, as a Client uses
    comm = await asyncio.wait_for(connect(address, timeout=timeout, **args), timeout + 1)
    await comm.close()


def _check_reachable(address: str) -> None:
    """Raise :class:`ClusterError` unless a Dask scheduler answers at ``address`` within the connect timeout."""
    timeout = connect_timeout()
    if not _adv.probe_address(address, min(timeout, 2.0)):
        raise _connection_error(address, ConnectionRefusedError("nothing accepts connections there"))
    outcome: list[BaseException] = []

    def probe() -> None:
        try:
            asyncio.run(_dask_handshake(address, timeout))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=probe, name="nbdeploy-handshake", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    if thread.is_alive() or outcome:
        error = outcome[0] if outcome else TimeoutError(f"no Dask handshake within {timeout:.0f}s")
        raise _connection_error(address, error)


def new_sync_client(address: str, *, set_as_default: bool = True) -> Client:
    """Connect a new sync client to ``address``; raise :class:`ClusterError` (never hang) when none answers."""
    from distributed import Client

    _check_reachable(address)
    try:
        return Client(address, timeout=connect_timeout(), set_as_default=set_as_default)
    except Exception as exc:
        raise _connection_error(address, exc) from exc


async def new_async_client(address: str) -> Client:
    from distributed import Client

    timeout = connect_timeout()
    if not await asyncio.to_thread(_adv.probe_address, address, min(timeout, 2.0)):
        raise _connection_error(address, ConnectionRefusedError("nothing accepts connections there"))
    try:
        await _dask_handshake(address, timeout)
        return await asyncio.wait_for(
            Client(address, asynchronous=True, timeout=timeout, set_as_default=False), timeout + 5
        )
    except Exception as exc:
        raise _connection_error(address, exc) from exc


def _close_quietly(c: Client) -> None:
    try:
        c.close(timeout=5)
    except Exception:
        log.debug("closing a client failed", exc_info=True)


async def _close_async_quietly(c: Client) -> None:
    try:
        await asyncio.wait_for(c.close(), 10)
    except Exception:
        log.debug("closing an async client failed", exc_info=True)
