"""``app.kernels``: what kernelspecs the Dask workers can run and how their warm pools stand (asked of the workers,
not this machine), and the check that a run's kernelspec exists there."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from .records import KernelList, KernelPoolState, KernelSpecInfo, WorkerKernels

if TYPE_CHECKING:
    from ..app import Nbdeploy
    from .pool import PoolConfig

__all__ = ["KernelService"]

NAMES_TTL = 5.0  # seconds the workers' kernelspec names are trusted for run checks


class KernelService:
    """The kernels of ``app``'s cluster (``app.kernels``)."""

    def __init__(self, app: Nbdeploy) -> None:
        self.app = app
        self._names: tuple[Any, float, frozenset[str]] | None = None  # (client, when, names)
        self._lock = threading.Lock()

    @property
    def pool_config(self) -> PoolConfig:
        """The pool settings of this app (setting ``kernel_pool_size``, ``kernel_pool_kernels``, …)."""
        from .pool import PoolConfig

        return PoolConfig.from_settings(self.app.settings)

    def list(self) -> KernelList:
        """Every worker's kernelspecs and warm pool (each worker asked; the pools adopt this app's settings).

        Raises :class:`~nbdeploy.exceptions.ClusterError` when no cluster runs (asking never starts one)."""
        from ..runtime.cluster import sync_client
        from .pool import worker_report

        client = sync_client(self.app.settings, start=False)
        config = self.pool_config
        reports = client.run(worker_report, config.to_json(), on_error="return")
        workers = []
        for address, report in sorted(reports.items()):
            if isinstance(report, BaseException):
                workers.append(WorkerKernels(address, [], [], f"{type(report).__name__}: {report}"))
                continue
            workers.append(
                WorkerKernels(
                    address,
                    [KernelSpecInfo.of(k) for k in report.get("kernelspecs", [])],
                    [KernelPoolState.of(p) for p in report.get("pool", [])],
                )
            )
        names = sorted({k.name for w in workers for k in w.kernelspecs})
        with self._lock:
            self._names = (client, time.monotonic(), frozenset(names))
        return KernelList(workers, names, config.size, list(config.kernels))

    def names(self) -> frozenset[str] | None:
        """The kernelspecs some worker of the connected cluster has (cached a few seconds); ``None`` when no cluster
        is connected or reachable (nothing is started to find out)."""
        from ..exceptions import NbdeployError
        from ..runtime.cluster import sync_client

        try:
            client = sync_client(self.app.settings, start=False)
        except NbdeployError:
            return None
        with self._lock:
            cached = self._names
        if cached is not None and cached[0] is client and time.monotonic() - cached[1] < NAMES_TTL:
            return cached[2]
        from .specs import worker_kernel_names

        try:
            reports = client.run(worker_kernel_names, on_error="return")
        except Exception:
            return None
        found = frozenset(n for r in reports.values() if isinstance(r, list) for n in r)
        if not reports:
            return None
        with self._lock:
            self._names = (client, time.monotonic(), found)
        return found

    def check(self, name: str) -> None:
        """Raise :class:`~.specs.UnknownKernelError` (422, listing those that exist) when no worker of the connected
        cluster has kernelspec ``name``; without a connected cluster the worker that runs it checks."""
        from .specs import UnknownKernelError

        names = self.names()
        if names is not None and name not in names:
            raise UnknownKernelError(name, names)

    async def alist(self) -> KernelList:
        """:meth:`list` off the event loop."""
        import asyncio

        return await asyncio.to_thread(self.list)
