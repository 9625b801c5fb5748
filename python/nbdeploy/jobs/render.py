"""HTML renderings: an executed notebook (nbconvert, on request) and a run or list of runs in a notebook."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

__all__ = ["STATUS_COLOURS", "badge", "notebook_html", "run_html", "runs_html"]

STATUS_COLOURS = {
    "queued": "#777",
    "running": "#1f6feb",
    "succeeded": "#1a7f37",
    "failed": "#cf222e",
    "cancelled": "#9a6700",
    "timed_out": "#bc4c00",
    "skipped": "#777",
    "cached": "#6f42c1",
}


def notebook_html(ipynb: bytes) -> str:
    """Render notebook JSON to a standalone HTML page with nbconvert's classic ``lab`` template."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.reads(ipynb.decode("utf-8"), as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    return body


def badge(status: str) -> str:
    """A run or node state as coloured HTML (run tables here, the notebook views of :mod:`nbdeploy.widgets`)."""
    color = STATUS_COLOURS.get(status, "#777")
    return f'<span style="color:{color};font-weight:600">{html.escape(status)}</span>'


def _row(info: Any) -> str:
    progress = ""
    if info.status == "running" and info.current_cell is not None:
        progress = f"cell {info.current_cell + 1}/{info.cell_count}"
    elif info.error_type:
        cell = f" (cell {info.error_cell})" if info.error_cell is not None else ""
        progress = html.escape(f"{info.error_type}{cell}: {(info.error_message or '')[:120]}")
    when = info.started_at or info.queued_at
    return (
        f"<tr><td>{info.id}</td><td>{html.escape(info.job)}</td><td>{badge(info.status)}</td>"
        f"<td>{info.attempt}</td><td>{when:%Y-%m-%d %H:%M:%S}</td>"
        f"<td>{'' if info.duration is None else f'{info.duration:.1f}s'}</td><td>{progress}</td></tr>"
    )


_HEAD = (
    "<table><thead><tr><th>run</th><th>job</th><th>status</th><th>attempt</th><th>started (UTC)</th>"
    "<th>duration</th><th>progress / error</th></tr></thead><tbody>"
)


def run_html(info: Any) -> str:
    """One run as a small HTML table."""
    return _HEAD + _row(info) + "</tbody></table>"


def runs_html(infos: Sequence[Any]) -> str:
    """A list of runs as an HTML table."""
    if not infos:
        return "<p>no runs</p>"
    return _HEAD + "".join(_row(i) for i in infos) + "</tbody></table>"
