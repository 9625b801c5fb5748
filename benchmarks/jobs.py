"""Jobs against papermill, side by side in one run.

1. One 3-cell parameterised notebook, wall time from ``run`` to succeeded (median of ``--reps``, interleaved):
   (a) the papermill CLI, (b) ``papermill.execute_notebook`` in-process, (c) nbdeploy cold (a kernel started for
   the run), (d) nbdeploy warm (a kernel from the workers' pool), with the runs' timing breakdowns.
   Targets: (d) p50 ≤ 150 ms from dispatch to first cell, and ≥ 10× faster than (a) end to end.
2. Throughput: ``--n`` notebooks on a 2-worker cluster with the warm pool against the same notebooks run serially
   with the papermill CLI. Target: ≥ 5× faster.
3. The scheduler's fire delay (from the instant a tick is due to its queued run committed), p50 and p99, over
   ``--schedules`` every-minute schedules and ``--ticks`` ticks of a clock running 60× real time.

    python benchmarks/jobs.py [--reps 5] [--n 20] [--schedules 10] [--ticks 15] [--threads-per-worker 1]
                              [--pool-size 1] [--parts single,throughput,delay]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

QUICK = {
    "cells": [
        {"cell_type": "code", "id": "p", "metadata": {"tags": ["parameters"]}, "source": "n = 10", "outputs": [], "execution_count": None},
        {"cell_type": "code", "id": "a", "metadata": {}, "source": "total = sum(i * i for i in range(n))", "outputs": [], "execution_count": None},
        {"cell_type": "code", "id": "b", "metadata": {}, "source": "print(total)", "outputs": [], "execution_count": None},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}  # fmt: skip


def timed(fn: Callable[[], object], reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def run_cli(args: list[str], env: dict[str, str]) -> None:
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"{args} failed ({out.returncode}): {out.stdout[-1000:]} {out.stderr[-2000:]}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def papermill_cli(notebook: Path, out_nb: str, env: dict[str, str], n: int) -> list[str]:
    bin_dir = Path(sys.executable).parent
    return [str(bin_dir / "papermill"), "--no-progress-bar", "-p", "n", str(n), str(notebook), out_nb]


def median_timings(infos: list[Any]) -> str:
    """The median of each part of the runs' timing breakdowns, in ms."""
    parts = []
    for key in ("queue", "dispatch", "kernel", "to_first_cell", "cells", "upload", "total"):
        values = [getattr(i.timings, key) for i in infos if i.timings and getattr(i.timings, key) is not None]
        if values:
            parts.append(f"{key} {statistics.median(values) * 1000:.0f}")
    return ", ".join(parts) + " ms"


def bench_single(notebook: Path, out_nb: str, reps: int, env: dict[str, str]) -> list[tuple[str, str]]:
    """One 3-cell parameterised notebook, wall time from ``run`` to succeeded, interleaved: (a) the papermill CLI,
    (b) ``papermill.execute_notebook`` in-process, (c) nbdeploy cold (``warm=False``: a kernel started for the run,
    as with the pool off), (d) nbdeploy warm (a pooled kernel)."""
    import papermill

    import nbdeploy as nbd

    nbd.jobs.run("quick", warm=False).wait().raise_for_status()  # first run: imports on the workers
    nbd.jobs.run("quick").wait().raise_for_status()
    times: dict[str, list[float]] = {"a": [], "b": [], "c": [], "d": []}
    infos: dict[str, list[Any]] = {"c": [], "d": []}
    for i in range(reps):
        times["a"] += timed(lambda i=i: run_cli(papermill_cli(notebook, out_nb, env, i), env), 1)
        times["b"] += timed(
            lambda i=i: papermill.execute_notebook(str(notebook), out_nb, {"n": i}, progress_bar=False), 1
        )
        for key, warm in (("c", False), ("d", True)):
            time.sleep(1.5 if warm else 0)  # let the pool refill after the previous claim (as between real runs)
            t0 = time.perf_counter()
            run = nbd.jobs.run("quick", {"n": i}, warm=warm).wait()
            times[key].append(time.perf_counter() - t0)
            run.raise_for_status()
            infos[key].append(run.info)
    med = {k: statistics.median(v) for k, v in times.items()}
    first_cell = [i.timings.to_first_cell for i in infos["d"] if i.timings and i.timings.to_first_cell is not None]
    p50_first = percentile(first_cell, 0.5) if first_cell else float("nan")
    sources = {i.timings.kernel_source for i in infos["d"] if i.timings}
    return [
        ("(a) papermill CLI", f"{med['a'] * 1000:8.0f} ms"),
        ("(b) papermill.execute_notebook in-process", f"{med['b'] * 1000:8.0f} ms"),
        ("(c) nbdeploy cold (warm=False)", f"{med['c'] * 1000:8.0f} ms"),
        ("(d) nbdeploy warm (pooled kernel)", f"{med['d'] * 1000:8.0f} ms"),
        ("  (d) kernels came from", ", ".join(sorted(s for s in sources if s))),
        ("  (d) dispatch to first cell, p50 (target ≤ 150 ms)", f"{p50_first * 1000:8.0f} ms"),
        ("  (a) / (d) end to end (target ≥ 10)", f"{med['a'] / med['d']:8.1f}×"),
        ("  (b) / (d) end to end", f"{med['b'] / med['d']:8.1f}×"),
        ("  (c) / (d) end to end", f"{med['c'] / med['d']:8.1f}×"),
        ("  breakdown (c) cold, medians", median_timings(infos["c"])),
        ("  breakdown (d) warm, medians", median_timings(infos["d"])),
    ]


