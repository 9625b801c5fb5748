"""REST routes of jobs and schedules (relative to ``/nbdeploy/api``): thin over ``app.jobs`` / ``app.schedules``.

``GET|POST /jobs``, ``GET|DELETE /jobs/{name}``, ``GET|POST /jobs/{name}/runs``, ``GET|POST /schedules``,
``GET|PATCH|DELETE /schedules/{id}``. Every catalog call runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses

from ..server_extension.base import API_PREFIX, NbdeployHandler, api
from .records import (
    Job,
    JobCreate,
    JobInfo,
    JobList,
    LimitQuery,
    RunInfo,
    RunList,
    RunRequest,
    ScheduleCreate,
    SchedulePatch,
    SchedulesQuery,
)
from .schedules import Schedule, ScheduleList

__all__ = ["default_handlers"]

JOBS, SCHEDULES = ("jobs",), ("schedules",)


class _JobsBase(NbdeployHandler):
    def location(self, path: str) -> None:
        base = str(self.settings.get("base_url") or "/").rstrip("/")
        self.set_header("Location", f"{base}{API_PREFIX}{path}")


class JobsHandler(_JobsBase):
    @api(responses={200: JobList}, tags=JOBS)
    async def get(self) -> JobList:
        """Every job's newest version."""
        return await asyncio.to_thread(self.nbd.jobs.list)

    @api(body=JobCreate, responses={201: Job}, tags=JOBS, metric="job")
    async def post(self, body: JobCreate) -> Job:
        """Store a notebook (its JSON) as the next version of a job; 201 with its Location."""
        self.metric_target = f"job:{body.name}"
        job = await asyncio.to_thread(self.nbd.jobs.put, body.notebook, body.name)
        self.location(f"/jobs/{job.name}")
        return job


class JobHandler(_JobsBase):
    @api(responses={200: JobInfo}, errors=(404,), tags=JOBS)
    async def get(self, name: str) -> JobInfo:
        """A job: its newest version, every version, and the schedules that run it."""
        return await asyncio.to_thread(self.nbd.jobs.info, name)

    @api(responses={204: None}, errors=(404, 409), tags=JOBS)
    async def delete(self, name: str) -> None:
        """Delete every version of a job (409 while a schedule uses it; its runs stay in the history)."""
        await asyncio.to_thread(self.nbd.jobs.delete, name)


class JobRunsHandler(_JobsBase):
    @api(body=RunRequest, body_required=False, responses={201: RunInfo}, errors=(404, 422), tags=JOBS, metric="job")
    async def post(self, name: str, body: RunRequest | None) -> RunInfo:
        """Run a job now; 201 with the queued run and its Location."""
        body = body or RunRequest()
        run = await asyncio.to_thread(
            self.nbd.jobs.run,
            name,
            body.parameters,
            kernel=body.kernel,
            timeout=body.timeout,
            retries=body.retries,
            version=body.version,
            notify=body.notify,
            resources=body.resources,
            warm=body.warm,
        )
        self.location(f"/runs/{run.id}")
        return run.snapshot

    @api(query=LimitQuery, responses={200: RunList}, tags=JOBS)
    async def get(self, name: str, query: LimitQuery) -> RunList:
        """A job's runs, newest first."""
        runs = await asyncio.to_thread(self.nbd.runs.list, job=name, limit=query.limit)
        return RunList([r.snapshot for r in runs])


class SchedulesHandler(_JobsBase):
    @api(query=SchedulesQuery, responses={200: ScheduleList}, tags=SCHEDULES)
    async def get(self, query: SchedulesQuery) -> ScheduleList:
        """Every schedule (of one job with ``?job=``), oldest first."""
        return ScheduleList(await asyncio.to_thread(self.nbd.schedules.list, query.job))

    @api(body=ScheduleCreate, responses={201: Schedule}, errors=(404,), tags=SCHEDULES)
    async def post(self, body: ScheduleCreate) -> Schedule:
        """Schedule a job on a cron expression; 201 with the schedule and its Location."""
        fields = {f.name: getattr(body, f.name) for f in dataclasses.fields(body)}
        schedule = await asyncio.to_thread(lambda: self.nbd.schedules.add(**fields))
        self.location(f"/schedules/{schedule.id}")
        return schedule


class ScheduleHandler(_JobsBase):
    @api(responses={200: Schedule}, errors=(404,), tags=SCHEDULES)
    async def get(self, schedule_id: int) -> Schedule:
        """One schedule, with its next five fire times."""
        return await asyncio.to_thread(self.nbd.schedules.get, schedule_id)

    @api(body=SchedulePatch, responses={200: Schedule}, errors=(404,), tags=SCHEDULES)
    async def patch(self, schedule_id: int, body: SchedulePatch) -> Schedule:
        """Change fields of a schedule (``{"paused": true}`` pauses it; a new cron re-times it)."""
        changes = body.changes()
        return await asyncio.to_thread(lambda: self.nbd.schedules.update(schedule_id, **changes))

    @api(responses={204: None}, errors=(404,), tags=SCHEDULES)
    async def delete(self, schedule_id: int) -> None:
        """Delete a schedule (its runs stay in the history)."""
        await asyncio.to_thread(self.nbd.schedules.delete, schedule_id)


default_handlers = [
    (r"/jobs", JobsHandler),
    (r"/jobs/(?P<name>[^/]+)", JobHandler),
    (r"/jobs/(?P<name>[^/]+)/runs", JobRunsHandler),
    (r"/schedules", SchedulesHandler),
    (r"/schedules/(?P<schedule_id>[^/]+)", ScheduleHandler),
]
