"""Clusters this process starts and owns: building them from the cluster setting, watching and closing them.

Only the cluster daemon (:mod:`.daemon`) starts a cluster in its own process; everyone else connects to it. The
embedded cluster listens on loopback only: its scheduler and workers (LocalCluster's default ``host``), the scheduler's
dashboard (setting ``dashboard_address``, ``127.0.0.1:8787`` by default) and the workers' HTTP servers (which
follow the workers' host while ``worker_dashboard_address`` is unset). Servers proxy the dashboard behind their
authentication (``/nbdeploy/api/cluster/dashboard/``).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..exceptions import ClusterError, NbdeployError
from . import advert as _adv
from .modes import ClusterSpec, gpus_visible, load_cluster_class

__all__ = [
    "SCALE_OP",
    "STOP_OP",
    "OwnedCluster",
    "dashboard_address",
    "dashboard_endpoint",
    "preflight",
    "start_cluster_object",
]

log = logging.getLogger("nbdeploy.runtime")

STOP_OP = "nbdeploy_stop_cluster"  # scheduler RPC that asks the owner of an in-process scheduler to stop
SCALE_OP = "nbdeploy_scale_cluster"  # scheduler RPC that asks the owner to scale its cluster to ``n`` workers


class OwnedCluster:
    """A cluster this process started, with its advertisement.

    When the scheduler runs in this process (LocalCluster, LocalCUDACluster) it gets one extra RPC handler,
    :data:`STOP_OP`, through which ``nbdeploy cluster stop`` in another process asks this owner to close the
    cluster itself — the clean way, which also withdraws the advertisement and leaves the owner running — and
    :data:`SCALE_OP`, through which ``nbd.cluster.scale(n)`` asks it to scale the cluster (only the owner holds
    the cluster object that starts and retires worker processes).
    """

    def __init__(
        self,
        cluster: Any,
        advert: _adv.Advertisement,
        runtime_dir: Path,
        on_stop_request: Callable[[OwnedCluster], None],
    ) -> None:
        self.cluster = cluster
        self.advert = advert
        self.runtime_dir = runtime_dir
        self._on_stop_request = on_stop_request
        self.ignore_clients: set[str] = set()  # client ids that do not keep the cluster busy (the owner's own)
        self.stop_requested = False
        self.closed = threading.Event()  # set once close() has finished
        handlers = getattr(getattr(cluster, "scheduler", None), "handlers", None)
        if isinstance(handlers, dict):
            handlers[STOP_OP] = self._stop_requested
            handlers[SCALE_OP] = self._scale_requested

    def alive(self) -> bool:
        from distributed.core import Status

        dead = (Status.closing, Status.closed, Status.failed, Status.closing_gracefully)
        if getattr(self.cluster, "status", None) in dead:
            return False
        scheduler = getattr(self.cluster, "scheduler", None)  # in-process for LocalCluster
        return getattr(scheduler, "status", None) not in dead

    def activity(self) -> tuple[int, int, int] | None:
        """``(clients, tasks, clients ever connected)`` of the scheduler, read on the cluster's event loop; ``None``
        when the scheduler is not in this process. Clients of the cluster's own do not count: Dask's
        ``fire-and-forget``, the workers' (``Client-worker-…``, which a task's ``get_client()`` leaves connected) and
        ``ignore_clients``."""
        scheduler = getattr(self.cluster, "scheduler", None)
        if scheduler is None or not hasattr(scheduler, "clients") or not hasattr(self.cluster, "sync"):
            return None

        async def read() -> tuple[int, int, int]:
            clients = [c for c in scheduler.clients if not _own_client(c) and c not in self.ignore_clients]
            ever = {c for c in connected_clients(scheduler) if not _own_client(c) and c not in self.ignore_clients}
            return len(clients), len(scheduler.tasks), len(ever)

        try:
            return self.cluster.sync(read)
        except Exception:
            log.debug("reading the scheduler's activity failed", exc_info=True)
            return None

    def _stop_requested(self) -> str:
        # runs on the cluster's event loop: close from another thread, after this reply is sent
        log.info("cluster %s: stop requested through the scheduler", self.advert.scheduler_address)
        self.stop_requested = True
        threading.Thread(target=self._on_stop_request, args=(self,), name="nbdeploy-cluster-stop", daemon=True).start()
        return "OK"

    async def _scale_requested(self, n: int) -> dict[str, Any]:
        # runs on the cluster's event loop; the caller checked ``n`` and waits for the workers itself
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            return {"status": "error", "message": f"the number of workers must be a whole number >= 0, got {n!r}"}
        adaptive = getattr(self.cluster, "_adaptive", None)
        if adaptive is not None and getattr(adaptive, "periodic_callback", None) is not None:
            return {
                "status": "error",
                "message": "the cluster adapts its size itself (the 'adapt' of cluster_options): change that "
                "setting and restart the cluster to size it by hand",
            }
        import asyncio

        from distributed.deploy.spec import SpecCluster

        log.info("cluster %s: scaling to %d worker(s) on request", self.advert.scheduler_address, n)
        try:
            if isinstance(self.cluster, SpecCluster):  # LocalCluster & co: schedules the change on this loop
                self.cluster.scale(n)
            else:  # another cluster manager's scale() may block: not on the scheduler's loop
                await asyncio.to_thread(self.cluster.scale, n)
        except Exception as exc:
            return {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
        return {"status": "OK", "n": n}

    def close(self, *, holding_lock: bool = False) -> None:
        """Withdraw the advertisement (if it is still ours), then close the cluster (bounded in time)."""
        try:
            self._close(holding_lock)
        finally:
            self._forget_at_exit()
            self.closed.set()

    def _close(self, holding_lock: bool) -> None:
        try:
            if holding_lock:
                _adv.remove_advert(self.runtime_dir, only_if=_adv.same_cluster(self.advert))
            else:
                with _adv.advert_lock(self.runtime_dir, timeout=30):
                    _adv.remove_advert(self.runtime_dir, only_if=_adv.same_cluster(self.advert))
        except Exception:
            log.warning("could not withdraw the advertisement in %s", self.runtime_dir, exc_info=True)
        if self.alive():
            try:
                self.cluster.close(timeout=20)
                return
            except Exception:
                log.warning("closing the cluster at %s failed", self.advert.scheduler_address, exc_info=True)
        # A cluster whose scheduler is already gone (shut down from outside) spends half a minute retrying that
        # scheduler while it closes: stop its worker processes by pid and give the rest two seconds.
        self._kill_worker_processes()
        try:
            self.cluster.close(timeout=2)
        except Exception:
            log.debug("closing the cluster at %s timed out", self.advert.scheduler_address)

    def _kill_worker_processes(self) -> None:
        import psutil

        for nanny in list(getattr(self.cluster, "workers", {}).values()):
            pid = getattr(nanny, "pid", None)
            if not pid:
                continue
            try:
                proc = psutil.Process(pid)
                proc.kill()
                proc.wait(10)
            except (psutil.Error, OSError):
                pass

    def _forget_at_exit(self) -> None:
        try:
            from distributed.deploy.spec import SpecCluster

            SpecCluster._instances.discard(self.cluster)  # do not wait for it again at interpreter exit
        except Exception:
            pass


def connected_clients(scheduler: Any) -> set[str]:
    """The ids of every client that ever connected to ``scheduler`` (its ``add-client`` events)."""
    try:
        events = scheduler.get_events("all")
    except Exception:  # an older Dask: nothing known beyond the clients connected now
        return set()
    return {m["client"] for _, m in events if isinstance(m, dict) and m.get("action") == "add-client"}


def _own_client(client_id: str) -> bool:
    """Whether a scheduler's client is the cluster's own: ``fire-and-forget``, or a worker's client."""
    return client_id == "fire-and-forget" or client_id.startswith("Client-worker-")