def bench_throughput(notebook: Path, out_nb: str, n: int, workers: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """``n`` runs on the cluster at once (warm pool) against ``n`` serial papermill CLI runs."""
    import nbdeploy as nbd

    t0 = time.perf_counter()
    for i in range(n):
        run_cli(papermill_cli(notebook, out_nb, env, i), env)
    serial = time.perf_counter() - t0
    time.sleep(3)  # pools full
    t0 = time.perf_counter()
    runs = [nbd.jobs.run("quick", {"n": i}) for i in range(n)]
    infos = [run.wait().raise_for_status().info for run in runs]
    parallel = time.perf_counter() - t0
    pooled = sum(1 for i in infos if i.timings and i.timings.kernel_source == "pool")
    return [
        (f"{n} notebooks, serial papermill CLI", f"{serial:8.2f} s"),
        (f"{n} notebooks, nbdeploy on {workers}, warm pool", f"{parallel:8.2f} s"),
        ("  speed-up (target ≥ 5)", f"{serial / parallel:8.1f}×"),
        ("  runs that got a pooled kernel", f"{pooled}/{n}"),
        ("  breakdown, medians", median_timings(infos)),
    ]


def bench_fire_delay(store: Any, schedules: int, ticks: int) -> list[tuple[str, str]]:
    """Every-minute schedules on a clock 60× real time; delay from a tick being due to its run committed."""
    import nbdeploy as nbd
    from nbdeploy.jobs.clock import FastClock
    from nbdeploy.jobs.firing import Scheduler

    speed = 60.0
    origin = datetime.now(UTC).replace(second=30, microsecond=0)
    real_origin = time.time() + 1.0
    clock = FastClock(origin, real_origin, speed)
    manager = nbd.default().schedules
    ids = {manager.add("quick", "* * * * *", catchup="all", now=origin).id for _ in range(schedules)}
    committed: dict[int, float] = {}

    def fired(run_ids: list[int]) -> None:
        now = time.time()
        committed.update(dict.fromkeys(run_ids, now))

    scheduler = Scheduler(store, clock=clock, poll=0.5, on_fire=fired).start()
    end = origin + timedelta(seconds=30 + 60 * ticks)
    while clock.now() < end + timedelta(seconds=30):
        time.sleep(0.2)
    scheduler.stop()
    delays = [
        committed[run.id] - (real_origin + (run.fire_time - origin).total_seconds() / speed)
        for run in nbd.default().runs.list(limit=1000)
        if run.schedule_id in ids and run.id in committed
    ]
    return [
        (
            f"scheduler fire delay over {len(delays)} ticks: p50 / p99",
            f"{percentile(delays, 0.5) * 1000:6.1f} / {percentile(delays, 0.99) * 1000:.1f} ms",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--schedules", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=15)
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--pool-size", type=int, default=1, help="Warm kernels per worker (kernel_pool_size).")
    parser.add_argument("--parts", default="single,throughput,delay", help="Which parts to run (comma-separated).")
    args = parser.parse_args()
    parts = set(args.parts.split(","))

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NBDEPLOY_HOME"] = str(Path(tmp) / "home")
        os.environ["NBDEPLOY_KERNEL_POOL_SIZE"] = str(args.pool_size)
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=args.threads_per_worker, dashboard_address=None)
        os.environ["NBDEPLOY_CLUSTER"] = cluster.scheduler_address
        import papermill

        import nbdeploy as nbd
        from nbdeploy.jobs.dispatcher import Dispatcher

        notebook = Path(tmp) / "quick.ipynb"
        notebook.write_text(json.dumps(QUICK))
        out_nb = str(Path(tmp) / "out.ipynb")
        nbd.jobs.put(notebook, "quick")
        store = nbd.default().store
        papermill.execute_notebook(str(notebook), out_nb, progress_bar=False)  # import once, untimed
        rows: list[tuple[str, str]] = []
        if {"single", "throughput"} & parts:
            dispatcher = Dispatcher(store, role="service").start()
            try:
                while not dispatcher.is_leader:
                    time.sleep(0.05)
                if "single" in parts:
                    rows += bench_single(notebook, out_nb, args.reps, dict(os.environ))
                if "throughput" in parts:
                    workers = f"2 workers × {args.threads_per_worker} thread(s)"
                    rows += bench_throughput(notebook, out_nb, args.n, workers, dict(os.environ))
            finally:
                dispatcher.stop()
        if "delay" in parts:
            rows += bench_fire_delay(store, args.schedules, args.ticks)
        nbd.runtime.shutdown()  # close this process's client before its cluster goes
        cluster.close()

    width = max(len(r[0]) for r in rows)
    print(
        f"jobs benchmark ({args.reps} reps, medians; pool {args.pool_size}/worker; {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f})"
    )
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


if __name__ == "__main__":
    main()
