"""The numbers of a profile (auto-EDA), computed partition by partition and combined: one code path for a Dask
DataFrame on the cluster and for a pandas frame in this process.

Pass 1 (:func:`partition_stats`) summarises each partition in one task, every column converted and hashed once:
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
  :data:`SAMPLE` values; a bigger partition's order statistics come from a uniform random sample of
  :data:`SAMPLE` of its values (rank error about ``sqrt(q(1-q)/SAMPLE)``: ≤ 0.3 % of the rows per partition,
  less once partitions are merged). The counts in the bins are exact either way.
- distinct values: exact where every value count was kept (at most :data:`TOP_KEPT` per partition), else a
  HyperLogLog estimate with 2**:data:`HLL_BITS` registers (standard error about 1.6 %).
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

BINS = 10  # decile bins of the drift baseline
TOP_CATEGORIES = 20  # values kept per categorical column in the drift baseline
GRID = 256  # order statistics kept per partition for the quantiles
HIST_BINS = 20
TOP_KEPT = 1000  # value counts a partition passes on (its most frequent)
TOP_SAMPLE = 20_000  # values a mostly-distinct numeric column is counted on
HLL_BITS = 12  # 4096 registers: about 1.6 % error on distinct counts
SAMPLE = 1 << 15  # values per partition and numeric column the quantiles are estimated from
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MAX_HASHED_ROWS = 50_000_000  # duplicate rows are counted exactly up to this many rows
HIGH_MISSING, SKEWED, HIGH_CARDINALITY = 0.5, 2.0, 0.5


# --- distinct values: HyperLogLog ------------------------------------------------------------------------
def _mix(bits: Any) -> Any:
    """splitmix64's finaliser over uint64 values (in place): a well-spread 64-bit hash of each."""
    import numpy as np

    bits ^= bits >> np.uint64(30)
    bits *= np.uint64(0xBF58476D1CE4E5B9)
    bits ^= bits >> np.uint64(27)
    bits *= np.uint64(0x94D049BB133111EB)
    bits ^= bits >> np.uint64(31)
    return bits


def _hash_numbers(x: Any) -> Any:
    """A 64-bit hash per value of a float64 array: its bits (``-0.0`` as ``0.0``, every NaN the same) mixed by
    splitmix64 — some five vector operations, where pandas' object hashing makes many passes."""
    import numpy as np

    bits = (x + 0.0).view("uint64")  # + 0.0: -0.0 becomes 0.0 (and a new array, ours to change)
    bits[np.isnan(x)] = np.uint64(0x7FF8000000000000)
    return _mix(bits)


def _hash_column(series: Any, x: Any) -> Any:
    """A 64-bit hash per value of a column: from its float64 values ``x`` where it has them, else pandas'."""
    import pandas as pd

    if x is not None:
        return _hash_numbers(x)
    try:
        return pd.util.hash_pandas_object(series, index=False).to_numpy()
    except TypeError:  # unhashable values (lists, dicts): hashed by their text
        return pd.util.hash_pandas_object(series.map(repr), index=False).to_numpy()


def hll_from_hashes(hashed: Any) -> Any:
    """The HyperLogLog registers (2**HLL_BITS of them, merged by maximum) of 64-bit hashes."""
    import numpy as np

    registers = np.zeros(1 << HLL_BITS, "uint8")
    if len(hashed) == 0:
        return registers
    hashed = hashed.astype("uint64", copy=False)
    index = (hashed >> np.uint64(64 - HLL_BITS)).astype("int64")
    low = (hashed & np.uint64((1 << (64 - HLL_BITS)) - 1)).astype("float64")  # 52 bits: exact as a float
    _, exponent = np.frexp(low)  # low = m * 2**exponent, 0.5 <= m < 1; 0 for low == 0
    rank = (64 - HLL_BITS + 1 - exponent).astype("uint8")  # leading zeros of the 52 bits, plus one
    np.maximum.at(registers, index, rank)
    return registers


def hll_registers(values: Any) -> Any:
    """The HyperLogLog registers of a Series' values (hashed by pandas)."""
    import pandas as pd

    if len(values) == 0:
        return hll_from_hashes(values.to_numpy())
    return hll_from_hashes(pd.util.hash_pandas_object(values, index=False).to_numpy())


