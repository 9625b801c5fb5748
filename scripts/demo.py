"""`make demo`: the nbdeploy tour, headless. Starts `nbdeploy serve` on a fresh embedded store and cluster,
deploys through the Python API, calls over HTTP, prints every step and answer, and stops cleanly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"token {token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def main() -> int:
    home = tempfile.mkdtemp(prefix="nbdeploy-demo-")
    token = "demo-" + os.urandom(8).hex()
    port = free_port()
    os.environ.update(NBDEPLOY_HOME=home, NBDEPLOY_TOKEN=token)
    base = f"http://127.0.0.1:{port}"
    api = base + "/nbdeploy/api"

    step(f"starting `nbdeploy serve --port {port}` (home {home}; it starts and advertises the embedded cluster)")
    t0 = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "nbdeploy.cli", "serve", "--port", str(port)], env=os.environ)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    print("the server exited early", file=sys.stderr)
                    return 1
                time.sleep(0.1)
        print(f"   healthy after {time.perf_counter() - t0:.1f} s")
        status, cluster = http("GET", api + "/cluster", token)
        if status == 200:
            print(f"   cluster {cluster.get('scheduler_address')} with {len(cluster.get('workers', []))} workers")

        import numpy as np

        import nbdeploy as nbd

        step("deploying a function through the Python API: nbd.deploy(greet)")
        vocabulary = np.array(["Hello", "Hi", "Welcome"])

        def greet(name: str, excited: bool = False, style: int = 0) -> str:
            """Greet someone."""
            return f"{vocabulary[style % len(vocabulary)]} {name}" + ("!" if excited else "")

        t1 = time.perf_counter()
        deployment = nbd.deploy(greet)
        print(
            f"   stored {deployment.version.ref} (sha256 {deployment.version.sha256[:12]}), captured "
            f"{deployment.version.metadata['captured']}"
        )
        status, body = http("POST", api + "/functions/greet/invoke", token, {"name": "Ada", "excited": True})
        print(f"   POST /functions/greet/invoke {{'name': 'Ada', 'excited': true}} -> {status} {body}")
        print(f"   deploy to first answer: {(time.perf_counter() - t1) * 1000:.0f} ms")

        step("redeploying changes the answer at once, nothing restarted")
        vocabulary = np.array(["Bonjour", "Salut", "Bienvenue"])

        def greet(name: str, excited: bool = False, style: int = 0) -> str:
            """Greet someone, in French."""
            return f"{vocabulary[style % len(vocabulary)]} {name}" + ("!" if excited else "")

        nbd.deploy(greet)
        status, body = http("POST", api + "/functions/greet/invoke", token, {"name": "Ada", "style": 1})
        print(f"   -> {status} {body}")
        status, body = http("POST", api + "/functions/greet/versions/1/invoke", token, {"name": "Ada"})
        print(f"   version 1 still answers: -> {status} {body}")

        step("bad input gets a clear error and the server keeps serving")
        status, body = http("POST", api + "/functions/greet/invoke", token, {"nme": "Ada"})
        print(f"   misspelt argument -> {status} {body['error']['message']}")
        status, body = http("POST", api + "/functions/nobody/invoke", token, {})
        print(f"   unknown function -> {status} {body['error']['message']}")

        status, doc = http("GET", api + "/openapi.json", token)
        print(f"   /openapi.json documents {len(doc['paths'])} paths")

        step("a notebook becomes a parameterised job, run over HTTP by the server's dispatcher on the cluster")
        import nbformat
        from nbformat.v4 import new_code_cell, new_notebook

        nb = new_notebook(
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
        )
        nb.cells = [
            new_code_cell("n = 10\nlabel = 'demo'", metadata={"tags": ["parameters"]}),
            new_code_cell(
                "import nbdeploy as nbd\ntotal = sum(range(n))\nnbd.log_metric('total', total)\nprint(label, total)"
            ),
        ]
        status, job = http(
            "POST", api + "/jobs", token, {"name": "summing", "notebook": json.loads(nbformat.writes(nb))}
        )
        print(
            f"   POST /jobs -> {status}: job {job['name']} v{job['version']}, parameters {[p['name'] for p in job['parameters']]}"
        )
        status, run = http("POST", api + "/jobs/summing/runs", token, {"parameters": {"n": 100, "label": "hundred"}})
        print(f"   POST /jobs/summing/runs {{'n': 100}} -> {status}: run {run['id']} {run['status']}")
        for _ in range(1200):
            status, run = http("GET", api + f"/runs/{run['id']}", token)
            if run["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        metrics = {m["key"]: m["value"] for m in run.get("metrics") or []}
        print(f"   run {run['id']} {run['status']} in {run.get('duration') or 0:.1f} s, metrics {metrics}")
        status, output = http("GET", api + f"/runs/{run['id']}/output", token)
        if status == 200:
            printed = "".join(
                "".join(o["text"]) if isinstance(o.get("text"), list) else o.get("text", "")
                for c in output["cells"]
                for o in c.get("outputs", [])
            )
            print(f"   its output notebook printed: {printed.strip()!r}")

        step("a trained model becomes a served, versioned registry entry (MLflow scoring formats)")
        import pandas as pd
        from sklearn.linear_model import LogisticRegression

        frame = pd.DataFrame({"tenure": [1.0, 5.0, 10.0, 0.5, 7.0, 2.0], "spend": [9.0, 3.0, 1.0, 8.0, 2.0, 7.0]})
        model = LogisticRegression().fit(frame, [1, 0, 0, 1, 0, 1])
        mv = nbd.models.put(model, "churn", sample_input=frame, metrics={"train_rows": len(frame)})
        print(f"   nbd.models.put -> churn v{mv.version} ({mv.flavor})")
        payload = {"dataframe_records": [{"tenure": 0.8, "spend": 8.5}, {"tenure": 9.0, "spend": 1.5}]}
        status, body = http("POST", api + "/models/churn/predict", token, payload)
        print(f"   POST /models/churn/predict {payload} -> {status} {body}")
        status, body = http("POST", api + "/models/churn/predict", token, {"dataframe_records": [{"tenure": 1}]})
        print(f"   a missing column -> {status} {body['error']['message']}")

        step("done: stopping the server (it stops the embedded cluster it started)")
    finally:
        if "nbdeploy" in sys.modules:  # this process's client goes first, or it would try to reconnect to the cluster
            import nbdeploy as nbd

            nbd.default().close()
            nbd.runtime.shutdown()
        server.terminate()
        server.wait(30)
    print("   stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
