"""matplotlib figures: job runs' metrics (over time, across runs), serving latency and request rate, input drift of
models (a dataset profile's histograms are drawn by :mod:`nbdeploy.datasets.report` with the same helpers). The lab
extension's images come from these same functions.

matplotlib is imported on first use; without a display (and no backend chosen by ``MPLBACKEND`` or a notebook)
the Agg backend is selected, so figures render in servers, CI and scripts. In a notebook the returned figure
shows as the cell's output.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = [
    "drift_figure",
    "figure_png",
    "function_figure",
    "latency_figure",
    "model_figure",
    "runs_metrics_figure",
    "tracked_metrics_figure",
]

# How the OpenAPI document declares a route that answers one of these figures.
PNG_RESPONSE: dict[str, Any] = {"image/png": {"type": "string", "format": "binary"}}

DRIFT_COLOURS = {"stable": "#4c9a2a", "moderate": "#e0a800", "drift": "#c0392b"}


def _pyplot() -> Any:
    """Import pyplot, choosing Agg first when nothing can show a window."""
    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        headless = not os.environ.get("DISPLAY") and sys.platform.startswith("linux")
        if headless and "ipykernel" not in sys.modules:
            import matplotlib

            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _detached(plt: Any, fig: Any) -> Any:
    """Release ``fig`` from pyplot (no leak in servers; shown once, as the returned value, in a notebook)."""
    plt.close(fig)
    return fig


def figure_png(fig: Any, dpi: int = 90) -> bytes:
    """A figure as PNG bytes: what the REST routes behind the lab's images answer."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _draw_latency(ax_hist: Any, ax_time: Any, stats: dict[str, Any]) -> None:
    samples = stats.get("latencies") or []
    ok = [ms for _, ms, status in samples if status < 400]
    failed = [ms for _, ms, status in samples if status >= 400]
    if not samples:
        for ax in (ax_hist, ax_time):
            ax.text(0.5, 0.5, "no requests served yet", ha="center", va="center", transform=ax.transAxes)
        ax_hist.set_title("latency")
        return
    low, high = min(ms for _, ms, _ in samples), max(ms for _, ms, _ in samples)
    wide = low > 0 and high / low > 50  # e.g. a cold first request: a log scale keeps the rest readable
    bins: Any = 40
    if wide:
        import numpy as np

        bins = np.geomspace(low, high, 40)
        ax_hist.set_xscale("log")
        ax_time.set_yscale("log")
    ax_hist.hist([ok, failed] if failed else [ok], bins=bins, stacked=True, label=["ok", "error"][: 2 if failed else 1])
    lat = stats.get("latency_ms", {})
    for key, style in (("p50", "--"), ("p99", ":")):
        if key in lat:
            ax_hist.axvline(lat[key], color="black", linestyle=style, label=f"{key} {lat[key]:.1f} ms")
    ax_hist.set_xlabel("milliseconds")
    ax_hist.set_ylabel("requests")
    errors = stats.get("errors", 0)
    ax_hist.set_title(
        f"latency of the last {len(samples)} requests ({errors} error{'' if errors == 1 else 's'} in all)"
    )
    ax_hist.legend(fontsize="small")
    start = samples[0][0]
    ax_time.scatter(
        [t - start for t, _, _ in samples],
        [ms for _, ms, _ in samples],
        s=4,
        c=["#c0392b" if status >= 400 else "#1f77b4" for _, _, status in samples],
    )
    ax_time.set_xlabel("seconds")
    ax_time.set_ylabel("milliseconds")
    ax_time.set_title("latency and request rate over time")
    _draw_rate(ax_time.twinx(), [t - start for t, _, _ in samples])


def _draw_rate(ax: Any, times: list[float]) -> None:
    """Requests per second (one-second bins) as a step line on ``ax`` (a twin of the latency axis)."""
    if not times:
        return
    seconds = int(max(times)) + 1
    counts = [0] * seconds
    for t in times:
        counts[min(int(t), seconds - 1)] += 1
    ax.step(range(seconds), counts, where="post", color="#4c9a2a", linewidth=1, label="requests/s")
    ax.set_ylabel("requests per second", color="#4c9a2a")
    ax.set_ylim(bottom=0)


def _draw_drift(ax: Any, report: Any) -> None:
    psi = report.psi
    if not psi:
        ax.text(
            0.5, 0.5, report.note or "nothing to compare", ha="center", va="center", wrap=True, transform=ax.transAxes
        )
        ax.set_title(f"input drift of {report.name} v{report.version}")
        return
    names = list(psi)
    values = [psi[n] for n in names]
    colours = [DRIFT_COLOURS[report.columns[n].get("status", "stable")] for n in names]
    ax.barh(names, values, color=colours)
    ax.axvline(0.1, color="#e0a800", linestyle="--", linewidth=1, label="0.1 moderate")
    ax.axvline(0.25, color="#c0392b", linestyle="--", linewidth=1, label="0.25 drift")
    ax.set_xlabel("PSI (served inputs against the training sample)")
    ax.set_title(f"input drift of {report.name} v{report.version} ({report.served_rows} served rows sampled)")
    ax.invert_yaxis()
    ax.legend(fontsize="small")


