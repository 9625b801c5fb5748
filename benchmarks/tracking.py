"""Experiment tracking: the stock MLflow client logging metrics into ``nbdeploy serve`` against ``mlflow server``
with a SQLite backend, side by side (each server in its own process on loopback, one client, the same calls).

10,000 ``MlflowClient.log_metric`` calls (one HTTP request each, as ``mlflow.log_metric`` makes them), then the
same metrics in batches of 1,000 (``log_batch``). Prints seconds, calls/s and the ratio mlflow / nbdeploy
(target: nbdeploy faster, ratio > 1).

    python benchmarks/tracking.py [--metrics 10000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers import free_port, stop_process, wait_for_http


def ready(proc: subprocess.Popen, url: str) -> None:
    """Wait for the server at ``url`` (a loaded machine may take minutes); stop it by pid when it never answers."""
    try:
        wait_for_http(url, timeout=600, proc=proc)
    except BaseException:
        stop_process(proc, timeout=20)
        raise


def start_nbdeploy(tmp: Path) -> tuple[subprocess.Popen, str, str]:
    port, token = free_port(), "bench-token"
    env = dict(os.environ, NBDEPLOY_HOME=str(tmp / "nbd"), NBDEPLOY_TOKEN=token)
    for var in ("NBDEPLOY_STORE_URL", "NBDEPLOY_CATALOG_URL", "NBDEPLOY_CLUSTER"):
        env.pop(var, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbdeploy.cli", "serve", "--port", str(port), "--no-scheduler"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ready(proc, f"http://127.0.0.1:{port}/healthz")
    return proc, f"http://127.0.0.1:{port}/nbdeploy/mlflow", token


def start_mlflow(tmp: Path) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    mlflow = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
    proc = subprocess.Popen(
        [
            mlflow,
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp}/mlflow.db",
            "--default-artifact-root",
            f"file://{tmp}/mlartifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ready(proc, f"http://127.0.0.1:{port}/health")
    return proc, f"http://127.0.0.1:{port}", ""


def run_client(uri: str, token: str, metrics: int) -> tuple[float, float]:
    """Seconds for ``metrics`` log_metric calls, and for the same in log_batch calls of 1,000."""
    if token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    else:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment(f"bench-{time.time_ns()}")
    run = client.create_run(experiment)
    for i in range(20):  # warm the connection and the server
        client.log_metric(run.info.run_id, "warm", i, step=i)
    t0 = time.perf_counter()
    for i in range(metrics):
        client.log_metric(run.info.run_id, "loss", 1.0 / (i + 1), step=i)
    single = time.perf_counter() - t0
    stamp = int(time.time() * 1000)
    t0 = time.perf_counter()
    for start in range(0, metrics, 1000):
        batch = [Metric("batched", 1.0 / (i + 1), stamp, i) for i in range(start, min(metrics, start + 1000))]
        client.log_batch(run.info.run_id, metrics=batch)
    batched = time.perf_counter() - t0
    history = client.get_metric_history(run.info.run_id, "loss")
    assert len(history) == metrics, len(history)
    return single, batched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=10_000)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, start in (("nbdeploy serve", start_nbdeploy), ("mlflow server (SQLite)", start_mlflow)):
            proc, uri, token = start(Path(tmp))
            try:
                results[label] = run_client(uri, token, args.metrics)
                print(f"{label}: log_metric {results[label][0]:.2f} s, log_batch {results[label][1]:.2f} s", flush=True)
            finally:
                stop_process(proc, timeout=20)
    n = args.metrics
    print(f"{n:,d} metrics logged by the MLflow client (one request each), then in batches of 1,000")
    print(f"{'server':<24} {'log_metric s':>12} {'calls/s':>9} {'log_batch s':>12}")
    for label, (single, batched) in results.items():
        print(f"{label:<24} {single:>12.2f} {n / single:>9.0f} {batched:>12.2f}")
    ours, theirs = results["nbdeploy serve"], results["mlflow server (SQLite)"]
    print(
        f"ratio mlflow / nbdeploy: log_metric {theirs[0] / ours[0]:.2f}, log_batch {theirs[1] / ours[1]:.2f} (> 1: nbdeploy faster)"
    )


if __name__ == "__main__":
    main()
