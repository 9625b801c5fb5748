"""Input drift: a profile of the training sample, and PSI per column between it and the served inputs.

At ``put`` time :func:`profile_sample` summarises ``sample_input`` per column: for a numeric column ten
quantile bins (their edges and the share of training rows in each) plus count, mean, std, min and max; for a
text or categorical column the share of its most frequent values. Served inputs are sampled (a reservoir of
rows per model version, see :mod:`nbdeploy.monitor`); :func:`drift_report` puts them in the training bins and
computes the population stability index per column:

    PSI = Σ (served share − training share) · ln(served share / training share)

with shares floored at 1e-4. Usual reading: below 0.1 stable, 0.1–0.25 moderate shift, above 0.25 drift.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DriftReport", "drift_report", "profile_sample", "psi", "summarize"]

BINS = 10
TOP_CATEGORIES = 20
PROFILE_ROWS = 100_000
EPSILON = 1e-4
MODERATE, SIGNIFICANT = 0.1, 0.25


def _frame_of(sample: Any) -> Any:
    """A DataFrame (its first :data:`PROFILE_ROWS` rows) or a 2-D array (columns ``x0``, ``x1``, …) as a pandas
    DataFrame with text column names; ``None`` for anything else."""
    import pandas as pd

    if hasattr(sample, "columns"):
        frame = sample.iloc[:PROFILE_ROWS]
        return frame.set_axis([str(c) for c in frame.columns], axis=1)
    import numpy as np

    array = np.asarray(sample)[:PROFILE_ROWS]
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        return None
    return pd.DataFrame({f"x{i}": array[:, i] for i in range(array.shape[1])})


def _is_number(v: Any) -> bool:
    return type(v) in (int, float) and not (type(v) is float and math.isnan(v))


def summarize(values: list[Any]) -> dict[str, Any]:
    """``count``, ``missing`` and, for numbers, ``mean``, ``std``, ``min``, ``max`` of a column's values."""
    nums = [float(v) for v in values if _is_number(v) or type(v) is bool]
    out: dict[str, Any] = {"count": len(values), "missing": sum(1 for v in values if v is None or v != v)}
    if nums:
        mean = sum(nums) / len(nums)
        var = sum((x - mean) ** 2 for x in nums) / len(nums)
        out.update(mean=mean, std=math.sqrt(var), min=min(nums), max=max(nums))
    return out


def profile_sample(sample: Any) -> dict[str, Any]:
    """Return ``{"rows": n, "columns": {name: profile}}`` for a training sample (see the module docstring).

    This is the drift baseline of a dataset profile (:func:`nbdeploy.datasets.profiling.baseline`), computed on the
    sample as one partition: one code path for a model's sample and a profiled dataset.
    """
    from ..datasets.profiling import baseline, profile_frame

    frame = _frame_of(sample)
    if frame is None or frame.shape[1] == 0:
        return {"rows": 0, "columns": {}}
    return baseline(profile_frame(frame))


def psi(expected: list[float], actual: list[float]) -> float:
    """The population stability index of ``actual`` shares against ``expected`` shares (same bins)."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, EPSILON), max(a, EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def _served_shares(entry: dict[str, Any], values: list[Any]) -> tuple[list[float], list[float], int]:
    """(expected, served) shares in the training profile's bins, and how many served values counted."""
    if entry["kind"] == "numeric":
        edges = entry["edges"]
        counts = [0] * (len(edges) + 1)
        for v in values:
            if _is_number(v):
                counts[bisect.bisect_right(edges, float(v))] += 1
        n = sum(counts)
        return entry["expected"], [c / n if n else 0.0 for c in counts], n
    keys = list(entry["expected"])
    shares: dict[str, int] = dict.fromkeys(keys, 0)
    for v in values:
        if v is None:
            continue
        key = str(v)
        if key in shares and key != "__other__":
            shares[key] += 1
        else:
            shares["__other__"] = shares.get("__other__", 0) + 1
    n = sum(shares.values())
    expected = [entry["expected"].get(k, 0.0) for k in shares]
    return expected, [shares[k] / n if n else 0.0 for k in shares], n


@dataclass
class DriftReport:
    """PSI per column between a version's training sample and its served inputs."""

    name: str
    version: int
    served_rows: int
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""

    @property
    def psi(self) -> dict[str, float]:
        """``{column: PSI}`` for every column that could be compared."""
        return {k: v["psi"] for k, v in self.columns.items() if v.get("psi") is not None}

    @property
    def drifted(self) -> list[str]:
        """Columns whose PSI is above 0.25."""
        return [k for k, v in self.psi.items() if v > SIGNIFICANT]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "served_rows": self.served_rows,
            "columns": self.columns,
            "drifted": self.drifted,
            "note": self.note,
        }

    def __repr__(self) -> str:
        cols = ", ".join(f"{k}={v:.3f}" for k, v in self.psi.items())
        return f"DriftReport({self.name} v{self.version}, {self.served_rows} served rows: {cols or self.note})"


def status(value: float) -> str:
    """ "stable", "moderate" or "drift" for a PSI value."""
    return "drift" if value > SIGNIFICANT else "moderate" if value > MODERATE else "stable"


def drift_report(
    name: str, version: int, profile: dict[str, Any] | None, columns: list[str], rows: list[list[Any]]
) -> DriftReport:
    """Compare served ``rows`` (values in ``columns`` order) with a training ``profile``."""
    report = DriftReport(name, version, len(rows))
    if not profile or not profile.get("columns"):
        report.note = "no training profile: store the model with sample_input=… to compare served inputs"
        return report
    if not rows:
        report.note = "no served inputs recorded yet for this version"
    position = {c: i for i, c in enumerate(columns)}
    for col, entry in profile["columns"].items():
        j = position.get(col)
        values = [r[j] for r in rows] if j is not None else []
        out: dict[str, Any] = {"kind": entry["kind"], "training": entry.get("summary", {})}
        if values:
            expected, served, counted = _served_shares(entry, values)
            if counted:
                out["psi"] = psi(expected, served)
                out["status"] = status(out["psi"])
                out["bins"] = {"expected": expected, "served": served}
                if entry["kind"] == "numeric":
                    out["edges"] = entry["edges"]
                else:
                    out["categories"] = list(entry["expected"])
            out["served"] = summarize(values)
        report.columns[col] = out
    return report
