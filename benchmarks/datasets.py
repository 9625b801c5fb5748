"""Datasets against what a user would pick instead, side by side, on the same fsspec store.

1. put/get of a 5 M-row DataFrame: ``nbd.datasets.put``/``get`` against ``df.to_parquet``/``pd.read_parquet`` on
   the same filesystem (target ≥ 0.8: ratio = raw seconds / nbdeploy seconds);
2. a Dask read of a partitioned version: ``nbd.datasets.dask(...).sum()`` against ``dd.read_parquet`` of the same
   folder (target ≥ 0.9);
3. the built-in profile of 1 M rows × 20 columns on 2 workers (target ≤ 5 s) against fg-data-profiling in minimal
   mode on the same data (the optional extra ``eda``; skipped with a note when it is not installed).

    python benchmarks/datasets.py [--rows 5000000] [--profile-rows 1000000] [--reps 3] [--skip-fg]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import pandas as pd


def timed(fn: Callable[[], object], reps: int, warm: bool = True) -> float:
    """Median seconds of ``fn`` over ``reps`` calls, after one untimed call (imports, worker start-up)."""
    if warm:
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sales(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "store": rng.integers(0, 500, rows),
            "amount": rng.gamma(2.0, 30.0, rows),
            "quantity": rng.integers(1, 20, rows),
            "discount": rng.random(rows),
            "city": rng.choice(["berlin", "lyon", "oslo", "porto", "turin"], rows),
        }
    )


def wide(rows: int, columns: int = 20, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for i in range(columns):
        kind = i % 4
        if kind == 0:
            data[f"n{i}"] = rng.normal(0, 1, rows)
        elif kind == 1:
            data[f"g{i}"] = np.where(rng.random(rows) < 0.1, np.nan, rng.gamma(1.5, 2.0, rows))
        elif kind == 2:
            data[f"k{i}"] = rng.integers(0, 1000, rows)
        else:
            data[f"c{i}"] = rng.choice(["a", "b", "c", "d", "e", "f"], rows)
    return pd.DataFrame(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--profile-rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--skip-fg", action="store_true", help="Do not run fg-data-profiling.")
    args = parser.parse_args()

    import dask.dataframe as dd
    from distributed import LocalCluster

    import nbdeploy as nbd

    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster,
    ):
        app = nbd.Nbdeploy(
            home=tmp,
            store_url=f"file://{tmp}/store",
            catalog_url=f"sqlite:///{tmp}/catalog.db",
            cluster=cluster.scheduler_address,
        )
        client = app.runtime.client()
        rows = []

        df = sales(args.rows)
        raw_path = f"{tmp}/store/raw.parquet"
        put_nbd = timed(lambda: app.datasets.put(df, "sales"), args.reps)
        put_raw = timed(lambda: df.to_parquet(raw_path), args.reps)
        get_nbd = timed(lambda: app.datasets.get("sales"), args.reps)
        get_raw = timed(lambda: pd.read_parquet(raw_path), args.reps)
        rows.append((f"put {args.rows:,d} rows", "df.to_parquet", put_nbd, put_raw))
        rows.append((f"get {args.rows:,d} rows", "pd.read_parquet", get_nbd, get_raw))

        folder = app.datasets.path("sales")
        files = len(app.datasets.version("sales").metadata["files"])
        dask_nbd = timed(lambda: app.datasets.dask("sales")["amount"].sum().compute(scheduler=client), args.reps)
        dask_raw = timed(lambda: dd.read_parquet(folder)["amount"].sum().compute(scheduler=client), args.reps)
        rows.append((f"dask read ({files} parts)", "dd.read_parquet", dask_nbd, dask_raw))

        profile_df = wide(args.profile_rows)
        app.datasets.put(profile_df, "wide")
        prof = timed(lambda: app.datasets.profile("wide", refresh=True), args.reps)
        numbers = app.datasets.profile("wide").numbers
        fg = None
        if not args.skip_fg:
            try:
                from data_profiling import ProfileReport
            except ImportError:
                print(
                    "fg-data-profiling is not installed (pip install 'nbdeploy[eda]' in an environment with pandas < 3)"
                )
            else:

                def fg_profile() -> None:
                    ProfileReport(profile_df, minimal=True, progress_bar=False).to_html()

                fg = timed(fg_profile, 1, warm=False)

        print(f"datasets on file:// (median of {args.reps}; ratio = the other tool's seconds / nbdeploy's)")
        print(f"{'operation':<28} {'nbdeploy s':>11} {'versus':<18} {'its s':>9} {'ratio':>7}")
        for label, other, mine, theirs in rows:
            print(f"{label:<28} {mine:>11.3f} {other:<18} {theirs:>9.3f} {theirs / mine:>7.2f}")
        computed = numbers.get("seconds", prof)
        label = f"profile {args.profile_rows:,d}x20"
        other = f"{fg:>9.3f} {fg / prof:>7.2f}" if fg is not None else "  (not run)"
        print(f"{label:<28} {prof:>11.3f} {'fg-data-profiling':<18} {other}")
        print(f"  of which the numbers on the cluster: {computed:.3f} s; the rest renders the HTML (matplotlib)")
        app.close()


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    main()