def hll_estimate(registers: Any) -> int:
    """The distinct count HyperLogLog registers stand for (with the small-range correction)."""
    import numpy as np

    m = len(registers)
    estimate = (0.7213 / (1 + 1.079 / m)) * m * m / float(np.sum(np.power(2.0, -registers.astype("float64"))))
    empty = int(np.count_nonzero(registers == 0))
    if estimate <= 2.5 * m and empty:
        estimate = m * math.log(m / empty)
    return round(estimate)


# --- pass 1 ---------------------------------------------------------------------------------------------
def _kind(series: Any) -> str:
    """``numeric``, ``boolean``, ``datetime`` or ``categorical`` (text and everything else)."""
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return "datetime"
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
            return "numeric"
        if inferred == "boolean":
            return "boolean"
    return "categorical"


def _values(series: Any, kind: str) -> Any:
    """The column as float64, NaN where a value is missing (numbers and booleans), or ``None`` for other kinds."""
    import numpy as np

    if kind not in ("numeric", "boolean"):
        return None
    try:
        return series.to_numpy("float64", na_value=np.nan)
    except (TypeError, ValueError):
        return None


def _moments(x: Any) -> dict[str, float]:
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": 0.0, "m2": 0.0, "m3": 0.0, "min": math.nan, "max": math.nan}
    mean = float(x.mean())
    dev = x - mean
    return {
        "n": n,
        "mean": mean,
        "m2": float((dev * dev).sum()),
        "m3": float((dev * dev * dev).sum()),
        "min": float(x.min()),
        "max": float(x.max()),
    }


def _top(series: Any, exact: bool, numeric: bool = False) -> tuple[list[list[Any]], bool]:
    """``[[value as text, count], …]`` in order of first appearance, and whether the list was cut.

    A numeric column whose first values are mostly distinct (a measurement, not a code) is counted on those
    first :data:`TOP_SAMPLE` values only: its top values say little and a full count costs the most of a profile
    (its distinct count comes from HyperLogLog either way)."""
    fast = _top_numpy(series, exact, numeric)
    if fast is not None:
        return fast
    if numeric and len(series) > TOP_SAMPLE:
        head = series.iloc[:TOP_SAMPLE].dropna()
        if head.nunique() > len(head) // 2:
            counts = head.value_counts(sort=False)  # only what the report shows travels on
            counts = counts.nlargest(min(TOP_CATEGORIES, len(counts)), keep="first")
            return [[str(k), int(c)] for k, c in zip(counts.index.tolist(), counts.tolist(), strict=True)], True
    counts = series.value_counts(sort=False, dropna=True)
    counts = counts[counts > 0]
    cut = False
    if not exact and len(counts) > TOP_KEPT:  # only the most frequent travel on (and are turned into text)
        counts = counts.nlargest(TOP_KEPT, keep="first")
        cut = True
    merged: dict[str, int] = {}
    for key, count in zip(counts.index.tolist(), counts.tolist(), strict=True):
        text = str(key)
        merged[text] = merged.get(text, 0) + int(count)
    return [[k, c] for k, c in merged.items()], cut


