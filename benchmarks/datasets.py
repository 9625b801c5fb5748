"""Datasets against what a user would pick instead, side by side, on the same fsspec store.

1. put/get of a 5 M-row DataFrame: ``nbd.datasets.put``/``get`` against ``df.to_parquet``/``pd.read_parquet`` on
   the same filesystem (target ≥ 0.8: ratio = raw seconds / nbdeploy seconds);
2. a Dask read of a partitioned version: ``nbd.datasets.dask(...).sum()`` against ``dd.read_parquet`` of the same
   folder (target ≥ 0.9), the two called in turns so that the load of the moment hits both alike;
3. the built-in profile of 1 M rows × 20 columns on 2 workers (target ≤ 5 s) against fg-data-profiling in minimal
   mode on the same data: in this environment when it is installed here, else in the interpreter ``--fg-python``
   names (it needs pandas < 3, which the lock does not have); skipped with the reason otherwise. The profile's
   line also prints the CPU seconds the workers and this process spent, which a busy machine does not inflate.

    python benchmarks/datasets.py [--rows 5000000] [--profile-rows 1000000] [--reps 3] [--skip-fg]
                                  [--fg-python /path/to/venv/bin/python]
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


def timed_pair(
    mine: Callable[[], object], theirs: Callable[[], object], reps: int
) -> tuple[float, float, float, float]:
    """Median seconds and median CPU seconds (this process) of ``mine`` and ``theirs``, called in turns (the order
    swapped every round) after one untimed call each: a change of load hits both alike."""
    mine(), theirs()
    runs: dict[int, list[tuple[float, float]]] = {0: [], 1: []}
    for i in range(reps):
        order = ((0, mine), (1, theirs)) if i % 2 == 0 else ((1, theirs), (0, mine))
        for key, fn in order:
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            runs[key].append((time.perf_counter() - t0, time.process_time() - c0))
    wall = [statistics.median(w for w, _ in runs[k]) for k in (0, 1)]
    cpu = [statistics.median(c for _, c in runs[k]) for k in (0, 1)]
    return wall[0], wall[1], cpu[0], cpu[1]


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


_FG_SCRIPT = """
import sys, time
import pandas as pd
from data_profiling import ProfileReport
frame = pd.read_parquet(sys.argv[1])
started = time.perf_counter()
ProfileReport(frame, minimal=True, progress_bar=False).to_html()
print(time.perf_counter() - started)
"""


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process (run on each worker)."""
    times = os.times()
    return times.user + times.system


def fg_seconds(frame: pd.DataFrame, tmp: str, python: str | None) -> tuple[float | None, str]:
    """Seconds fg-data-profiling takes for a minimal report of ``frame`` (its HTML included): in this process when
    it is installed here, else in the interpreter ``python`` on the same data; ``(None, why)`` when neither."""
    try:
        from data_profiling import ProfileReport
    except ImportError:
        pass
    else:
        started = time.perf_counter()
        ProfileReport(frame, minimal=True, progress_bar=False).to_html()
        return time.perf_counter() - started, "run in this environment"
    if not python:
        return None, (
            "not run: no release installs beside this lock's pandas 3 (fg-data-profiling 4.20 requires pandas<3.0, "
            "<= 4.19.1 numpy<2.4; ydata-profiling numpy<2.4). Install it into a venv of its own "
            "(pip install fg-data-profiling pyarrow) and pass --fg-python PATH/bin/python"
        )
    import subprocess

    data = f"{tmp}/fg-input.parquet"
    frame.to_parquet(data)
    done = subprocess.run([python, "-c", _FG_SCRIPT, data], capture_output=True, text=True, check=False)
    if done.returncode:
        return None, f"failed in {python}: {done.stderr.strip().splitlines()[-1:]}"
    version = subprocess.run(
        [python, "-c", "import data_profiling, pandas; print(data_profiling.__version__, pandas.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return float(done.stdout.strip().splitlines()[-1]), f"{' with pandas '.join(version)}, run by {python}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--profile-rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--skip-fg", action="store_true", help="Do not run fg-data-profiling.")
    parser.add_argument(
        "--fg-python",
        default=os.environ.get("NBD_FG_PYTHON"),
        help="A Python interpreter with fg-data-profiling installed (it needs pandas < 3, so not this environment).",
    )
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
        # short calls, the most exposed to the load of the moment: more rounds, taken in turns
        dask_nbd, dask_raw, dask_nbd_cpu, dask_raw_cpu = timed_pair(
            lambda: app.datasets.dask("sales")["amount"].sum().compute(scheduler=client),
            lambda: dd.read_parquet(folder)["amount"].sum().compute(scheduler=client),
            max(args.reps, 3) * 5,
        )
        rows.append((f"dask read ({files} parts)", "dd.read_parquet", dask_nbd, dask_raw))

        profile_df = wide(args.profile_rows)
        app.datasets.put(profile_df, "wide")
        workers0, here0 = client.run(_cpu_seconds), time.process_time()
        prof = timed(lambda: app.datasets.profile("wide", refresh=True), args.reps)
        workers1, here1 = client.run(_cpu_seconds), time.process_time()
        runs = args.reps + 1  # timed() also makes one untimed call
        worker_cpu = sorted((workers1[w] - workers0[w]) / runs for w in workers0)
        here_cpu = (here1 - here0) / runs
        numbers = app.datasets.profile("wide").numbers
        fg, fg_note = None, ""
        if not args.skip_fg:
            fg, fg_note = fg_seconds(profile_df, tmp, args.fg_python)
        print(f"datasets on file:// (median of {args.reps}; ratio = the other tool's seconds / nbdeploy's)")
        print(f"{'operation':<28} {'nbdeploy s':>11} {'versus':<18} {'its s':>9} {'ratio':>7}")
        for label, other, mine, theirs in rows:
            print(f"{label:<28} {mine:>11.3f} {other:<18} {theirs:>9.3f} {theirs / mine:>7.2f}")
        print(
            f"  dask read, CPU seconds in this process: nbdeploy {dask_nbd_cpu:.4f}, dd.read_parquet {dask_raw_cpu:.4f}"
            f" (ratio {dask_raw_cpu / dask_nbd_cpu:.2f}; the reading itself is the workers')"
        )
        computed = numbers.get("seconds", prof)
        label = f"profile {args.profile_rows:,d}x20"
        other = f"{fg:>9.3f} {fg / prof:>7.2f}" if fg is not None else "  (not run)"
        print(f"{label:<28} {prof:>11.3f} {'fg-data-profiling':<18} {other}")
        if fg_note:
            print(f"  fg-data-profiling: {fg_note}")
        print(f"  of which the numbers on the cluster: {computed:.3f} s; the rest renders the HTML (matplotlib)")
        print(
            f"  CPU seconds per profile: workers {' + '.join(f'{c:.2f}' for c in worker_cpu)}, this process "
            f"{here_cpu:.2f} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )
        client.close()
        app.close()


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    main()
