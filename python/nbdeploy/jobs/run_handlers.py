"""REST routes of runs (relative to ``/nbdeploy/api``): ``GET /runs``, ``GET /runs/{id}``,
``GET /runs/{id}/output?format=ipynb|html``, ``GET /runs/{id}/log[?follow=1]``, ``POST /runs/{id}/cancel``.
Catalog and store calls run in a thread, off the event loop."""

from __future__ import annotations

import asyncio

from ..server_extension.base import NbdeployHandler, Raw, api
from .records import LogQuery, OutputQuery, RunInfo, RunList, RunsQuery

__all__ = ["default_handlers"]

RUNS = ("runs",)


class RunsHandler(NbdeployHandler):
    @api(query=RunsQuery, responses={200: RunList}, tags=RUNS)
    async def get(self, query: RunsQuery) -> RunList:
        """Runs, newest first, filtered by job, status and schedule; ``limit`` and ``before`` page through."""
        runs = await asyncio.to_thread(
            self.nbd.runs.list,
            job=query.job,
            status=query.status,
            schedule_id=query.schedule,
            limit=query.limit,
            before_id=query.before,
        )
        return RunList([r.snapshot for r in runs])


class RunHandler(NbdeployHandler):
    @api(responses={200: RunInfo}, errors=(404,), tags=RUNS)
    async def get(self, run_id: int) -> RunInfo:
        """A run, with its metrics and artifacts."""
        return await asyncio.to_thread(self.nbd.runs.detail, run_id)


class RunOutputHandler(NbdeployHandler):
    @api(
        query=OutputQuery,
        responses={200: {"application/x-ipynb+json": {"type": "object"}, "text/html": {"type": "string"}}},
        errors=(404,),
        tags=RUNS,
    )
    async def get(self, run_id: int, query: OutputQuery) -> Raw:
        """The executed notebook (``?format=html``: rendered as a page); 404 while the run has none."""
        if query.format == "ipynb":
            data = await asyncio.to_thread(self.nbd.runs.output_bytes, run_id)
            disposition = {"Content-Disposition": f'inline; filename="run-{run_id}.ipynb"'}
            return Raw(data, "application/x-ipynb+json", disposition)
        page = await asyncio.to_thread(self.nbd.runs.output, run_id, "html")
        return Raw(page, "text/html; charset=utf-8")


class RunLogHandler(NbdeployHandler):
    @api(query=LogQuery, responses={200: {"text/plain": {"type": "string"}}}, errors=(404,), tags=RUNS)
    async def get(self, run_id: int, query: LogQuery) -> Raw:
        """The run's captured output as text (404 until its first attempt ended); ``?follow=1`` streams it
        (chunked) while the run executes and ends when the run ends: the same text the finished run keeps."""
        if not query.follow:
            text = await asyncio.to_thread(self.nbd.runs.log, run_id)
            return Raw(text, "text/plain; charset=utf-8")
        pieces = await asyncio.to_thread(self.nbd.runs.follow_log, run_id)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        done = object()
        while True:
            piece = await asyncio.to_thread(next, pieces, done)
            if piece is done or self.request.connection.stream.closed():  # type: ignore[union-attr]
                break
            self.write(piece)  # type: ignore[arg-type]
            await self.flush()
        return Raw("", "text/plain; charset=utf-8")


class RunCancelHandler(NbdeployHandler):
    @api(responses={202: RunInfo}, errors=(404,), tags=RUNS)
    async def post(self, run_id: int) -> RunInfo:
        """Ask for a run to be cancelled (202 with the run; a finished run is returned as it is)."""
        return await asyncio.to_thread(self.nbd.runs.cancel, run_id)


_RUN = r"/runs/(?P<run_id>[^/]+)"
default_handlers = [
    (r"/runs", RunsHandler),
    (_RUN, RunHandler),
    (rf"{_RUN}/output", RunOutputHandler),
    (rf"{_RUN}/log", RunLogHandler),
    (rf"{_RUN}/cancel", RunCancelHandler),
]
