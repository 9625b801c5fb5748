"""``%pipeline``: put, run, show and list pipelines from a notebook.

``%pipeline put daily.pipeline.yaml``, ``%pipeline run daily [--wait] [--only NODE] [--from NODE] [--force NODE]
[-p day=2026-12-01]``, ``%pipeline show daily``, ``%pipeline runs daily``, ``%pipeline list``.
"""

from __future__ import annotations

import html
import shlex
from pathlib import Path
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class

from ..exceptions import NbdeployError

_COLOURS = {
    "queued": "#9e9e9e",
    "running": "#1e88e5",
    "succeeded": "#43a047",
    "skipped": "#8d6e63",
    "failed": "#e53935",
    "cancelled": "#fb8c00",
}


def run_html(info: Any) -> str:
    """A pipeline run as an HTML table: each node's state (coloured), job run and reason."""
    rows = []
    for name, s in info.nodes.items():
        progress = f" {s.progress.done}/{s.progress.total}" if s.progress else ""
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td style='color:{_COLOURS.get(s.status, '#000')}'>"
            f"{s.status}{progress}</td><td>{s.run or ''}</td><td>{html.escape(s.reason or '')}</td></tr>"
        )
    return (
        f"<b>pipeline run {info.run}</b> of {html.escape(info.pipeline)} v{info.version}: {info.status}"
        f"<table><tr><th>node</th><th>state</th><th>run</th><th>reason</th></tr>{''.join(rows)}</table>"
    )


USAGE = (
    "%pipeline put FILE | run NAME_OR_FILE [--wait] [--only N] [--from N] [--force N] [-p k=v] | show NAME "
    "| runs [NAME] | list"
)


@magics_class
class PipelineMagics(Magics):
    """The ``%pipeline`` line magic."""

    @line_magic
    def pipeline(self, line: str) -> Any:
        """``%pipeline put FILE | run NAME_OR_FILE [--wait] [--only N] [--from N] [--force N] [-p k=v] | show NAME
        | runs NAME | list``."""
        from IPython.display import HTML

        from ..app import default

        manager = default().pipelines
        args = shlex.split(line)
        if not args:
            print(USAGE)
            return None
        command, rest = args[0], args[1:]
        try:
            if command == "put" and rest:
                info = manager.put(Path(rest[0]))
                return HTML(
                    f"stored pipeline <b>{html.escape(info.name)}</b> v{info.version} ({len(info.nodes)} nodes)"
                )
            if command == "list":
                return manager.list()
            if command == "show" and rest:
                return manager.get(rest[0])
            if command == "runs":
                return manager.runs(rest[0] if rest else None)
            if command == "run" and rest:
                return self._run(manager, rest)
        except NbdeployError as exc:
            print(f"Error: {exc}")
            return None
        print(USAGE)
        return None

    def _run(self, manager: Any, args: list[str]) -> Any:
        from IPython.display import HTML

        target: Any = args[0]
        only: list[str] = []
        force: list[str] = []
        start, wait, params = None, False, {}
        i = 1
        while i < len(args):
            arg = args[i]
            if arg == "--wait":
                wait = True
            elif arg in ("--only", "--force", "--from", "-p") and i + 1 < len(args):
                value = args[i + 1]
                i += 1
                if arg == "--only":
                    only.append(value)
                elif arg == "--force":
                    force.append(value)
                elif arg == "--from":
                    start = value
                else:
                    key, _, text = value.partition("=")
                    params[key] = text
            i += 1
        if Path(target).is_file():
            target = Path(target)
        handle = manager.run(target, params or None, only=only, from_=start, force=force, wait=wait)
        from ..widgets import widgets_enabled

        if widgets_enabled():
            return handle  # displayed as the live run view, a row per node
        return HTML(run_html(handle.info))