def latency_figure(stats: dict[str, Any]) -> Any:
    """A figure of request latency: a histogram (p50/p99 marked) and latency over time; errors in red."""
    plt = _pyplot()
    fig, (ax_hist, ax_time) = plt.subplots(1, 2, figsize=(11, 3.5), layout="constrained")
    _draw_latency(ax_hist, ax_time, stats)
    return _detached(plt, fig)


def function_figure(name: str, stats: dict[str, Any]) -> Any:
    """A function's serving figure (``nbd.functions.plot``): its latency histogram (p50/p99 marked) and its latency
    over time with the request rate, under a title with the calls served; the model figure's panels."""
    fig = latency_figure(stats)
    errors = stats.get("errors", 0)
    fig.suptitle(
        f"function {name}: {stats.get('requests', 0)} requests served, {errors} error{'' if errors == 1 else 's'}"
    )
    return fig


def drift_figure(report: Any) -> Any:
    """A figure of PSI per column of a :class:`~nbdeploy.models.DriftReport`, coloured by severity."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.4 * max(4, len(report.columns)) + 1), layout="constrained")
    _draw_drift(ax, report)
    return _detached(plt, fig)


def model_figure(stats: dict[str, Any], report: Any) -> Any:
    """One figure with a model's latency (histogram, over time) and its input drift per column."""
    plt = _pyplot()
    fig = plt.figure(figsize=(12, 7), layout="constrained")
    grid = fig.add_gridspec(2, 2)
    _draw_latency(fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), stats)
    _draw_drift(fig.add_subplot(grid[1, :]), report)
    fig.suptitle(f"model {report.name}: {stats.get('requests', 0)} requests served")
    return _detached(plt, fig)


def tracked_metrics_figure(comparison: Any, keys: list[str] | None = None) -> Any:
    """Tracked runs' metrics by step (a :class:`~nbdeploy.tracking.records.RunComparison`): one panel per metric,
    a line per run, so runs compare side by side."""
    plt = _pyplot()
    names = keys or comparison.metrics or []
    count = max(1, len(names))
    cols = min(3, count)
    rows = (count + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for index, key in enumerate(names or [""]):
        ax = axes[index // cols][index % cols]
        if not key:
            ax.text(0.5, 0.5, "no metrics logged", ha="center", va="center", transform=ax.transAxes)
            continue
        for run in comparison.runs:
            points = [p for p in comparison.history.get(run.run_id, {}).get(key, []) if p.value is not None]
            if not points:
                continue
            label = run.name or run.run_id[:8]
            if len(points) == 1:
                ax.scatter([points[0].step], [points[0].value], label=label)
            else:
                ax.plot([p.step for p in points], [p.value for p in points], marker=".", label=label)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7)
    for index in range(len(names or [""]), rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    fig.tight_layout()
    return _detached(plt, fig)


def runs_metrics_figure(runs: Any, keys: list[str] | None = None) -> Any:
    """Job runs' metrics (``nbd.log_metric``), given :class:`~nbdeploy.jobs.runs.Run` handles: the top row has one
    panel per metric with a line per run over its steps (the order logged when no step was given); the bottom
    row, each metric's last value across the runs, oldest run first."""
    plt = _pyplot()
    runs = sorted(runs, key=lambda r: r.id)
    history = {r.id: r.metric_history() for r in runs}
    names = keys or sorted({m.key for found in history.values() for m in found})
    cols = max(1, len(names))
    fig, axes = plt.subplots(2, cols, figsize=(4.2 * cols, 5.6), squeeze=False, layout="constrained")
    if not names:
        for ax in axes.flat:
            ax.set_visible(False)
        axes[0][0].set_visible(True)
        axes[0][0].text(0.5, 0.5, "no metrics logged", ha="center", va="center", transform=axes[0][0].transAxes)
        return _detached(plt, fig)
    for col, key in enumerate(names):
        over_time, across = axes[0][col], axes[1][col]
        ids, last = [], []
        for run in runs:
            points = [m for m in history[run.id] if m.key == key]
            if not points:
                continue
            steps = [m.step if m.step is not None else i for i, m in enumerate(points)]
            label = f"run {run.id}"
            if len(points) == 1:
                over_time.scatter(steps, [points[0].value], label=label)
            else:
                over_time.plot(steps, [m.value for m in points], marker=".", label=label)
            ids.append(str(run.id))
            last.append(points[-1].value)
        over_time.set_title(key, fontsize=10)
        over_time.set_xlabel("step", fontsize=8)
        over_time.tick_params(labelsize=8)
        if len(ids) <= 10:
            over_time.legend(fontsize=7)
        across.plot(ids, last, marker="o")
        across.set_title(f"{key}: last value per run", fontsize=10)
        across.set_xlabel("run", fontsize=8)
        across.tick_params(labelsize=8)
    return _detached(plt, fig)