def _dashboard_link(cluster: Any) -> str | None:
    try:
        link = cluster.dashboard_link
    except Exception:
        return None
    return str(link) if link else None


def dashboard_endpoint(cluster: Any) -> str | None:
    """``http(s)://host:port`` where the dashboard of an in-process scheduler really listens (whatever link the
    Dask config's ``distributed.dashboard.link`` makes of it), or ``None`` when the scheduler runs elsewhere."""
    server = getattr(getattr(cluster, "scheduler", None), "http_server", None)
    sockets = getattr(server, "_sockets", None)
    if not sockets:
        return None
    host, port = next(iter(sockets.values())).getsockname()[:2]
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    import dask

    scheme = "https" if dask.config.get("distributed.scheduler.dashboard.tls.cert", None) else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def dashboard_address(configured: str) -> str:
    """The ``dashboard_address`` to give Dask for the setting ``configured`` (``host:port``): the same, or port 0
    (any free port) on the same host when that port is taken — so no "port in use" warning, and never a wider
    interface than asked for. A bare ``:port`` is read as loopback (Dask would listen on every interface)."""
    host, _, port = configured.strip().rpartition(":")
    host = host or "127.0.0.1"
    bind_host = host.strip("[]")
    if port and port != "0":
        family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        with socket.socket(family) as s:
            try:
                s.bind((bind_host, int(port)))
            except (OSError, ValueError):
                port = "0"
    return f"{host}:{port or 0}"


