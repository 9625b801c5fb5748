"""``%datasets`` lists the stored datasets; ``%datasets NAME`` shows one with its lineage;
``%datasets profile NAME [VERSION]`` shows its profile report."""

from __future__ import annotations

import html
import shlex
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class

from ..exceptions import NbdeployError


def _table(headers: list[str], rows: list[list[str]]) -> dict[str, str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    text = "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in [headers, *rows]).rstrip()
    markup = (
        "<table class='nbdeploy-datasets'><thead><tr>"
        + "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        + "</tr></thead><tbody>"
        + "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in rows)
        + "</tbody></table>"
    )
    return {"text/plain": text, "text/html": markup}


@magics_class
class DatasetMagics(Magics):
    """The ``%datasets`` line magic."""

    @line_magic
    def datasets(self, line: str) -> Any:
        """``%datasets`` | ``%datasets NAME`` | ``%datasets profile NAME [VERSION]``."""
        from IPython.display import HTML, display

        from ..app import default

        args = shlex.split(line)
        manager = default().datasets
        try:
            if not args:
                from ..widgets import widgets_enabled

                if widgets_enabled():
                    from ..widgets import DatasetsTable

                    display(DatasetsTable(default()))
                    return None
                found = manager.list().datasets
                if not found:
                    print("no datasets yet: nbd.datasets.put(df, 'name')")
                    return None
                rows = [
                    [d.name, f"v{d.version}", f"{d.rows:,d}", str(len(d.columns)), ", ".join(d.aliases)] for d in found
                ]
                display(_table(["name", "version", "rows", "columns", "aliases"], rows), raw=True)
                return None
            if args[0] == "profile" and len(args) >= 2:
                version = int(args[2]) if len(args) > 2 and args[2].isdigit() else (args[2] if len(args) > 2 else None)
                report = manager.profile(args[1], version)
                display(HTML(report._repr_html_()))
                return None
            info = manager.info(args[0])
            trace = {v.version: v for v in manager.lineage(args[0]).versions}
            rows = []
            for v in info.versions:
                made = trace[v.version].produced_by
                readers = {e.label for e in trace[v.version].read_by}
                rows.append(
                    [
                        f"v{v.version}",
                        f"{v.rows:,d}",
                        ", ".join(v.aliases),
                        made.label if made else "",
                        ", ".join(sorted(readers)),
                    ]
                )
            display(_table(["version", "rows", "aliases", "produced by", "read by"], rows), raw=True)
        except NbdeployError as exc:
            print(f"error: {exc}")
        return None
