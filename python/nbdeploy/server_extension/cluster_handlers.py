"""``GET /nbdeploy/api/cluster``: the cluster's status (scheduler, dashboard, workers, running tasks)."""

from __future__ import annotations

from .base import NbdeployHandler

__all__ = ["ClusterHandler", "default_handlers"]


class ClusterHandler(NbdeployHandler):
    """The cluster panel's data: :meth:`app.runtime.status` as JSON (502/504 when the cluster fails)."""

    async def get(self) -> None:
        self.send_json(await self.nbd.runtime.status_async())


default_handlers = [(r"/cluster", ClusterHandler)]
