"""Open Inference Protocol inference: `nbdeploy serve` against MLServer 1.7 on the same scikit-learn model.

Prints requests/s and p50/p99 at concurrency 1 and 16 for one-row ``POST /v2/models/{name}/infer`` requests
(JSON tensors, the load generator in its own process), and the ratio. Target: nbdeploy ≥ MLServer's req/s.
MLServer is run from its own virtual environment (it pins its own dependencies): pass ``--mlserver-venv`` (a
venv where `pip install "mlserver==1.7.*" "mlserver-sklearn==1.7.*"` succeeded); without one, the comparison is
printed as unavailable.

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

from _http import free_port, load_each, post, stop, wait_until_up

FEATURES = 8


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    parser.add_argument("--mlserver-venv", default=None, help="a virtual environment with mlserver 1.7 installed")
    args = parser.parse_args()

    import joblib
    import numpy as np
    from distributed import LocalCluster
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, FEATURES))
    model = LogisticRegression().fit(X, (X[:, 0] + X[:, 1] > 0).astype(int))
    home = tempfile.mkdtemp(prefix="nbd-bench-oip-")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    os.environ.update(NBDEPLOY_HOME=home, NBDEPLOY_CLUSTER=cluster.scheduler_address)
    procs: list[subprocess.Popen] = []
    urls: dict[str, tuple[str, dict[str, str]]] = {}
    body = {"inputs": [{"name": "input-0", "shape": [1, FEATURES], "datatype": "FP64", "data": X[:1].tolist()}]}
    try:
        import nbdeploy as nbd

        nbd.models.put(model, "oipbench", sample_input=X[:5])
        port = free_port()
        env = dict(os.environ, NBDEPLOY_TOKEN="bench")
        cmd = [sys.executable, "-m", "nbdeploy.cli", "serve", "--port", str(port), "--no-scheduler"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL))
        wait_until_up(f"http://127.0.0.1:{port}/healthz", procs[-1], timeout=180)
        urls["nbdeploy serve"] = (f"http://127.0.0.1:{port}/v2/models/oipbench/infer", {"Authorization": "token bench"})

        why = "unavailable: pass --mlserver-venv (a venv with mlserver 1.7 and mlserver-sklearn)"
        if args.mlserver_venv:
            mlserver = os.path.join(args.mlserver_venv, "bin", "mlserver")
            folder = os.path.join(home, "mlserver", "oipbench")
            os.makedirs(folder)
            joblib.dump(model, os.path.join(folder, "model.joblib"))
            settings = {"name": "oipbench", "implementation": "mlserver_sklearn.SKLearnModel",
                        "parameters": {"uri": "./model.joblib"}}  # fmt: skip
            with open(os.path.join(folder, "model-settings.json"), "w") as f:
                json.dump(settings, f)
            mport = free_port()
            with open(os.path.join(home, "mlserver", "settings.json"), "w") as f:
                json.dump({"http_port": mport, "grpc_port": free_port(), "metrics_port": free_port(),
                           "parallel_workers": 0}, f)  # fmt: skip
            procs.append(
                subprocess.Popen(
                    [mlserver, "start", os.path.join(home, "mlserver")],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_until_up(f"http://127.0.0.1:{mport}/v2/health/ready", procs[-1], timeout=180)
            urls["MLServer 1.7"] = (f"http://127.0.0.1:{mport}/v2/models/oipbench/infer", {})

        for label, (url, headers) in urls.items():
            status, answer = post(url, body, headers)
            assert status == 200, (label, status, answer)
        results = load_each(urls, body, args.duration)
    finally:
        for p in procs:
            stop(p)
        if "nbdeploy" in sys.modules:
            import nbdeploy as nbd

            nbd.default().close()
            nbd.runtime.shutdown()
        cluster.close()
        shutil.rmtree(home, ignore_errors=True)

    print(f"\nOpen Inference Protocol, one-row JSON infer requests, {args.duration:g} s per run")
    print(f"{'server':<16} {'c':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for (label, c), r in results.items():
        print(f"{label:<16} {c:>3} {r.rps:>8.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7}")
    if "MLServer 1.7" not in urls:
        print(f"\nthe comparison with MLServer is {why}")
        return
    for c in (1, 16):
        a, m = results[("nbdeploy serve", c)], results[("MLServer 1.7", c)]
        print(f"c={c:<3} nbdeploy req/s x{a.rps / m.rps:.2f} of MLServer's (target >= 1)")


if __name__ == "__main__":
    main()
