"""Run history: reading runs, their outputs, logs, metrics and artifacts, and asking for a cancel.

A run's state is written only by the dispatcher that holds its lease (:mod:`nbdeploy.jobs.dispatcher`); this
module reads it, creates queued runs and sets ``cancel_requested`` (a request the dispatcher acts on).
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, overload

import sqlalchemy as sa

from ..exceptions import InvalidInputError, NotFoundError, RunFailedError
from ..names import validate_name
from .records import Metric, RunArtifact, RunInfo
from .tables import RUN_STATES, TERMINAL_STATES, RunArtifactRow, RunMetricRow, RunRow

if TYPE_CHECKING:
    from ..app import Nbdeploy

__all__ = ["Run", "RunFailedError", "RunInfo", "RunManager"]


class Run:
    """A handle on one run: ``status``, ``wait()``, ``output()``, ``log()``, ``metrics``, ``cancel()``.

    Attribute reads (``job``, ``attempt``, ``error_message``, …) come from the last snapshot; ``status``,
    ``info`` and ``wait()`` read the catalog again.
    """

    def __init__(self, manager: RunManager, info: RunInfo) -> None:
        self._manager = manager
        self._info = info

    @property
    def id(self) -> int:
        return self._info.id

    @property
    def info(self) -> RunInfo:
        """A fresh snapshot of the run's row."""
        return self.refresh()._info

    @property
    def snapshot(self) -> RunInfo:
        """The last snapshot read (no catalog query)."""
        return self._info

    @property
    def status(self) -> str:
        """The run's current state: queued, running, succeeded, failed, cancelled or timed_out."""
        return self.refresh()._info.status

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._info, name)

    def refresh(self) -> Run:
        """Read the run's row again; return ``self``."""
        self._info = self._manager.info(self.id)
        return self

    def wait(self, timeout: float | None = None, poll: float = 0.1) -> Run:
        """Block until the run is done (or ``timeout`` seconds pass); return ``self``.

        Raises :class:`~nbdeploy.exceptions.ClusterTimeoutError` when ``timeout`` passes first. A failed run
        does not raise here: check ``run.status`` or call :meth:`raise_for_status`.
        """
        from ..exceptions import ClusterTimeoutError
        from .dispatcher import local_dispatcher

        deadline = None if timeout is None else time.monotonic() + timeout
        delay = min(0.02, poll)
        while not self.refresh()._info.done:
            if deadline is not None and time.monotonic() >= deadline:
                raise ClusterTimeoutError(
                    f"run {self.id} is still {self._info.status} after {timeout}s; wait longer or cancel it"
                )
            local = local_dispatcher(self._manager.store)
            if local is not None:  # dispatched here: woken as soon as it records something
                local.changed_event(self.id).wait(poll * 5)
            else:
                time.sleep(delay)
                delay = min(poll, delay * 2)
        return self

    def raise_for_status(self) -> Run:
        """Return ``self`` when the run succeeded; raise :class:`RunFailedError` when it ended otherwise."""
        info = self.info
        if info.done and info.status != "succeeded":
            raise RunFailedError(info)
        return self

    def output(self, format: str = "ipynb") -> Any:
        """The executed notebook: a dict (``ipynb``) or an HTML page as a string (``html``).

        Raises :class:`NotFoundError` when the run has no output notebook yet.
        """
        return self._manager.output(self.id, format)

    @overload
    def log(self, follow: Literal[False] = False) -> str: ...
    @overload
    def log(self, follow: Literal[True]) -> Iterator[str]: ...
    def log(self, follow: bool = False) -> str | Iterator[str]:
        """The run's captured stdout/stderr (and nbdeploy's own lines); raises NotFoundError before it ends.

        ``follow=True`` returns an iterator of the log's pieces as the run writes them (whole lines), ending when the
        run ends; joined, they are the text the finished run keeps."""
        if follow:
            return self._manager.follow_log(self.id)
        return self._manager.log(self.id)

    @property
    def metrics(self) -> dict[str, float]:
        """The last value of each metric the run logged with ``nbd.log_metric``."""
        return {m.key: m.value for m in self._manager.metrics(self.id)}

    def metric_history(self) -> builtins.list[Metric]:
        """Every metric value logged, in order."""
        return self._manager.metrics(self.id)

    @property
    def artifacts(self) -> builtins.list[RunArtifact]:
        """The artifacts attached with ``nbd.log_artifact``."""
        return self._manager.artifacts(self.id)

    def artifact(self, name: str) -> bytes:
        """The bytes of the artifact ``name``; raises NotFoundError."""
        return self._manager.read_artifact(self.id, name)

    def cancel(self) -> Run:
        """Ask for the run to be cancelled (its kernel is stopped within seconds); return ``self``."""
        self._manager.cancel(self.id)
        return self.refresh()

    def to_json(self) -> dict[str, Any]:
        return self._info.to_json()

    def __repr__(self) -> str:
        info = self._info
        progress = ""
        if info.status == "running" and info.current_cell is not None:
            progress = f", cell {info.current_cell + 1}/{info.cell_count}"
        return f"<Run {info.id} job={info.job!r} status={info.status!r} attempt={info.attempt}{progress}>"

    def _repr_html_(self) -> str:
        from .render import run_html

        return run_html(self._info)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any] | None:
        """In a notebook with widgets: the live run view (:mod:`nbdeploy.widgets.run_view`); elsewhere nothing
        (the HTML table and ``repr`` above apply)."""
        from ..widgets import widgets_enabled

        if not widgets_enabled():
            return None
        from ..widgets.run_view import run_view

        bundle: dict[str, Any] = run_view(self)._repr_mimebundle_()
        return bundle


