"""REST routes of the models service (relative to ``/nbdeploy/api``): thin over ``app.models``.

``GET /models``, ``GET|DELETE /models/{name}``, ``DELETE /models/{name}/versions/{number}``,
``PUT /models/{name}/aliases/{alias}`` (``{"version": N}``), ``POST /models/{name}/predict[?version=N|?alias=A]``
(MLflow's scoring formats in, ``{"predictions": […], "version": N}`` out), ``GET /models/{name}/stats``
(serving statistics and drift). Catalog and store calls run in a thread; the predict path resolves inline
(cached).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..plots import PNG_RESPONSE, figure_png
from ..server_extension.base import NbdeployHandler, Raw, RawBody, api
from .records import AliasSet, ModelInfo, ModelList, ModelReport, ModelVersion, PredictQuery, PredictResult

__all__ = ["default_handlers"]

TAGS = ("models",)


class ModelsHandler(NbdeployHandler):
    @api(responses={200: ModelList}, tags=TAGS)
    async def get(self) -> ModelList:
        """Every stored model's newest version."""
        return await asyncio.to_thread(self.nbd.models.list)


class ModelHandler(NbdeployHandler):
    @api(responses={200: ModelInfo}, errors=(404,), tags=TAGS)
    async def get(self, name: str) -> ModelInfo:
        """A model: every version, aliases, metrics, signature and an example payload."""
        return await asyncio.to_thread(self.nbd.models.info, name)

    @api(responses={204: None}, errors=(404,), tags=TAGS)
    async def delete(self, name: str) -> None:
        """Delete every version of a model (it stops being served at once)."""
        await asyncio.to_thread(self.nbd.models.delete, name)


class VersionHandler(NbdeployHandler):
    @api(responses={204: None}, errors=(404,), tags=TAGS)
    async def delete(self, name: str, number: int) -> None:
        """Delete one version of a model (its aliases go with it; its number is never reused)."""
        await asyncio.to_thread(self.nbd.models.delete_version, name, number)


class AliasHandler(NbdeployHandler):
    @api(body=AliasSet, responses={200: ModelVersion}, errors=(404,), tags=TAGS)
    async def put(self, name: str, alias: str, body: AliasSet) -> ModelVersion:
        """Point an alias (e.g. ``production``) at a version."""
        return await asyncio.to_thread(self.nbd.models.set_alias, name, alias, body.version)


class PredictHandler(NbdeployHandler):
    @api(
        query=PredictQuery,
        body=dict,
        responses={200: PredictResult},
        errors=(404, 422, 502, 504),
        tags=TAGS,
        metric="model",
        operation_id="predict_model",
        consumes=("application/json", "text/csv"),
    )
    async def post(self, name: str, query: PredictQuery, body: dict[str, Any] | RawBody) -> Raw:
        """Predict with a model (the newest version, ``?version=N`` or ``?alias=A``).

        The body is one of MLflow's scoring formats: ``dataframe_split``, ``dataframe_records``, ``instances`` or
        ``inputs`` (``Content-Type: application/json``), or a CSV table with a header row (``text/csv``); other
        content types are a 415, as in MLflow's scoring server. It is checked against the version's signature
        (422 naming each bad field); the model's own error on this input is a 400 with its message.
        """
        if isinstance(body, RawBody):  # text/csv: the only other type this route consumes
            from .payloads import csv_payload

            body = await asyncio.to_thread(csv_payload, body.content)
        answer = await self.nbd.models.apredict(name, body, query.version, query.alias)
        return Raw(f'{{"predictions":{answer.predictions_json},"version":{answer.version}}}', "application/json")


class StatsHandler(NbdeployHandler):
    @api(query=PredictQuery, responses={200: ModelReport}, errors=(404,), tags=TAGS)
    async def get(self, name: str, query: PredictQuery) -> ModelReport:
        """Requests, errors, latency and input drift of a model (of a version with ``?version=``/``?alias=``)."""
        return await asyncio.to_thread(self.nbd.models.report, name, query.version, query.alias)


class StatsFigureHandler(NbdeployHandler):
    @api(query=PredictQuery, responses={200: PNG_RESPONSE}, errors=(404,), tags=TAGS)
    async def get(self, name: str, query: PredictQuery) -> Raw:
        """The model's serving latency, request rate and input drift per column as a PNG (matplotlib): the
        figure ``nbd.models.plot(name)`` returns, over every server (drift of ``?version=``/``?alias=``)."""

        def draw() -> bytes:
            return figure_png(self.nbd.models.plot(name, query.version, query.alias))

        return Raw(await asyncio.to_thread(draw), "image/png")


_NAME = r"(?P<name>[^/]+)"
default_handlers = [
    (r"/models", ModelsHandler),
    (rf"/models/{_NAME}", ModelHandler),
    (rf"/models/{_NAME}/versions/(?P<number>[^/]+)", VersionHandler),
    (rf"/models/{_NAME}/aliases/(?P<alias>[^/]+)", AliasHandler),
    (rf"/models/{_NAME}/predict", PredictHandler),
    (rf"/models/{_NAME}/stats", StatsHandler),
    (rf"/models/{_NAME}/stats.png", StatsFigureHandler),
]
