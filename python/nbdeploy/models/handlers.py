"""REST routes of the models service (relative to ``/nbdeploy/api``): thin over :class:`ModelManager`.

``GET /models``, ``GET|DELETE /models/{name}``, ``DELETE /models/{name}/versions/{v}``,
``PUT /models/{name}/aliases/{alias}`` (``{"version": N}``), ``POST /models/{name}/predict[?version=N|?alias=A]``
(MLflow's scoring formats in, ``{"predictions": […], "version": N}`` out), ``GET /models/{name}/stats``
(serving statistics and drift). Catalog and store calls run in a thread; the predict path resolves inline
(cached).
"""

from __future__ import annotations

import asyncio

from ..exceptions import InvalidInputError
from ..server_extension.base import NbdeployHandler

__all__ = ["default_handlers"]


def _version_query(handler: NbdeployHandler) -> tuple[int | None, str | None]:
    """``?version=N`` and ``?alias=A``; 400 when the version is not a whole number."""
    version = handler.get_query_argument("version", None) or None
    alias = handler.get_query_argument("alias", None) or None
    if version is not None and not version.isdigit():
        raise InvalidInputError(
            f"version must be a whole number, got {version!r} (use ?alias= for an alias)", "version"
        )
    return (int(version) if version is not None else None), alias


class ModelsHandler(NbdeployHandler):
    """``GET /models``: every stored model's newest version."""

    async def get(self) -> None:
        self.send_json({"models": await asyncio.to_thread(self.nbd.models.list)})


class ModelHandler(NbdeployHandler):
    """``GET /models/{name}``: versions, aliases, metrics, signature and an example payload; ``DELETE``: remove
    every version (it stops being served at once)."""

    async def get(self, name: str) -> None:
        self.send_json(await asyncio.to_thread(self.nbd.models.info, name))

    async def delete(self, name: str) -> None:
        await asyncio.to_thread(self.nbd.models.delete, name)
        self.set_status(204)
        self.finish()


class VersionHandler(NbdeployHandler):
    """``DELETE /models/{name}/versions/{version}``: remove one version (its aliases go with it)."""

    async def delete(self, name: str, version: str) -> None:
        if not version.isdigit():
            raise InvalidInputError(f"version must be a whole number, got {version!r}", "version")
        await asyncio.to_thread(self.nbd.models.delete_version, name, int(version))
        self.set_status(204)
        self.finish()


class AliasHandler(NbdeployHandler):
    """``PUT /models/{name}/aliases/{alias}`` with ``{"version": N}``: point the alias at that version."""

    async def put(self, name: str, alias: str) -> None:
        version = self.json_object().get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise InvalidInputError('the body must be {"version": N} with N a whole number', "version")
        moved = await asyncio.to_thread(self.nbd.models.set_alias, name, alias, version)
        self.send_json(moved.to_json())


class PredictHandler(NbdeployHandler):
    """``POST /models/{name}/predict``: predictions of the newest version, ``?version=N`` or ``?alias=A``."""

    async def post(self, name: str) -> None:
        self.metric_target = f"model:{name}"
        body = self.json_body()
        version, alias = _version_query(self)
        answer = await self.nbd.models.apredict(name, body, version, alias)
        self.set_header("Content-Type", "application/json")
        self.finish(f'{{"predictions":{answer.predictions_json},"version":{answer.version}}}')


class StatsHandler(NbdeployHandler):
    """``GET /models/{name}/stats``: requests, errors, latency and input drift (``?version=N|?alias=A``)."""

    async def get(self, name: str) -> None:
        version, alias = _version_query(self)
        self.send_json(await asyncio.to_thread(self.nbd.models.report, name, version, alias))


_NAME = r"(?P<name>[^/]+)"
default_handlers = [
    (r"/models", ModelsHandler),
    (rf"/models/{_NAME}", ModelHandler),
    (rf"/models/{_NAME}/versions/(?P<version>[^/]+)", VersionHandler),
    (rf"/models/{_NAME}/aliases/(?P<alias>[^/]+)", AliasHandler),
    (rf"/models/{_NAME}/predict", PredictHandler),
    (rf"/models/{_NAME}/stats", StatsHandler),
]
