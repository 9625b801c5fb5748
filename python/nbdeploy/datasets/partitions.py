"""Pass 1 of a profile (see :mod:`.profiling`): :func:`partition_stats` summarises one partition in one task, every
column converted and hashed once (type, count, missing, infinities, moments, min and max, a grid of order statistics,
value counts, a HyperLogLog sketch of the distinct values; the sums behind the correlations and a hash per row), and
the HyperLogLog helpers the merge uses."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["BINS", "QUANTILES", "TOP_CATEGORIES", "hll_estimate", "partition_stats"]

BINS = 10  # decile bins of the drift baseline
TOP_CATEGORIES = 20  # values kept per categorical column in the drift baseline
GRID = 256  # order statistics kept per partition for the quantiles
TOP_KEPT = 1000  # value counts a partition passes on (its most frequent)
TOP_SAMPLE = 20_000  # values a mostly-distinct numeric column is counted on
HLL_BITS = 12  # 4096 registers: about 1.6 % error on distinct counts
SAMPLE = 1 << 15  # values per partition and numeric column the quantiles are estimated from
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MAX_HASHED_ROWS = 50_000_000  # duplicate rows are counted exactly up to this many rows


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
