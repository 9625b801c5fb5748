"""Papermill's nbclient engine with nbdeploy's hooks: per-cell progress reported to the dispatcher, a per-run
environment and working folder, a stop between cells, and a kernel from the worker's warm pool (what
:mod:`.execute` runs a notebook with).

The kernel is handed to papermill through its own hook: ``PapermillNotebookClient(km=…)`` with a kernel the pool
(:mod:`nbdeploy.kernels.pool`) already started — a warm one, or one started for this run when the pool is off, empty,
or the run opted out with ``warm=False``. Papermill still runs every cell (parameters, outputs, errors); nbdeploy
only connects the client (and applies the run's environment to a pooled kernel) and discards the kernel after the
run, so that no run ever sees another's state.

:class:`Hooks` is what the engine, the watchdog and the executor share for one attempt; :func:`engine_class`
builds and registers papermill's ``nbdeploy`` engine once per process (papermill is imported then, on a worker).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

__all__ = ["Hooks", "RunLostError", "RunStopped", "engine_class"]


class RunLostError(RuntimeError):
    """This attempt already started on a worker that died; it must not silently run again."""


class RunStopped(Exception):
    """Raised between cells once the watchdog decided to stop the run."""


class Hooks:
    """What the engine and the watchdog share for one attempt."""

    def __init__(
        self,
        emit: Any,
        env: dict[str, str],
        cwd: str,
        pool: dict[str, Any] | None = None,
        warm: bool = True,
    ) -> None:
        self.emit = emit
        self.env = env
        self.cwd = cwd
        self.pool = pool  # the server's pool settings (PoolConfig.to_json()); None: the worker's current ones
        self.warm = warm
        self.kernel_source: str | None = None  # "pool" or "started", once a kernel was claimed
        self.timings: dict[str, float] = {}  # seconds: kernel (claim or start + connect), cells
        self.first_cell_at: float | None = None  # wall-clock time the first cell started
        self.client: Any = None  # papermill's notebook client (holds the kernel manager)
        self.nb: Any = None  # the parameterized notebook being executed (papermill's, without error markers)
        self.stop_reason: str | None = None
        self.deadline: float | None = None  # time.monotonic() by which the run must end (its timeout)
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


def engine_class() -> type:
    """Build (once) and register papermill's ``nbdeploy`` engine."""
    global _ENGINE, _CLIENT
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
            deadline = self.hooks.deadline
            if deadline is not None and time.monotonic() >= deadline:  # between the watchdog's ticks too
                with self.hooks.lock:
                    self.hooks.stop_reason = self.hooks.stop_reason or "timeout"
            if self.hooks.stop_reason:
                raise RunStopped(self.hooks.stop_reason)
            if self.hooks.first_cell_at is None:
                self.hooks.first_cell_at = time.time()
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
            from ..kernels.pool import pool

            if hooks.stop_reason:
                raise RunStopped(hooks.stop_reason)
            began = time.monotonic()
            kernels = pool(hooks.pool)
            claimed = kernels.acquire(kernel_name, hooks.env, hooks.cwd, warm=hooks.warm, timeout=start_timeout)
            hooks.kernel_source = claimed.source
            try:
                hooks.client = _CLIENT(nb_man, km=claimed.kernel.km, **final_kwargs)
                hooks.client.nbdeploy_claimed = claimed
                hooks.client.nbdeploy_began = began
                hooks.client.nbdeploy_hooks = hooks
                return hooks.client.execute()
            finally:
                kc = getattr(hooks.client, "kc", None)
                if kc is not None:
                    kc.stop_channels()
                kernels.discard(claimed)  # one run per kernel: never handed on
                if hooks.first_cell_at is not None and "kernel" in hooks.timings:
                    hooks.timings["cells"] = time.monotonic() - began - hooks.timings["kernel"]

    papermill_engines.register("nbdeploy", NbdeployEngine)
    _CLIENT = _client_class(PapermillNotebookClient)
    logging.getLogger("papermill").setLevel(logging.WARNING)  # its per-run INFO lines would flood worker logs
    _ENGINE = NbdeployEngine
    return NbdeployEngine


def _client_class(base: type) -> type:
    """Papermill's notebook client, connecting to the claimed kernel with one round trip (and applying the run's
    environment to a pooled one) instead of nbclient's ``wait_for_ready``."""
    from nbclient.util import run_hook, run_sync

    from ..kernels import starter

    class NbdeployNotebookClient(base):  # type: ignore[misc,valid-type]
        nbdeploy_claimed: Any = None
        nbdeploy_began: float = 0.0
        nbdeploy_hooks: Hooks | None = None

        async def async_start_new_kernel_client(self) -> Any:
            claimed = self.nbdeploy_claimed
            if claimed is None:  # not handed a kernel by nbdeploy: nbclient's own way
                return await super().async_start_new_kernel_client()
            self.kc = self.km.client()
            self.kc.start_channels()
            try:
                await starter.connect(self.kc, claimed.kernel, float(self.startup_timeout), claimed.setup)
            except Exception:
                self.kc.stop_channels()
                self.kc = None
                raise
            self.kc.allow_stdin = False
            if self.nbdeploy_hooks is not None:
                self.nbdeploy_hooks.timings["kernel"] = time.monotonic() - self.nbdeploy_began
            await run_hook(self.on_notebook_start, notebook=self.nb)
            return self.kc

        start_new_kernel_client = run_sync(async_start_new_kernel_client)

    return NbdeployNotebookClient


_ENGINE: type | None = None
_CLIENT: Any = None
