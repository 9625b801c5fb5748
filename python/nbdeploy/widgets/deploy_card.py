"""What ``%%deploy`` shows: a card with the function's name, version and URL, a copy button, a "Try it" form
generated from its signature (the same form fields the lab's form uses, :mod:`nbdeploy.forms`) and the answer with
its latency. One card per function name in a kernel: a redeploy updates it (every view of it shows the new
version) and shows it again."""

from __future__ import annotations

import html
import json
import shlex
import time
from typing import Any

import ipywidgets as w

from .base import View, api_link

__all__ = ["DeployCard", "deploy_card"]


def _input(field: Any) -> w.Widget:
    """The input widget of one form field (its ``initial`` text, or a checkbox for a boolean)."""
    label = field.name + (" *" if field.required else "")
    style = {"description_width": "initial"}
    if field.type == "bool":
        return w.Checkbox(value=bool(field.initial), description=label, indent=False, style=style)
    if field.type in ("list", "dict", "none"):
        return w.Textarea(value=str(field.initial), description=label, placeholder="JSON", style=style)
    return w.Text(value=str(field.initial), description=label, placeholder=field.help or field.type, style=style)


class DeployCard(View):
    """The card of a deployed function. ``app`` is the :class:`~nbdeploy.app.Nbdeploy` it calls (``functions``),
    ``deployment`` what :meth:`FunctionManager.deploy_cell` returned."""

    def __init__(self, app: Any, deployment: Any) -> None:
        self.app = app
        self.header = w.HTML()
        self.url = w.Text(disabled=True, layout=w.Layout(width="60%"))
        self.copy = w.HTML()
        self.details = w.HTML()
        self.form = w.VBox()
        self.call_button = w.Button(description="Try it", icon="play", button_style="primary")
        self.call_button.on_click(lambda _: self.call())
        self.answer = w.HTML()
        self.latency = w.HTML()
        self.calls = 0
        super().__init__(
            [
                self.header,
                w.HBox([self.url, self.copy]),
                self.details,
                w.HTML("<b>Try it</b>"),
                self.form,
                w.HBox([self.call_button, self.latency]),
                self.answer,
            ],
            layout=w.Layout(border="1px solid #d0d7de", padding="6px"),
        )
        self.add_class("nbdeploy-deploy-card")
        self.update(deployment)

    def update(self, deployment: Any) -> None:
        """Show ``deployment`` (a newer version of the same function): header, URL, form; the last answer is
        cleared."""
        from ..forms import schema_fields

        self.deployment = deployment
        v = deployment.version
        _, full = api_link(deployment.path)
        self.header.value = (
            f"<b>deployed {html.escape(v.name)} v{v.version}</b> "
            f"<span style='color:#777'>({v.size:,d} bytes, sha256 {v.sha256[:12]})</span>"
        )
        self.url.value = full
        self.copy.value = (
            "<button class='jupyter-button' title='copy the URL' "
            f"onclick='navigator.clipboard.writeText({html.escape(json.dumps(full))})'>copy</button>"
        )
        captured = v.metadata.get("captured") or {}
        lines = [f"POST <code>{html.escape(full)}</code>"]
        if v.metadata.get("description"):
            lines.append(html.escape(v.metadata["description"]))
        if captured:
            lines.append("captured: " + html.escape(", ".join(f"{k} ({t})" for k, t in captured.items())))
        lines += [f"<span style='color:#9a6700'>{html.escape(x)}</span>" for x in deployment.warnings]
        self.details.value = "".join(f"<div>{line}</div>" for line in lines)
        self.fields = schema_fields(deployment.signature.get("request", {}))
        self.inputs = {f.name: _input(f) for f in self.fields}
        self.form.children = list(self.inputs.values())
        self.answer.value = ""
        self.latency.value = ""

    def call(self) -> Any:
        """Call the deployed version with what the form holds (through ``app.functions.invoke``); show the answer
        and its latency, or the error. Returns the answer (``None`` after an error)."""
        from ..forms import coerce

        given = {name: widget.value for name, widget in self.inputs.items()}
        values = coerce(self.fields, given)
        if values.errors:
            self.answer.value = (
                "<span style='color:#cf222e'>"
                + html.escape("; ".join(f"{k}: {e}" for k, e in values.errors.items()))
                + "</span>"
            )
            return None
        v = self.deployment.version
        self.latency.value = "<i>calling…</i>"
        start = time.perf_counter()
        try:
            result = self.app.functions.invoke(v.name, version=v.version, **values.values)
        except Exception as exc:
            self.latency.value = f"{(time.perf_counter() - start) * 1000:.1f} ms"
            self.answer.value = f"<span style='color:#cf222e'>{html.escape(f'{type(exc).__name__}: {exc}')}</span>"
            return None
        elapsed = (time.perf_counter() - start) * 1000
        self.calls += 1
        self.latency.value = f"answered in {elapsed:.1f} ms"
        try:
            shown = json.dumps(result, indent=1, default=str)
        except (TypeError, ValueError):
            shown = repr(result)
        self.answer.value = f"<pre style='margin:0'>{html.escape(shown[:4000])}</pre>"
        return result

    def curl(self) -> str:
        """The curl command that calls this version with the form's example arguments."""
        from ..functions.magics import example_arguments, server_url

        _, token_var = server_url()
        body = json.dumps(example_arguments(self.deployment.signature))
        return (
            f'curl -X POST {shlex.quote(self.url.value)} -H "Authorization: token ${token_var}" '
            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
        )

    def text(self) -> str:
        v = self.deployment.version
        lines = [
            f"deployed {v.name} v{v.version} ({v.size:,d} bytes, sha256 {v.sha256[:12]})",
            f"  POST {self.url.value}",
        ]
        captured = v.metadata.get("captured") or {}
        if captured:
            lines.append("  captured: " + ", ".join(f"{k} ({t})" for k, t in captured.items()))
        lines += [f"  {x}" for x in self.deployment.warnings]
        lines.append(f"  {self.curl()}")
        return "\n".join(lines)


_CARDS: dict[str, DeployCard] = {}


def deploy_card(app: Any, deployment: Any) -> DeployCard:
    """The card of ``deployment``'s function in this kernel: the existing one updated, or a new one."""
    card = _CARDS.get(deployment.name)
    if card is not None and card.comm is not None and card.app is app:
        card.update(deployment)
        return card
    card = _CARDS[deployment.name] = DeployCard(app, deployment)
    return card
