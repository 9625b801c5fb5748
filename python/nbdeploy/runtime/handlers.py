"""``GET /nbdeploy/api/cluster``: the cluster's status (scheduler, dashboard, workers, running tasks)."""

from __future__ import annotations

from ..server_extension.base import NbdeployHandler

__all__ = ["ClusterHandler", "default_handlers"]


class ClusterHandler(NbdeployHandler):
    """The cluster panel's data: :func:`nbdeploy.runtime.status` as JSON (502/504 when the cluster fails)."""

    async def get(self) -> None:
        from .control import status_async

        self.send_json(await status_async(self.nbd.settings))


default_handlers = [(r"/cluster", ClusterHandler)]
