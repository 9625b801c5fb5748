"""Executing one attempt of a run on a Dask worker: papermill with nbdeploy's engine.

:func:`run_notebook` is the Dask task. It reads the job's notebook from the store by hash, runs it with
papermill through :class:`NbdeployEngine` — papermill's nbclient engine whose execution manager reports
``cell_start`` to the dispatcher through Dask events (``worker.log_event``) — and writes the executed
notebook and the log into the store, failed, timed-out and cancelled attempts included.

A watchdog thread beside the execution forwards the kernel's ``nbd.log_metric`` / ``log_artifact`` lines,
enforces the run's timeout, and stops the kernel (its whole process group) when the dispatcher asks for a
cancel (a Dask ``Event``) or when the task is no longer wanted (the dispatcher's client went away). A guard
event makes a task that Dask re-runs after its worker died fail as *lost* instead of silently starting over.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from . import tracking

__all__ = ["EVENT_TOPIC", "RunLostError", "run_notebook"]

EVENT_TOPIC = "nbdeploy-runs"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STOPPED = {"timeout": "timed_out", "cancel": "cancelled", "orphaned": "cancelled"}


class RunLostError(RuntimeError):
    """This attempt already started on a worker that died; it must not silently run again."""


class RunStopped(Exception):
    """Raised between cells once the watchdog decided to stop the run."""


class Hooks:
    """What the engine and the watchdog share for one attempt."""

    def __init__(self, emit: Any, env: dict[str, str], cwd: str) -> None:
        self.emit = emit
        self.env = env
        self.cwd = cwd
        self.client: Any = None  # papermill's notebook client (holds the kernel manager)
        self.nb: Any = None  # the parameterized notebook being executed (papermill's, without error markers)
        self.stop_reason: str | None = None
        self.current_cell: int | None = None
        self.lock = threading.Lock()

    def source_position(self, index: int | None) -> tuple[int | None, int]:
        """``(index, count)`` of a cell of the executed notebook in the job's own notebook (papermill's
        injected-parameters cell is not counted; while it runs, the parameters cell is reported)."""
        cells = self.nb.cells if self.nb is not None else []
        injected = [
            i for i, c in enumerate(cells) if "injected-parameters" in (c.get("metadata", {}).get("tags") or [])
        ]
        count = len(cells) - len(injected)
        if index is None:
            return None, count
        if index in injected:
            return max(0, index - 1 - sum(1 for i in injected if i < index)), count
        return index - sum(1 for i in injected if i < index), count

    def kernel_pids(self) -> tuple[int | None, int | None]:
        km = getattr(self.client, "km", None)
        provisioner = getattr(km, "provisioner", None)
        return getattr(provisioner, "pid", None), getattr(provisioner, "pgid", None)

    def kill_kernel(self) -> bool:
        """Kill the kernel's process group (the kernel and whatever it started); return whether one was found."""
        pid, pgid = self.kernel_pids()
        if pid is None:
            return False
        try:
            if pgid and pgid != os.getpgid(0):
                os.killpg(pgid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return True


def _engine_class() -> type:
    """Build (once) and register papermill's ``nbdeploy`` engine."""
    global _ENGINE
    if _ENGINE is not None:
        return _ENGINE
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    class ProgressManager(NotebookExecutionManager):
        """Papermill's execution manager, reporting each cell's start to the dispatcher."""

        def __init__(self, nb: Any, hooks: Hooks, **kwargs: Any) -> None:
            super().__init__(nb, **kwargs)
            self.hooks = hooks
            hooks.nb = nb

        def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
            if self.hooks.stop_reason:
                raise RunStopped(self.hooks.stop_reason)
            super().cell_start(cell, cell_index, **kwargs)
            self.hooks.current_cell = cell_index
            index, count = self.hooks.source_position(cell_index)
            self.hooks.emit({"kind": "cell", "cell": index, "cells": count})

    class NbdeployEngine(NBClientEngine):
        """nbclient execution with per-cell progress events, a per-run environment and working folder."""

        @classmethod
        def execute_notebook(  # type: ignore[override]
            cls,
            nb: Any,
            kernel_name: str,
            output_path: str | None = None,
            progress_bar: bool = False,
            log_output: bool = False,
            autosave_cell_every: int = 30,
            nbdeploy_hooks: Hooks | None = None,
            **kwargs: Any,
        ) -> Any:
            assert nbdeploy_hooks is not None
            nb_man = ProgressManager(
                nb,
                nbdeploy_hooks,
                output_path=output_path,
                progress_bar=False,
                log_output=log_output,
                autosave_cell_every=autosave_cell_every,
            )
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, hooks=nbdeploy_hooks, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

        @classmethod
        def execute_managed_notebook(  # type: ignore[override]
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = 60,
            execution_timeout: int | None = None,
            hooks: Hooks | None = None,
            **kwargs: Any,
        ) -> Any:
            assert hooks is not None
            kwargs = remove_args(["input_path"], **kwargs)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final_kwargs = merge_kwargs(
                safe_kwargs,
                timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            hooks.client = PapermillNotebookClient(nb_man, **final_kwargs)
            if hooks.stop_reason:
                raise RunStopped(hooks.stop_reason)
            return hooks.client.execute(env=hooks.env, cwd=hooks.cwd)

    papermill_engines.register("nbdeploy", NbdeployEngine)
    logging.getLogger("papermill").setLevel(logging.WARNING)  # its per-run INFO lines would flood worker logs
    _ENGINE = NbdeployEngine
    return NbdeployEngine


_ENGINE: type | None = None
_stores: dict[str, Any] = {}


def _store(url: str) -> Any:
    from ..store.artifacts import ArtifactStore

    if url not in _stores:
        _stores[url] = ArtifactStore(url)
    return _stores[url]


def _read_notebook(store_url: str, sha256: str) -> bytes:
    try:
        from .. import runtime

        loader = getattr(runtime, "load_artifact", None)
    except ImportError:  # pragma: no cover - the runtime is part of nbdeploy
        loader = None
    if loader is not None:
        return loader(store_url, sha256, loader=bytes)
    return _store(store_url).read_blob(sha256)


class _Watchdog(threading.Thread):
    """Forwards metric/artifact lines, enforces the timeout, stops the kernel on cancel or when orphaned."""

    def __init__(
        self, hooks: Hooks, spec: dict[str, Any], events_path: Path, worker: Any, key: Any, client: Any
    ) -> None:
        super().__init__(name=f"nbdeploy-watchdog-{spec['run_id']}", daemon=True)
        self.hooks, self.spec, self.events_path, self.worker, self.key = hooks, spec, events_path, worker, key
        self.client = client  # the worker's client (a thread of our own has no worker context to find it)
        self.done = threading.Event()
        self.offset = 0
        self.records: list[dict[str, Any]] = []
        self.deadline = time.monotonic() + float(spec["timeout"]) if spec.get("timeout") else None

    def drain(self) -> None:
        """Forward the lines the kernel appended since the last call."""
        try:
            with open(self.events_path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # only whole lines
        self.offset += end
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            self.records.append(record)
            self.hooks.emit(record)

    def _orphaned(self) -> bool:
        ts = self.worker.state.tasks.get(self.key) if self.worker is not None else None
        return self.worker is not None and (ts is None or ts.state not in ("executing", "long-running"))

    def _cancel_requested(self) -> bool:
        if self.client is None:
            return False
        from distributed import Event

        try:
            return bool(Event(self.spec["cancel_event"], client=self.client).is_set())
        except Exception:
            return False

    def stop(self, reason: str) -> None:
        with self.hooks.lock:
            if self.hooks.stop_reason is None:
                self.hooks.stop_reason = reason

    def run(self) -> None:
        last_cancel_check = 0.0
        while not self.done.wait(0.2):
            self.drain()
            now = time.monotonic()
            if self.hooks.stop_reason is None:
                if self.deadline is not None and now >= self.deadline:
                    self.stop("timeout")
                elif self._orphaned():
                    self.stop("orphaned")
                elif now - last_cancel_check >= 0.5:
                    last_cancel_check = now
                    if self._cancel_requested():
                        self.stop("cancel")
            if self.hooks.stop_reason is not None:
                self.hooks.kill_kernel()  # again each tick: the kernel may still be starting


def _mark_stopped(output_path: Path, message: str, cell: int | None) -> None:
    """Put a red banner at the top of a partial output notebook saying why it stopped (and where)."""
    import nbformat

    try:
        nb = nbformat.read(str(output_path), as_version=4)
    except Exception:
        return
    banner = nbformat.v4.new_markdown_cell(f'<span style="color:red;font-size:1.5em">{message}</span>')
    banner.metadata["tags"] = ["nbdeploy-stopped"]
    if cell is not None and 0 <= cell < len(nb.cells):
        nb.cells[cell].metadata.setdefault("papermill", {})["status"] = "failed"
        nb.cells[cell].metadata["papermill"]["exception"] = True
    nb.cells.insert(0, banner)
    nbformat.write(nb, str(output_path))


def run_notebook(spec: dict[str, Any]) -> dict[str, Any]:
    """Execute one attempt of a run (the Dask task) and return its outcome.

    ``spec`` holds ``run_id``, ``attempt``, ``job``, ``store_url``, ``notebook_sha256``, ``parameters``,
    ``kernel``, ``timeout``, ``guard_event``, ``cancel_event``. The outcome holds ``status`` (succeeded,
    failed, timed_out or cancelled), ``error_*``, ``output_sha256``, ``log_sha256``, ``cell_count``,
    ``metrics`` and ``artifacts``. Raises :class:`RunLostError` when this attempt already started elsewhere.
    """
    import nbformat
    import papermill
    from distributed import Event, get_client, get_worker
    from papermill.exceptions import PapermillExecutionError

    _engine_class()
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

    run_id, attempt = int(spec["run_id"]), int(spec["attempt"])

    def emit(msg: dict[str, Any]) -> None:
        if worker is not None:
            worker.log_event(EVENT_TOPIC, {**msg, "run": run_id, "attempt": attempt})

    base = Path(tempfile.mkdtemp(prefix=f"nbdeploy-run-{run_id}-{attempt}-"))
    workdir = base / "work"
    workdir.mkdir()
    events_path, output_path, log_path = base / "events.jsonl", base / "output.ipynb", base / "run.log"
    env = dict(os.environ)
    env.update(
        {
            tracking.ENV_RUN_ID: str(run_id),
            tracking.ENV_ATTEMPT: str(attempt),
            tracking.ENV_EVENTS: str(events_path),
            tracking.ENV_STORE: spec["store_url"],
            "NBDEPLOY_JOB": spec["job"],
            "JPY_SESSION_NAME": f"{spec['job']}.ipynb",
        }
    )
    if spec.get("catalog_url"):
        env["NBDEPLOY_CATALOG_URL"] = spec["catalog_url"]
    hooks = Hooks(emit, env, str(workdir))
    address = getattr(worker, "address", "local")
    emit({"kind": "started", "worker": address, "time": time.time()})
    outcome: dict[str, Any] = {"status": "succeeded", "worker": address}
    started = time.monotonic()
    watchdog = _Watchdog(hooks, spec, events_path, worker, key, client)
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        log.write(
            f"[nbdeploy] run {run_id} attempt {attempt} of job {spec['job']!r} v{spec.get('job_version')} "
            f"on {address}, kernel {spec.get('kernel') or '(the notebook’s own)'}\n"
        )
        log.flush()
        watchdog.start()
        try:
            nb = nbformat.reads(_read_notebook(spec["store_url"], spec["notebook_sha256"]).decode("utf-8"), 4)
            papermill.execute_notebook(
                nb,
                str(output_path),
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
        except Exception as exc:
            if not output_path.exists() and hooks.nb is not None:  # stopped mid-run: keep what it produced
                nbformat.write(hooks.nb, str(output_path))
            reason = hooks.stop_reason
            if reason is not None:
                outcome["status"] = _STOPPED[reason]
                cell = hooks.current_cell
                if reason == "timeout":
                    outcome["error_type"] = "Timeout"
                    outcome["error_message"] = f"the run took longer than its timeout of {spec['timeout']}s"
                else:
                    outcome["error_type"] = "Cancelled"
                    outcome["error_message"] = (
                        "cancelled while running" if reason == "cancel" else "stopped: its dispatcher went away"
                    )
                if output_path.exists():
                    shown = hooks.source_position(cell)[0]
                    where = f" in cell {shown}" if shown is not None else ""
                    _mark_stopped(output_path, f"nbdeploy: {outcome['error_message']}{where}", cell)
                outcome["error_cell"] = hooks.source_position(cell)[0]
            elif isinstance(exc, PapermillExecutionError):
                outcome.update(
                    status="failed",
                    error_type=exc.ename,
                    error_message=exc.evalue,
                    error_traceback=_ANSI.sub("", "\n".join(exc.traceback or [])),
                    error_cell=hooks.source_position(exc.cell_index)[0],
                )
            else:
                outcome.update(
                    status="failed",
                    error_type=type(exc).__name__,
                    error_message=str(exc) or type(exc).__name__,
                    error_traceback=_ANSI.sub("", traceback.format_exc()),
                    error_cell=hooks.source_position(hooks.current_cell)[0],
                )
        finally:
            watchdog.done.set()
            watchdog.join(5)
            watchdog.drain()
        elapsed = time.monotonic() - started
        if outcome.get("error_type"):
            where = f" in cell {outcome.get('error_cell')}" if outcome.get("error_cell") is not None else ""
            log.write(
                f"\n[nbdeploy] {outcome['status']}{where}: {outcome['error_type']}: {outcome.get('error_message')}\n"
            )
        log.write(f"[nbdeploy] {outcome['status']} after {elapsed:.2f}s\n")
    store = _store(spec["store_url"])
    try:
        if output_path.exists():
            outcome["output_sha256"] = store.put_blob(output_path).sha256
        outcome["log_sha256"] = store.put_blob(log_path).sha256
    finally:
        shutil.rmtree(base, ignore_errors=True)
    outcome["cell_count"] = hooks.source_position(None)[1] if hooks.nb is not None else None
    outcome["metrics"] = [r for r in watchdog.records if r.get("kind") == "metric"]
    outcome["artifacts"] = [r for r in watchdog.records if r.get("kind") == "artifact"]
    outcome["duration"] = elapsed
    return outcome
