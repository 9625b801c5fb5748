"""REST routes of the functions service (relative to ``/nbdeploy/api``): thin over :class:`FunctionManager`."""

from __future__ import annotations

import asyncio
from typing import Any

from ..plots import PNG_RESPONSE, figure_png
from ..server_extension.base import NbdeployHandler, Raw, api
from .records import FunctionInfo, FunctionList, FunctionStats, InvokeResult

__all__ = ["default_handlers"]

TAGS = ("functions",)


class FunctionsHandler(NbdeployHandler):
    @api(responses={200: FunctionList}, tags=TAGS)
    async def get(self) -> FunctionList:
        """Every deployed function's newest version."""
        return await asyncio.to_thread(self.nbd.functions.list)


class FunctionHandler(NbdeployHandler):
    @api(responses={200: FunctionInfo}, errors=(404,), tags=TAGS)
    async def get(self, name: str) -> FunctionInfo:
        """A function: versions, aliases, signature, requirements, source."""
        return await asyncio.to_thread(self.nbd.functions.get, name)

    @api(responses={204: None}, errors=(404,), tags=TAGS)
    async def delete(self, name: str) -> None:
        """Delete every version of a function (it stops being served at once)."""
        await asyncio.to_thread(self.nbd.functions.delete, name)


class StatsHandler(NbdeployHandler):
    @api(responses={200: FunctionStats}, errors=(404,), tags=TAGS)
    async def get(self, name: str) -> FunctionStats:
        """Calls, errors and latency of a function over every server that served it (REST and Open Inference
        Protocol calls)."""
        return FunctionStats.of(name, await asyncio.to_thread(self.nbd.functions.stats, name))


class StatsFigureHandler(NbdeployHandler):
    @api(responses={200: PNG_RESPONSE}, errors=(404,), tags=TAGS)
    async def get(self, name: str) -> Raw:
        """The function's serving latency (histogram, over time) and request rate as a PNG (matplotlib): the
        figure ``nbd.functions.plot(name)`` returns, over every server."""
        return Raw(await asyncio.to_thread(lambda: figure_png(self.nbd.functions.plot(name))), "image/png")


class InvokeHandler(NbdeployHandler):
    @api(
        body=dict,
        body_required=False,
        responses={200: InvokeResult},
        errors=(404, 422, 502, 504),
        tags=TAGS,
        metric="function",
        operation_id="invoke_function",
    )
    async def post(self, name: str, body: dict[str, Any], version: int | str | None = None) -> Raw:
        """Call a function (its newest version, or ``/versions/{version}``) with a JSON object of arguments.

        The arguments are checked against the function's signature (422 naming each bad field); the user's own
        exception is a 500 with its traceback; a call past the function's timeout is a 504.
        """
        answer = await self.nbd.functions.ainvoke(name, body, version, as_json=True)
        text = f'{{"result":{answer.result_json},"version":{answer.version},"duration_ms":{answer.duration_ms:.3f}}}'
        return Raw(text, "application/json")


_NAME = r"(?P<name>[^/]+)"
default_handlers = [
    (r"/functions", FunctionsHandler),
    (rf"/functions/{_NAME}", FunctionHandler),
    (rf"/functions/{_NAME}/stats", StatsHandler),
    (rf"/functions/{_NAME}/stats.png", StatsFigureHandler),
    (rf"/functions/{_NAME}/invoke", InvokeHandler),
    (rf"/functions/{_NAME}/versions/(?P<version>[^/]+)/invoke", InvokeHandler),
]