def preflight(spec: ClusterSpec) -> None:
    """Check, before launching a daemon for ``spec``, what would stop it at once: the cluster class imports, and a
    ``cuda`` cluster has a GPU. Raises :class:`MissingDependencyError` (with the pip hint), :class:`ConfigError`
    or :class:`ClusterError`."""
    if spec.kind == "local":
        return
    target = "dask_cuda:LocalCUDACluster" if spec.kind == "cuda" else spec.target
    assert target is not None
    load_cluster_class(target, spec.setting)
    if spec.kind == "cuda" and not gpus_visible():
        raise _no_gpu_error()


def _no_gpu_error() -> ClusterError:
    return ClusterError(
        "the cluster setting 'cuda' needs an NVIDIA GPU, but none is visible here (nvidia-smi finds none): use "
        "NBDEPLOY_CLUSTER=auto or local on this machine"
    )


def start_cluster_object(spec: ClusterSpec, overrides: Mapping[str, Any], dashboard: str = "127.0.0.1:8787") -> Any:
    """Start the cluster ``spec`` describes (owned by the caller) and return the cluster object.

    ``overrides`` may hold ``workers``, ``threads`` and ``memory_limit`` (from ``nbdeploy cluster start``);
    ``dashboard`` is the ``dashboard_address`` setting (local and cuda clusters; see :func:`dashboard_address`).
    Raises :class:`MissingDependencyError` for a missing optional package and :class:`ClusterError` when the
    cluster does not start.
    """
    options = dict(spec.options)
    scale = options.pop("scale", None)
    adapt = options.pop("adapt", None)
    workers, threads, memory = overrides.get("workers"), overrides.get("threads"), overrides.get("memory_limit")
    if spec.kind in ("local", "cuda"):
        cls: Any
        if spec.kind == "local":
            from distributed import LocalCluster

            cls = LocalCluster
            kwargs: dict[str, Any] = {"processes": True}
        else:
            cls = load_cluster_class("dask_cuda:LocalCUDACluster", spec.setting)  # MissingDependencyError with the hint
            if not gpus_visible():
                raise _no_gpu_error()
            kwargs = {"resources": {"GPU": 1}}  # one GPU per worker: tasks ask with resources={"GPU": 1}
        kwargs["dashboard_address"] = dashboard_address(dashboard)
        kwargs.update(options)
        if workers is not None:
            kwargs["n_workers"] = int(workers)
        if threads is not None:
            kwargs["threads_per_worker"] = int(threads)
        if memory is not None:
            kwargs["memory_limit"] = memory
    else:
        assert spec.target is not None
        cls = load_cluster_class(spec.target, spec.setting)
        kwargs = options
        if workers is not None:
            scale = int(workers)
    try:
        cluster = cls(**kwargs)
    except NbdeployError:
        raise
    except Exception as exc:
        raise ClusterError(
            f"could not start the {spec.setting!r} cluster: {type(exc).__name__}: {str(exc).rstrip('.')}. Check "
            "the cluster setting and NBDEPLOY_CLUSTER_OPTIONS"
        ) from exc
    try:
        if adapt is not None:
            cluster.adapt(**dict(adapt))
        elif scale is not None:
            cluster.scale(int(scale))
    except Exception as exc:
        cluster.close()
        raise ClusterError(f"could not scale the {spec.setting!r} cluster: {exc}") from exc
    return cluster
