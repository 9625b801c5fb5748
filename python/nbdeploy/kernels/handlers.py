"""REST routes of the kernels service (relative to ``/nbdeploy/api``): thin over :class:`~.manager.KernelService`."""

from __future__ import annotations

from ..server_extension.base import NbdeployHandler, api
from .records import KernelList

__all__ = ["default_handlers"]

TAGS = ("kernels",)


class KernelsHandler(NbdeployHandler):
    @api(responses={200: KernelList}, errors=(502,), tags=TAGS)
    async def get(self) -> KernelList:
        """The kernelspecs each Dask worker can run (asked of the workers) and the state of their warm pools."""
        return await self.nbd.kernels.alist()


default_handlers = [(r"/kernels", KernelsHandler)]
