"""Tables that refresh, with actions, over the Python API: runs (cancel one), models (set an alias), functions,
datasets and the cluster. Each takes the :class:`~nbdeploy.app.Nbdeploy` object and calls it; a Refresh button
reads again, and the runs table refreshes itself while some run it lists has not ended."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as w

from .base import Refresher, View, badge, html_table, text_table

__all__ = ["ClusterView", "DatasetsTable", "FunctionsTable", "ModelsTable", "RunsTable", "TableView"]


def _when(value: Any) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


class TableView(View):
    """A titled table with a Refresh button, a message line and optional ``actions`` widgets under it.
    Subclasses implement :meth:`rows` (``(headers, HTML cells, text cells)``)."""

    title = "table"
    empty = "nothing yet"

    def __init__(self, app: Any, actions: Sequence[w.Widget] = ()) -> None:
        self.app = app
        self.heading = w.HTML(f"<b>{html.escape(self.title)}</b>")
        self.refresh_button = w.Button(description="Refresh", icon="refresh", layout=w.Layout(width="auto"))
        self.refresh_button.on_click(lambda _: self.refresh())
        self.table = w.HTML()
        self.message = w.HTML()
        self._text = ""
        self._html = ""
        super().__init__(
            [
                w.HBox([self.heading, self.refresh_button]),
                self.table,
                *([w.HBox(list(actions))] if actions else []),
                self.message,
            ]
        )
        self.add_class("nbdeploy-table-view")
        self.refresh()

    def rows(self) -> tuple[list[str], list[list[str]], list[list[str]]]:
        """``(headers, rows of HTML cells, rows of text cells)``."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Read the API again and redraw (an error is shown under the table, not raised)."""
        try:
            headers, cells, texts = self.rows()
        except Exception as exc:
            self.say(f"{type(exc).__name__}: {exc}", error=True)
            return
        if not cells:
            self.table.value = f"<i>{html.escape(self.empty)}</i>"
            self._text = self.empty
        else:
            self.table.value = html_table(headers, cells, escape=False)
            self._text = text_table(headers, texts)
        self._html = self.table.value
        self.after_refresh()

    def after_refresh(self) -> None:
        """Hook: update the action widgets from the new rows."""

    def say(self, text: str, error: bool = False) -> None:
        """Show a one-line message under the table."""
        colour = "#cf222e" if error else "#1a7f37"
        self.message.value = f"<span style='color:{colour}'>{html.escape(text)}</span>"

    def text(self) -> str:
        return f"{self.title}\n{self._text}"

    def html(self) -> str | None:
        return f"<b>{html.escape(self.title)}</b>{self._html}"


