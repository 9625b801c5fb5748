"""The typed results and requests of the jobs service (jobs, schedules, runs): what the managers return, what the
REST API sends and parses, one schema for both (see :mod:`nbdeploy.schema`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from ..forms import FormField
from ..schema import Id, KernelName, ListRecord, Name, Record, Rule, Seconds
from ..store import Version
from .schedules import Schedule
from .tables import TERMINAL_STATES, RunRow

__all__ = [
    "Job",
    "JobCreate",
    "JobInfo",
    "JobList",
    "JobParameter",
    "Metric",
    "RunArtifact",
    "RunAttempt",
    "RunError",
    "RunInfo",
    "RunList",
    "RunProgress",
    "RunRequest",
    "RunStatus",
]

RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "timed_out"]
Retries = Annotated[int, Rule(minimum=0, maximum=20, description="extra attempts after a failure, time-out or loss")]
Notify = Annotated[
    str | dict[str, Any],
    Rule(description="a webhook URL, or {url, on: [failure, success]}: a JSON POST when a run ends so"),
]
VersionRef = Annotated[int | str, Rule(description="a version number or an alias")]
Resources = Annotated[
    dict[str, Annotated[float, Rule(minimum=0, exclusive_minimum=True)]],
    Rule(description='Dask resources the run needs, e.g. {"GPU": 1}: it runs on a worker that offers them'),
]
Cron = Annotated[str, Rule(max_length=128, description="5-field cron expression", example="0 6 * * *")]
TimeZone = Annotated[str, Rule(max_length=64, description="an IANA time zone", example="Europe/Berlin")]
Catchup = Literal["none", "latest", "all"]
Concurrency = Annotated[int, Rule(minimum=1, maximum=1000)]


# --- jobs ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobParameter(Record):
    """A parameter of a job's ``parameters`` cell (papermill's inspection): its name, type (``"None"`` when
    unknown), the Python source of its default, its trailing comment, and whether its type was declared (an
    annotation or a ``# type:`` comment: values are checked) or inferred from a literal default."""

    name: str
    inferred_type_name: str
    default: str
    help: str
    type_source: Literal["declared", "inferred", "unknown"] = "unknown"

    @classmethod
    def of(cls, data: dict[str, Any]) -> JobParameter:
        from .notebooks import Parameter

        # stored before type_source existed: Parameter works it out from the type name
        parameter = Parameter(
            str(data["name"]),
            str(data.get("inferred_type_name") or "None"),
            str(data.get("default") or "None"),
            str(data.get("help") or ""),
            str(data.get("type_source") or ""),
        )
        return cls(**parameter.to_json())  # type: ignore[arg-type]


@dataclass(frozen=True)
class Job(Record):
    """One stored version of a job: the notebook's hash and size, its kernelspec, language, cell count, its
    parameters and the form to fill them in."""

    name: str
    version: int
    created_at: datetime
    sha256: str
    size: int
    owner: str | None
    kernel: str | None
    language: str
    cells: int
    source: str | None
    parameters: list[JobParameter]
    form: list[FormField]
    aliases: tuple[str, ...] = ()

    @classmethod
    def of(cls, v: Version) -> Job:
        from ..forms import parameter_fields

        meta = v.metadata
        parameters = [JobParameter.of(p) for p in meta.get("parameters", [])]
        return cls(
            name=v.name,
            version=v.version,
            created_at=v.created_at,
            sha256=v.sha256,
            size=v.size,
            owner=v.owner,
            kernel=meta.get("kernel"),
            language=str(meta.get("language") or "python"),
            cells=int(meta.get("cells") or 0),
            source=meta.get("source"),
            parameters=parameters,
            form=parameter_fields(parameters),
            aliases=v.aliases,
        )


@dataclass(frozen=True)
class JobList(ListRecord):
    """Every job's newest version (``GET /jobs``)."""

    jobs: list[Job]


@dataclass(frozen=True)
class JobInfo(Record):
    """A job: its newest version, every version, and the ids of the schedules that run it."""

    name: str
    latest: Job
    versions: list[Job]
    schedules: list[int]


@dataclass(frozen=True)
class JobCreate(Record):
    """``POST /jobs``: store ``notebook`` (the notebook's JSON) as the next version of job ``name``."""

    request = True
    name: Name
    notebook: dict[str, Any]


# --- runs ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunRequest(Record):
    """``POST /jobs/{name}/runs``: run a job now."""

    request = True
    parameters: dict[str, Any] = field(default_factory=dict)
    kernel: KernelName | None = None
    timeout: Seconds | None = None
    retries: Retries = 0
    version: VersionRef | None = None
    notify: Notify | None = None
    resources: Resources | None = None


@dataclass(frozen=True)
class RunProgress(Record):
    """Where a running run is: the 0-based index of the executing cell, of how many."""

    current_cell: int | None
    cell_count: int | None


@dataclass(frozen=True)
class RunError(Record):
    """Why a run failed, timed out or was cancelled: the exception, its message, the cell and traceback."""

    type: str
    message: str | None
    cell: int | None
    traceback: str | None


@dataclass(frozen=True)
class RunAttempt(Record):
    """One attempt of a run, as its history keeps it."""

    attempt: int
    status: str
    started_at: str | None = None
    finished_at: str | None = None
    worker: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_cell: int | None = None
    output_sha256: str | None = None

    @classmethod
    def of(cls, data: dict[str, Any]) -> RunAttempt:
        known: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass(frozen=True)
class Metric(Record):
    """A value a run logged with ``nbd.log_metric`` (``step`` orders repeated values)."""

    key: str
    value: float
    step: int | None
    logged_at: datetime


@dataclass(frozen=True)
class RunArtifact(Record):
    """A file or bytes a run attached with ``nbd.log_artifact`` (the blob is in the store by hash)."""

    name: str
    sha256: str
    size: int
    logged_at: datetime


@dataclass(frozen=True)
class RunInfo(Record):
    """A snapshot of one run: its state, progress, error, timing and attempts (and, from ``GET /runs/{id}``,
    its metrics and artifacts; when it was just created, the ``warnings`` about its parameters)."""

    id: int
    job: str
    job_version: int | None
    schedule_id: int | None
    fire_time: datetime | None
    trigger: str
    parameters: dict[str, Any]
    kernel: str | None
    timeout: float | None
    retries: int
    resources: dict[str, float] | None
    attempt: int
    status: RunStatus
    queued_at: datetime
    not_before: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None
    worker: str | None
    progress: RunProgress
    cancel_requested: bool
    error: RunError | None
    has_output: bool
    has_log: bool
    history: list[RunAttempt]
    metrics: list[Metric] | None = None
    artifacts: list[RunArtifact] | None = None
    warnings: list[str] = field(default_factory=list)
    output_sha256: str | None = None
    log_sha256: str | None = None

    json_exclude = ("output_sha256", "log_sha256")

    @classmethod
    def from_row(cls, row: RunRow, warnings: list[str] | None = None) -> RunInfo:
        duration = None
        if row.started_at and row.finished_at:
            duration = (row.finished_at - row.started_at).total_seconds()
        error = None
        if row.error_type is not None:
            error = RunError(row.error_type, row.error_message, row.error_cell, row.error_traceback)
        return cls(
            id=row.id,
            job=row.job,
            job_version=row.job_version,
            schedule_id=row.schedule_id,
            fire_time=row.fire_time,
            trigger=row.trigger,
            parameters=dict(row.parameters or {}),
            kernel=row.kernel,
            timeout=row.timeout,
            retries=row.retries,
            resources=row.resources,
            attempt=row.attempt,
            status=row.status,  # type: ignore[arg-type]
            queued_at=row.queued_at,
            not_before=row.not_before,
            started_at=row.started_at,
            finished_at=row.finished_at,
            duration=duration,
            worker=row.worker,
            progress=RunProgress(row.current_cell, row.cell_count),
            cancel_requested=bool(row.cancel_requested),
            error=error,
            has_output=row.output_sha256 is not None,
            has_log=row.log_sha256 is not None,
            history=[RunAttempt.of(h) for h in row.history or []],
            warnings=list(warnings or ()),
            output_sha256=row.output_sha256,
            log_sha256=row.log_sha256,
        )

    def with_details(self, metrics: list[Metric], artifacts: list[RunArtifact]) -> RunInfo:
        """This snapshot with its metrics and artifacts."""
        from dataclasses import replace

        return replace(self, metrics=metrics, artifacts=artifacts)

    @property
    def done(self) -> bool:
        """Whether the run reached a terminal state (succeeded, failed, cancelled, timed_out)."""
        return self.status in TERMINAL_STATES

    @property
    def current_cell(self) -> int | None:
        return self.progress.current_cell

    @property
    def cell_count(self) -> int | None:
        return self.progress.cell_count

    @property
    def error_type(self) -> str | None:
        return self.error.type if self.error else None

    @property
    def error_message(self) -> str | None:
        return self.error.message if self.error else None

    @property
    def error_cell(self) -> int | None:
        return self.error.cell if self.error else None

    @property
    def error_traceback(self) -> str | None:
        return self.error.traceback if self.error else None


@dataclass(frozen=True)
class RunList(ListRecord):
    """Runs, newest first (``GET /runs``, ``GET /jobs/{name}/runs``)."""

    runs: list[RunInfo]


@dataclass(frozen=True)
class RunsQuery(Record):
    """The filters of ``GET /runs``."""

    request = True
    job: Name | None = None
    status: RunStatus | None = None
    schedule: Id | None = None
    limit: Annotated[int, Rule(minimum=1, maximum=1000)] = 100
    before: Id | None = None


@dataclass(frozen=True)
class LimitQuery(Record):
    """How many items to list."""

    request = True
    limit: Annotated[int, Rule(minimum=1, maximum=1000)] = 100


@dataclass(frozen=True)
class OutputQuery(Record):
    """The format of a run's executed notebook: ``ipynb`` (the notebook's JSON) or ``html`` (a page)."""

    request = True
    format: Literal["ipynb", "html"] = "ipynb"


# --- schedules -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleCreate(Record):
    """``POST /schedules``: run ``job`` on ``cron`` in ``timezone`` (``catchup``: what happens to ticks missed
    while no scheduler ran)."""

    request = True
    job: Name
    cron: Cron
    timezone: TimeZone = "UTC"
    parameters: dict[str, Any] = field(default_factory=dict)
    catchup: Catchup = "latest"
    max_concurrency: Concurrency = 1
    timeout: Seconds | None = None
    retries: Retries = 0
    notify: Notify | None = None
    kernel: KernelName | None = None
    resources: Resources | None = None


@dataclass(frozen=True)
class SchedulePatch(Record):
    """``PATCH /schedules/{id}``: the fields to change (e.g. ``{"paused": true}``)."""

    request = True
    cron: Cron | None = None
    timezone: TimeZone | None = None
    parameters: dict[str, Any] | None = None
    catchup: Catchup | None = None
    max_concurrency: Concurrency | None = None
    timeout: Seconds | None = None
    retries: Retries | None = None
    notify: Notify | None = None
    kernel: KernelName | None = None
    resources: Resources | None = None
    paused: bool | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the request gave (``null`` included, where it clears a field)."""
        return {k: getattr(self, k) for k in self.given()}


@dataclass(frozen=True)
class SchedulesQuery(Record):
    """The filter of ``GET /schedules``."""

    request = True
    job: Name | None = None


# --- "Schedule this notebook" ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NotebookInspect(Record):
    """``POST /notebooks/inspect``: a notebook's JSON, and its file path (the job's name comes from it)."""

    request = True
    notebook: dict[str, Any]
    path: Annotated[str, Rule(max_length=4096)] | None = None


@dataclass(frozen=True)
class NotebookInfo(Record):
    """What a notebook would be as a job: the name its path gives, its kernelspec and language, whether it has
    a ``parameters`` cell, its parameters and the form fields to fill them in, and where a run's output is saved
    as HTML beside it (``html_path``, ``{id}`` standing for the run's id)."""

    name: str
    kernel: str | None
    language: str
    cells: int
    has_parameters_cell: bool
    parameters: list[JobParameter]
    form: list[FormField]
    html_path: str | None = None


@dataclass(frozen=True)
class NotebookSchedule(Record):
    """``POST /notebooks/schedule``: store the notebook as the next version of job ``name`` (default: from
    ``path``) and run it now (``when: "now"``) or on ``cron`` (``when: "schedule"``). ``inputs`` are what was
    typed into its form (coerced here, 422 naming each bad field); ``parameters`` are values as they are."""

    request = True
    notebook: dict[str, Any]
    path: Annotated[str, Rule(max_length=4096)] | None = None
    name: Name | None = None
    when: Literal["now", "schedule"] = "now"
    inputs: dict[str, str | bool] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    cron: Cron | None = None
    timezone: TimeZone = "UTC"
    catchup: Catchup = "latest"
    timeout: Seconds | None = None
    retries: Retries = 0
    notify: Notify | None = None
    kernel: KernelName | None = None


@dataclass(frozen=True)
class NotebookScheduled(Record):
    """What ``POST /notebooks/schedule`` did: the job version it stored, and the run or the schedule."""

    job: Job
    run: RunInfo | None
    schedule: Schedule | None


@dataclass(frozen=True)
class HtmlSave(Record):
    """``POST /runs/{id}/html``: save the run's output as HTML beside the notebook at ``notebook_path``."""

    request = True
    notebook_path: Annotated[str, Rule(max_length=4096, pattern=r"\.ipynb$")]


@dataclass(frozen=True)
class HtmlSaved(Record):
    """Where the run's HTML was saved (``<notebook stem>-run-<id>.html`` beside the notebook)."""

    path: str
