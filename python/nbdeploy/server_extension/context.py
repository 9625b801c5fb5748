"""The state one server process holds: settings, store, runtime and background services."""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..config import Settings, set_settings

__all__ = ["BACKGROUND_SERVICES", "ServerContext"]

log = logging.getLogger("nbdeploy.server")

# "module:function" entries; each is ``async def start(ctx) -> stop`` where ``stop`` is an async callable.
# The jobs scheduler and dispatcher register here.
BACKGROUND_SERVICES: list[str] = ["nbdeploy.jobs.service:start"]


class ServerContext:
    """Shared by every handler of one server (``handler.nbd``); owns start-up and shut-down."""

    def __init__(self, settings: Settings, *, own_cluster: bool = True, background: bool = True) -> None:
        self.settings = settings
        self.own_cluster = own_cluster
        self.background = background
        self._stops: list[Callable[[], Awaitable[None]]] = []
        self.url: str | None = None
        set_settings(settings)

    def advertise(self, url: str, kind: str) -> None:
        """Record the URL this server answers on, for kernels to show (see :mod:`.adverts`)."""
        from .adverts import advertise_server

        self.url = url
        advertise_server(self.settings.runtime_dir, url, kind)

    @property
    def store(self) -> Any:
        from ..store import default_store

        return default_store()

    @property
    def functions(self) -> Any:
        from ..functions import default_manager

        return default_manager()

    async def start(self) -> None:
        """Connect to (or start and advertise) the cluster, then start the background services."""
        from .. import runtime

        if self.own_cluster:
            await runtime.ensure_cluster_async()
        if self.background:
            for entry in BACKGROUND_SERVICES:
                module, _, attr = entry.partition(":")
                start = getattr(importlib.import_module(module), attr)
                stop = await start(self)
                if stop is not None:
                    self._stops.append(stop)

    async def stop(self) -> None:
        """Stop the background services (newest first), then release the runtime."""
        from .. import runtime

        while self._stops:
            stop = self._stops.pop()
            try:
                result = stop()
                if inspect.isawaitable(result):
                    await result
            except Exception:  # keep stopping the rest
                log.exception("stopping a background service failed")
        from ..functions import default_manager as functions
        from ..models import default_manager as models

        await functions().aclose()
        await models().aclose()
        if self.url is not None:
            from .adverts import withdraw_server

            withdraw_server(self.settings.runtime_dir)
        await runtime.shutdown_async()
