"""``app.runtime``: the Dask cluster of one :class:`~nbdeploy.app.Nbdeploy`, bound to its settings.

A thin object over the module functions of :mod:`nbdeploy.runtime` (which take the settings explicitly), so that
managers, handlers and the CLI reach the cluster through the app instead of the process-wide settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client

    from ..app import Nbdeploy
    from ..config import Settings

__all__ = ["Runtime"]


class Runtime:
    """The cluster of ``app``: clients, status, scaling, start-up for servers, and running tasks (``app.runtime``,
    also ``nbd.cluster`` for the default app)."""

    def __init__(self, app: Nbdeploy) -> None:
        self.app = app

    @property
    def settings(self) -> Settings:
        return self.app.settings

    def client(self) -> Client:
        """This process's synchronous Dask client for the app's cluster (see :func:`nbdeploy.runtime.client`)."""
        from .cluster import client

        return client(self.settings)

    async def async_client(self, *, start: bool = True) -> Client:
        """The running loop's asynchronous client (see :func:`nbdeploy.runtime.async_client`); with
        ``start=False`` it only connects to a cluster that already runs (:class:`ClusterError` otherwise)."""
        from .cluster import async_client

        return await async_client(self.settings, start=start)

    def status(self, *, start: bool = True) -> dict[str, Any]:
        """The cluster's status (see :func:`nbdeploy.runtime.status`)."""
        from .control import status

        return status(self.settings, start=start)

    async def status_async(self) -> dict[str, Any]:
        """:meth:`status` for coroutines."""
        from .control import status_async

        return await status_async(self.settings)

    async def dashboard_link_async(self) -> str | None:
        """The cluster's own dashboard link, for the authenticated proxy (see
        :func:`nbdeploy.runtime.control.dashboard_link_async`)."""
        from .control import dashboard_link_async

        return await dashboard_link_async(self.settings)

    def ensure_cluster(self) -> str:
        """For servers: make sure the cluster runs (starting the embedded one if needed); its scheduler address."""
        from .cluster import ensure_cluster

        return ensure_cluster(self.settings)

    async def ensure_cluster_async(self) -> str:
        """:meth:`ensure_cluster` for coroutines."""
        from .cluster import ensure_cluster_async

        return await ensure_cluster_async(self.settings)

    def start(self, workers: int | None = None, threads: int | None = None, memory_limit: str | None = None) -> dict:
        """Start a long-lived cluster in a background process (see :func:`nbdeploy.runtime.start_cluster`)."""
        from .control import start_cluster

        return start_cluster(workers, threads, memory_limit, self.settings)

    def scale(self, n: int, *, timeout: float | None = None) -> dict[str, Any]:
        """Scale the cluster nbdeploy owns to ``n`` workers, wait until they are there, return the new status.

        An external cluster (``NBDEPLOY_CLUSTER=tcp://…``) belongs to whoever runs it: a :class:`ConflictError`.
        See :func:`nbdeploy.runtime.scale_cluster` for the errors.
        """
        from .control import SCALE_TIMEOUT, scale_cluster

        return scale_cluster(n, self.settings, timeout=SCALE_TIMEOUT if timeout is None else timeout)

    async def scale_async(self, n: int, *, timeout: float | None = None) -> dict[str, Any]:
        """:meth:`scale` for coroutines."""
        from .control import SCALE_TIMEOUT, scale_cluster_async

        return await scale_cluster_async(n, self.settings, timeout=SCALE_TIMEOUT if timeout is None else timeout)

    def max_workers(self) -> int:
        """The most workers :meth:`scale` accepts (setting ``cluster_max_workers``)."""
        from .control import max_workers

        return max_workers(self.settings)

    def stop(self) -> dict[str, Any] | None:
        """Stop the advertised cluster of this home (see :func:`nbdeploy.runtime.stop_cluster`)."""
        from .control import stop_cluster

        return stop_cluster(self.settings)

    async def shutdown_async(self) -> None:
        """Close this process's clients and stop the cluster daemon it started as a server (see
        :func:`nbdeploy.runtime.shutdown`)."""
        from .cluster import shutdown_async

        await shutdown_async()
