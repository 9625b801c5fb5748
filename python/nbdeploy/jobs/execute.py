"""Executing one attempt of a run on a Dask worker: :func:`run_notebook`, the Dask task.

It reads as papermill's ``execute_notebook`` does: guard the attempt → prepare its folder and environment →
load the notebook by hash → execute it with papermill through nbdeploy's engine (:mod:`.engine`: per-cell
progress, a stop between cells) while a watchdog (:mod:`.watchdog`) forwards metrics, enforces the timeout and
answers cancels → turn what happened into an outcome → upload the output notebook and the log to the store. Failed,
timed-out and cancelled attempts keep their partial output too.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from . import tracking
from .engine import Hooks, RunLostError, engine_class
from .watchdog import Watchdog, mark_stopped

__all__ = ["EVENT_TOPIC", "RunLostError", "run_notebook"]

EVENT_TOPIC = "nbdeploy-runs"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STOPPED = {"timeout": "timed_out", "cancel": "cancelled", "orphaned": "cancelled"}


@dataclass
class _Attempt:
    """One attempt's place on the worker: its Dask context, folder and files."""

    spec: dict[str, Any]
    worker: Any
    key: Any
    client: Any
    base: Path

    @property
    def run_id(self) -> int:
        return int(self.spec["run_id"])

    @property
    def number(self) -> int:
        return int(self.spec["attempt"])

    @property
    def address(self) -> str:
        return str(getattr(self.worker, "address", "local"))

    def path(self, name: str) -> Path:
        return self.base / name

    def emit(self, msg: dict[str, Any]) -> None:
        """Report to the dispatcher through Dask's events (nothing outside a worker)."""
        if self.worker is not None:
            self.worker.log_event(EVENT_TOPIC, {**msg, "run": self.run_id, "attempt": self.number})


def run_notebook(spec: dict[str, Any]) -> dict[str, Any]:
    """Execute one attempt of a run (the Dask task) and return its outcome.

    ``spec`` holds ``run_id``, ``attempt``, ``job``, ``store_url``, ``notebook_sha256``, ``parameters``,
    ``kernel``, ``warm``, ``kernel_pool`` (the pool's settings), ``timeout``, ``guard_event``, ``cancel_event``.
    The outcome holds ``status`` (succeeded, failed, timed_out or cancelled), ``error_*``, ``output_sha256``,
    ``log_sha256``, ``cell_count``, ``metrics``, ``artifacts``, ``duration`` and ``timings``. Raises :class:`RunLostError` when this attempt already
    started on a worker that died.
    """
    task_started_at = time.time()
    attempt = _guard(spec)
    hooks = Hooks(
        attempt.emit,
        _environment(attempt),
        str(attempt.path("work")),
        pool=spec.get("kernel_pool"),
        warm=spec.get("warm") is not False,
    )
    attempt.emit({"kind": "started", "worker": attempt.address, "time": time.time()})
    watchdog = Watchdog(hooks, spec, attempt.path("events.jsonl"), attempt.worker, attempt.key, attempt.client)
    hooks.deadline = watchdog.deadline
    started = time.monotonic()
    with open(attempt.path("run.log"), "w", encoding="utf-8", errors="replace") as log:
        _log_header(log, attempt)
        watchdog.start()
        try:
            _execute(attempt, hooks, log)
            outcome: dict[str, Any] = {"status": "succeeded"}
        except Exception as exc:
            outcome = _failure(exc, hooks, attempt)
        finally:
            watchdog.done.set()
            watchdog.join(5)
            watchdog.drain()
        elapsed = time.monotonic() - started
        _log_footer(log, outcome, elapsed)
    outcome.update(worker=attempt.address, duration=elapsed)
    outcome["cell_count"] = hooks.source_position(None)[1] if hooks.nb is not None else None
    outcome["metrics"] = [r for r in watchdog.records if r.get("kind") == "metric"]
    outcome["artifacts"] = [r for r in watchdog.records if r.get("kind") == "artifact"]
    outcome["outputs"] = [r for r in watchdog.records if r.get("kind") == "output"]  # nbd.output (pipelines)
    uploading = time.monotonic()
    _upload(attempt, outcome)
    outcome["timings"] = {
        **hooks.timings,
        "upload": time.monotonic() - uploading,
        "kernel_source": hooks.kernel_source,
        "task_started_at": task_started_at,
        "first_cell_at": hooks.first_cell_at,
    }
    return outcome


# --- the steps --------------------------------------------------------------------------------------------
def _guard(spec: dict[str, Any]) -> _Attempt:
    """Mark the attempt started (a Dask ``Event``) so that a re-run after its worker died fails as lost instead
    of silently starting over; make its folder."""
    from distributed import Event, get_client, get_worker

    try:
        worker = get_worker()
        key = worker.get_current_task()
        client = get_client()
    except ValueError:  # called outside a worker (a direct call in tests or a debugger)
        worker, key, client = None, None, None
    if worker is not None:
        guard = Event(spec["guard_event"], client=client)
        if guard.is_set():
            raise RunLostError(f"attempt {spec['attempt']} of run {spec['run_id']} started on a worker that died")
        guard.set()
    base = Path(tempfile.mkdtemp(prefix=f"nbdeploy-run-{spec['run_id']}-{spec['attempt']}-"))
    (base / "work").mkdir()
    return _Attempt(spec, worker, key, client, base)