class RunManager:
    """The run history of ``app`` (``app.runs``): reads runs from the catalog, asks for cancels."""

    def __init__(self, app: Nbdeploy) -> None:
        self.app = app
        self.store = app.store

    @staticmethod
    def current_run() -> dict[str, Any] | None:
        """``{"id", "attempt"}`` of the job run this process executes, or ``None`` outside a job."""
        from .tracking import current_run

        return current_run()

    @staticmethod
    def log_metric(key: str, value: float, step: int | None = None) -> None:
        """Inside a job run: record metric ``key`` (see :func:`nbdeploy.jobs.tracking.log_metric`)."""
        from .tracking import log_metric

        log_metric(key, value, step)

    @staticmethod
    def log_artifact(path_or_bytes: Any, name: str | None = None) -> dict[str, Any] | None:
        """Inside a job run: attach a file or bytes (see :func:`nbdeploy.jobs.tracking.log_artifact`)."""
        from .tracking import log_artifact

        return log_artifact(path_or_bytes, name)

    @property
    def catalog(self) -> Any:
        return self.store.catalog

    # --- tracked runs (MLflow clients), kept apart from job runs ---------------------------------------------
    def tracked(self, experiment: str | None = None, limit: int = 100) -> builtins.list[Any]:
        """Runs logged by MLflow clients (``app.tracking``), newest first: records of their own, not job runs."""
        return self.app.tracking.runs(experiment, limit).runs

    def list_all(self, limit: int = 100) -> dict[str, builtins.list[Any]]:
        """Job runs and tracked runs side by side: ``{"jobs": [Run, …], "tracked": [TrackedRun, …]}``."""
        return {"jobs": self.list(limit=limit), "tracked": self.tracked(limit=limit)}

    def compare(self, run_ids: builtins.list[str]) -> Any:
        """Tracked runs side by side (params, metrics, histories); see :meth:`TrackingManager.compare`."""
        return self.app.tracking.compare(run_ids)

    def plot(self, run_ids: builtins.list[str], keys: builtins.list[str] | None = None) -> Any:
        """A matplotlib figure of tracked runs' metrics by step, the runs overlaid."""
        return self.app.tracking.plot(run_ids, keys)

    # --- reading --------------------------------------------------------------------------------------------
    def _row(self, session: Any, run_id: int) -> RunRow:
        try:
            run_id = int(run_id)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"run id must be a number, got {run_id!r}", "run_id") from exc
        row = session.get(RunRow, run_id)
        if row is None:
            raise NotFoundError(f"no run {run_id}: `nbdeploy runs list` shows the runs")
        return row

    def info(self, run_id: int) -> RunInfo:
        """The snapshot of run ``run_id``; raises :class:`NotFoundError`."""
        with self.catalog.session() as s:
            return RunInfo.from_row(self._row(s, run_id))

    def get(self, run_id: int) -> Run:
        """A :class:`Run` handle on run ``run_id``; raises :class:`NotFoundError`."""
        return Run(self, self.info(run_id))

    def detail(self, run_id: int) -> RunInfo:
        """The snapshot of run ``run_id`` with its metrics and artifacts; raises :class:`NotFoundError`."""
        return self.info(run_id).with_details(self.metrics(run_id), self.artifacts(run_id))

    def list(
        self,
        job: str | None = None,
        status: str | None = None,
        schedule_id: int | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> builtins.list[Run]:
        """Runs, newest first, filtered by job name, status and schedule (``limit`` at most 1000)."""
        query = sa.select(RunRow).order_by(RunRow.id.desc()).limit(max(1, min(int(limit), 1000)))
        if job is not None:
            query = query.where(RunRow.job == validate_name(job, "job"))
        if status is not None:
            if status not in RUN_STATES:
                raise InvalidInputError(f"unknown status {status!r}: use one of {', '.join(RUN_STATES)}", "status")
            query = query.where(RunRow.status == status)
        if schedule_id is not None:
            query = query.where(RunRow.schedule_id == int(schedule_id))
        if before_id is not None:
            query = query.where(RunRow.id < int(before_id))
        with self.catalog.session() as s:
            return [Run(self, RunInfo.from_row(r)) for r in s.scalars(query)]

    def output(self, run_id: int, format: str = "ipynb") -> Any:
        """The executed notebook of a run: a dict for ``ipynb``, an HTML string for ``html``."""
        if format not in ("ipynb", "html"):
            raise InvalidInputError(f"unknown output format {format!r}: use 'ipynb' or 'html'", "format")
        data = self.output_bytes(run_id)
        nb = json.loads(data)
        if format == "ipynb":
            return nb
        from .render import notebook_html

        return notebook_html(data)

    def output_bytes(self, run_id: int) -> bytes:
        """The executed notebook's bytes (``.ipynb`` JSON); raises :class:`NotFoundError` when there is none."""
        info = self.info(run_id)
        if info.output_sha256 is None:
            raise NotFoundError(
                f"run {run_id} has no output notebook yet (it is {info.status}); wait for it with run.wait()"
            )
        return self.store.artifacts.read_blob(info.output_sha256)

    def log(self, run_id: int) -> str:
        """The captured log of a run; raises :class:`NotFoundError` until the run's first attempt ended."""
        info = self.info(run_id)
        if info.log_sha256 is None:
            raise NotFoundError(f"run {run_id} has no log yet (it is {info.status}); wait for it with run.wait()")
        return self.store.artifacts.read_blob(info.log_sha256).decode("utf-8", "replace")

    def follow_log(self, run_id: int, timeout: float | None = None) -> Iterator[str]:
        """The run's log as it grows, ending when the run ends (see :func:`.live_log.follow_log`)."""
        from .live_log import follow_log

        self.info(run_id)  # NotFoundError at once, not on the first next()
        return follow_log(self, run_id, timeout=timeout)

    def metrics(self, run_id: int) -> builtins.list[Metric]:
        """Every metric the run's current attempt logged, in order."""
        with self.catalog.session() as s:
            row = self._row(s, run_id)
            rows = s.scalars(
                sa.select(RunMetricRow)
                .where(RunMetricRow.run_id == row.id, RunMetricRow.attempt == row.attempt)
                .order_by(RunMetricRow.seq, RunMetricRow.id)
            )
            return [Metric(m.key, m.value, m.step, m.logged_at) for m in rows]

    def artifacts(self, run_id: int) -> builtins.list[RunArtifact]:
        """The artifacts the run's current attempt attached, in order (a later one of a name wins)."""
        with self.catalog.session() as s:
            row = self._row(s, run_id)
            rows = s.scalars(
                sa.select(RunArtifactRow)
                .where(RunArtifactRow.run_id == row.id, RunArtifactRow.attempt == row.attempt)
                .order_by(RunArtifactRow.seq, RunArtifactRow.id)
            )
            latest: dict[str, RunArtifact] = {}
            for a in rows:
                latest[a.name] = RunArtifact(a.name, a.sha256, a.size, a.logged_at)
            return builtins.list(latest.values())

    @staticmethod
    def html_output_path(notebook_path: str, run_id: int | str) -> str:
        """Where the HTML of run ``run_id`` of a notebook goes: beside it, ``<stem>-run-<id>.html``
        (``reports/Sales Q1.ipynb``, 12 → ``reports/Sales Q1-run-12.html``)."""
        folder, _, base = str(notebook_path).replace("\\", "/").rpartition("/")
        stem = base[:-6] if base.lower().endswith(".ipynb") else base
        ident = run_id if run_id == "{id}" else int(run_id)
        return f"{folder + '/' if folder else ''}{stem or 'notebook'}-run-{ident}.html"

    def save_html(self, run_id: int, notebook_path: str) -> str:
        """Write the run's output as HTML beside the notebook at the local ``notebook_path``; return the file's
        path. Raises :class:`NotFoundError` while the run has no output."""
        page = self.output(run_id, "html")
        target = self.html_output_path(notebook_path, run_id)
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(page)
        return target

    def read_artifact(self, run_id: int, name: str) -> bytes:
        """The bytes of artifact ``name`` of a run; raises :class:`NotFoundError`."""
        for artifact in self.artifacts(run_id):
            if artifact.name == name:
                return self.store.artifacts.read_blob(artifact.sha256)
        raise NotFoundError(f"run {run_id} has no artifact {name!r}")

    # --- writing (creation and requests only) ----------------------------------------------------------------
    def cancel(self, run_id: int) -> RunInfo:
        """Ask the dispatcher to cancel a queued or running run; return its snapshot.

        A run that already ended is left as it is (cancelling it is a no-op). When no dispatcher is alive, one
        is started in this process so that the request is carried out.
        """
        with self.catalog.session() as s:
            row = self._row(s, run_id)
            if row.status in TERMINAL_STATES:
                return RunInfo.from_row(row)
            s.execute(
                sa.update(RunRow)
                .where(RunRow.id == row.id, RunRow.status.in_(("queued", "running")))
                .values(cancel_requested=True)
            )
        from .dispatcher import ensure_dispatcher

        ensure_dispatcher(self.store, [int(run_id)])
        return self.info(run_id)