class RunsTable(TableView):
    """The newest runs (of ``job``, in ``status``); a run can be cancelled; refreshes itself while a run is active."""

    title = "runs"
    empty = "no runs yet: nbd.jobs.run(name) or %run_job NAME starts one"

    def __init__(self, app: Any, job: str | None = None, status: str | None = None, limit: int = 20) -> None:
        self.filters = {"job": job, "status": status, "limit": limit}
        self.runs: list[Any] = []
        self.choice = w.Dropdown(description="run", options=[], layout=w.Layout(width="16em"))
        self.cancel_button = w.Button(description="Cancel run", icon="stop", button_style="warning")
        self.cancel_button.on_click(lambda _: self.cancel(self.choice.value))
        super().__init__(app, [self.choice, self.cancel_button])
        self._auto = Refresher(self, self._tick, 1.0)
        if any(not r.snapshot.done for r in self.runs):
            self._auto.start()

    def _tick(self) -> bool:
        self.refresh()
        return any(not r.snapshot.done for r in self.runs)

    def rows(self) -> tuple[list[str], list[list[str]], list[list[str]]]:
        self.runs = self.app.runs.list(**self.filters)
        headers = ["run", "job", "status", "attempt", "started (UTC)", "duration", "progress / error"]
        cells, texts = [], []
        for run in self.runs:
            i = run.snapshot
            progress = ""
            if i.status == "running" and i.current_cell is not None:
                progress = f"cell {i.current_cell + 1}/{i.cell_count}"
            elif i.error_type:
                progress = f"{i.error_type}: {(i.error_message or '')[:80]}"
            row = [str(i.id), i.job, i.status, str(i.attempt), _when(i.started_at or i.queued_at)]
            row += ["" if i.duration is None else f"{i.duration:.1f}s", progress]
            texts.append(row)
            cells.append([html.escape(v) if k != 2 else badge(v) for k, v in enumerate(row)])
        return headers, cells, texts

    def after_refresh(self) -> None:
        active = [(f"{r.id} {r.snapshot.job} ({r.snapshot.status})", r.id) for r in self.runs if not r.snapshot.done]
        current = self.choice.value
        self.choice.options = active
        ids = [v for _, v in active]
        self.choice.value = current if current in ids else (ids[0] if ids else None)
        self.cancel_button.disabled = not active
        for widget in (self.choice, self.cancel_button):  # shown only while a run can be cancelled
            widget.layout.display = None if active else "none"
        if active and self._auto is not None and not self._auto.running:
            self._auto.start()

    _auto: Refresher | None = None

    def cancel(self, run_id: int | None) -> None:
        """Ask for run ``run_id`` to be cancelled (``app.runs.cancel``) and refresh."""
        if run_id is None:
            self.say("choose a run that has not ended", error=True)
            return
        try:
            self.app.runs.cancel(run_id)
        except Exception as exc:
            self.say(f"{type(exc).__name__}: {exc}", error=True)
            return
        self.say(f"cancel requested for run {run_id}")
        self.refresh()


class ModelsTable(TableView):
    """Every model's newest version, its aliases and metrics; an alias can be pointed at a version."""

    title = "models"
    empty = "no models stored yet: `%model put VAR NAME` or nbd.models.put(model, name) stores one"

    def __init__(self, app: Any) -> None:
        self.model = w.Dropdown(description="model", options=[], layout=w.Layout(width="16em"))
        self.version = w.BoundedIntText(
            value=1, min=1, max=1_000_000, description="version", layout=w.Layout(width="10em")
        )
        self.alias = w.Text(value="production", description="alias", layout=w.Layout(width="14em"))
        self.alias_button = w.Button(description="Set alias", icon="tag")
        self.alias_button.on_click(lambda _: self.set_alias(self.model.value, self.alias.value, self.version.value))
        super().__init__(app, [self.model, self.version, self.alias, self.alias_button])

    def rows(self) -> tuple[list[str], list[list[str]], list[list[str]]]:
        self.models = self.app.models.list().models
        headers = ["name", "version", "flavor", "aliases", "metrics", "created (UTC)"]
        texts = [
            [
                m.name,
                str(m.version),
                m.flavor,
                ", ".join(m.aliases),
                ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in m.metrics.items()),
                _when(m.created_at),
            ]
            for m in self.models
        ]
        return headers, [[html.escape(v) for v in r] for r in texts], texts

    def after_refresh(self) -> None:
        names = [m.name for m in self.models]
        current = self.model.value
        self.model.options = names
        self.model.value = current if current in names else (names[0] if names else None)
        self.alias_button.disabled = not names

    def set_alias(self, name: str | None, alias: str, version: int) -> None:
        """Point ``alias`` of model ``name`` at ``version`` (``app.models.set_alias``) and refresh."""
        if not name:
            self.say("choose a model", error=True)
            return
        try:
            mv = self.app.models.set_alias(name, alias.strip(), int(version))
        except Exception as exc:
            self.say(f"{type(exc).__name__}: {exc}", error=True)
            return
        self.refresh()
        self.say(f"{alias.strip()} -> {mv.name} v{mv.version}")


