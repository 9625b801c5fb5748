"""nbdeploy's own REST routes over tracked runs (relative to ``/nbdeploy/api``), for the lab's Runs panel:
``GET /tracking/runs``, ``GET /tracking/runs/{run_uuid}``, ``GET /tracking/compare?runs=a,b`` and
``GET /tracking/compare.png?runs=a,b`` (the metrics figure). MLflow's own API is in :mod:`.mlflow_api`."""

from __future__ import annotations

import asyncio
import re

from ..exceptions import InvalidInputError
from ..plots import PNG_RESPONSE, figure_png
from ..server_extension.base import NbdeployHandler, Raw, api
from .records import CompareQuery, RunComparison, TrackedRun, TrackedRunList, TrackedRunsQuery

__all__ = ["default_handlers"]

TAGS = ("tracking",)
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class TrackedRunsHandler(NbdeployHandler):
    @api(query=TrackedRunsQuery, responses={200: TrackedRunList}, errors=(404,), tags=TAGS)
    async def get(self, query: TrackedRunsQuery) -> TrackedRunList:
        """Runs logged by MLflow clients, newest first (``?experiment=`` by name)."""
        return await asyncio.to_thread(self.nbd.tracking.runs, query.experiment, query.limit)


class TrackedRunHandler(NbdeployHandler):
    @api(responses={200: TrackedRun}, errors=(404,), tags=TAGS)
    async def get(self, run_uuid: str) -> TrackedRun:
        """One tracked run: params, tags and the latest metrics."""
        if not _RUN_ID.fullmatch(run_uuid):
            raise InvalidInputError(f"run id {run_uuid[:40]!r} is not 32 hex digits", "run_uuid")
        return await asyncio.to_thread(self.nbd.tracking.run, run_uuid)


class CompareHandler(NbdeployHandler):
    @api(query=CompareQuery, responses={200: RunComparison}, errors=(404,), tags=TAGS)
    async def get(self, query: CompareQuery) -> RunComparison:
        """Tracked runs side by side: params, metrics and every metric's history."""
        return await asyncio.to_thread(self.nbd.tracking.compare, query.runs.split(","))


class CompareFigureHandler(NbdeployHandler):
    @api(
        query=CompareQuery,
        responses={200: PNG_RESPONSE},
        errors=(404,),
        tags=TAGS,
    )
    async def get(self, query: CompareQuery) -> Raw:
        """The runs' metrics by step as a PNG (matplotlib), one panel per metric."""

        def draw() -> bytes:
            return figure_png(self.nbd.tracking.plot(query.runs.split(",")))

        return Raw(await asyncio.to_thread(draw), "image/png")


default_handlers = [
    (r"/tracking/runs", TrackedRunsHandler),
    (r"/tracking/runs/(?P<run_uuid>[^/]+)", TrackedRunHandler),
    (r"/tracking/compare", CompareHandler),
    (r"/tracking/compare.png", CompareFigureHandler),
]
