"""REST routes of "Schedule this notebook" (relative to ``/nbdeploy/api``): ``POST /notebooks/inspect`` (what the
notebook would be as a job, with its parameters' form), ``POST /notebooks/schedule`` (store it and run it now or
on a schedule) and ``POST /runs/{id}/html`` (save a run's output as HTML beside its notebook, through Jupyter's
contents manager). The lab renders what these decide; the ``%schedule`` magic calls the same API."""

from __future__ import annotations

import asyncio
import dataclasses

from ..exceptions import NotFoundError
from ..server_extension.base import API_PREFIX, NbdeployHandler, api
from .records import HtmlSave, HtmlSaved, NotebookInfo, NotebookInspect, NotebookSchedule, NotebookScheduled

__all__ = ["default_handlers"]

TAGS = ("jobs",)


class InspectHandler(NbdeployHandler):
    @api(body=NotebookInspect, responses={200: NotebookInfo}, tags=TAGS, scope="read")  # reads the body only
    async def post(self, body: NotebookInspect) -> NotebookInfo:
        """What a notebook would be as a job: its name (from its path), kernelspec, parameters and their form."""
        return await asyncio.to_thread(self.nbd.jobs.inspect_notebook, body.notebook, body.path)


class ScheduleNotebookHandler(NbdeployHandler):
    @api(body=NotebookSchedule, responses={201: NotebookScheduled}, errors=(422,), tags=TAGS)
    async def post(self, body: NotebookSchedule) -> NotebookScheduled:
        """Store a notebook as the next version of a job and run it now or on a schedule.

        The form's ``inputs`` are coerced to the parameters' types here (422 naming each bad field); nothing is
        stored unless everything fits.
        """
        options = {f.name: getattr(body, f.name) for f in dataclasses.fields(body) if f.name != "notebook"}
        done = await asyncio.to_thread(lambda: self.nbd.jobs.schedule_notebook(body.notebook, **options))
        base = str(self.settings.get("base_url") or "/").rstrip("/")
        where = f"/runs/{done.run.id}" if done.run else f"/schedules/{done.schedule.id}" if done.schedule else ""
        self.set_header("Location", f"{base}{API_PREFIX}{where}")
        return done


class RunHtmlHandler(NbdeployHandler):
    @api(body=HtmlSave, responses={201: HtmlSaved}, errors=(404,), tags=("runs",))
    async def post(self, run_id: int, body: HtmlSave) -> HtmlSaved:
        """Save a run's output as HTML beside its notebook (``<stem>-run-<id>.html``), in Jupyter's contents.

        Only in JupyterLab: ``nbdeploy serve`` has no contents to save into (``GET /runs/{id}/output?format=html``
        gives the page instead).
        """
        contents = self.settings.get("contents_manager")
        if contents is None:
            raise NotFoundError("this server has no notebook contents: GET /runs/{id}/output?format=html instead")
        page = await asyncio.to_thread(self.nbd.runs.output, run_id, "html")
        path = self.nbd.runs.html_output_path(body.notebook_path.lstrip("/"), run_id)
        model = {"type": "file", "format": "text", "content": page}
        result = contents.save(model, path)
        if asyncio.iscoroutine(result):
            await result
        return HtmlSaved(path)


default_handlers = [
    (r"/notebooks/inspect", InspectHandler),
    (r"/notebooks/schedule", ScheduleNotebookHandler),
    (r"/runs/(?P<run_id>[^/]+)/html", RunHtmlHandler),
]
