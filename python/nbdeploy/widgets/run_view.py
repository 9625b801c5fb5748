"""The live view of a run: status, a progress bar over cells (k/N), the streaming log tail and, once it ends, links
to its output notebook. It reads everything through the Python API (``run.refresh()``, ``run.log(follow=True)``),
on background threads, so ``run.wait()`` and other cells keep working beside it.

A run made of nodes (a pipeline) reuses the same view: pass ``nodes``, a callable returning :class:`NodeRow`
rows (name, state, detail); they are drawn as a table under the status and refreshed with it.
"""

from __future__ import annotations

import html
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as w

from .base import Refresher, View, api_link, badge, html_table, text_table

__all__ = ["NodeRow", "RunView", "pipeline_run_view", "run_view"]

LOG_LINES = 15
LINK = "color:#1f6feb;text-decoration:underline"


@dataclass(frozen=True)
class NodeRow:
    """One node of a run made of nodes: its ``name``, ``status`` (a run state, or ``skipped``/``cached``), a short
    ``detail`` (e.g. "cell 3/7" or the error) and the ``run_id`` of the node's own run, if it has one."""

    name: str
    status: str
    detail: str = ""
    run_id: int | None = None


ENDED = ("succeeded", "skipped", "failed", "cancelled", "timed_out")


def _progress(info: Any) -> tuple[int, int]:
    """(cells done, cells in all) of a run snapshot, (nodes ended, nodes in all) of a pipeline run's; (0, 0) before
    the run knows its cells."""
    nodes = getattr(info, "nodes", None)
    if isinstance(nodes, dict) and nodes:
        return sum(1 for state in nodes.values() if state.status in ENDED), len(nodes)
    total = getattr(info, "cell_count", None) or 0
    current = getattr(info, "current_cell", None)
    if getattr(info, "status", "") == "succeeded":
        return total, total
    return (min(int(current), total) if current is not None else 0), int(total)


def _kind(info: Any) -> str:
    return "pipeline run" if hasattr(info, "pipeline") else "run"