def _top_numpy(series: Any, exact: bool, numeric: bool) -> tuple[list[list[Any]], bool] | None:
    """:func:`_top` for a column of numpy integers or floats, in numpy (pandas' value counts, ``nunique`` and
    ``nlargest`` cost several times more): a mostly-distinct sample counted by ``np.unique`` (ties kept in order
    of first appearance), integers of a narrow range by ``np.bincount`` (in ascending order rather than by first
    appearance). ``None`` where it does not apply (the caller counts with pandas)."""
    import numpy as np

    dtype = series.dtype
    if not numeric or not isinstance(dtype, np.dtype) or dtype.kind not in "iuf":
        return None
    values = series.to_numpy()
    if len(values) > TOP_SAMPLE:
        head = values[:TOP_SAMPLE]
        if dtype.kind == "f":
            head = head[~np.isnan(head)]
        keys, first, counts = np.unique(head, return_index=True, return_counts=True)
        if len(keys) > len(head) // 2:  # a measurement, not a code: only what the report shows travels on
            best = np.lexsort((first, -counts))[:TOP_CATEGORIES]  # ties in order of first appearance
            best = best[np.argsort(first[best])]
            return [[str(k), int(c)] for k, c in zip(keys[best].tolist(), counts[best].tolist(), strict=True)], True
    if dtype.kind == "f" or not len(values):
        return None
    low, high = int(values.min()), int(values.max())
    if high - low > 4 * max(len(values), TOP_KEPT):  # too sparse a range to count by position
        return None
    counts = np.bincount(values - low) if low else np.bincount(values)
    keys = np.flatnonzero(counts)
    counts = counts[keys]
    cut = False
    if not exact and len(keys) > TOP_KEPT:
        best = np.argsort(-counts, kind="stable")[:TOP_KEPT]
        best.sort()
        keys, counts = keys[best], counts[best]
        cut = True
    return [[str(k + low), int(c)] for k, c in zip(keys.tolist(), counts.tolist(), strict=True)], cut


def _arrow_strings(series: Any, exact: bool) -> tuple[list[list[Any]], bool, Any] | None:
    """For a column of Arrow-backed text: its value counts (``[[text, count], …]`` in order of first appearance,
    the most frequent :data:`TOP_KEPT` unless ``exact``), whether they were cut, and a hash per row — from one
    dictionary encoding: each distinct text is hashed once and the rows take their value's hash (pandas' value
    counts and row hashing each pass over the text, and hash it again). ``None`` for any other column."""
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    arrow = (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow") or (
        isinstance(dtype, pd.ArrowDtype) and str(dtype.pyarrow_dtype) in ("string", "large_string")
    )
    if not arrow:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        values = pa.array(series.array)
    except (TypeError, ValueError, pa.ArrowException):
        return None
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values)
    distinct = len(encoded.dictionary)
    codes = pc.fill_null(encoded.indices, distinct).to_numpy(zero_copy_only=False).astype("int64", copy=False)
    counts = np.bincount(codes, minlength=distinct + 1)
    keys = np.arange(distinct)
    cut = not exact and distinct > TOP_KEPT
    if cut:
        keys = np.sort(np.argsort(-counts[:distinct], kind="stable")[:TOP_KEPT])
    texts = (
        encoded.dictionary.take(pa.array(keys)).to_pylist() if len(keys) < distinct else encoded.dictionary.to_pylist()
    )
    top = [[str(t), int(c)] for t, c in zip(texts, counts[keys].tolist(), strict=True)]
    words = np.empty(distinct + 1, dtype=object)
    words[:distinct] = encoded.dictionary.to_numpy(zero_copy_only=False)
    words[distinct] = None  # a missing value: one hash for all of them
    hashed = pd.util.hash_array(words)[codes]
    return top, cut, hashed


def _order_statistics(finite: Any, exact: bool) -> Any:
    """The sorted values the quantiles are read from: all of them for a single frame (``exact``) or a partition of
    at most :data:`SAMPLE` values, else a uniform random sample (with replacement, seeded by the length, so a
    profile is reproducible) of :data:`SAMPLE` values."""
    import numpy as np

    n = len(finite)
    if exact or n <= SAMPLE:
        return np.sort(finite)
    picked = finite[np.random.default_rng(n).integers(0, n, SAMPLE)]
    picked.sort()
    return picked


