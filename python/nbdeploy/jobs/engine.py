"""Papermill's nbclient engine with nbdeploy's hooks: per-cell progress reported to the dispatcher, a per-run
environment and working folder, and a stop between cells (what :mod:`.execute` runs a notebook with).

:class:`Hooks` is what the engine, the watchdog and the executor share for one attempt; :func:`engine_class`
builds and registers papermill's ``nbdeploy`` engine once per process (papermill is imported then, on a worker).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

__all__ = ["Hooks", "RunLostError", "RunStopped", "engine_class"]


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


def engine_class() -> type:
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
