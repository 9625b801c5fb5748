"""REST handlers of runs (routes relative to ``/nbdeploy/api``): ``GET /runs?job=&status=&schedule=&limit=``,
``GET /runs/{id}``, ``GET /runs/{id}/output?format=ipynb|html``, ``GET /runs/{id}/log``,
``POST /runs/{id}/cancel``. Catalog and store calls run in a thread, off the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from ..exceptions import InvalidInputError
from ..server_extension.base import NbdeployHandler

__all__ = ["default_handlers"]


class _RunsBase(NbdeployHandler):
    def finish_as(self, data: bytes | str, content_type: str) -> None:
        """Finish with a body of this content type (Jupyter's APIHandler would otherwise force JSON's)."""
        self.set_header("Content-Type", content_type)
        try:
            self.finish(data, set_content_type=content_type)  # type: ignore[call-arg]
        except TypeError:  # a plain tornado handler (``nbdeploy serve``)
            self.finish(data)

    def runs(self) -> Any:
        return self.nbd.runs


class RunsHandler(_RunsBase):
    """``GET /runs``: runs, newest first, filtered by ``job``, ``status``, ``schedule``; ``limit``/``before``."""

    async def get(self) -> None:
        runs = await asyncio.to_thread(
            self.runs().list,
            job=self.get_query_argument("job", None) or None,
            status=self.get_query_argument("status", None) or None,
            schedule_id=self.query_int("schedule"),
            limit=self.query_int("limit", 100),
            before_id=self.query_int("before"),
        )
        self.send_json({"runs": [r.to_json() for r in runs]})


class RunHandler(_RunsBase):
    """``GET /runs/{id}``: the run, with its metrics and artifacts."""

    async def get(self, run_id: str) -> None:
        def load() -> dict[str, Any]:
            manager = self.runs()
            data = manager.info(run_id).to_json()
            data["metrics"] = manager.metrics(run_id)
            data["artifacts"] = manager.artifacts(run_id)
            return data

        self.send_json(await asyncio.to_thread(load))


class RunOutputHandler(_RunsBase):
    """``GET /runs/{id}/output?format=ipynb|html``: the executed notebook (404 while there is none)."""

    async def get(self, run_id: str) -> None:
        fmt = self.get_query_argument("format", "ipynb")
        if fmt not in ("ipynb", "html"):
            raise InvalidInputError(f"format must be 'ipynb' or 'html', got {fmt!r}", "format")
        if fmt == "ipynb":
            data = await asyncio.to_thread(self.runs().output_bytes, run_id)
            self.set_header("Content-Disposition", f'inline; filename="run-{int(run_id)}.ipynb"')
            self.finish_as(data, "application/x-ipynb+json")
            return
        page = await asyncio.to_thread(self.runs().output, run_id, "html")
        self.finish_as(page, "text/html; charset=utf-8")


class RunLogHandler(_RunsBase):
    """``GET /runs/{id}/log``: the run's captured output as text (404 until its first attempt ended)."""

    async def get(self, run_id: str) -> None:
        text = await asyncio.to_thread(self.runs().log, run_id)
        self.finish_as(text, "text/plain; charset=utf-8")


class RunCancelHandler(_RunsBase):
    """``POST /runs/{id}/cancel``: ask for a cancel (202 with the run; a finished run is returned as is)."""

    async def post(self, run_id: str) -> None:
        info = await asyncio.to_thread(self.runs().cancel, run_id)
        self.send_json(info.to_json(), status=202)


default_handlers = [
    (r"/runs", RunsHandler),
    (r"/runs/(?P<run_id>[0-9]+)", RunHandler),
    (r"/runs/(?P<run_id>[0-9]+)/output", RunOutputHandler),
    (r"/runs/(?P<run_id>[0-9]+)/log", RunLogHandler),
    (r"/runs/(?P<run_id>[0-9]+)/cancel", RunCancelHandler),
]