def partition_stats(frame: Any, exact: bool = False) -> dict[str, Any]:
    """Pass 1 over one partition (a pandas DataFrame); ``exact`` keeps every value count and sorts every value
    (a single frame: a model's sample input). Every column is converted and hashed once: the hashes serve both the
    distinct-count sketch and the duplicate rows."""
    import numpy as np

    rows = len(frame)
    columns: dict[str, Any] = {}
    numeric: list[str] = []
    numbers: list[Any] = []
    row_hash = np.zeros(rows, "uint64") if rows <= MAX_HASHED_ROWS else None
    for name in frame.columns:
        series = frame[name]
        kind = _kind(series)
        x = _values(series, kind)
        absent = np.isnan(x) if x is not None else series.isna().to_numpy()
        missing = int(np.count_nonzero(absent))
        entry: dict[str, Any] = {"dtype": str(series.dtype), "kind": kind, "count": rows, "missing": missing}
        if x is not None:
            finite_mask = np.isfinite(x)
            finite = x if missing == 0 and finite_mask.all() else x[finite_mask]
            entry["infinite"] = rows - missing - len(finite)
            entry["moments"] = _moments(finite)
            if kind == "numeric":
                numeric.append(str(name))  # in every partition, with values or not: the correlation sums line up
                numbers.append(x)
            if kind == "numeric" and len(finite):
                ordered = _order_statistics(finite, exact)
                n = len(ordered)
                grid_at = np.minimum(n - 1, (n * np.arange(GRID + 1)) // GRID)
                entry["grid"] = ordered[grid_at].tolist()
                entry["deciles"] = [float(ordered[min(n - 1, int(n * q / BINS))]) for q in range(1, BINS)]
                entry["quantiles"] = np.quantile(ordered, QUANTILES).tolist()
        strings = _arrow_strings(series, exact) if x is None else None
        if strings is not None:  # text in Arrow: counted and hashed through one dictionary encoding
            entry["top"], entry["top_cut"], hashed = strings
        else:
            try:
                entry["top"], entry["top_cut"] = _top(series, exact, numeric=kind == "numeric")
            except TypeError:  # unhashable values (lists, dicts): counted by their text
                series = series.map(repr)
                x = None
                entry["top"], entry["top_cut"] = _top(series, exact)
            hashed = _hash_column(series, x) if entry["top_cut"] or row_hash is not None else None
        # exact value counts give the distinct count; a sketch only where they were cut
        if entry["top_cut"] and hashed is not None:
            entry["hll"] = hll_from_hashes(hashed[~absent] if missing else hashed)
        else:
            entry["hll"] = None
        if row_hash is not None:
            row_hash *= np.uint64(0x100000001B3)  # rows hashed as a polynomial of their columns' hashes
            row_hash += hashed
        columns[str(name)] = entry
    out: dict[str, Any] = {"rows": rows, "partitions": 1, "columns": columns, "numeric": numeric}
    if len(numeric) > 1:
        out["corr"] = _correlation_sums(numbers, rows)
    if rows and row_hash is not None:
        out["hashes"] = row_hash
    return out


def _correlation_sums(numbers: list[Any], rows: int) -> dict[str, Any]:
    """The sums behind the pairwise Pearson correlations (over the rows where both values are finite).

    ``n[i, j]`` counts the rows where columns i and j are both finite, ``sx[i, j]`` and ``sxx[i, j]`` add up
    column i's values and squares over those rows, ``sxy`` the products. Where column j has a value in every row,
    ``sx[:, j]`` and ``sxx[:, j]`` are plain column sums: only the columns with gaps need products with a mask
    (float64 throughout: float32 halves the products' cost but loses the agreement with pandas to about 1e-5)."""
    import numpy as np

    k = len(numbers)
    values = np.empty((rows, k), "float64", order="F")  # columns written (and read by BLAS) contiguously
    gaps = []
    for j, x in enumerate(numbers):
        finite = np.isfinite(x)
        if finite.all():
            values[:, j] = x
        else:
            np.copyto(values[:, j], np.where(finite, x, 0.0))
            gaps.append(j)
    squares = values * values
    sums, square_sums = values.sum(axis=0), squares.sum(axis=0)
    n = np.full((k, k), float(rows))
    sx = np.repeat(sums[:, None], k, axis=1)
    sxx = np.repeat(square_sums[:, None], k, axis=1)
    if gaps:
        mask = np.isfinite(np.column_stack([numbers[j] for j in gaps])).astype("float64")
        present = mask.sum(axis=0)
        sx[:, gaps] = values.T @ mask
        sxx[:, gaps] = squares.T @ mask
        n[:, gaps] = present[None, :]
        n[gaps, :] = present[:, None]
        n[np.ix_(gaps, gaps)] = mask.T @ mask
    return {"n": n, "sx": sx, "sxx": sxx, "sxy": values.T @ values}


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
