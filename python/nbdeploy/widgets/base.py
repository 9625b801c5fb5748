"""What every view shares: a text (and HTML) fallback in its display data, small HTML helpers, and a
background refresher that stops when the kernel's view is closed."""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as w

from ..jobs.render import badge

__all__ = ["Refresher", "View", "api_link", "badge", "html_table", "text_table"]


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows as aligned text columns (what a terminal or a static rendering shows)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    return "\n".join(
        "  ".join(str(v).ljust(wd) for v, wd in zip(r, widths, strict=True)) for r in [list(headers), *rows]
    ).rstrip()


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], css: str = "", escape: bool = True) -> str:
    """Rows as an HTML table (cells escaped unless ``escape`` is false: then they are HTML already)."""
    cell = html.escape if escape else str
    return (
        f"<table class='nbdeploy-table {css}'><thead><tr>"
        + "".join(f"<th style='text-align:left;padding:2px 10px 2px 0'>{html.escape(h)}</th>" for h in headers)
        + "</tr></thead><tbody>"
        + "".join(
            "<tr>" + "".join(f"<td style='padding:2px 10px 2px 0'>{cell(v)}</td>" for v in r) + "</tr>" for r in rows
        )
        + "</tbody></table>"
    )


def api_link(path: str) -> tuple[str, str]:
    """``(link for the browser, full URL)`` of an API ``path`` (``/nbdeploy/api/…``) on the server this kernel's
    nbdeploy found: the link is relative to the page's origin when that server is the Jupyter server showing the
    notebook (so it works behind Binder's or JupyterHub's proxy), the full URL otherwise."""
    from urllib.parse import urlparse

    from ..functions.magics import server_url

    base, token_var = server_url()
    full = base + path
    if token_var == "JUPYTER_TOKEN":
        return urlparse(base).path.rstrip("/") + path, full
    return full, full


class View(w.VBox):
    """A VBox whose display data carries a readable ``text/plain`` (and ``text/html``) beside the widget, so a
    notebook saved without widget state, a static renderer or a text front end still shows what it is."""

    def text(self) -> str:
        """The view as text."""
        return type(self).__name__

    def html(self) -> str | None:
        """The view as static HTML (``None``: none)."""
        return None

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data: dict[str, Any] = super()._repr_mimebundle_(**kwargs)
        data["text/plain"] = self.text()
        markup = self.html()
        if markup is not None:
            data["text/html"] = markup
        return data


class Refresher:
    """Calls ``step`` every ``interval`` seconds on a daemon thread until it returns False, :meth:`stop` is called
    or the widget is closed. Widget updates from a thread reach the front end (ipykernel's iopub is thread-safe)."""

    def __init__(
        self,
        widget: w.Widget,
        step: Callable[[], bool],
        interval: float = 0.5,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._widget = widget
        self._step = step
        self._on_error = on_error
        self._interval = interval
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Refresher:
        """Start the thread (once); return ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="nbdeploy-view", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stopped.is_set() and self._widget.comm is not None:
            try:
                if not self._step():
                    return
            except Exception as exc:  # a view must never take the kernel down: show it and stop
                if self._on_error is not None:
                    self._on_error(exc)
                return
            self._stopped.wait(self._interval)

    def stop(self) -> None:
        """Ask the thread to stop after its current step."""
        self._stopped.set()

    @property
    def running(self) -> bool:
        """Whether the thread is still refreshing."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end."""
        if self._thread is not None:
            self._thread.join(timeout)
