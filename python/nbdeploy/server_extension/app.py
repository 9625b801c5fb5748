"""The jupyter-server extension: mounts the REST API behind Jupyter's own authentication."""

from __future__ import annotations

from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.application import ExtensionApp
from tornado import web
from traitlets import Bool, Unicode

from ..app import Nbdeploy, set_default
from ..config import Settings
from .routes import bind_handlers, collect_handlers, collect_mounted_handlers

__all__ = ["JupyterAuthHandler", "NbdeployExtension"]


class JupyterAuthHandler(APIHandler):
    """Jupyter's ``APIHandler`` (token, cookie, XSRF) that refuses unauthenticated or unauthorized requests."""

    auth_resource = "nbdeploy"
    finish_sets_content_type = True  # APIHandler.finish sets application/json unless told otherwise

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        user = self.current_user
        if not user:
            raise web.HTTPError(403, "authentication required")
        action = {"GET": "read", "HEAD": "read", "OPTIONS": "read"}.get(self.request.method or "", "write")
        if not self.authorizer.is_authorized(self, user, action, self.auth_resource):
            raise web.HTTPError(403, f"not authorized to {action} {self.auth_resource}")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # the nbdeploy mixin (first in the MRO of bound handlers) writes the JSON body; this keeps
        # Jupyter's own fallback for anything raised before the mixin is involved
        super().write_error(status_code, **kwargs)


class NbdeployExtension(ExtensionApp):
    """``c.NbdeployExtension`` configures the extension; ``c.Nbdeploy`` configures nbdeploy itself."""

    name = "nbdeploy"
    load_other_extensions = True

    store_url = Unicode(None, allow_none=True, help="Overrides the store URL for this server.").tag(config=True)
    catalog_url = Unicode(None, allow_none=True, help="Overrides the catalog URL for this server.").tag(config=True)
    cluster = Unicode(None, allow_none=True, help="Overrides the cluster setting for this server.").tag(config=True)
    start_cluster = Bool(True, help="Start and advertise the embedded cluster if none is running.").tag(config=True)
    background_services = Bool(True, help="Run the scheduler and dispatcher in this server.").tag(config=True)

    def initialize_settings(self) -> None:
        config = self.serverapp.config if self.serverapp else self.config
        settings = Settings.resolve(
            config, store_url=self.store_url, catalog_url=self.catalog_url, cluster=self.cluster
        )
        self.nbd = Nbdeploy(settings, config=config)
        set_default(self.nbd)
        self.settings.update({"nbdeploy": self.nbd, "nbdeploy_debug": True})

    def initialize_handlers(self) -> None:
        self.handlers.extend(bind_handlers([*collect_handlers(), *collect_mounted_handlers()], JupyterAuthHandler))

    _stop_warmer: Any = None

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:  # type: ignore[override]
        # Jupyter awaits this once its server listens, so nothing here delays the start of `jupyter lab`
        self.nbd.advertise(serverapp.connection_url, "jupyter")  # first: kernels may deploy while the cluster starts
        await self.nbd.start(own_cluster=self.start_cluster, background=self.background_services)
        from ..runtime.warmup import start as start_warmer

        # as `nbdeploy serve` does: the replicas start and load the newest versions in the background (with
        # start_cluster off, only once a cluster runs: warming never starts one)
        self._stop_warmer = await start_warmer(self.nbd, start_cluster=self.start_cluster)

    async def stop_extension(self) -> None:
        if self._stop_warmer is not None:
            await self._stop_warmer()
            self._stop_warmer = None
        await self.nbd.stop()
