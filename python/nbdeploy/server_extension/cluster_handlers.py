"""``GET /nbdeploy/api/cluster``: the cluster's status (scheduler, dashboard, workers, running tasks)."""

from __future__ import annotations

from ..runtime.records import ClusterStatus
from .base import NbdeployHandler, api

__all__ = ["ClusterHandler", "default_handlers"]


class ClusterHandler(NbdeployHandler):
    @api(responses={200: ClusterStatus}, errors=(502, 504), tags=("cluster",))
    async def get(self) -> ClusterStatus:
        """The cluster: scheduler, dashboard, workers and running tasks (502/504 when it does not answer)."""
        status = await self.nbd.runtime.status_async()
        base = str(self.settings.get("base_url") or "/").rstrip("/")
        if status.get("dashboard_url") and base:  # the proxied path, under the server's base URL
            status["dashboard_url"] = base + status["dashboard_url"]
        return ClusterStatus.of(status)


default_handlers = [(r"/cluster", ClusterHandler)]
