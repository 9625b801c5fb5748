"""Cluster status, the dashboard's address, and the long-lived cluster of ``nbdeploy cluster start`` / ``stop``.

``start_cluster`` launches a cluster daemon (``python -m nbdeploy.runtime.daemon``, see :mod:`.daemon`) that
owns and advertises the cluster until ``stop_cluster``, and returns once it is up; ``stop_cluster`` stops the
advertised cluster, whoever started it: through its scheduler, else by signalling its daemon, else by shutting
its scheduler down. The status carries the dashboard's raw ``dashboard_link`` and ``dashboard_url``, its path
through the server's authenticated proxy (:data:`DASHBOARD_ROUTE`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..config import Settings, get_settings
from ..exceptions import ClusterError, ClusterTimeoutError, ConfigError, ConflictError, InvalidInputError
from . import advert as _adv
from . import cluster as _cl
from .launch import LOG_FILE, START_TIMEOUT, launch, stop_daemon
from .modes import ClusterSpec, parse_cluster_setting
from .owned import preflight

__all__ = [
    "DASHBOARD_ROUTE",
    "LOG_FILE",
    "dashboard_link_async",
    "max_workers",
    "scale_cluster",
    "scale_cluster_async",
    "start_cluster",
    "status",
    "status_async",
    "stop_cluster",
]

STATUS_TIMEOUT = 15.0
SCALE_TIMEOUT = 120.0  # how long scale() waits for the workers asked for
DASHBOARD_ROUTE = "/nbdeploy/api/cluster/dashboard"  # the servers' authenticated proxy of the dashboard


@contextlib.contextmanager
def _asking(address: str) -> Iterator[None]:
    """A call to the scheduler at ``address``: no answer in time is :class:`ClusterTimeoutError`, a dropped
    connection :class:`ClusterError`."""
    try:
        yield
    except TimeoutError as exc:
        raise ClusterTimeoutError(f"the scheduler at {address} did not answer within {STATUS_TIMEOUT:.0f}s") from exc
    except OSError as exc:
        raise ClusterError(f"lost the scheduler at {address}: {exc}") from exc


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
        "dashboard_url": f"{DASHBOARD_ROUTE}/status" if dashboard else None,
        "owner_pid": advert.owner_pid if advert else None,
        "started_at": advert.started_at if advert else None,
        "started_by": advert.started_by if advert else None,
        "requested_by": advert.requested_by if advert else None,
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

    Keys: ``mode``, ``setting``, ``scheduler_address``, ``dashboard_link`` (the dashboard itself, on loopback for
    the embedded cluster), ``dashboard_url`` (its path through the server's authenticated proxy, relative to the
    server's base URL), ``owner_pid``, ``started_at``, ``started_by`` and ``requested_by`` (see :mod:`.daemon`),
    ``workers`` (each with ``address``, ``name``, ``nthreads``, ``memory_limit``, ``gpus``, ``executing``),
    ``total_threads``, ``total_memory`` and ``tasks_running``. Task counts come from worker heartbeats, so they
    lag by up to a second. With ``start=False`` no cluster is started: :class:`ClusterError` says none runs.
    Raises :class:`ClusterError` / :class:`ClusterTimeoutError` when the scheduler does not answer.
    """
    settings = settings or get_settings()
    spec = parse_cluster_setting(settings)
    c = _cl.sync_client(settings, start=start)
    with _asking(c.scheduler.address):
        info = c.sync(c.scheduler.identity, n_workers=-1, callback_timeout=STATUS_TIMEOUT)
    return _status_json(info, spec, _cl.current_target())


async def status_async(settings: Settings | None = None) -> dict[str, Any]:
    """:func:`status` for coroutines (tornado handlers), over the loop's async client; raises the same."""
    import asyncio

    settings = settings or get_settings()
    spec = parse_cluster_setting(settings)
    c = await _cl.async_client(settings)
    with _asking(c.scheduler.address):
        info = await asyncio.wait_for(c.scheduler.identity(n_workers=-1), STATUS_TIMEOUT)
    return _status_json(info, spec, _cl.async_target())


_dashboards: dict[str, str | None] = {}  # scheduler address -> dashboard link, for connect-only clusters


