"""The numbers of a profile (auto-EDA), computed partition by partition and combined: one code path for a Dask
DataFrame on the cluster and for a pandas frame in this process.

Pass 1 (:func:`.partitions.partition_stats`) summarises each partition in one task, every column converted and hashed once:
per column its type, count, missing values, infinities, the moments of the finite values (mean, M2, M3: combined
exactly with Pébay's formulas), min and max, a grid of order statistics (for the quantiles), its value counts (the
top values) and a HyperLogLog sketch (distinct values); per partition also the sums behind Pearson correlations and
a hash per row (duplicate rows). :func:`combine` merges them. Pass 2 (:func:`partition_bins`) counts every numeric
column into the histogram bins and the decile bins that pass 1 fixed (exact counts). On the cluster a dataset
that fits in a quarter of the workers' memory is read once and kept there for pass 2 (:func:`profile_dask`).
:func:`finish` turns the totals into the profile: per column type, missing, distinct, min/max/mean/std/skew,
quantiles, top values and histogram, the correlations, duplicate rows and warnings.

What is estimated, and how well:

- quantiles (and the drift deciles' edges): exact for a single frame and for partitions of at most
  :data:`~.partitions.SAMPLE` values; a bigger partition's order statistics come from a uniform random sample of
  :data:`~.partitions.SAMPLE` of its values (rank error about ``sqrt(q(1-q)/SAMPLE)``: ≤ 0.3 % of the rows per partition,
  less once partitions are merged). The counts in the bins are exact either way.
- distinct values: exact where every value count was kept (at most :data:`~.partitions.TOP_KEPT` per partition), else a
  HyperLogLog estimate with 2**:data:`~.partitions.HLL_BITS` registers (standard error about 1.6 %).
- infinities: counted per column as ``infinite`` and left out of the moments, min/max, quantiles and the
  histogram (whose edges span the finite values); the drift deciles are open-ended and count them in the outer
  bins.
- duplicate rows: exact up to hash collisions (64-bit row hashes: none to expect below billions of rows).

:func:`baseline` is the part of a profile that model drift compares served inputs against (see
:mod:`nbdeploy.models.psi`): decile edges and shares of each numeric column, the shares of the 20 most frequent
values of every other column. A single frame (a model's ``sample_input``) is one partition, so its deciles and
value shares are exact.
"""

from __future__ import annotations

import math
from typing import Any

from .partitions import BINS, QUANTILES, TOP_CATEGORIES, hll_estimate, partition_stats

__all__ = [
    "BINS",
    "TOP_CATEGORIES",
    "baseline",
    "combine",
    "finish",
    "partition_bins",
    "partition_stats",
    "profile_frame",
]

HIST_BINS = 20
HIGH_MISSING, SKEWED, HIGH_CARDINALITY = 0.5, 2.0, 0.5