class FunctionsTable(TableView):
    """Every deployed function's newest version and where to call it."""

    title = "functions"
    empty = "no functions deployed yet: %%deploy NAME over a cell, or nbd.deploy(fn)"

    def rows(self) -> tuple[list[str], list[list[str]], list[list[str]]]:
        found = self.app.functions.list().functions
        headers = ["name", "version", "aliases", "description", "path", "created (UTC)"]
        texts = [
            [f.name, str(f.version), ", ".join(f.aliases), f.description, f.path, _when(f.created_at)] for f in found
        ]
        return headers, [[html.escape(v) for v in r] for r in texts], texts


class DatasetsTable(TableView):
    """Every dataset's newest version: rows, columns, aliases."""

    title = "datasets"
    empty = "no datasets yet: nbd.datasets.put(df, 'name')"

    def rows(self) -> tuple[list[str], list[list[str]], list[list[str]]]:
        found = self.app.datasets.list().datasets
        headers = ["name", "version", "rows", "columns", "aliases", "created (UTC)"]
        texts = [
            [d.name, f"v{d.version}", f"{d.rows:,d}", str(len(d.columns)), ", ".join(d.aliases), _when(d.created_at)]
            for d in found
        ]
        return headers, [[html.escape(v) for v in r] for r in texts], texts


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


class ClusterView(TableView):
    """The cluster: mode, scheduler, dashboard link and one row per worker (threads, memory, GPUs, tasks); a worker
    count and a Scale button scale it (``app.runtime.scale``) when nbdeploy owns it."""

    title = "cluster"
    empty = "no workers"

    def __init__(self, app: Any) -> None:
        self.summary = w.HTML()
        self.workers = w.BoundedIntText(
            value=1, min=1, max=max(1, app.runtime.max_workers()), description="workers", layout=w.Layout(width="10em")
        )
        self.scale_button = w.Button(
            description="Scale", icon="arrows-v", tooltip="Scale the cluster to this many workers"
        )
        self.scale_button.on_click(lambda _: self.scale(self.workers.value))
        self._scaled = False
        super().__init__(app, [w.VBox([self.summary, w.HBox([self.workers, self.scale_button])])])

    def after_refresh(self) -> None:
        if not self._scaled and getattr(self, "_status", None):  # start from the current count
            self.workers.value = max(1, min(self.workers.max, len(self._status["workers"])))

    def scale(self, n: int) -> None:
        """Scale the cluster to ``n`` workers (``app.runtime.scale``, which waits for them) and refresh; an error
        (an external cluster, a bad count) is shown under the table."""
        self._scaled = True
        self.scale_button.disabled = True
        self.say(f"scaling to {n} worker(s)…")
        try:
            self.app.runtime.scale(int(n))
        except Exception as exc:
            self.say(f"{type(exc).__name__}: {exc}", error=True)
            return
        finally:
            self.scale_button.disabled = False
        self.refresh()
        self.say(f"scaled to {n} worker(s)")

    def rows(self) -> tuple[list[str], list[list[str]], list[list[str]]]:
        status = self.app.runtime.status()
        from .base import api_link

        dashboard = ""
        if status.get("dashboard_url"):
            link, _ = api_link(status["dashboard_url"])
            dashboard = f" · <a href='{html.escape(link)}' target='_blank'>Dask dashboard</a>"
        self.summary.value = (
            f"{html.escape(str(status.get('mode')))} cluster at <code>{html.escape(str(status.get('scheduler_address')))}"
            f"</code>: {len(status['workers'])} worker(s), {status['total_threads']} threads, "
            f"{_bytes(status['total_memory'])}, {status['tasks_running']} task(s) running{dashboard}"
        )
        headers = ["worker", "threads", "memory", "GPUs", "executing"]
        texts = [
            [wk["name"], str(wk["nthreads"]), _bytes(wk["memory_limit"]), str(wk["gpus"]), str(wk["executing"])]
            for wk in status["workers"]
        ]
        self._status = status
        return headers, [[html.escape(v) for v in r] for r in texts], texts

    def text(self) -> str:
        s = getattr(self, "_status", {})
        return f"{s.get('mode')} cluster at {s.get('scheduler_address')}\n{self._text}"
