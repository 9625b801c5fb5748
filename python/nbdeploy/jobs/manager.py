"""Jobs: notebooks stored as versioned artifacts of kind ``job``, and runs of them.

``JobManager.put`` stores a notebook version (its parameters inspected and kept in the version's metadata);
``JobManager.run`` checks the parameters and inserts a queued run, then makes sure a dispatcher will pick it up
(this process's, a live leader's, or a new in-process one). No tornado, papermill or Dask import here.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..exceptions import ConflictError, InvalidInputError, NotFoundError, SignatureError
from ..names import validate_name
from ..store import Version, _owner
from ..store.tables import utcnow
from . import notebooks
from .notify import normalize_notify
from .options import name_from_path, validate_run_options
from .records import Job, JobInfo, JobList, JobParameter, NotebookInfo, NotebookScheduled
from .tables import RunRow, ScheduleRow

if TYPE_CHECKING:
    from ..app import Nbdeploy
    from .runs import Run

__all__ = ["JobManager"]


class JobManager:
    """The jobs of ``app`` (``app.jobs``): notebooks stored as versions of kind ``job``, and runs started now."""

    def __init__(self, app: Nbdeploy) -> None:
        self.app = app
        self.store = app.store

    # --- notebooks ---------------------------------------------------------------------------------------
    def put(self, path_or_notebook: Any, name: str | None = None, metadata: dict[str, Any] | None = None) -> Job:
        """Store a notebook (a path, notebook JSON, a dict or a NotebookNode) as the next version of job ``name``.

        ``name`` defaults to the file name for a path. Returns the stored :class:`Job` version (its parameters,
        kernel, language, cell count). Raises :class:`NotFoundError` for a missing file and
        :class:`InvalidInputError` for a bad notebook or name; nothing is stored then.
        """
        if name is None:
            if isinstance(path_or_notebook, str | Path) and not str(path_or_notebook).lstrip().startswith("{"):
                name = name_from_path(path_or_notebook)
            else:
                raise InvalidInputError("give the job a name: jobs.put(notebook, name='daily-report')", "name")
        validate_name(name)
        nb, data = notebooks.load_notebook(path_or_notebook)
        params = notebooks.inspect_parameters(nb)
        meta = {
            **(metadata or {}),
            "parameters": [p.to_json() for p in params.values()],
            "kernel": notebooks.kernel_name(nb),
            "language": notebooks.language(nb),
            "cells": len(nb["cells"]),
        }
        if isinstance(path_or_notebook, str | Path) and "source" not in meta:
            meta["source"] = Path(path_or_notebook).name
        return Job.of(self.store.put("job", name, data, meta))

    def get(self, name: str, version: int | str | None = None) -> Version:
        """The stored version of job ``name`` (newest by default); raises :class:`NotFoundError`."""
        try:
            return self.store.get("job", name, version)
        except NotFoundError as exc:
            raise NotFoundError(f"{exc}; store it with nbd.jobs.put(path, {name!r}) or `nbdeploy jobs put`") from None

    def notebook(self, name: str, version: int | str | None = None) -> dict[str, Any]:
        """The job's notebook as a dict."""
        import json

        return json.loads(self.store.artifacts.read_blob(self.get(name, version).sha256))

    def parameters(self, name: str, version: int | str | None = None) -> dict[str, JobParameter]:
        """The job's parameters by name, in cell order (papermill's inspection: type, default, help)."""
        return {p.name: p for p in Job.of(self.get(name, version)).parameters}

    def _declared(self, version: Version) -> dict[str, notebooks.Parameter]:
        return {p["name"]: notebooks.Parameter(**p) for p in version.metadata.get("parameters", [])}

    def list(self) -> JobList:
        """The newest version of every job."""
        return JobList([Job.of(v) for v in self.store.list("job")])

    def versions(self, name: str) -> builtins.list[Job]:
        """Every version of job ``name``, oldest first; raises :class:`NotFoundError` when there is none."""
        versions = self.store.versions("job", validate_name(name))
        if not versions:
            raise NotFoundError(f"no job named {name!r}: `nbdeploy jobs list` shows the jobs")
        return [Job.of(v) for v in versions]

    def info(self, name: str) -> JobInfo:
        """Job ``name``: its newest version, every version, and the schedules that run it."""
        versions = self.versions(name)
        with self.store.catalog.session() as s:
            schedules = builtins.list(s.scalars(sa.select(ScheduleRow.id).where(ScheduleRow.job == name)))
        return JobInfo(name, versions[-1], versions, schedules)

    def delete(self, name: str) -> int:
        """Delete every version of job ``name`` (its run history stays); return how many versions.

        Raises :class:`ConflictError` while schedules still use it.
        """
        validate_name(name)
        with self.store.catalog.session() as s:
            schedules = builtins.list(s.scalars(sa.select(ScheduleRow.id).where(ScheduleRow.job == name)))
        if schedules:
            raise ConflictError(
                f"job {name!r} is used by schedule(s) {schedules}: delete them first (`nbdeploy schedules rm ID`)"
            )
        return self.store.delete("job", name)

    # --- runs ----------------------------------------------------------------------------------------------
    def check_parameters(
        self,
        name: str,
        parameters: dict[str, Any] | None,
        version: Version | None = None,
        *,
        strict: bool = False,
        from_text: bool = False,
    ) -> notebooks.CheckedParameters:
        """Check and convert ``parameters`` for job ``name`` as papermill would inject them: parameters declared
        with a type are checked, those whose type is only inferred from a literal default take any value with a
        warning unless ``strict``; ``from_text``: strings came from a command line (``-p n=4``).

        Returns the values and the warnings; raises :class:`InvalidInputError` naming ``parameters.NAME``.
        """
        version = version or self.get(name)
        return notebooks.check_parameters(parameters, self._declared(version), name, strict=strict, from_text=from_text)

    def run(
        self,
        name: str,
        parameters: dict[str, Any] | None = None,
        kernel: str | None = None,
        timeout: float | None = None,
        retries: int = 0,
        version: int | str | None = None,
        notify: Any = None,
        dispatch: bool = True,
        resources: dict[str, float] | None = None,
        strict: bool = False,
        from_text: bool = False,
        warm: bool = True,
    ) -> Run:
        """Queue a run of job ``name`` and return its :class:`~nbdeploy.jobs.runs.Run` (``run.wait()`` waits for it).

        ``kernel`` defaults to the notebook's own kernelspec; when a cluster is connected, a kernelspec no worker
        has is refused at once (:class:`~nbdeploy.kernels.specs.UnknownKernelError`, 422, listing those they have),
        else the run fails on its worker with that error. ``warm=False`` runs it in a kernel started for it
        instead of one from the workers' warm pool; ``timeout`` is in seconds for the whole run;
        ``retries`` extra attempts follow a failure, time-out or loss, with exponential back-off;
        ``parameters`` are checked as :meth:`check_parameters` does (``strict``, ``from_text``); the run's
        ``warnings`` say which values were accepted against their default's type. ``resources`` are the Dask
        resources the run needs (``{"GPU": 1}``: it runs on a GPU worker, and fails
        with a clear error when no worker offers it). With ``dispatch`` (the default) a dispatcher is started in
        this process when none is alive. Raises :class:`NotFoundError` for an unknown job and
        :class:`InvalidInputError` for bad options or parameters.
        """
        from ..runtime.resources import normalize_resources
        from .records import RunInfo
        from .runs import Run

        job = self.get(validate_name(name), version)
        checked = notebooks.check_parameters(parameters, self._declared(job), name, strict=strict, from_text=from_text)
        params = checked.values
        timeout, retries, kernel = validate_run_options(timeout, retries, kernel)
        if not isinstance(warm, bool):
            raise InvalidInputError(f"warm must be true or false, got {warm!r}", "warm")
        notify = normalize_notify(notify)
        resources = normalize_resources(resources)
        if kernel is not None:
            self.app.kernels.check(kernel)
        now = utcnow()
        with self.store.catalog.session() as s:
            row = RunRow.queued(
                now,
                job=name,
                job_version=job.version,
                notebook_sha256=job.sha256,
                trigger="manual",
                parameters=params,
                kernel=kernel,
                timeout=timeout,
                retries=retries,
                notify=notify,
                resources=resources,
                owner=_owner(),
                warm=warm,
            )
            s.add(row)
            s.flush()
            info = RunInfo.from_row(row, warnings=[str(w) for w in checked.warnings])
        if dispatch:
            from .dispatcher import ensure_dispatcher

            ensure_dispatcher(self.store, [info.id])
        return Run(self.app.runs, info)

    # --- "schedule this notebook" (the lab's dialog, the %schedule magic) ---------------------------------------
    def inspect_notebook(self, notebook: Any, path: str | None = None) -> NotebookInfo:
        """What ``notebook`` (a path, JSON, a dict) would be as a job: the name its ``path`` gives, its kernelspec,
        its parameters and the form fields to fill them in. Raises :class:`InvalidInputError` for a bad notebook."""
        from ..forms import parameter_fields

        nb, _ = notebooks.load_notebook(notebook)
        parameters = [JobParameter.of(p.to_json()) for p in notebooks.inspect_parameters(nb).values()]
        if path is None and isinstance(notebook, str | Path) and not str(notebook).lstrip().startswith("{"):
            path = str(notebook)
        return NotebookInfo(
            name=name_from_path(path) if path else "job",
            kernel=notebooks.kernel_name(nb),
            language=notebooks.language(nb),
            cells=len(nb["cells"]),
            has_parameters_cell=notebooks.parameters_cell(nb) is not None,
            parameters=parameters,
            form=parameter_fields(parameters),
            html_path=self.app.runs.html_output_path(path, "{id}") if path else None,
        )

    def schedule_notebook(
        self,
        notebook: Any,
        *,
        path: str | None = None,
        name: str | None = None,
        when: str = "now",
        parameters: dict[str, Any] | None = None,
        inputs: dict[str, str | bool] | None = None,
        cron: str | None = None,
        timezone: str = "UTC",
        catchup: str = "latest",
        timeout: float | None = None,
        retries: int = 0,
        notify: Any = None,
        kernel: str | None = None,
        from_text: bool = False,
    ) -> NotebookScheduled:
        """Store ``notebook`` as the next version of job ``name`` (default: from ``path``) and run it now
        (``when="now"``) or on ``cron`` in ``timezone`` (``when="schedule"``).

        ``inputs`` are what a person typed into the notebook's form (see :mod:`nbdeploy.forms`), ``parameters``
        values as they are. Everything is checked before anything is stored: raises :class:`SignatureError`
        (422, an error per parameter) for inputs that do not fit, :class:`InvalidInputError` for a bad notebook,
        name, cron, time zone or option.
        """
        from ..forms import coerce
        from .cron import CronSpec

        info = self.inspect_notebook(notebook, path)
        name = validate_name(name or info.name)
        values = dict(parameters or {})
        if inputs:
            typed = coerce(info.form, inputs)
            if typed.errors:
                detail = "; ".join(f"{k}: {v}" for k, v in typed.errors.items())
                raise SignatureError(f"some parameters do not fit: {detail}", typed.errors)
            values.update(typed.values)
        declared = {p.name: notebooks.Parameter(**p.to_json()) for p in info.parameters}
        values = notebooks.check_parameters(values, declared, name, from_text=from_text).values
        validate_run_options(timeout, retries, kernel)
        if kernel is not None:
            self.app.kernels.check(kernel)
        normalize_notify(notify)
        if when == "schedule":
            if not cron:
                raise InvalidInputError("a schedule needs a cron expression, e.g. '0 6 * * *'", "cron")
            CronSpec(cron, timezone)
        elif when != "now":
            raise InvalidInputError(f"when must be 'now' or 'schedule', got {when!r}", "when")
        meta = {"source": Path(path).name} if path else None
        job = self.put(notebook, name, metadata=meta)
        if when == "now":
            run = self.run(name, values, kernel=kernel, timeout=timeout, retries=retries, notify=notify)  # typed
            return NotebookScheduled(job, run.snapshot, None)
        assert cron is not None  # checked above
        schedule = self.app.schedules.add(
            name, cron, timezone, values, catchup, timeout=timeout, retries=retries, notify=notify, kernel=kernel
        )  # values are checked and typed already: no from_text here
        return NotebookScheduled(job, None, schedule)
