"""The HTML report of a profile: an overview, the warnings, one row per column (type, missing, distinct,
statistics, top values) with its histogram, and the correlations, the figures drawn with matplotlib (one
figure for every histogram, one for the correlations, embedded as PNG) so the page stands alone."""

from __future__ import annotations

import base64
import html
import io
import itertools
import math
from typing import Any

__all__ = ["render_html"]


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)  # drawn once: a "tight" bounding box would draw it twice
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return f"{int(value):,d}"
    return f"{value:,.4g}"


def _figures(profile: dict[str, Any]) -> tuple[str | None, str | None]:
    """PNGs (base64) of every column's distribution (one figure, a panel per column: drawing and encoding one
    figure costs far less than one per column) and of the correlation matrix."""
    from ..plots import _detached, _pyplot

    plt = _pyplot()
    columns = profile["columns"]
    distributions = None
    if columns:
        per_row = 4
        rows = (len(columns) + per_row - 1) // per_row
        fig, axes = plt.subplots(rows, per_row, figsize=(3.1 * per_row, 1.9 * rows), squeeze=False)
        for index, (name, col) in enumerate(columns.items()):
            ax = axes[index // per_row][index % per_row]
            if "histogram" in col and col["histogram"]["counts"]:
                edges, counts = col["histogram"]["edges"], col["histogram"]["counts"]
                widths = [b - a for a, b in itertools.pairwise(edges)]
                ax.bar(edges[:-1], counts, width=widths, align="edge", color="#4878a8")
            elif col["top"]:
                labels = [str(k)[:14] for k, _ in col["top"][:8]][::-1]
                ax.barh(labels, [c for _, c in col["top"][:8]][::-1], color="#6a9f58")
            else:
                ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
            ax.locator_params(axis="x", nbins=4)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
        for index in range(len(columns), rows * per_row):
            axes[index // per_row][index % per_row].set_visible(False)
        fig.subplots_adjust(left=0.09, right=0.98, top=1 - 0.35 / rows, bottom=0.25 / rows, hspace=0.75, wspace=0.45)
        distributions = _png(_detached(plt, fig))
    correlation = None
    corr = profile.get("correlations") or {}
    if len(corr.get("columns") or []) > 1:
        import numpy as np

        names = corr["columns"]
        matrix = np.array([[math.nan if v is None else v for v in row] for row in corr["matrix"]], dtype=float)
        size = min(9.0, 1.5 + 0.45 * len(names))
        fig, ax = plt.subplots(figsize=(size, size * 0.85))
        shown = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_xticks(range(len(names)), labels=names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), labels=names, fontsize=7)
        fig.colorbar(shown, ax=ax, shrink=0.7)
        fig.subplots_adjust(left=0.2, bottom=0.2)
        correlation = _png(_detached(plt, fig))
    return distributions, correlation


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin-bottom:.2em} h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em} td,th{padding:.25em .6em;text-align:left;vertical-align:top}
.overview td{border-bottom:1px solid #eee} .col{border:1px solid #e3e3e3;border-radius:6px;margin:.6em 0;padding:.5em;
display:flex;gap:1.2em;align-items:flex-start} .col h3{margin:.1em 0 .3em;font-size:1em} .kind{color:#777;font-size:.8em}
.warn{color:#9a5b00} .muted{color:#888}
"""


def render_html(title: str, profile: dict[str, Any]) -> str:
    """A standalone HTML page of ``profile`` (see :func:`.profile.finish`), titled ``title``."""
    distributions, correlation = _figures(profile)
    esc = html.escape
    overview = [
        ("rows", _number(profile["rows"])),
        ("columns", _number(profile["columns_count"])),
        (
            "duplicate rows",
            _number(profile.get("duplicates")) if profile.get("duplicates") is not None else "not counted",
        ),
        ("partitions", _number(profile.get("partitions"))),
        ("computed in", f"{profile['seconds']:.2f} s" if profile.get("seconds") is not None else "–"),
    ]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1><div class='muted'>profile by nbdeploy ({esc(profile.get('engine', 'builtin'))})</div>",
        "<h2>Overview</h2><table class='overview'>",
        *[f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in overview],
        "</table>",
    ]
    warnings = profile.get("warnings") or []
    parts.append(f"<h2>Warnings ({len(warnings)})</h2>")
    parts.append(
        "<ul>"
        + "".join(
            f"<li class='warn'>{esc(w['message'])} <span class='kind'>{esc(w['kind'])}</span></li>" for w in warnings
        )
        + "</ul>"
        if warnings
        else "<p class='muted'>none</p>"
    )
    parts.append("<h2>Columns</h2>")
    for name, col in profile["columns"].items():
        stats = [
            ("missing", f"{_number(col['missing'])} ({col['missing_share']:.1%})"),
            ("distinct", _number(col["distinct"]) + ("" if col.get("distinct_exact") else " (estimated)")),
        ]
        for key in ("mean", "std", "min", "max", "skew"):
            if key in col:
                stats.append((key, _number(col[key])))
        for key, value in (col.get("quantiles") or {}).items():
            stats.append((key, _number(value)))
        top = "".join(f"<tr><td>{esc(str(k))[:60]}</td><td>{_number(c)}</td></tr>" for k, c in col["top"][:5])
        rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in stats)
        parts.append(
            f"<div class='col' id='col-{esc(name)}'><div style='min-width:14em'><h3>{esc(name)}</h3>"
            f"<div class='kind'>{esc(col['kind'])} · {esc(col['type'])}</div><table>{rows}</table></div>"
            f"<div><table><tr><th>top values</th><th>count</th></tr>{top}</table></div></div>"
        )
    if distributions:
        parts.append(
            "<h2>Distributions</h2><p class='muted'>histograms of numeric columns, the most frequent values of the others</p>"
            f"<img alt='distributions' style='max-width:100%' src='data:image/png;base64,{distributions}'>"
        )
    if correlation:
        parts.append(
            "<h2>Correlations</h2><p class='muted'>Pearson, over the numeric columns</p>"
            f"<img alt='correlations' src='data:image/png;base64,{correlation}'>"
        )
    parts.append("</body></html>")
    return "".join(parts)
