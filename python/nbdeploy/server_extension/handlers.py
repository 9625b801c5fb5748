"""The server's own routes: ``GET /status`` (version and settings) and ``GET /openapi.json``."""

from __future__ import annotations

import asyncio

from .._version import __version__
from ..runtime.encoding import dumps
from .base import NbdeployHandler

__all__ = ["default_handlers"]


class StatusHandler(NbdeployHandler):
    """``GET /status``: version and settings of the serving process (secrets masked)."""

    async def get(self) -> None:
        rows = self.nbd.settings.describe()
        self.send_json(
            {
                "version": __version__,
                "settings": {name: {"value": value, "source": source} for name, value, source in rows},
            }
        )


class OpenAPIHandler(NbdeployHandler):
    """``GET /openapi.json``: the API with every deployed function's and model's request schema."""

    async def get(self) -> None:
        from .openapi import build_openapi

        functions = await asyncio.to_thread(self.nbd.functions.list_signatures)
        model_entries = await asyncio.to_thread(self.nbd.models.list_signatures)
        self.set_header("Content-Type", "application/json")
        self.finish(dumps(build_openapi(self.application, functions, model_entries)))


default_handlers = [(r"/status", StatusHandler), (r"/openapi.json", OpenAPIHandler)]
