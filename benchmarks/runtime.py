"""Runtime overhead against raw Dask on the same cluster, plus cluster start-up.

Round-trip latency of a no-op task — ``nbdeploy.runtime.run(noop)`` (cached client, error translation) against
``client.submit(noop, pure=False).result()`` — and throughput of 10,000 tiny tasks — ``runtime.run_map(inc, …)``
against ``client.gather(client.map(inc, …, pure=False))`` — interleaved on one embedded LocalCluster. Prints
medians and the ratios nbdeploy / raw (targets: latency ≤ 1.1×, throughput ≥ 0.9×), then the time to start
and advertise the cluster (against a bare ``LocalCluster``) and for a new process to join it.

    python benchmarks/runtime.py [--workers 2] [--threads 1] [--latency-reps 300] [--tasks 10000] [--rounds 3]
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


def noop() -> None:
    return None


def inc(x: int) -> int:
    return x + 1


JOIN = (
    "import time; t = time.perf_counter(); from nbdeploy import runtime; c = runtime.client(); "
    "runtime.run(int, '1'); print(time.perf_counter() - t)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--latency-reps", type=int, default=300)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        options = {"n_workers": args.workers, "threads_per_worker": args.threads, "dashboard_address": ":0"}
        os.environ.update(
            NBDEPLOY_HOME=home,
            NBDEPLOY_CLUSTER="local",
            NBDEPLOY_CLUSTER_OPTIONS=json.dumps(options),
            JUPYTER_CONFIG_DIR=os.path.join(home, "jupyter"),
        )
        os.environ.pop("DASK_SCHEDULER_ADDRESS", None)
        run(args, options)


def run(args: argparse.Namespace, options: dict[str, object]) -> None:
    from distributed import Client, LocalCluster

    from nbdeploy import runtime

    # --- start-up: interleaved reps after a warm-up start, medians ---------------------------------
    LocalCluster(processes=True, **options).close()  # type: ignore[arg-type]
    bare_starts: list[float] = []
    nbd_starts: list[float] = []
    for _ in range(3):
        t0 = time.perf_counter()
        bare = LocalCluster(processes=True, **options)  # type: ignore[arg-type]
        bare_starts.append(time.perf_counter() - t0)
        bare.close()
        t0 = time.perf_counter()
        runtime.ensure_cluster()  # start, own and advertise
        nbd_starts.append(time.perf_counter() - t0)
        runtime.shutdown()
    bare_start, nbd_start = statistics.median(bare_starts), statistics.median(nbd_starts)
    address = runtime.ensure_cluster()
    joins = [
        float(subprocess.run([sys.executable, "-c", JOIN], capture_output=True, text=True, check=True).stdout)
        for _ in range(3)
    ]

    raw = Client(address, set_as_default=False)
    runtime.client().wait_for_workers(args.workers)
    try:
        # --- latency ----------------------------------------------------------------------------------
        for _ in range(20):  # warm both paths
            runtime.run(noop)
            raw.submit(noop, pure=False).result()
        nbd_lat: list[float] = []
        raw_lat: list[float] = []
        for i in range(args.latency_reps):
            order = ((nbd_lat, lambda: runtime.run(noop)), (raw_lat, lambda: raw.submit(noop, pure=False).result()))
            for out, call in order if i % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                call()
                out.append(time.perf_counter() - t0)

        # --- throughput -------------------------------------------------------------------------------
        items = list(range(args.tasks))
        nbd_tp: list[float] = []
        raw_tp: list[float] = []
        for i in range(args.rounds):
            order = (
                (nbd_tp, lambda: runtime.run_map(inc, items)),
                (raw_tp, lambda: raw.gather(raw.map(inc, items, pure=False))),
            )
            for out, call in order if i % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                results = call()
                out.append(args.tasks / (time.perf_counter() - t0))
                assert results[-1] == args.tasks
    finally:
        raw.close()
        runtime.shutdown()

    def ms(xs: list[float], q: float) -> float:
        return 1000 * statistics.quantiles(xs, n=100)[int(q) - 1]

    lat_ratio = statistics.median(nbd_lat) / statistics.median(raw_lat)
    tp_ratio = statistics.median(nbd_tp) / statistics.median(raw_tp)
    print(f"cluster: LocalCluster, {args.workers} worker process(es) x {args.threads} thread(s), {address}")
    print(f"{'':34}{'nbdeploy':>12}{'raw dask':>12}{'ratio':>9}  target")
    print(f"{'no-op round trip p50 (ms)':34}{ms(nbd_lat, 50):12.2f}{ms(raw_lat, 50):12.2f}{lat_ratio:8.2f}x  <= 1.10x")
    print(f"{'no-op round trip p90 (ms)':34}{ms(nbd_lat, 90):12.2f}{ms(raw_lat, 90):12.2f}")
    print(
        f"{f'{args.tasks:,} tiny tasks (tasks/s)':34}{statistics.median(nbd_tp):12,.0f}"
        f"{statistics.median(raw_tp):12,.0f}{tp_ratio:8.2f}x  >= 0.90x"
    )
    print(f"{'cluster start (s)':34}{nbd_start:12.2f}{bare_start:12.2f}   (start + advertise vs bare LocalCluster)")
    print(f"{'new process joins it (s)':34}{statistics.median(joins):12.2f}{'':12}   (imports + connect + 1 task)")
    ok = lat_ratio <= 1.10 and tp_ratio >= 0.90
    print("targets met" if ok else "TARGETS MISSED")


if __name__ == "__main__":
    main()
