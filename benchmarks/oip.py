"""Open Inference Protocol inference: `nbdeploy serve` against MLServer 1.7 on the same scikit-learn model.

Prints requests/s and p50/p99 at concurrency 1 and 16 for one-row ``POST /v2/models/{name}/infer`` requests
(JSON tensors, the same body to both, the load generator in its own process), and the ratio. Target: nbdeploy ≥
MLServer's req/s. Each server runs as a user would start it, with its defaults: ``nbdeploy serve`` with its own
embedded cluster (a cluster daemon with its default local workers; the server owns and stops it), MLServer with
``mlserver start`` on a model folder whose ``settings.json`` only moves its ports off the defaults (so it keeps
its default ``parallel_workers: 1``: inference runs in one worker process beside the HTTP process, as
nbdeploy's runs in a Dask worker). MLServer with ``parallel_workers: 0`` (inference in the HTTP process, no hop
to a worker) is measured too, for reference. MLServer is run from its own virtual environment (it pins its own
dependencies): pass ``--mlserver-venv``, a venv where `pip install "mlserver==1.7.*" "mlserver-sklearn==1.7.*"
"uvloop<0.22"` succeeded (MLServer 1.7.1's inference workers die at start with uvloop 0.22 or later, "There is no
current event loop": SeldonIO/MLServer#2286, unfixed in any release). Without one the comparison is printed as
unavailable; when MLServer does not start, the tail of its log says why.

    python benchmarks/oip.py [--duration 5] [--mlserver-venv /tmp/mlserver-venv]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from _http import close_nbdeploy, free_port, load_each, post, stop, wait_until_up

FEATURES = 8
MLSERVER = "MLServer 1.7"
MLSERVER_INPROCESS = "MLServer in-proc"


def start_mlserver(venv: str, folder: str, model: object, parallel_workers: int | None) -> tuple[subprocess.Popen, str]:
    """``mlserver start`` on a model folder holding ``model`` (its settings at their defaults but for the ports and,
    when given, ``parallel_workers``); returns the process and its infer URL. Raises RuntimeError with the tail of
    MLServer's log when it does not start."""
    import joblib

    os.makedirs(os.path.join(folder, "oipbench"))
    joblib.dump(model, os.path.join(folder, "oipbench", "model.joblib"))
    settings = {"name": "oipbench", "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib"}}  # fmt: skip
    with open(os.path.join(folder, "oipbench", "model-settings.json"), "w") as f:
        json.dump(settings, f)
    port = free_port()
    server: dict[str, object] = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port()}
    if parallel_workers is not None:
        server["parallel_workers"] = parallel_workers
    with open(os.path.join(folder, "settings.json"), "w") as f:
        json.dump(server, f)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSERVER_")}
    with open(os.path.join(folder, "mlserver.log"), "wb") as log:  # the child keeps its own copy of the file
        proc = subprocess.Popen(
            [os.path.join(venv, "bin", "mlserver"), "start", folder], cwd=folder, env=env, stdout=log, stderr=log
        )
    try:
        ready = f"http://127.0.0.1:{port}/v2/models/oipbench/ready"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # answering is not enough: the model must be loaded (200)
            wait_until_up(ready, proc, timeout=180)
            try:
                urllib.request.urlopen(ready, timeout=5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise TimeoutError(ready)
    except (RuntimeError, TimeoutError) as exc:
        stop(proc)
        with open(os.path.join(folder, "mlserver.log"), errors="replace") as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f"MLServer did not start ({exc}); its log ends:\n{tail}") from None
    return proc, f"http://127.0.0.1:{port}/v2/models/oipbench/infer"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    parser.add_argument("--mlserver-venv", default=None, help="a virtual environment with mlserver 1.7 installed")
    args = parser.parse_args()

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, FEATURES))
    model = LogisticRegression().fit(X, (X[:, 0] + X[:, 1] > 0).astype(int))
    home = tempfile.mkdtemp(prefix="nbd-bench-oip-")
    env = {k: v for k, v in os.environ.items() if k not in ("NBDEPLOY_CLUSTER", "DASK_SCHEDULER_ADDRESS")}
    env.update(NBDEPLOY_HOME=home, NBDEPLOY_TOKEN="bench")
    os.environ["NBDEPLOY_HOME"] = home
    procs: list[subprocess.Popen] = []
    urls: dict[str, tuple[str, dict[str, str]]] = {}
    body = {"inputs": [{"name": "input-0", "shape": [1, FEATURES], "datatype": "FP64", "data": X[:1].tolist()}]}
    why = "unavailable: pass --mlserver-venv (a venv with mlserver 1.7 and mlserver-sklearn)"
    try:
        import nbdeploy as nbd

        nbd.models.put(model, "oipbench", sample_input=X[:5])
        port = free_port()
        cmd = [sys.executable, "-m", "nbdeploy.cli", "serve", "--port", str(port), "--no-scheduler"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL))
        wait_until_up(f"http://127.0.0.1:{port}/healthz", procs[-1], timeout=180)
        urls["nbdeploy serve"] = (f"http://127.0.0.1:{port}/v2/models/oipbench/infer", {"Authorization": "token bench"})

        if args.mlserver_venv:
            for i, (label, workers) in enumerate([(MLSERVER, None), (MLSERVER_INPROCESS, 0)]):
                try:
                    proc, url = start_mlserver(args.mlserver_venv, os.path.join(home, f"mlserver{i}"), model, workers)
                except RuntimeError as exc:
                    why = f"unavailable: {exc}"
                    break
                procs.append(proc)
                urls[label] = (url, {})

        for label, (url, headers) in urls.items():
            status, answer = post(url, body, headers)
            assert status == 200, (label, status, answer)
        results = load_each(urls, body, args.duration)
    finally:
        for p in procs:
            stop(p)
        close_nbdeploy()
        shutil.rmtree(home, ignore_errors=True)

    print(f"\nOpen Inference Protocol, one-row JSON infer requests, {args.duration:g} s per run")
    print(f"load average (1, 5, 15 min) after the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'server':<16} {'c':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for (label, c), r in results.items():
        print(f"{label:<16} {c:>3} {r.rps:>8.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7}")
    if MLSERVER not in urls:
        print(f"\nthe comparison with MLServer is {why}")
        return
    for c in (1, 16):
        a = results[("nbdeploy serve", c)]
        line = f"c={c:<3} nbdeploy req/s x{a.rps / results[(MLSERVER, c)].rps:.2f} of MLServer's (default settings; target >= 1)"
        if MLSERVER_INPROCESS in urls:
            line += f", x{a.rps / results[(MLSERVER_INPROCESS, c)].rps:.2f} of MLServer's with parallel_workers 0"
        print(line)


if __name__ == "__main__":
    main()
