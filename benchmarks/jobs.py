"""Jobs against papermill, side by side in one run.

1. One short notebook, wall time (median of ``--reps``, interleaved): ``nbdeploy jobs run NAME --wait`` (a CLI
   process; an ``nbdeploy scheduler`` process dispatches) against the ``papermill`` CLI, and
   ``nbd.jobs.run(...).wait()`` in-process against ``papermill.execute_notebook`` in-process.
   Target: nbdeploy ≤ 1.2× papermill.
2. Throughput: ``--n`` notebooks on a 2-worker cluster against the same notebooks run serially with
   ``papermill.execute_notebook``. Target: ≥ 1.6× faster.
3. The scheduler's fire delay (from the instant a tick is due to its queued run committed), p50 and p99, over
   ``--schedules`` every-minute schedules and ``--ticks`` ticks of a clock running 60× real time.

    python benchmarks/jobs.py [--reps 5] [--n 20] [--schedules 10] [--ticks 15] [--threads-per-worker 1]
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


def bench_cli(notebook: Path, out_nb: str, reps: int, env: dict[str, str], store: Any) -> list[tuple[str, str]]:
    """``nbdeploy jobs run --wait`` (an ``nbdeploy scheduler`` process dispatches) against the papermill CLI."""
    from nbdeploy.jobs.dispatcher import leader_alive

    bin_dir = Path(sys.executable).parent
    service = subprocess.Popen(
        [sys.executable, "-m", "nbdeploy.cli", "scheduler", "--no-schedule"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not leader_alive(store):
            time.sleep(0.1)
        nbd_cli = [str(bin_dir / "nbdeploy"), "jobs", "run", "quick", "--wait"]
        pm_cli = [str(bin_dir / "papermill"), "--no-progress-bar", str(notebook), out_nb]
        run_cli(nbd_cli, env)  # warm the workers
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(reps):  # interleaved, so both see the same machine load
            times[0].extend(timed(lambda: run_cli(nbd_cli, env), 1))
            times[1].extend(timed(lambda: run_cli(pm_cli, env), 1))
    finally:
        service.terminate()
        service.wait(30)
    nbd_s, pm_s = statistics.median(times[0]), statistics.median(times[1])
    return [
        ("one notebook, CLI: nbdeploy jobs run --wait", f"{nbd_s:6.2f} s"),
        ("one notebook, CLI: papermill", f"{pm_s:6.2f} s"),
        ("  ratio nbdeploy / papermill CLI (target ≤ 1.2)", f"{nbd_s / pm_s:6.2f}"),
    ]


def bench_api(notebook: Path, out_nb: str, reps: int) -> list[tuple[str, str]]:
    """``nbd.jobs.run().wait()`` (dispatcher in this process) against ``papermill.execute_notebook``."""
    import papermill

    import nbdeploy as nbd

    nbd.jobs.run("quick").wait()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(reps):
        times[0].extend(timed(lambda: nbd.jobs.run("quick").wait().raise_for_status(), 1))
        times[1].extend(timed(lambda: papermill.execute_notebook(str(notebook), out_nb, progress_bar=False), 1))
    nbd_s, pm_s = statistics.median(times[0]), statistics.median(times[1])
    return [
        ("one notebook, in-process: nbd.jobs.run().wait()", f"{nbd_s:6.2f} s"),
        ("one notebook, in-process: papermill.execute_notebook", f"{pm_s:6.2f} s"),
        ("  ratio nbdeploy / papermill in-process", f"{nbd_s / pm_s:6.2f}"),
    ]


def bench_throughput(notebook: Path, out_nb: str, n: int, workers: str) -> list[tuple[str, str]]:
    """``n`` runs on the cluster at once against ``n`` serial ``papermill.execute_notebook`` calls."""
    import papermill

    import nbdeploy as nbd

    t0 = time.perf_counter()
    for _ in range(n):
        papermill.execute_notebook(str(notebook), out_nb, progress_bar=False)
    serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    runs = [nbd.jobs.run("quick", {"n": i}) for i in range(n)]
    for run in runs:
        run.wait().raise_for_status()
    parallel = time.perf_counter() - t0
    return [
        (f"{n} notebooks, serial papermill.execute_notebook", f"{serial:6.2f} s"),
        (f"{n} notebooks, nbdeploy on {workers}", f"{parallel:6.2f} s"),
        ("  speed-up (target ≥ 1.6)", f"{serial / parallel:6.2f}"),
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
    parser.add_argument("--parts", default="cli,api,throughput,delay", help="Which parts to run (comma-separated).")
    args = parser.parse_args()
    parts = set(args.parts.split(","))

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NBDEPLOY_HOME"] = str(Path(tmp) / "home")
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
        if "cli" in parts:
            rows += bench_cli(notebook, out_nb, args.reps, dict(os.environ), store)
        if {"api", "throughput"} & parts:
            dispatcher = Dispatcher(store, role="service").start()
            try:
                while not dispatcher.is_leader:
                    time.sleep(0.05)
                if "api" in parts:
                    rows += bench_api(notebook, out_nb, args.reps)
                if "throughput" in parts:
                    workers = f"2 workers × {args.threads_per_worker} thread(s)"
                    rows += bench_throughput(notebook, out_nb, args.n, workers)
            finally:
                dispatcher.stop()
        if "delay" in parts:
            rows += bench_fire_delay(store, args.schedules, args.ticks)
        nbd.runtime.shutdown()  # close this process's client before its cluster goes
        cluster.close()

    width = max(len(r[0]) for r in rows)
    print(f"jobs benchmark ({args.reps} reps, medians; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


if __name__ == "__main__":
    main()
