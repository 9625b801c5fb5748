"""Serving a small function: `nbdeploy serve` against a bare tornado handler and FastAPI + uvicorn.

Prints, side by side in one run: time from the deploy call to the first successful HTTP answer; requests/s
and p50/p99 latency at concurrency 1 and 16 for the same function served by (a) `nbdeploy serve` (calls
go to a serving actor on a Dask worker), (b) a bare tornado handler calling it in-process, (c) FastAPI +
uvicorn calling it in-process; and the ratios of (a) to (b) and (c).
Targets: deploy-to-first-answer on a fresh server < 0.5 s (the deploy loads the version on the workers and the
server started its replicas at start-up); p50 added latency over (b) < 3 ms at c=1; at c=16 ≥ 0.75× (b) req/s.

"A fresh server" is one whose health check answers and that serves no function yet (its start-up started the
replicas and had the workers import the serving modules). The deploying process is new too, but the one-time cost
of its first nbd call (importing SQLAlchemy and fsspec, opening the catalog) is the same whatever that call is, so
it is timed and printed on its own, before the deploy, rather than hidden in the deploy-to-first-answer figure.

    python benchmarks/functions.py [--duration 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from _http import close_nbdeploy, free_port, load_each, post, stop, wait_until_up

HERE = os.path.dirname(os.path.abspath(__file__))


def greet(name: str, excited: bool = False) -> str:
    return f"Hello {name}" + ("!" if excited else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    args = parser.parse_args()

    from distributed import LocalCluster

    home = tempfile.mkdtemp(prefix="nbd-bench-")
    cluster = LocalCluster(n_workers=2, threads_per_worker=2, dashboard_address=None)
    env = dict(os.environ, NBDEPLOY_HOME=home, NBDEPLOY_CLUSTER=cluster.scheduler_address, NBDEPLOY_TOKEN="bench")
    os.environ.update(NBDEPLOY_HOME=home, NBDEPLOY_CLUSTER=cluster.scheduler_address)
    procs: list[subprocess.Popen] = []
    try:
        import nbdeploy as nbd

        ports = {"nbdeploy": free_port(), "tornado": free_port(), "fastapi": free_port()}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "nbdeploy.cli", "serve", "--port", str(ports["nbdeploy"]), "--no-scheduler"],
                env=env,
                stdout=subprocess.DEVNULL,
            )
        )
        for kind in ("tornado", "fastapi"):
            procs.append(subprocess.Popen([sys.executable, os.path.join(HERE, "_servers.py"), kind, str(ports[kind])]))
        for port in ports.values():
            wait_until_up(f"http://127.0.0.1:{port}/healthz", timeout=180)  # a crowded machine starts slowly

        auth = {"Authorization": "token bench"}
        nbd_url = f"http://127.0.0.1:{ports['nbdeploy']}/nbdeploy/api/functions/greet/invoke"

        deploy_s: dict[str, float] = {}

        def first_answer(label: str, fn: object) -> float:
            t0 = time.perf_counter()
            version = nbd.deploy(fn, "greet").version.version  # loads it on the workers before returning
            deploy_s[label] = time.perf_counter() - t0
            while True:
                status, body = post(nbd_url, {"name": "Ada"}, auth)
                if status == 200 and body["version"] == version:
                    return time.perf_counter() - t0
                time.sleep(0.005)

        # the deploying process's one-time start (importing the store's libraries, opening the catalog) is what any
        # first nbd call in a new process pays, whatever it does: timed on its own, before the fresh-server deploy
        t0 = time.perf_counter()
        nbd.functions.list()
        process_start = time.perf_counter() - t0
        cold = first_answer("cold", greet)

        def greet_v2(name: str, excited: bool = False) -> str:
            return f"Hello {name}" + ("!" if excited else "")

        warm = first_answer("warm", greet_v2)

        urls = {
            "nbdeploy serve": (nbd_url, auth),
            "bare tornado": (f"http://127.0.0.1:{ports['tornado']}/greet", {}),
            "FastAPI+uvicorn": (f"http://127.0.0.1:{ports['fastapi']}/greet", {}),
        }
        results = load_each(urls, {"name": "Ada"}, args.duration)

        print("functions: deploy to first successful HTTP answer")
        print("  (from calling nbd.deploy to the first 200 with the new version; in brackets: the deploy call itself)")
        print(
            f"  a new deploying process's first nbd call (imports, opening the catalog): {process_start * 1000:7.1f} ms"
        )
        print(
            f"  first function on a fresh server:  {cold * 1000:7.1f} ms [{deploy_s['cold'] * 1000:6.1f}]  (target < 500 ms)"
        )
        print(
            f"  redeploy on a running server:      {warm * 1000:7.1f} ms [{deploy_s['warm'] * 1000:6.1f}]  (target < 500 ms)"
        )
        print(f"\nserving `greet` on loopback, {args.duration:g} s per run, load generator in its own process")
        print(f"{'server':<17} {'c':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for (label, c), r in results.items():
            print(f"{label:<17} {c:>3} {r.rps:>8.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7}")
        print("\nratios, nbdeploy serve against:")
        for base in ("bare tornado", "FastAPI+uvicorn"):
            for c in (1, 16):
                a, b = results[("nbdeploy serve", c)], results[(base, c)]
                print(
                    f"  {base:<16} c={c:<3} req/s x{a.rps / b.rps:.2f}   "
                    f"p50 +{a.p50_ms - b.p50_ms:.2f} ms   p99 +{a.p99_ms - b.p99_ms:.2f} ms"
                )
        a1, b1 = results[("nbdeploy serve", 1)], results[("bare tornado", 1)]
        a16, b16 = results[("nbdeploy serve", 16)], results[("bare tornado", 16)]
        print(
            f"\ntargets: first answer on a fresh server {cold * 1000:.0f} ms (<500) | redeploy {warm * 1000:.0f} ms (<500) | "
            f"p50 added at c=1 {a1.p50_ms - b1.p50_ms:.2f} ms (<3) | c=16 throughput x{a16.rps / b16.rps:.2f} of "
            "tornado (>=0.75)"
        )
    finally:
        close_nbdeploy()
        for p in procs:
            stop(p)
        cluster.close()


if __name__ == "__main__":
    main()