def _environment(attempt: _Attempt) -> dict[str, str]:
    """The kernel's environment: the worker's, plus what ``nbd.log_metric`` and friends read."""
    spec = attempt.spec
    env = dict(os.environ)
    env.update(
        {
            tracking.ENV_RUN_ID: str(attempt.run_id),
            tracking.ENV_ATTEMPT: str(attempt.number),
            tracking.ENV_EVENTS: str(attempt.path("events.jsonl")),
            tracking.ENV_STORE: spec["store_url"],
            "NBDEPLOY_JOB": spec["job"],
            "JPY_SESSION_NAME": f"{spec['job']}.ipynb",
        }
    )
    if spec.get("catalog_url"):
        env["NBDEPLOY_CATALOG_URL"] = spec["catalog_url"]
    return env


def _execute(attempt: _Attempt, hooks: Hooks, log: IO[str]) -> None:
    """Load the job's notebook by hash and run it with papermill (parameters injected as papermill does)."""
    import nbformat
    import papermill

    from ..pipelines.values import register_translator

    engine_class()
    register_translator()  # a pipeline node's upstream outputs: blobs loaded lazily in the kernel
    spec = attempt.spec
    nb = nbformat.reads(_read_notebook(spec["store_url"], spec["notebook_sha256"]).decode("utf-8"), 4)
    papermill.execute_notebook(
        nb,
        str(attempt.path("output.ipynb")),
        parameters=spec.get("parameters") or None,
        engine_name="nbdeploy",
        kernel_name=spec.get("kernel") or None,
        progress_bar=False,
        log_output=False,
        stdout_file=log,
        stderr_file=log,
        request_save_on_cell_execute=False,  # progress goes through events, not the file
        nbdeploy_hooks=hooks,
    )


def _failure(exc: Exception, hooks: Hooks, attempt: _Attempt) -> dict[str, Any]:
    """The outcome of an attempt that ended with ``exc``: stopped (timeout, cancel), a failing cell, or else."""
    import nbformat
    from papermill.exceptions import PapermillExecutionError

    output = attempt.path("output.ipynb")
    if not output.exists() and hooks.nb is not None:  # stopped mid-run: keep what it produced
        nbformat.write(hooks.nb, str(output))
    reason = hooks.stop_reason
    if reason is not None:
        cell = hooks.current_cell
        if reason == "timeout":
            error = ("Timeout", f"the run took longer than its timeout of {attempt.spec['timeout']}s")
        else:
            error = (
                "Cancelled",
                "cancelled while running" if reason == "cancel" else "stopped: its dispatcher went away",
            )
        shown = hooks.source_position(cell)[0]
        if output.exists():
            where = f" in cell {shown}" if shown is not None else ""
            mark_stopped(output, f"nbdeploy: {error[1]}{where}", cell)
        return {"status": _STOPPED[reason], "error_type": error[0], "error_message": error[1], "error_cell": shown}
    if isinstance(exc, PapermillExecutionError):
        return {
            "status": "failed",
            "error_type": exc.ename,
            "error_message": exc.evalue,
            "error_traceback": _ANSI.sub("", "\n".join(exc.traceback or [])),
            "error_cell": hooks.source_position(exc.cell_index)[0],
        }
    return {
        "status": "failed",
        "error_type": type(exc).__name__,
        "error_message": str(exc) or type(exc).__name__,
        "error_traceback": _ANSI.sub("", traceback.format_exc()),
        "error_cell": hooks.source_position(hooks.current_cell)[0],
    }


def _upload(attempt: _Attempt, outcome: dict[str, Any]) -> None:
    """Put the output notebook and the log into the store by content hash; remove the attempt's folder."""
    store = _store(attempt.spec["store_url"])
    try:
        if attempt.path("output.ipynb").exists():
            outcome["output_sha256"] = store.put_blob(attempt.path("output.ipynb")).sha256
        outcome["log_sha256"] = store.put_blob(attempt.path("run.log")).sha256
    finally:
        shutil.rmtree(attempt.base, ignore_errors=True)


# --- the log and the store --------------------------------------------------------------------------------
def _log_header(log: IO[str], attempt: _Attempt) -> None:
    spec = attempt.spec
    log.write(
        f"[nbdeploy] run {attempt.run_id} attempt {attempt.number} of job {spec['job']!r} v{spec.get('job_version')} "
        f"on {attempt.address}, kernel {spec.get('kernel') or '(the notebook’s own)'}"
        f"{'' if spec.get('warm') is not False else ' (warm=False)'}\n"
    )
    log.flush()


def _log_footer(log: IO[str], outcome: dict[str, Any], elapsed: float) -> None:
    if outcome.get("error_type"):
        where = f" in cell {outcome.get('error_cell')}" if outcome.get("error_cell") is not None else ""
        log.write(f"\n[nbdeploy] {outcome['status']}{where}: {outcome['error_type']}: {outcome.get('error_message')}\n")
    log.write(f"[nbdeploy] {outcome['status']} after {elapsed:.2f}s\n")


_stores: dict[str, Any] = {}


def _store(url: str) -> Any:
    from ..store.artifacts import ArtifactStore

    if url not in _stores:
        _stores[url] = ArtifactStore(url)
    return _stores[url]


def _read_notebook(store_url: str, sha256: str) -> bytes:
    """The notebook's bytes, through the worker's artifact cache (loaded once per worker)."""
    from ..runtime.cache import load_artifact

    return load_artifact(store_url, sha256, loader=bytes)
