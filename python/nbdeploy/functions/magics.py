"""``%%deploy NAME``: run the cell, then store its handler as a new version and show how to call it (a card with a
"Try it" form in a notebook, text elsewhere); ``%functions`` lists the deployed functions.

A cell that raises, or whose handler cannot be captured, ends as an error (the kernel replies ``status: error``), so
"Run All" and papermill stop there; the previous version keeps serving."""

from __future__ import annotations

import html
import json
import shlex
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..exceptions import NbdeployError

__all__ = ["DeployFailed", "DeployMagics", "example_arguments", "server_url"]


class DeployFailed(NbdeployError):
    """``%%deploy`` deployed nothing: the cell raised, or its handler could not be captured. Shown as one line
    (the cell's own traceback is shown above it); the cell ends as an error."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31mDeployFailed\x1b[0m: not deployed: {self}"]


def server_url() -> tuple[str, str]:
    """Return (base URL of a running nbdeploy server, the token variable to use with it)."""
    from ..app import default
    from ..server_extension.adverts import find_server

    info = find_server(default().settings.runtime_dir, prefer="jupyter")
    if info is None:
        return "http://127.0.0.1:8765", "NBDEPLOY_TOKEN"
    return info["url"], "JUPYTER_TOKEN" if info.get("kind") == "jupyter" else "NBDEPLOY_TOKEN"


def _unquote(value: str | None) -> str | None:
    """``value`` without the quotes IPython's argument parser leaves around it."""
    if value and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def example_arguments(signature: dict[str, Any]) -> dict[str, Any]:
    """Example JSON arguments for a signature: defaults where there are some, typed placeholders otherwise."""
    samples = {"string": "text", "integer": 1, "number": 1.0, "boolean": True, "array": [], "object": {}}
    out = {}
    for p in signature.get("parameters", []):
        if p.get("required"):
            out[p["name"]] = samples.get(p.get("schema", {}).get("type"), None)
    return out


@magics_class
class DeployMagics(Magics):
    """The ``%%deploy`` cell magic."""

    def _shell(self) -> Any:
        """The IPython shell these magics are registered with."""
        if self.shell is None:
            raise RuntimeError("these magics are not registered with an IPython shell")
        return self.shell

    @magic_arguments()
    @argument("name", help="Name of the function (lower-case letters, digits, '.', '_', '-').")
    @argument("--handler", default=None, help="The function to serve (default: the last one the cell defines).")
    @argument("--capture", default=None, help="Comma-separated globals to pickle with the function.")
    @argument("--requirements", default=None, help='Extra requirements, e.g. "scikit-learn>=1.5,pandas".')
    @argument("--description", default=None, help="One line describing the function.")
    @argument("--timeout", default=None, type=float, help="Seconds a call may take (default 60).")
    @argument("--gpu", action="store_true", help="Serve it on GPU workers (Dask resource GPU=1).")
    @cell_magic
    def deploy(self, line: str, cell: str) -> Any:
        """Run the cell; if it succeeds, deploy its handler as a new version of NAME."""
        args = parse_argstring(self.deploy, line)
        result = self._shell().run_cell(cell)
        if not result.success:
            error = result.error_in_exec or result.error_before_exec
            what = f" ({type(error).__name__}: {error})" if error is not None else ""
            raise DeployFailed(f"the cell failed{what}, so {args.name!r} keeps serving its previous version")
        from ..app import default

        try:
            deployment = default().functions.deploy_cell(
                cell,
                self._shell().user_ns,
                args.name,
                handler=args.handler,
                capture=[c.strip() for c in args.capture.split(",") if c.strip()] if args.capture else None,
                requirements=_unquote(args.requirements),
                description=_unquote(args.description),
                timeout=args.timeout,
                resources={"GPU": 1} if args.gpu else None,
            )
        except NbdeployError as exc:
            raise DeployFailed(str(exc)) from None
        self._show(deployment)
        return None

    @magic_arguments()
    @argument("name", nargs="?", default=None, help="A function: its serving statistics.")
    @argument("--plot", action="store_true", help="With NAME: a figure of its latency and request rate.")
    @line_magic
    def functions(self, line: str) -> Any:
        """``%functions``: the deployed functions (a table that refreshes, in a notebook). ``%functions NAME``: the
        function's serving statistics; ``%functions NAME --plot``: their figure (latency histogram, request rate)."""
        from IPython.display import display

        from ..app import default
        from ..widgets import widgets_enabled

        args = parse_argstring(self.functions, line)
        if args.plot and not args.name:
            print("usage: %functions NAME --plot")
            return None
        if args.name:
            try:
                if args.plot:
                    return default().functions.plot(args.name)
                stats = default().functions.stats(args.name)
            except NbdeployError as exc:
                print(f"error: {exc}")
                return None
            lat = stats.get("latency_ms") or {}
            timing = f", latency p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms" if "p50" in lat else ""
            print(f"{args.name}: {stats['requests']} request(s), {stats['errors']} error(s){timing}")
            return None
        if widgets_enabled():
            from ..widgets import FunctionsTable

            display(FunctionsTable(default()))
            return None
        found = default().functions.list().functions
        if not found:
            print("no functions deployed yet: %%deploy NAME over a cell, or nbd.deploy(fn)")
            return None
        for f in found:
            print(f"{f.name}  v{f.version}  {f.path}  {f.description}".rstrip())
        return None

    def _show(self, deployment: Any) -> None:
        from IPython.display import display

        from ..widgets import widgets_enabled

        if widgets_enabled():
            from ..app import default
            from ..widgets.deploy_card import deploy_card

            display(deploy_card(default(), deployment))
            return
        base, token_var = server_url()
        url = base + deployment.path
        body = json.dumps(example_arguments(deployment.signature))
        curl = (
            f'curl -X POST {shlex.quote(url)} -H "Authorization: token ${token_var}" '
            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
        )
        v = deployment.version
        lines = [f"deployed {v.name} v{v.version} ({v.size:,d} bytes, sha256 {v.sha256[:12]})", f"  POST {url}"]
        captured = v.metadata.get("captured") or {}
        if captured:
            lines.append("  captured: " + ", ".join(f"{k} ({t})" for k, t in captured.items()))
        lines += [f"  {w}" for w in deployment.warnings]
        lines.append(f"  {curl}")
        text = "\n".join(lines)
        rows = "".join(f"<div>{html.escape(line.strip())}</div>" for line in lines[1:-1])
        markup = (
            f"<div class='nbdeploy-deployed'><b>deployed {html.escape(v.name)} v{v.version}</b>"
            f"<div><code>POST {html.escape(url)}</code></div>{rows}"
            f"<pre style='white-space:pre-wrap'>{html.escape(curl)}</pre></div>"
        )
        display({"text/plain": text, "text/html": markup}, raw=True)