def _merge_moments(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    na, nb = a["n"], b["n"]
    if na == 0:
        return dict(b)
    if nb == 0:
        return dict(a)
    n = na + nb
    d = b["mean"] - a["mean"]
    mean = a["mean"] + d * nb / n
    m2 = a["m2"] + b["m2"] + d * d * na * nb / n
    m3 = a["m3"] + b["m3"] + d**3 * na * nb * (na - nb) / (n * n) + 3 * d * (na * b["m2"] - nb * a["m2"]) / n
    return {"n": n, "mean": mean, "m2": m2, "m3": m3, "min": min(a["min"], b["min"]), "max": max(a["max"], b["max"])}


def combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the pass-1 summaries of several partitions (in order) into one; counts duplicate rows."""
    import numpy as np

    parts = [p for p in parts if p is not None]
    first = parts[0]
    total: dict[str, Any] = {"rows": 0, "partitions": 0, "columns": {}, "numeric": list(first["numeric"])}
    hashes = []
    for part in parts:
        total["rows"] += part["rows"]
        total["partitions"] += part["partitions"]
        if "hashes" in part:
            hashes.append(part["hashes"])
        if "corr" in part and part["numeric"] == total["numeric"]:
            if "corr" not in total:
                total["corr"] = {k: v.copy() for k, v in part["corr"].items()}
            else:
                for key, value in part["corr"].items():
                    total["corr"][key] += value
        for name, entry in part["columns"].items():
            mine = total["columns"].get(name)
            if mine is None:
                mine = total["columns"][name] = {
                    "dtype": entry["dtype"],
                    "kind": entry["kind"],
                    "count": 0,
                    "missing": 0,
                    "infinite": 0,
                    "top": {},
                    "top_cut": False,
                    "hll": None,
                    "grids": [],
                }
            mine["count"] += entry["count"]
            mine["missing"] += entry["missing"]
            mine["infinite"] += entry.get("infinite", 0)
            if "moments" in entry:
                mine["moments"] = _merge_moments(mine.get("moments") or {"n": 0}, entry["moments"])
            if "grid" in entry:
                mine["grids"].append((entry["moments"]["n"], entry["grid"], entry["deciles"], entry["quantiles"]))
            for key, count in entry["top"]:
                mine["top"][key] = mine["top"].get(key, 0) + count
            mine["top_cut"] = mine["top_cut"] or entry["top_cut"]
            if entry["hll"] is not None:
                mine["hll"] = entry["hll"].copy() if mine["hll"] is None else np.maximum(mine["hll"], entry["hll"])
    if hashes and sum(len(h) for h in hashes) == total["rows"]:
        joined = np.concatenate(hashes)
        joined.sort()  # a sort and a comparison: numpy's hash-based unique takes ~50x longer on 1 M hashes
        total["duplicates"] = int(np.count_nonzero(joined[1:] == joined[:-1])) if len(joined) else 0
    return total


def _merged_quantiles(grids: list[tuple[int, list[float], list[float], list[float]]], qs: list[float]) -> list[float]:
    """Quantiles from the partitions' order statistics, each grid point weighted by its partition's rows."""
    import numpy as np

    values = np.concatenate([np.asarray(g, "float64") for _, g, _, _ in grids])
    weights = np.concatenate([np.full(len(g), n / len(g)) for n, g, _, _ in grids])
    order = np.argsort(values, kind="stable")
    values, weights = values[order], np.cumsum(weights[order])
    total = weights[-1]
    return [float(values[min(len(values) - 1, int(np.searchsorted(weights, q * total, side="left")))]) for q in qs]


def plan_bins(total: dict[str, Any]) -> dict[str, tuple[list[float], list[float]]]:
    """Per numeric column: the decile edges of the drift baseline and the histogram's equal-width edges."""
    import numpy as np

    plan = {}
    for name, entry in total["columns"].items():
        grids = entry.get("grids")
        if not grids:
            continue
        if len(grids) == 1:
            deciles = grids[0][2]  # a single partition: exactly the training sample's order statistics
        else:
            deciles = _merged_quantiles(grids, [q / BINS for q in range(1, BINS)])
        edges = sorted(set(deciles))
        low, high = entry["moments"]["min"], entry["moments"]["max"]
        hist = np.linspace(low, high if high > low else low + 1.0, HIST_BINS + 1).tolist()
        plan[name] = (edges, hist)
    return plan


# --- pass 2 ---------------------------------------------------------------------------------------------
def partition_bins(frame: Any, plan: dict[str, tuple[list[float], list[float]]]) -> dict[str, tuple[Any, Any]]:
    """Pass 2 over one partition: per planned column, the counts in its decile bins and histogram bins.

    Both come from one search per value: the union of the two sets of edges (and +inf) cuts the line into bins
    each inside one decile bin and one histogram bin, so their counts add up to both. Missing values (NaN sort
    after +inf) are taken off the last bin; infinities count in the outer decile bins (open-ended, as the drift
    monitor's) and not in the histogram, which spans the finite values."""
    import numpy as np

    out = {}
    for name, (edges, hist) in plan.items():
        x = frame[name].to_numpy("float64", na_value=np.nan)
        cuts = np.unique(np.asarray([*edges, *hist, math.inf], "float64"))
        fine = np.bincount(np.searchsorted(cuts, x, side="right"), minlength=len(cuts) + 1)
        fine[-1] -= int(np.count_nonzero(np.isnan(x)))  # [+inf, NaN]: keep +inf only
        lower = np.concatenate([[-math.inf], cuts])  # the lower end of each fine bin
        decile_of = np.searchsorted(np.asarray(edges, "float64"), lower, side="right")
        deciles = np.bincount(decile_of, weights=fine, minlength=len(edges) + 1).astype("int64")
        finite = np.isfinite(lower)
        finite[-1] = False  # the last fine bin holds +inf only
        hist_of = np.clip(
            np.searchsorted(np.asarray(hist, "float64"), lower[finite], side="right") - 1, 0, len(hist) - 2
        )
        counts = np.bincount(hist_of, weights=fine[finite], minlength=len(hist) - 1).astype("int64")
        out[name] = (deciles, counts)
    return out


def sum_bins(parts: list[dict[str, tuple[Any, Any]]]) -> dict[str, tuple[list[int], list[int]]]:
    """Add up the pass-2 counts of every partition."""
    total: dict[str, tuple[Any, Any]] = {}
    for part in parts:
        for name, (deciles, counts) in part.items():
            if name in total:
                total[name] = (total[name][0] + deciles, total[name][1] + counts)
            else:
                total[name] = (deciles.copy(), counts.copy())
    return {k: (d.tolist(), c.tolist()) for k, (d, c) in total.items()}


# --- the profile ----------------------------------------------------------------------------------------
def _distinct(entry: dict[str, Any]) -> tuple[int, bool]:
    if not entry["top_cut"] or entry["hll"] is None:
        return len(entry["top"]), not entry["top_cut"]
    return max(hll_estimate(entry["hll"]), len(entry["top"])), False


def finish(total: dict[str, Any], plan: dict[str, Any], bins: dict[str, Any]) -> dict[str, Any]:
    """The profile (JSON values) from the combined pass-1 summary and the pass-2 counts."""
    rows = total["rows"]
    columns: dict[str, Any] = {}
    warnings: list[dict[str, str]] = []
    for name, entry in total["columns"].items():
        present = entry["count"] - entry["missing"]
        distinct, exact = _distinct(entry)
        ordered = sorted(entry["top"].items(), key=lambda kv: -kv[1])
        col: dict[str, Any] = {
            "type": entry["dtype"],
            "kind": entry["kind"],
            "count": entry["count"],
            "missing": entry["missing"],
            "missing_share": entry["missing"] / entry["count"] if entry["count"] else 0.0,
            "infinite": entry["infinite"],
            "distinct": distinct,
            "distinct_exact": exact,
            "top": [[k, c] for k, c in ordered[:10]],
            "categories": [[k, c] for k, c in ordered[:TOP_CATEGORIES]],
            "present": present,
        }
        moments = entry.get("moments")
        if moments and moments["n"]:
            n = moments["n"]
            variance = moments["m2"] / n
            col.update(
                mean=moments["mean"],
                std=math.sqrt(variance),
                min=moments["min"],
                max=moments["max"],
                skew=(math.sqrt(n) * moments["m3"] / moments["m2"] ** 1.5) if moments["m2"] > 0 else 0.0,
                numbers=n,
            )
        if entry.get("grids"):
            grids = entry["grids"]
            qs = grids[0][3] if len(grids) == 1 else _merged_quantiles(grids, list(QUANTILES))
            col["quantiles"] = {f"{int(q * 100)}%": v for q, v in zip(QUANTILES, qs, strict=True)}
            edges, hist = plan[name]
            decile_counts, hist_counts = bins.get(name, ([], []))
            col["deciles"] = {"edges": edges, "counts": decile_counts}
            col["histogram"] = {"edges": hist, "counts": hist_counts}
        columns[name] = col
        warnings += _warnings(name, col)
    profile: dict[str, Any] = {
        "engine": "builtin",
        "rows": rows,
        "columns_count": len(columns),
        "partitions": total["partitions"],
        "duplicates": total.get("duplicates"),
        "columns": columns,
        "correlations": _correlations(total),
    }
    if profile["duplicates"]:
        warnings.append({"column": "", "kind": "duplicates", "message": f"{profile['duplicates']:,d} duplicate row(s)"})
    profile["warnings"] = warnings
    profile["baseline"] = baseline(profile)
    return profile


def _warnings(name: str, col: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    if col["present"] == 0:
        return [{"column": name, "kind": "empty", "message": f"{name} has no values"}]
    if col["distinct"] <= 1:
        out.append({"column": name, "kind": "constant", "message": f"{name} has one value only"})
    if col["missing_share"] >= HIGH_MISSING:
        out.append({"column": name, "kind": "missing", "message": f"{name} is {col['missing_share']:.0%} missing"})
    if col["kind"] == "numeric" and abs(col.get("skew") or 0.0) > SKEWED:
        out.append({"column": name, "kind": "skewed", "message": f"{name} is skewed (skewness {col['skew']:.1f})"})
    if col["kind"] == "categorical" and col["distinct"] > 50 and col["distinct"] > HIGH_CARDINALITY * col["present"]:
        out.append(
            {
                "column": name,
                "kind": "high_cardinality",
                "message": f"{name} has {col['distinct']:,d} distinct values (high cardinality)",
            }
        )
    return out


def _correlations(total: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    corr = total.get("corr")
    names = total["numeric"]
    if corr is None:
        return {"columns": names if len(names) == 1 else [], "matrix": [[1.0]] if len(names) == 1 else []}
    n, sx, sxx, sxy = corr["n"], corr["sx"], corr["sxx"], corr["sxy"]
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = n * sxy - sx * sx.T
        var = (n * sxx - sx * sx) * (n * sxx - sx * sx).T
        matrix = cov / np.sqrt(var)
    matrix = np.where(np.isfinite(matrix), np.clip(matrix, -1.0, 1.0), np.nan)
    return {"columns": names, "matrix": [[None if math.isnan(v) else float(v) for v in row] for row in matrix]}


def baseline(profile: dict[str, Any]) -> dict[str, Any]:
    """The drift baseline of a profile: ``{"rows", "columns": {name: {"kind", "edges"/"expected", "summary"}}}``
    (the format :func:`nbdeploy.models.psi.drift_report` reads)."""
    out: dict[str, Any] = {}
    for name, col in profile["columns"].items():
        present = col["present"]
        if not present:
            continue
        summary: dict[str, Any] = {"count": col["count"], "missing": col["missing"]}
        if "mean" in col:
            summary.update(mean=col["mean"], std=col["std"], min=col["min"], max=col["max"])
        if col["kind"] == "numeric" and "deciles" in col:
            counts = col["deciles"]["counts"]
            entry: dict[str, Any] = {
                "kind": "numeric",
                "edges": col["deciles"]["edges"],
                "expected": [c / present for c in counts],
            }
        else:
            expected = {k: c / present for k, c in col["categories"]}
            other = 1.0 - sum(expected.values())
            if other > 0:
                expected["__other__"] = other
            entry = {"kind": "categorical", "expected": expected}
        entry["summary"] = summary
        out[name] = entry
    return {"rows": profile["rows"] if profile["columns"] else 0, "columns": out}


def profile_frame(frame: Any) -> dict[str, Any]:
    """The profile of a pandas DataFrame, computed here as one partition (exact deciles and value shares)."""
    stats = combine([partition_stats(frame, exact=True)])
    plan = plan_bins(stats)
    return finish(stats, plan, sum_bins([partition_bins(frame, plan)]) if plan else {})


KEEP_SHARE = 0.25  # the share of the cluster's memory a dataset may take to be kept there between the passes


def _fits(client: Any, nbytes: int | None) -> bool:
    """Whether ``nbytes`` of partitions may stay in the workers' memory between the two passes."""
    if nbytes is None:
        return False
    try:
        workers = client.scheduler_info()["workers"].values()
        limit = sum(int(w.get("memory_limit") or 0) for w in workers)
    except Exception:  # no scheduler information: read twice, as for a big dataset
        return False
    return 0 < nbytes <= KEEP_SHARE * limit


def profile_dask(ddf: Any, client: Any, nbytes: int | None = None) -> dict[str, Any]:
    """The profile of a Dask DataFrame, computed on the cluster of ``client``; only the summaries travel.

    Pass 1 runs :func:`partition_stats` on every partition (all statistics of all columns at once) and combines
    them in a task; pass 2 counts the numeric columns into the bins pass 1 fixed. A dataset whose partitions take
    ``nbytes`` (estimated by the caller; ``None``: unknown) of at most :data:`KEEP_SHARE` of the workers' memory is
    read once and kept there for pass 2; a bigger one is read again for pass 2, its numeric columns only."""
    from distributed import wait

    parts = ddf.to_delayed()
    if _fits(client, nbytes):
        frames = client.compute(parts)
        try:
            stats = client.map(partition_stats, frames, pure=False)
            total = client.submit(combine, stats, pure=False).result()
            plan = plan_bins(total)
            bins: dict[str, Any] = {}
            if plan:
                counted = client.map(partition_bins, frames, plan=plan, pure=False)
                bins = client.submit(sum_bins, counted, pure=False).result()
                wait(counted)
        finally:
            client.cancel(frames)
        return finish(total, plan, bins)
    import dask

    total = client.compute(dask.delayed(combine)([dask.delayed(partition_stats)(p) for p in parts])).result()
    plan = plan_bins(total)
    bins = {}
    if plan:  # the second, light pass reads only the numeric columns it counts
        numeric = ddf[list(plan)].to_delayed()
        counted = dask.delayed(sum_bins)([dask.delayed(partition_bins)(p, plan) for p in numeric])
        bins = client.compute(counted).result()
    return finish(total, plan, bins)