async def dashboard_link_async(settings: Settings | None = None) -> str | None:
    """The URL of the cluster's own dashboard (``http://127.0.0.1:8787/status`` …), or ``None`` when it has none.

    It comes from the cluster's advertisement (where the dashboard listens, else its link), or for a scheduler
    address from the scheduler's own report of its dashboard port; never from a request. Raises
    :class:`ClusterError` as :func:`status_async` does.
    """
    import asyncio

    settings = settings or get_settings()
    c = await _cl.async_client(settings)
    target = _cl.async_target()
    if target is not None and target.advert is not None:
        real = target.advert.dashboard_address  # where it listens, whatever the link says
        return f"{real}/status" if real and target.dashboard_link else target.dashboard_link
    address = str(c.scheduler.address)
    if address not in _dashboards:
        try:
            info = await asyncio.wait_for(c.scheduler.identity(n_workers=0), STATUS_TIMEOUT)
        except (TimeoutError, OSError) as exc:
            raise ClusterError(f"the scheduler at {address} did not say where its dashboard is: {exc}") from exc
        _dashboards[address] = _dashboard_from(info)
    return _dashboards[address]


# --- scale ------------------------------------------------------------------------------------------


def max_workers(settings: Settings | None = None) -> int:
    """The most workers :func:`scale_cluster` asks for: the setting ``cluster_max_workers`` (default: four per
    CPU of this machine, at least 8)."""
    return int((settings or get_settings()).cluster_max_workers)


def _checked_workers(n: object, settings: Settings) -> int:
    """``n`` as a number of workers, or :class:`InvalidInputError` (field ``workers``) saying what is wrong."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidInputError(f"the number of workers must be a whole number, got {n!r}", "workers")
    if n < 1:
        raise InvalidInputError(
            f"the number of workers must be at least 1, got {n}: a cluster without workers runs nothing (stop it "
            "with `nbdeploy cluster stop`)",
            "workers",
        )
    limit = max_workers(settings)
    if n > limit:
        raise InvalidInputError(
            f"{n} workers is more than the limit of {limit} (setting cluster_max_workers, "
            "NBDEPLOY_CLUSTER_MAX_WORKERS)",
            "workers",
        )
    return n


def _owned_spec(settings: Settings) -> ClusterSpec:
    spec = parse_cluster_setting(settings)
    if not spec.managed:
        raise ConflictError(
            f"the cluster at {spec.address} is not nbdeploy's: NBDEPLOY_CLUSTER points at a scheduler that belongs to "
            "whoever runs it, so scale it there (e.g. with its cluster manager or `dask worker`), or set "
            "NBDEPLOY_CLUSTER=local for a cluster nbdeploy owns and can scale"
        )
    return spec


async def _scale_on(scheduler: Any, n: int, timeout: float) -> None:
    """Ask the owner of the cluster behind ``scheduler`` (an rpc) to scale to ``n`` workers; wait until the
    scheduler has ``n`` (at most ``timeout`` seconds)."""
    import asyncio
    import time

    from .owned import SCALE_OP

    with _asking(scheduler.address):
        answer = await asyncio.wait_for(getattr(scheduler, SCALE_OP)(n=n), STATUS_TIMEOUT)
    if not isinstance(answer, dict) or answer.get("status") != "OK":
        message = answer.get("message") if isinstance(answer, dict) else None
        if message:
            raise ConflictError(f"the cluster at {scheduler.address} was not scaled: {message}")
        raise ConflictError(
            f"the cluster at {scheduler.address} cannot be scaled from here: its scheduler does not run in the "
            "process that owns it (a cluster class with a remote scheduler); scale it through that cluster class"
        )
    deadline = time.monotonic() + timeout
    count = -1
    while True:
        info = await asyncio.wait_for(scheduler.identity(n_workers=-1), STATUS_TIMEOUT)
        count = len(info.get("workers") or {})
        if count == n:
            return
        if time.monotonic() >= deadline:
            raise ClusterTimeoutError(
                f"asked the cluster at {scheduler.address} for {n} worker(s), it has {count} after {timeout:.0f}s: "
                "see <home>/runtime/cluster.log"
            )
        await asyncio.sleep(0.2)


def scale_cluster(n: int, settings: Settings | None = None, *, timeout: float = SCALE_TIMEOUT) -> dict[str, Any]:
    """Scale the cluster nbdeploy owns (the embedded one, run by its cluster daemon or by this process) to ``n``
    workers, wait until the scheduler has them (at most ``timeout`` seconds) and return the new :func:`status`.

    The owner of the cluster is asked through its scheduler (the cluster object that starts and retires worker
    processes lives there); new workers have the same threads and memory as the others. Raises
    :class:`InvalidInputError` for an ``n`` that is not a whole number from 1 to :func:`max_workers`,
    :class:`ConflictError` for a scheduler-address setting (the cluster belongs to whoever runs it) or a cluster
    that cannot be scaled (one that adapts), :class:`ClusterTimeoutError` when the workers are not there in time and
    :class:`ClusterError` when the cluster cannot be reached.
    """
    settings = settings or get_settings()
    n = _checked_workers(n, settings)
    spec = _owned_spec(settings)
    c = _cl.sync_client(settings, start=True)
    c.sync(_scale_on, c.scheduler, n, timeout)
    return _status_json(c.sync(c.scheduler.identity, n_workers=-1), spec, _cl.current_target())


async def scale_cluster_async(
    n: int, settings: Settings | None = None, *, timeout: float = SCALE_TIMEOUT
) -> dict[str, Any]:
    """:func:`scale_cluster` for coroutines (tornado handlers), over the loop's async client; raises the same."""
    settings = settings or get_settings()
    n = _checked_workers(n, settings)
    spec = _owned_spec(settings)
    c = await _cl.async_client(settings)
    await _scale_on(c.scheduler, n, timeout)
    return _status_json(await c.scheduler.identity(n_workers=-1), spec, _cl.async_target())


