"""REST routes of the models service (relative to ``/nbdeploy/api``): thin over :class:`ModelManager`.

``GET /models``, ``GET /models/{name}``, ``POST /models/{name}/predict[?version=N|?alias=A]`` (MLflow's
scoring formats in, ``{"predictions": […], "version": N}`` out), ``GET /models/{name}/stats`` (serving
statistics and drift). Catalog and store calls run in a thread; the predict path resolves inline (cached).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..exceptions import InvalidInputError
from ..server_extension.base import NbdeployHandler

__all__ = ["default_handlers"]


def _manager() -> Any:
    from . import default_manager

    return default_manager()


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
        self.send_json({"models": await asyncio.to_thread(_manager().list)})


class ModelHandler(NbdeployHandler):
    """``GET /models/{name}``: versions, aliases, metrics, signature and an example payload."""

    async def get(self, name: str) -> None:
        self.send_json(await asyncio.to_thread(_manager().info, name))


class PredictHandler(NbdeployHandler):
    """``POST /models/{name}/predict``: predictions of the newest version, ``?version=N`` or ``?alias=A``."""

    async def post(self, name: str) -> None:
        self.metric_target = f"model:{name}"
        body = self.json_body()
        version, alias = _version_query(self)
        answer = await _manager().apredict(name, body, version, alias)
        self.set_header("Content-Type", "application/json")
        self.finish(f'{{"predictions":{answer.predictions_json},"version":{answer.version}}}')


class StatsHandler(NbdeployHandler):
    """``GET /models/{name}/stats``: requests, errors, latency and input drift (``?version=N|?alias=A``)."""

    async def get(self, name: str) -> None:
        manager = _manager()
        version, alias = _version_query(self)
        stats = await asyncio.to_thread(manager.stats, name)
        report = await asyncio.to_thread(manager.drift, name, version, alias)
        for v in stats["versions"].values():
            v.pop("sample", None)
        stats.pop("latencies", None)
        self.send_json({"name": name, "stats": stats, "drift": report.to_json()})


_NAME = r"(?P<name>[^/]+)"
default_handlers = [
    (r"/models", ModelsHandler),
    (rf"/models/{_NAME}", ModelHandler),
    (rf"/models/{_NAME}/predict", PredictHandler),
    (rf"/models/{_NAME}/stats", StatsHandler),
]
