"""``GET /nbdeploy/api/cluster``: the cluster's status (scheduler, dashboard, workers, running tasks);
``POST /nbdeploy/api/cluster/scale``: scale the cluster nbdeploy owns (scope ``admin``)."""

from __future__ import annotations

from ..runtime.records import ClusterScale, ClusterStatus
from .base import NbdeployHandler, api

__all__ = ["ClusterHandler", "ScaleHandler", "default_handlers"]


def _proxied(handler: NbdeployHandler, status: dict) -> ClusterStatus:
    base = str(handler.settings.get("base_url") or "/").rstrip("/")
    if status.get("dashboard_url") and base:  # the proxied path, under the server's base URL
        status["dashboard_url"] = base + status["dashboard_url"]
    return ClusterStatus.of(status)


class ClusterHandler(NbdeployHandler):
    @api(responses={200: ClusterStatus}, errors=(502, 504), tags=("cluster",))
    async def get(self) -> ClusterStatus:
        """The cluster: scheduler, dashboard, workers and running tasks (502/504 when it does not answer)."""
        return _proxied(self, await self.nbd.runtime.status_async())


class ScaleHandler(NbdeployHandler):
    @api(body=ClusterScale, responses={200: ClusterStatus}, errors=(409, 502, 504), tags=("cluster",), scope="admin")
    async def post(self, body: ClusterScale) -> ClusterStatus:
        """Scale the cluster nbdeploy owns to ``workers`` workers; answers once they are there.

        400 for a number of workers out of range (1 to the setting ``cluster_max_workers``); 409 when the cluster
        is not nbdeploy's to scale (``NBDEPLOY_CLUSTER`` names a scheduler someone else runs) or adapts its size
        itself; 504 when the workers are not there in time.
        """
        return _proxied(self, await self.nbd.runtime.scale_async(body.workers))


default_handlers = [(r"/cluster", ClusterHandler), (r"/cluster/scale", ScaleHandler)]
