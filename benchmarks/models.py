"""Serving and batch-predicting a scikit-learn model: `nbdeploy serve` against `mlflow models serve`, and
`nbd.models.predict_batch` on a 2-worker cluster against single-process pandas.

Prints, in one run:
- cold start (process launch to the first successful prediction) of `nbdeploy serve` with its own embedded
  cluster, of `nbdeploy serve` joining a running cluster, and of `mlflow models serve --env-manager local`;
- requests/s and p50/p99 at concurrency 1 and 16 for the same model (single-row `dataframe_split` requests,
  both servers on loopback, the load generator in its own process);
- batch prediction of N rows (default 10 million, Parquet in, Parquet out) with `predict_batch` on a
  2-worker LocalCluster against `pd.read_parquet` + `model.predict` + `to_parquet` in one process.
Targets: ahead of mlflow on requests/s at c=16; cold start ≤ 0.5× mlflow's (the server starts its replicas and
loads the newest versions at start-up; its cluster daemon forks the workers from a fork server that imported Dask,
nbdeploy's serving modules and ``worker_preload_modules=sklearn,skops.io`` once, started before the daemon imports
anything; the server imports what it needs to answer while the cluster starts); c=16 p99 < 10 ms; batch ≥ 1.6×
pandas on 2 workers. Cold starts are measured with compiled bytecode, as ``make install`` leaves it (where
PYTHONDONTWRITEBYTECODE is set, a venv without it compiles every module in every process); mlflow's likewise.
mlflow is optional: without it the comparison is printed as unavailable.

    python benchmarks/models.py [--duration 5] [--rows 10000000] [--model logreg|forest]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from _http import close_nbdeploy, free_port, load_each, post, stop

FEATURES = [f"f{i}" for i in range(8)]


def make_data(rows: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    y = ((X.f0 + 0.5 * X.f1 - X.f2 * X.f3 + rng.normal(scale=0.5, size=rows)) > 0).astype(int)
    return X, y


def make_model(kind: str, X, y):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "forest":
        return RandomForestClassifier(n_estimators=30, max_depth=8, random_state=0).fit(X, y)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)


def first_answer(url: str, body: dict, headers: dict[str, str], proc: subprocess.Popen, start: float) -> float:
    """Seconds from ``start`` until ``url`` answers ``body`` with 200."""
    deadline = start + 180
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            status, _ = post(url, body, headers)
            if status == 200:
                return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.02)
    raise TimeoutError(url)


def serve_nbdeploy(env: dict[str, str], port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "nbdeploy.cli", "serve", "--port", str(port), "--no-scheduler"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def serve_mlflow(model_dir: str, port: int) -> subprocess.Popen:
    mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
    cmd = [mlflow, "models", "serve", "-m", model_dir, "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1"]
    # mlflow starts `uvicorn` from PATH in a child process: put this venv first, and give it its own process
    # group so that stop_group ends the child too
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a process started with ``start_new_session`` and the children in its process group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)


def bench_serving(args, home: str, scheduler: str, model, X) -> None:
    import nbdeploy as nbd

    nbd.models.put(model, "bench", sample_input=X.head(100))
    row = X.iloc[:1].to_numpy().tolist()
    body = {"dataframe_split": {"columns": FEATURES, "data": row}}
    auth = {"Authorization": "token bench"}
    base_env = dict(os.environ, NBDEPLOY_HOME=home, NBDEPLOY_TOKEN="bench")
    path = "/nbdeploy/api/models/bench/predict"
    procs: list[subprocess.Popen] = []
    cold: dict[str, float] = {}
    try:
        # (a) everything cold: a fresh server that starts its own embedded 2-worker cluster
        own_home = tempfile.mkdtemp(prefix="nbd-bench-own-")
        env = dict(
            base_env,
            NBDEPLOY_HOME=own_home,
            NBDEPLOY_STORE_URL=f"file://{home}/store",
            NBDEPLOY_CATALOG_URL=f"sqlite:///{home}/catalog.db",
            NBDEPLOY_CLUSTER="local",
            NBDEPLOY_CLUSTER_OPTIONS=json.dumps({"n_workers": 2, "threads_per_worker": 1}),
            NBDEPLOY_WORKER_PRELOAD_MODULES="sklearn,skops.io",  # what the model's flavor loads with
        )
        port = free_port()
        start = time.perf_counter()
        proc = serve_nbdeploy(env, port)
        cold["nbdeploy serve (own cluster)"] = first_answer(f"http://127.0.0.1:{port}{path}", body, auth, proc, start)
        stop(proc)
        # (b) joining a running cluster (the usual production set-up); this one is load-tested
        port = free_port()
        start = time.perf_counter()
        proc = serve_nbdeploy(dict(base_env, NBDEPLOY_CLUSTER=scheduler), port)
        procs.append(proc)
        nbd_url = f"http://127.0.0.1:{port}{path}"
        cold["nbdeploy serve (running cluster)"] = first_answer(nbd_url, body, auth, proc, start)
        urls = {"nbdeploy serve": (nbd_url, auth)}

        if importlib.util.find_spec("mlflow") is not None and not args.skip_mlflow:
            import mlflow.sklearn

            model_dir = os.path.join(home, "mlflow-model")
            mlflow.sklearn.save_model(model, model_dir, input_example=X.head(5))
            port = free_port()
            start = time.perf_counter()
            proc = serve_mlflow(model_dir, port)
            procs.append(proc)
            ml_url = f"http://127.0.0.1:{port}/invocations"
            cold["mlflow models serve"] = first_answer(ml_url, body, {}, proc, start)
            urls["mlflow models serve"] = (ml_url, {})

        results = load_each(urls, body, args.duration)
    finally:
        for p in procs:
            stop_group(p) if p.args[0].endswith("mlflow") else stop(p)

    print(f"\ncold start (process launch to the first prediction), model: {args.model}")
    for label, seconds in cold.items():
        print(f"  {label:<34} {seconds:6.2f} s")
    print(
        f"\nserving single-row predictions on loopback, {args.duration:g} s per run, load generator in its own process"
    )
    print(f"{'server':<20} {'c':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for (label, c), r in results.items():
        print(f"{label:<20} {c:>3} {r.rps:>8.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7}")
    if "mlflow models serve" not in urls:
        why = (
            "skipped (--skip-mlflow)"
            if args.skip_mlflow
            else "unavailable: mlflow is not installed (pip install mlflow)"
        )
        print(f"\nthe comparison with `mlflow models serve` is {why}")
        return
    a16, m16 = results[("nbdeploy serve", 16)], results[("mlflow models serve", 16)]
    a1, m1 = results[("nbdeploy serve", 1)], results[("mlflow models serve", 1)]
    own, ml = cold["nbdeploy serve (own cluster)"], cold["mlflow models serve"]
    print(
        f"\ntargets: c=16 req/s x{a16.rps / m16.rps:.2f} of mlflow (>1) | c=1 req/s x{a1.rps / m1.rps:.2f} | "
        f"cold start {own:.2f} s vs mlflow {ml:.2f} s (x{own / ml:.2f} of mlflow's, <=0.5) | "
        f"c=16 p99 {a16.p99_ms:.2f} ms (<10)"
    )


def bench_batch(args, model) -> None:
    import numpy as np
    import pandas as pd

    import nbdeploy as nbd

    folder = tempfile.mkdtemp(prefix="nbd-bench-batch-")
    try:
        source = os.path.join(folder, "input")
        os.makedirs(source)
        files = max(2, args.rows // 500_000)
        per_file = args.rows // files
        t0 = time.perf_counter()
        for i in range(files):
            X, _ = make_data(per_file, seed=100 + i)
            X.to_parquet(os.path.join(source, f"part-{i:03d}.parquet"), index=False)
        made = time.perf_counter() - t0
        rows = files * per_file

        t0 = time.perf_counter()
        df = pd.read_parquet(source)
        out = pd.DataFrame({"prediction": model.predict(df[FEATURES])})
        out.to_parquet(os.path.join(folder, "pandas.parquet"))
        pandas_s = time.perf_counter() - t0
        expected = out.prediction.to_numpy()
        del df, out

        nbd.models.predict_batch("bench", source, output=os.path.join(folder, "warm"))  # workers load the model once
        t0 = time.perf_counter()
        nbd.models.predict_batch("bench", source, output=os.path.join(folder, "nbdeploy"))
        dask_s = time.perf_counter() - t0
        got = pd.read_parquet(os.path.join(folder, "nbdeploy")).prediction.to_numpy()
        same = bool(np.array_equal(np.sort(got), np.sort(expected))) and len(got) == len(expected)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nbatch prediction of {rows:,d} rows ({files} Parquet files written in {made:.1f} s), model: {args.model}")
    print(f"  pandas, one process (read_parquet + predict + to_parquet): {pandas_s:6.2f} s")
    print(f"  nbd.models.predict_batch on 2 workers (Parquet to Parquet): {dask_s:6.2f} s")
    print(f"  speed-up x{pandas_s / dask_s:.2f} (target >= 1.6); same predictions: {same}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows for the batch prediction")
    parser.add_argument("--model", choices=["logreg", "forest"], default="logreg")
    parser.add_argument("--skip-serving", action="store_true")
    parser.add_argument("--skip-mlflow", action="store_true", help="serve with nbdeploy only")
    parser.add_argument("--skip-batch", action="store_true")
    args = parser.parse_args()

    from distributed import LocalCluster

    home = tempfile.mkdtemp(prefix="nbd-bench-")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    os.environ.update(NBDEPLOY_HOME=home, NBDEPLOY_CLUSTER=cluster.scheduler_address)
    try:
        X, y = make_data(20_000)
        model = make_model(args.model, X, y)
        if not args.skip_serving:
            bench_serving(args, home, cluster.scheduler_address, model, X)
        if args.skip_batch:
            return
        import nbdeploy as nbd

        if args.skip_serving:  # else bench_serving stored it
            nbd.models.put(model, "bench", sample_input=X.head(100))
        bench_batch(args, model)
    finally:
        close_nbdeploy()
        cluster.close()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
