"""``%schedule``, ``%run_job`` and ``%runs``: jobs from inside a notebook (``%run_job`` returns the run, which a
notebook shows as a live view; ``%runs`` shows a table that refreshes, with a cancel action).

``%schedule "*/15 * * * *"`` schedules the notebook it is typed in — its saved file on disk, without the
``%schedule`` line itself — as a job. It refuses (unless ``--force``) when the cell it runs in is not in the
saved file, which means the notebook has unsaved changes.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..exceptions import InvalidInputError, NbdeployError, NotFoundError

__all__ = ["JobMagics", "RunList", "find_notebook_path", "strip_magic_lines"]


def find_notebook_path(user_ns: dict[str, Any], explicit: str | None = None) -> Path:
    """The file of the notebook this kernel runs: ``explicit``, VS Code's ``__vsc_ipynb_file__``, Jupyter's
    ``__session__`` / ``JPY_SESSION_NAME``. Raises :class:`NotFoundError` with what to do when unknown or
    missing on disk."""
    candidate = explicit or user_ns.get("__vsc_ipynb_file__") or user_ns.get("__session__")
    candidate = candidate or os.environ.get("JPY_SESSION_NAME")
    if not candidate:
        raise NotFoundError("cannot tell which notebook this is: pass its file, e.g. --path report.ipynb")
    path = Path(str(candidate)).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    if path.suffix != ".ipynb" or not path.is_file():
        raise NotFoundError(
            f"the notebook {str(path)!r} is not saved on disk (new, renamed or moved?): save it, or pass --path"
        )
    return path


def strip_magic_lines(nb: dict[str, Any], magic: str = "%schedule") -> dict[str, Any]:
    """Remove the lines that start with ``magic`` from code cells (and cells left empty by it)."""
    from .notebooks import cell_source

    cells = []
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            lines = cell_source(cell).splitlines(keepends=True)
            kept = [line for line in lines if not line.lstrip().startswith(magic)]
            if len(kept) != len(lines):
                if not "".join(kept).strip():
                    continue
                cell = {**cell, "source": "".join(kept)}
        cells.append(cell)
    return {**nb, "cells": cells}


def cell_is_saved(nb: dict[str, Any], cell_text: str) -> bool:
    """Whether a code cell with exactly this source (ignoring surrounding blank space) is in the notebook."""
    from .notebooks import cell_source

    wanted = cell_text.strip()
    return any(c.get("cell_type") == "code" and cell_source(c).strip() == wanted for c in nb["cells"])


def _unquote(value: str | None) -> str | None:
    """IPython keeps the quotes around a quoted magic argument; drop one matching pair."""
    if value and len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _assignments(items: list[str] | None) -> dict[str, str]:
    from .notebooks import parse_assignments

    return parse_assignments([_unquote(i) or "" for i in items or []])


class RunList(list):
    """A list of runs that renders as a table in a notebook."""

    def _repr_html_(self) -> str:
        from .render import runs_html

        return runs_html([r.snapshot for r in self])

    def __repr__(self) -> str:
        return "\n".join(repr(r) for r in self) or "no runs"


@magics_class
class JobMagics(Magics):
    """``%schedule``, ``%run_job`` and ``%runs``."""

    def _shell(self) -> Any:
        """The IPython shell these magics are registered with."""
        if self.shell is None:
            raise RuntimeError("these magics are not registered with an IPython shell")
        return self.shell

    @magic_arguments()
    @argument("cron", help='5-field cron expression, quoted: "*/15 * * * *".')
    @argument("--name", default=None, help="Job name (default: from the notebook's file name).")
    @argument("-p", "--parameter", action="append", default=None, metavar="NAME=VALUE", help="A job parameter.")
    @argument("--timezone", default="UTC", help="IANA time zone of the cron expression (default UTC).")
    @argument("--catchup", default="latest", help="Missed ticks: none, latest or all (default latest).")
    @argument("--timeout", default=None, type=float, help="Seconds before a run is stopped.")
    @argument("--retries", default=0, type=int, help="Extra attempts after a failure.")
    @argument("--notify", default=None, help="Webhook URL POSTed when a run fails.")
    @argument("--path", default=None, help="The notebook file (default: the one this kernel runs).")
    @argument("--force", action="store_true", help="Schedule the saved file even if this cell is not in it.")
    @line_magic
    def schedule(self, line: str) -> Any:
        """Schedule this notebook (its saved file) as a job on a cron expression."""
        from .tracking import current_run

        if current_run() is not None:
            print("%schedule does nothing inside a job run")
            return None
        try:
            args = parse_argstring(self.schedule, line)
            return self._schedule(args)
        except NbdeployError as exc:
            print(f"not scheduled: {exc}")
            return None

    def _schedule(self, args: Any) -> Any:
        from ..app import default
        from .dispatcher import leader_alive
        from .notebooks import load_notebook

        path = find_notebook_path(self._shell().user_ns, _unquote(args.path))
        nb, _ = load_notebook(path)
        raw = self._shell().history_manager.input_hist_raw
        current = raw[-1] if raw else ""
        if current and "%schedule" in current and not cell_is_saved(nb, current) and not args.force:
            raise InvalidInputError(
                f"the notebook has unsaved changes: this cell is not in the saved file {path.name}. Save it "
                "(Ctrl-S) and run %schedule again, or add --force to schedule the saved version as it is"
            )
        app = default()
        done = app.jobs.schedule_notebook(
            strip_magic_lines(nb),
            path=str(path),
            name=_unquote(args.name),
            when="schedule",
            parameters=_assignments(args.parameter),
            cron=_unquote(args.cron),
            timezone=_unquote(args.timezone) or "UTC",
            catchup=args.catchup,
            timeout=args.timeout,
            retries=args.retries,
            notify=_unquote(args.notify),
            from_text=True,
        )
        schedule, job = done.schedule, done.job
        assert schedule is not None
        nxt = ", ".join(f"{t:%Y-%m-%d %H:%M %Z}" for t in schedule.upcoming[:3])
        print(f"scheduled {path.name} as job {job.name!r} v{job.version}: schedule {schedule.id} on "
              f"'{schedule.cron}' ({schedule.timezone}); next runs: {nxt}")  # fmt: skip
        if not leader_alive(app.store):
            print(
                "note: no scheduler is running right now; schedules fire while Jupyter (with nbdeploy), "
                "`nbdeploy serve` or `nbdeploy scheduler` runs"
            )
        return schedule

    @magic_arguments()
    @argument("name", help="The job to run.")
    @argument("-p", "--parameter", action="append", default=None, metavar="NAME=VALUE", help="A job parameter.")
    @argument("--timeout", default=None, type=float, help="Seconds before the run is stopped.")
    @argument("--retries", default=0, type=int, help="Extra attempts after a failure.")
    @argument("--kernel", default=None, help="Kernelspec (default: the notebook's own).")
    @argument("--wait", action="store_true", help="Wait for the run to end.")
    @line_magic
    def run_job(self, line: str) -> Any:
        """Run a job now; returns its Run (``run.wait()``, ``run.output()``, …)."""
        from ..app import default

        try:
            args = parse_argstring(self.run_job, line)
            run = default().jobs.run(
                _unquote(args.name) or "",
                _assignments(args.parameter),
                kernel=_unquote(args.kernel),
                timeout=args.timeout,
                retries=args.retries,
                from_text=True,
            )
            for warning in run.snapshot.warnings:
                print(f"warning: {warning}")
            return run.wait() if args.wait else run
        except NbdeployError as exc:
            print(f"not run: {exc}")
            return None

    @magic_arguments()
    @argument("name", nargs="?", default=None, help="Only this job's runs.")
    @argument("--status", default=None, help="Only runs in this state.")
    @argument("--limit", default=20, type=int, help="How many runs (default 20).")
    @argument("--plot", action="store_true", help="A figure of their metrics: over time and across the runs.")
    @line_magic
    def runs(self, line: str) -> Any:
        """The newest runs (of a job), as a table."""
        from ..app import default
        from ..widgets import widgets_enabled

        try:
            args = parse_argstring(self.runs, line)
            job, status = _unquote(args.name), _unquote(args.status)
            if args.plot:
                from ..plots import runs_metrics_figure

                return runs_metrics_figure(default().runs.list(job=job, status=status, limit=args.limit))
            if widgets_enabled():
                from IPython.display import display

                from ..widgets import RunsTable

                display(RunsTable(default(), job=job, status=status, limit=args.limit))
                return None
            runs = default().runs.list(job=job, status=status, limit=args.limit)
            return RunList(runs)
        except NbdeployError as exc:
            print(f"error: {html.unescape(str(exc))}")
            return None
