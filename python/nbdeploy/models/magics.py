"""``%model put VAR NAME [--alias A]`` stores a model from the notebook; ``%models`` lists the stored ones."""

from __future__ import annotations

import html
import json
import shlex
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..exceptions import NbdeployError


def _unquote(value: str) -> str:
    """``value`` without the quotes IPython's argument parser leaves around it."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _table(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """(text, HTML) tables of model summaries."""
    headers = ("name", "version", "flavor", "aliases", "metrics", "created")
    cells = [
        (
            r["name"],
            str(r["version"]),
            r["flavor"],
            ", ".join(r.get("aliases") or []),
            ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in (r.get("metrics") or {}).items()
            ),
            r["created_at"][:19].replace("T", " "),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    text = "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in [headers, *cells]
    ).rstrip()
    markup = (
        "<table class='nbdeploy-models'><thead><tr>"
        + "".join(f"<th>{h}</th>" for h in headers)
        + "</tr></thead><tbody>"
        + "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in cells)
        + "</tbody></table>"
    )
    return text, markup


@magics_class
class ModelMagics(Magics):
    """The ``%model`` and ``%models`` line magics."""

    def _shell(self) -> Any:
        """The IPython shell these magics are registered with."""
        if self.shell is None:
            raise RuntimeError("these magics are not registered with an IPython shell")
        return self.shell

    @magic_arguments()
    @argument("action", choices=["put"], help="What to do: 'put' stores a model.")
    @argument("variable", help="The notebook variable holding the trained model.")
    @argument("name", help="Name of the model (lower-case letters, digits, '.', '_', '-').")
    @argument("--alias", default=None, help="Point this alias (e.g. production) at the new version.")
    @argument("--sample", default=None, help="Variable with a few training rows: the signature and drift baseline.")
    @argument("--metrics", default=None, help="Metrics as JSON, e.g. '{\"auc\": 0.91}'.")
    @argument("--method", default="predict", help="Method predictions call (default predict).")
    @line_magic
    def model(self, line: str) -> None:
        """``%model put VAR NAME [--alias A] [--sample VAR] [--metrics JSON]``: store VAR as a new version."""
        args = parse_argstring(self.model, line)
        ns = self._shell().user_ns
        if args.variable not in ns:
            print(f"not stored: there is no variable {args.variable!r} in the notebook")
            return
        sample = None
        if args.sample is not None:
            if args.sample not in ns:
                print(f"not stored: there is no variable {args.sample!r} for --sample")
                return
            sample = ns[args.sample]
        try:
            metrics = json.loads(_unquote(args.metrics)) if args.metrics else None
        except ValueError as exc:
            print(f"not stored: --metrics is not valid JSON ({exc})")
            return
        from ..app import default

        try:
            mv = default().models.put(
                ns[args.variable], args.name, metrics=metrics, sample_input=sample, alias=args.alias, method=args.method
            )
        except NbdeployError as exc:
            print(f"not stored: {exc}")
            return
        self._show(mv)

    def _show(self, mv: Any) -> None:
        from IPython.display import display

        from ..functions.magics import server_url
        from .signature import example_payload

        base, token_var = server_url()
        url = base + mv.path
        body = json.dumps(example_payload(mv.metadata.get("signature"), mv.metadata.get("example")))
        curl = (
            f'curl -X POST {shlex.quote(url)} -H "Authorization: token ${token_var}" '
            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
        )
        lines = [
            f"stored model {mv.name} v{mv.version} ({mv.flavor}, {mv.format}, {mv.size:,d} bytes)"
            + (f" as {', '.join(mv.aliases)}" if mv.aliases else ""),
            f"  POST {url}",
        ]
        if mv.metadata.get("signature"):
            sig = mv.metadata["signature"]
            if sig["type"] == "dataframe":
                lines.append("  input: " + ", ".join(f"{c['name']} ({c['dtype']})" for c in sig["columns"]))
            else:
                lines.append(f"  input: array {sig['shape']} of {sig['dtype']}")
        else:
            lines.append("  input: not checked (store with --sample VAR to record a signature)")
        if mv.metadata.get("note"):
            lines.append(f"  {mv.metadata['note']}")
        lines.append(f"  {curl}")
        text = "\n".join(lines)
        rows = "".join(f"<div>{html.escape(line.strip())}</div>" for line in lines[1:-1])
        markup = (
            f"<div class='nbdeploy-model'><b>{html.escape(lines[0])}</b>{rows}"
            f"<pre style='white-space:pre-wrap'>{html.escape(curl)}</pre></div>"
        )
        display({"text/plain": text, "text/html": markup}, raw=True)

    @line_magic
    def models(self, line: str) -> None:
        """``%models``: every stored model's newest version, its aliases and metrics (in a notebook, a table that
        refreshes, with a "set alias" action)."""
        from IPython.display import display

        from ..app import default
        from ..widgets import widgets_enabled

        if widgets_enabled():
            from ..widgets import ModelsTable

            display(ModelsTable(default()))
            return
        try:
            rows = [m.to_json() for m in default().models.list().models]
        except NbdeployError as exc:
            print(f"cannot list models: {exc}")
            return
        if not rows:
            print("no models stored yet: `%model put VAR NAME` or nbd.models.put(model, name) stores one")
            return
        text, markup = _table(rows)
        display({"text/plain": text, "text/html": markup}, raw=True)
