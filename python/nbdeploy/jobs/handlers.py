"""REST handlers of jobs and schedules (routes relative to ``/nbdeploy/api``): parse, call a manager, render.

``GET|POST /jobs``, ``GET|DELETE /jobs/{name}``, ``GET|POST /jobs/{name}/runs``, ``GET|POST /schedules``,
``GET|PATCH|DELETE /schedules/{id}``. Every catalog call runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..exceptions import InvalidInputError
from ..server_extension.base import API_PREFIX, NbdeployHandler

__all__ = ["default_handlers"]


class _JobsBase(NbdeployHandler):
    def location(self, path: str) -> str:
        base = str(self.settings.get("base_url") or "/").rstrip("/")
        return f"{base}{API_PREFIX}{path}"

    def jobs(self) -> Any:
        return self.nbd.jobs

    def schedules(self) -> Any:
        return self.nbd.schedules


def _job_json(version: Any) -> dict[str, Any]:
    data = version.to_json()
    data["parameters"] = {p["name"]: p for p in version.metadata.get("parameters", [])}
    return data


class JobsHandler(_JobsBase):
    """``GET /jobs``: every job's newest version; ``POST /jobs`` ``{"name", "notebook"}``: store a version."""

    async def get(self) -> None:
        versions = await asyncio.to_thread(self.jobs().list)
        self.send_json({"jobs": [_job_json(v) for v in versions]})

    async def post(self) -> None:
        body = self.json_object()
        name, notebook = body.get("name"), body.get("notebook")
        if not isinstance(name, str):
            raise InvalidInputError("the body needs a job 'name'", "name")
        if not isinstance(notebook, dict | str):
            raise InvalidInputError("the body needs the 'notebook' as a notebook JSON object", "notebook")
        if isinstance(notebook, str) and not notebook.lstrip().startswith("{"):
            raise InvalidInputError("'notebook' must be the notebook's JSON, not a path", "notebook")
        self.metric_target = f"job:{name}"
        version = await asyncio.to_thread(self.jobs().put, notebook, name)
        self.set_header("Location", self.location(f"/jobs/{version.name}"))
        self.send_json(_job_json(version), status=201)


class JobHandler(_JobsBase):
    """``GET /jobs/{name}``: versions, parameters, kernel and schedules of a job; ``DELETE``: delete it (409
    while a schedule uses it; its runs stay in the history)."""

    async def get(self, name: str) -> None:
        self.send_json(await asyncio.to_thread(self.jobs().info, name))

    async def delete(self, name: str) -> None:
        await asyncio.to_thread(self.jobs().delete, name)
        self.set_status(204)
        self.finish()


class JobRunsHandler(_JobsBase):
    """``POST /jobs/{name}/runs`` ``{"parameters", "kernel", "timeout", "retries", "version", "notify"}``: run
    now (201 + Location of the run); ``GET``: the job's runs, newest first."""

    async def post(self, name: str) -> None:
        body = self.json_object()
        unknown = set(body) - {"parameters", "kernel", "timeout", "retries", "version", "notify"}
        if unknown:
            raise InvalidInputError(f"unknown field(s) {sorted(unknown)}", sorted(unknown)[0])
        self.metric_target = f"job:{name}"
        run = await asyncio.to_thread(
            self.jobs().run,
            name,
            body.get("parameters"),
            kernel=body.get("kernel"),
            timeout=body.get("timeout"),
            retries=body.get("retries", 0),
            version=body.get("version"),
            notify=body.get("notify"),
        )
        self.set_header("Location", self.location(f"/runs/{run.id}"))
        self.send_json(run.to_json(), status=201)

    async def get(self, name: str) -> None:
        limit = self.query_int("limit", 100)
        runs = await asyncio.to_thread(self.nbd.runs.list, job=name, limit=limit)
        self.send_json({"runs": [r.to_json() for r in runs]})


_SCHEDULE_FIELDS = (
    "job",
    "cron",
    "timezone",
    "parameters",
    "catchup",
    "max_concurrency",
    "timeout",
    "retries",
    "notify",
    "kernel",
)


class SchedulesHandler(_JobsBase):
    """``GET /schedules[?job=]``; ``POST /schedules`` ``{"job", "cron", "timezone", …}`` (201 + Location)."""

    async def get(self) -> None:
        job = self.get_query_argument("job", None) or None
        schedules = await asyncio.to_thread(self.schedules().list, job)
        self.send_json({"schedules": [s.to_json() for s in schedules]})

    async def post(self) -> None:
        body = self.json_object()
        unknown = set(body) - set(_SCHEDULE_FIELDS)
        if unknown:
            raise InvalidInputError(f"unknown field(s) {sorted(unknown)}", sorted(unknown)[0])
        for required in ("job", "cron"):
            if required not in body:
                raise InvalidInputError(f"the body needs {required!r}", required)
        schedule = await asyncio.to_thread(lambda: self.schedules().add(**body))
        self.set_header("Location", self.location(f"/schedules/{schedule.id}"))
        self.send_json(schedule.to_json(), status=201)


class ScheduleHandler(_JobsBase):
    """``GET|PATCH|DELETE /schedules/{id}`` (PATCH takes the fields to change, e.g. ``{"paused": true}``)."""

    async def get(self, schedule_id: str) -> None:
        self.send_json((await asyncio.to_thread(self.schedules().get, schedule_id)).to_json())

    async def patch(self, schedule_id: str) -> None:
        body = self.json_object()
        from .schedules import UPDATABLE

        unknown = set(body) - set(UPDATABLE)
        if unknown:
            raise InvalidInputError(
                f"cannot change {sorted(unknown)}; changeable: {', '.join(UPDATABLE)}", sorted(unknown)[0]
            )
        schedule = await asyncio.to_thread(lambda: self.schedules().update(schedule_id, **body))
        self.send_json(schedule.to_json())

    async def delete(self, schedule_id: str) -> None:
        await asyncio.to_thread(self.schedules().delete, schedule_id)
        self.set_status(204)
        self.finish()


default_handlers = [
    (r"/jobs", JobsHandler),
    (r"/jobs/(?P<name>[^/]+)", JobHandler),
    (r"/jobs/(?P<name>[^/]+)/runs", JobRunsHandler),
    (r"/schedules", SchedulesHandler),
    (r"/schedules/(?P<schedule_id>[0-9]+)", ScheduleHandler),
]
