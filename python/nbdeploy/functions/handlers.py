"""REST routes of the functions service (relative to ``/nbdeploy/api``): thin over :class:`FunctionManager`."""

from __future__ import annotations

import asyncio

from ..server_extension.base import NbdeployHandler


class FunctionsHandler(NbdeployHandler):
    """``GET /functions``: every deployed function."""

    async def get(self) -> None:
        functions = await asyncio.to_thread(self.nbd.functions.list)
        self.send_json({"functions": functions})


class FunctionHandler(NbdeployHandler):
    """``GET /functions/{name}``: versions, signature, requirements; ``DELETE``: remove every version."""

    async def get(self, name: str) -> None:
        self.send_json(await asyncio.to_thread(self.nbd.functions.get, name))

    async def delete(self, name: str) -> None:
        await asyncio.to_thread(self.nbd.functions.delete, name)
        self.set_status(204)
        self.finish()


class InvokeHandler(NbdeployHandler):
    """``POST /functions/{name}/invoke`` and ``…/versions/{version}/invoke`` with a JSON object of arguments."""

    async def post(self, name: str, version: str | None = None) -> None:
        self.metric_target = f"function:{name}"
        arguments = self.json_object()
        answer = await self.nbd.functions.ainvoke(name, arguments, version, as_json=True)
        self.set_header("Content-Type", "application/json")
        self.finish(
            f'{{"result":{answer.result_json},"version":{answer.version},"duration_ms":{answer.duration_ms:.3f}}}'
        )


_NAME = r"(?P<name>[^/]+)"
default_handlers = [
    (r"/functions", FunctionsHandler),
    (rf"/functions/{_NAME}", FunctionHandler),
    (rf"/functions/{_NAME}/invoke", InvokeHandler),
    (rf"/functions/{_NAME}/versions/(?P<version>[^/]+)/invoke", InvokeHandler),
]