# --- start / stop -----------------------------------------------------------------------------------


def _managed_spec(settings: Settings, action: str) -> ClusterSpec:
    spec = parse_cluster_setting(settings)
    if not spec.managed:
        raise ConfigError(
            f"the cluster setting is the address of an existing scheduler ({spec.address}), which nbdeploy does "
            f"not {action}: manage it where it was started, or set NBDEPLOY_CLUSTER=local"
        )
    return spec


def start_cluster(
    workers: int | None = None,
    threads: int | None = None,
    memory_limit: str | int | None = None,
    settings: Settings | None = None,
    *,
    timeout: float = START_TIMEOUT,
) -> dict[str, Any]:
    """Start a long-lived cluster daemon that owns and advertises a cluster; return its advertisement.

    ``workers``, ``threads`` (per worker) and ``memory_limit`` (per worker, e.g. ``"4GiB"``) override the
    ``cluster_options``. The daemon logs to ``<home>/runtime/cluster.log`` and runs until :func:`stop_cluster`
    (no idle timeout). Raises :class:`ConflictError` when a live cluster is already advertised,
    :class:`ConfigError` for a scheduler-address setting, :class:`MissingDependencyError` for a missing cluster
    package, :class:`ClusterError` when the daemon dies before its cluster is up (with the end of its log) and
    :class:`ClusterTimeoutError` after ``timeout`` seconds.
    """
    settings = settings or get_settings()
    spec = _managed_spec(settings, "start")
    runtime_dir = settings.runtime_dir
    preflight(spec)
    with _adv.spawn_lock(runtime_dir, timeout=timeout + 60):
        current = _adv.read_advert(runtime_dir)
        if current is not None and _adv.is_live(current):
            raise _cl._already_running(current)
        advert = launch(
            settings,
            spec,
            started_by="cli",
            workers=workers,
            threads=threads,
            memory_limit=memory_limit,
            timeout=timeout,
        )
    return advert.to_json()


def stop_cluster(settings: Settings | None = None, *, timeout: float = 60.0) -> dict[str, Any] | None:
    """Stop the advertised cluster of this home; return its advertisement, or ``None`` when none was running.

    The owner — a cluster daemon, or a server or kernel of an older release — is asked through its scheduler to
    close the cluster and withdraw the advertisement; a daemon then exits (else it gets SIGTERM, then SIGKILL),
    and whoever used the cluster launches a new one when it next needs one. When the owner cannot be asked (a
    cluster class whose scheduler runs elsewhere), the scheduler is shut down. A stale advertisement is just
    removed. Raises :class:`ConfigError` for a scheduler-address setting.
    """
    settings = settings or get_settings()
    _managed_spec(settings, "stop")
    runtime_dir = settings.runtime_dir
    owned = _cl._owned_for(runtime_dir)
    if owned is not None:  # called inside the daemon (nbdeploy cluster start --foreground)
        _cl.drop_clients(owned.advert.scheduler_address)
        _cl._discard_owned(owned)
        return owned.advert.to_json()
    advert = _adv.read_advert(runtime_dir)
    if advert is None:
        return None
    _cl.forget_started(advert)
    if advert.on_this_host and not _adv.pid_alive(advert.owner_pid, advert.owner_started):
        stop_daemon(runtime_dir, advert, timeout)
        return None
    _cl.drop_clients(advert.scheduler_address)
    stop_daemon(runtime_dir, advert, timeout)
    return advert.to_json()