class RunView(View):
    """A live view of ``run`` (a :class:`~nbdeploy.jobs.runs.Run`, or any object with ``id``, ``refresh()``,
    ``snapshot`` and ``log(follow=True)``). Refreshes every ``interval`` seconds until the run ends; ``nodes``
    (see :class:`NodeRow`) adds a table of node states."""

    def __init__(
        self,
        run: Any,
        *,
        nodes: Callable[[], Sequence[NodeRow]] | None = None,
        interval: float = 0.5,
        follow_log: bool = True,
        log_lines: int = LOG_LINES,
    ) -> None:
        self.run = run
        self._nodes = nodes
        self._node_rows: list[NodeRow] = list(nodes()) if nodes is not None else []
        self._log_lines = log_lines
        self._log: list[str] = []
        self._lock = threading.Lock()
        self.title = w.HTML()
        self.progress = w.IntProgress(
            value=0, min=0, max=1, description="nodes" if nodes is not None else "cells", bar_style="info"
        )
        self.progress_label = w.Label("")
        self.cancel_button = w.Button(description="Cancel", icon="stop", button_style="warning")
        self.cancel_button.on_click(lambda _: self.cancel())
        self.nodes_html = w.HTML()
        self.log_html = w.HTML(layout=w.Layout(max_height="16em", overflow="auto"))
        self.links = w.HTML()
        self.message = w.HTML()
        super().__init__(
            [
                self.title,
                w.HBox([self.progress, self.progress_label, self.cancel_button]),
                self.nodes_html,
                self.log_html,
                self.links,
                self.message,
            ]
        )
        self.add_class("nbdeploy-run-view")
        self._update(run.snapshot)
        self._poller = Refresher(self, self._poll, interval, on_error=self._show_error)
        self._follower: threading.Thread | None = None
        if not getattr(run.snapshot, "done", False):
            self._poller.start()
            if follow_log and hasattr(run, "log"):
                self._follower = threading.Thread(target=self._follow, name="nbdeploy-log", daemon=True)
                self._follower.start()
        else:
            self._load_final_log()

    # --- reading the API -------------------------------------------------------------------------------------
    def _poll(self) -> bool:
        info = self.run.refresh().snapshot
        if self._nodes is not None:
            self._node_rows = list(self._nodes())
        self._update(info)
        if info.done:
            if self._follower is None:
                self._load_final_log()
            return False
        return True

    def _follow(self) -> None:
        try:
            for piece in self.run.log(follow=True):
                with self._lock:
                    self._log.append(piece)
                self._render_log()
        except Exception as exc:
            self._show_error(exc)

    def _load_final_log(self) -> None:
        try:
            has_log = hasattr(self.run, "log") and getattr(self.run.snapshot, "has_log", True)
            text = self.run.log() if has_log else ""
        except Exception:  # no log kept (e.g. cancelled before it started)
            text = ""
        with self._lock:
            self._log = [text]
        self._render_log()

    def cancel(self) -> None:
        """Ask for the run to be cancelled (the run view shows it end)."""
        try:
            self.run.cancel()
            self.message.value = "<i>cancel requested</i>"
        except Exception as exc:
            self._show_error(exc)

    def wait(self, timeout: float | None = None) -> RunView:
        """Wait until the view has shown the run's end (for scripts and tests); return ``self``."""
        self._poller.join(timeout)
        if self._follower is not None:
            self._follower.join(timeout)
        return self

    # --- drawing ----------------------------------------------------------------------------------------------
    def _update(self, info: Any) -> None:
        done, total = _progress(info)
        name = getattr(info, "job", None) or getattr(info, "pipeline", None) or getattr(info, "name", "")
        attempt = getattr(info, "attempt", 1)
        self.title.value = (
            f"<b>{_kind(info)} {self.run.id}</b> of <code>{html.escape(str(name))}</code>: {badge(info.status)}"
            + (f" (attempt {attempt})" if attempt and attempt > 1 else "")
        )
        self.progress.max = max(total, 1)
        self.progress.value = done
        self.progress.bar_style = {"succeeded": "success", "failed": "danger", "timed_out": "danger"}.get(
            info.status, "warning" if info.status == "cancelled" else "info"
        )
        self.progress_label.value = f"{done}/{total}" if total else info.status
        self.cancel_button.disabled = bool(info.done)
        self.cancel_button.layout.display = "none" if info.done else None
        if self._node_rows:
            self.nodes_html.value = html_table(
                ["node", "status", "detail"],
                [[html.escape(n.name), badge(n.status), html.escape(n.detail)] for n in self._node_rows],
                escape=False,
            )
        if info.done:
            error = getattr(info, "error_type", None)
            if error:
                cell = getattr(info, "error", None)
                where = f" in cell {cell.cell}" if cell is not None and cell.cell is not None else ""
                self.message.value = (
                    f"<span style='color:#cf222e'>{html.escape(error)}{where}: "
                    f"{html.escape((info.error_message or '')[:300])}</span>"
                )
            if getattr(info, "has_output", False):
                page, _ = api_link(f"/nbdeploy/api/runs/{self.run.id}/output?format=html")
                nb, _ = api_link(f"/nbdeploy/api/runs/{self.run.id}/output")
                self.links.value = (
                    f"<a href='{html.escape(page)}' target='_blank' style='{LINK}'>open the output notebook</a> · "
                    f"<a href='{html.escape(nb)}' target='_blank' style='{LINK}'>download run-{self.run.id}.ipynb</a> · "
                    f"<code>nbd.runs.get({self.run.id}).output()</code>"
                )

    def _render_log(self) -> None:
        with self._lock:
            lines = "".join(self._log).splitlines()[-self._log_lines :]
        self.log_html.value = (
            "<pre style='margin:0;font-size:85%;white-space:pre-wrap'>" + html.escape("\n".join(lines)) + "</pre>"
            if lines
            else ""
        )

    def _show_error(self, exc: BaseException) -> None:
        self.message.value = f"<span style='color:#cf222e'>{html.escape(f'{type(exc).__name__}: {exc}')}</span>"

    def text(self) -> str:
        info = self.run.snapshot
        done, total = _progress(info)
        lines = [
            f"{_kind(info)} {self.run.id} of "
            f"{getattr(info, 'job', None) or getattr(info, 'pipeline', None) or getattr(info, 'name', '')}: {info.status}"
            + (f" ({done}/{total} {self.progress.description})" if total else "")
        ]
        if self._node_rows:
            lines.append(
                text_table(["node", "status", "detail"], [[n.name, n.status, n.detail] for n in self._node_rows])
            )
        return "\n".join(lines)


_VIEWS: weakref.WeakValueDictionary[int, RunView] = weakref.WeakValueDictionary()


def run_view(run: Any, **options: Any) -> RunView:
    """The live view of ``run``, shared by every display of the same run in this kernel (one set of threads)."""
    view = _VIEWS.get(run.id)
    if view is None or view.comm is None:
        view = RunView(run, **options)
        _VIEWS[run.id] = view
    return view


def _pipeline_nodes(run: Any) -> list[NodeRow]:
    """The node rows of a pipeline run's last snapshot: a skip's or failure's reason, or a running node's cells."""
    rows = []
    for name, state in run.snapshot.nodes.items():
        detail = state.reason or ""
        if state.status == "running" and state.progress is not None:
            detail = f"cell {state.progress.done}/{state.progress.total}"
        rows.append(NodeRow(name, state.status, detail, state.run))
    return rows


_PIPELINE_VIEWS: weakref.WeakValueDictionary[int, RunView] = weakref.WeakValueDictionary()


def pipeline_run_view(run: Any, **options: Any) -> RunView:
    """The live view of a pipeline run (a :class:`~nbdeploy.pipelines.manager.PipelineRunHandle`): its state, nodes
    ended out of all, and a row per node; shared by every display of the same pipeline run in this kernel."""
    view = _PIPELINE_VIEWS.get(run.id)
    if view is None or view.comm is None:
        view = RunView(run, nodes=lambda: _pipeline_nodes(run), follow_log=False, **options)
        _PIPELINE_VIEWS[run.id] = view
    return view
