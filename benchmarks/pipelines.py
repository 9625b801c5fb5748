"""Pipelines against running the same notebooks one after another, side by side in one run.

A 10-node DAG of small notebooks — a diamond (``a`` → ``b``, ``c`` → ``d``) and a fan-out of 6 after ``d`` — on a
2-worker Dask cluster (``--threads-per-worker`` each). Each notebook sleeps ``--work`` seconds (I/O-bound work: the
machine's cores do not limit it) and records an output.

1. Wall time of one nbdeploy pipeline run (warm kernels, every node forced) against (a) the papermill CLI running
   the 10 notebooks one after another and (b) Ploomber's ``ploomber build`` of the same DAG, if Ploomber installs
   (in a throwaway venv given by ``--ploomber-venv``; otherwise it is reported as not run).
2. Overhead per node beyond its own job run: the time from a node's last upstream job run ending to its own job
   run being queued (the driver's share), and the pipeline's wall time minus the critical path of its job runs.
   Target ≤ 0.2 s per node.
3. After editing one leaf notebook, a rerun executes exactly one node (target: 1).
4. The fan-out runs in parallel: its wall time (first fan-out node starting to the last ending) against the sum of
   its nodes' own durations. Target ≤ 0.6.

    python benchmarks/pipelines.py [--work 1.0] [--threads-per-worker 2] [--ploomber-venv /tmp/ploomber-venv]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
FAN = {f"f{i}": ["d"] for i in range(1, 7)}
NODES = {**DIAMOND, **FAN}


def write_notebook(path: Path, work: float, tag: str = "") -> None:
    def cell(source: str, tags: list[str] | None = None) -> dict[str, Any]:
        return {"cell_type": "code", "execution_count": None, "id": f"c{len(source)}{len(tags or [])}",
                "metadata": {"tags": tags or []}, "outputs": [], "source": source}  # fmt: skip

    nb = {
        "cells": [
            cell(f"work = {work}\nupstream = None\nproduct = None", ["parameters"]),
            cell(f"import time\ntime.sleep(work)  # {tag}"),
            cell("try:\n    import nbdeploy as nbd\n    nbd.output('done', True)\nexcept Exception:\n    pass"),
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    path.write_text(json.dumps(nb))


def write_pipeline(folder: Path) -> Path:
    lines = ["name: bench", "nodes:"]
    for name, after in NODES.items():
        lines.append(f"  {name}: {{notebook: {name}.ipynb, after: [{', '.join(after)}]}}")
    path = folder / "bench.pipeline.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def serial_papermill(folder: Path) -> float:
    papermill = str(Path(sys.executable).parent / "papermill")
    t0 = time.perf_counter()
    for name in NODES:  # NODES is in a topological order
        out = subprocess.run(
            [papermill, "--no-progress-bar", str(folder / f"{name}.ipynb"), str(folder / f"{name}.out.ipynb")],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
    return time.perf_counter() - t0


def ploomber_build(folder: Path, venv: Path | None, seconds: float) -> str:
    """Wall time of ``ploomber build`` of the same DAG, or why it was not run."""
    if venv is None or not (venv / "bin" / "ploomber").exists():
        return (
            "not run: Ploomber is not installed (pass --ploomber-venv with a venv where `pip install ploomber` worked)"
        )
    work = folder / "ploomber"
    work.mkdir(exist_ok=True)
    tasks = []
    for name, after in NODES.items():
        src = work / f"{name}.ipynb"
        shutil.copy(folder / f"{name}.ipynb", src)
        nb = json.loads(src.read_text())
        nb["cells"][0]["source"] = f"work = {seconds}\nupstream = {after or None!r}\nproduct = None"
        src.write_text(json.dumps(nb))
        tasks.append(f"  - source: {name}.ipynb\n    name: {name}\n    product: products/{name}.ipynb")
    (work / "pipeline.yaml").write_text("tasks:\n" + "\n".join(tasks) + "\n")
    t0 = time.perf_counter()
    out = subprocess.run(
        [str(venv / "bin" / "ploomber"), "build", "--force"], cwd=work, capture_output=True, text=True, timeout=900
    )
    if out.returncode != 0:
        return f"failed: {out.stdout[-500:]} {out.stderr[-1500:]}"
    return f"{time.perf_counter() - t0:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=float, default=1.0, help="seconds each notebook sleeps")
    parser.add_argument("--threads-per-worker", type=int, default=2)
    parser.add_argument("--ploomber-venv", type=Path, default=None)
    args = parser.parse_args()

    from distributed import LocalCluster

    tmp = Path(tempfile.mkdtemp(prefix="nbdeploy-bench-pipelines-"))
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=args.threads_per_worker, processes=True, dashboard_address=":0"
    )
    os.environ.update(NBDEPLOY_HOME=str(tmp / "home"), NBDEPLOY_CLUSTER=cluster.scheduler_address)
    import sqlalchemy as sa

    import nbdeploy as nbd
    from nbdeploy.jobs.tables import RunRow

    try:
        folder = tmp / "dag"
        folder.mkdir()
        for name in NODES:
            write_notebook(folder / f"{name}.ipynb", args.work)
        spec = write_pipeline(folder)
        warm = nbd.pipelines.run(spec, wait=True, timeout=900)  # starts the workers' kernel pools
        assert warm.status == "succeeded", warm.info
        run = nbd.pipelines.run("bench", force=list(NODES), wait=True, timeout=900)
        info = run.info
        assert info.status == "succeeded", info
        wall = (info.ended_at - info.started_at).total_seconds()
        ids = {n: s.run for n, s in info.nodes.items()}
        with nbd.default().store.catalog.session() as s:
            rows = {r.id: r for r in s.scalars(sa.select(RunRow).where(RunRow.id.in_(list(ids.values()))))}
        job = {n: rows[i] for n, i in ids.items()}
        gaps = []
        for name, after in NODES.items():
            if after:
                ready = max(job[u].finished_at for u in after)
                gaps.append((job[name].queued_at - ready).total_seconds())
        durations = {n: (j.finished_at - j.queued_at).total_seconds() for n, j in job.items()}
        critical: dict[str, float] = {}
        for name, after in NODES.items():
            critical[name] = durations[name] + max((critical[u] for u in after), default=0.0)
        path = max(critical.values())
        own = {n: (j.finished_at - j.started_at).total_seconds() for n, j in job.items()}
        fan_wall = (max(job[f].finished_at for f in FAN) - min(job[f].started_at for f in FAN)).total_seconds()
        fan_sum = sum(own[f] for f in FAN)

        # edit one leaf notebook, rerun: exactly one node executes
        write_notebook(folder / "f6.ipynb", args.work, tag="edited")
        rerun = nbd.pipelines.run(spec, wait=True, timeout=900).info
        executed = sorted(n for n, s in rerun.nodes.items() if s.status == "succeeded")

        serial = serial_papermill(folder)
        ploomber = ploomber_build(folder, args.ploomber_venv, args.work)

        print(
            f"10-node DAG (diamond + fan-out of 6), {args.work}s of work per node, 2 workers x {args.threads_per_worker} threads"
        )
        print(f"  nbdeploy pipeline run (warm kernels)   {wall:7.2f} s")
        print(f"  papermill CLI, one after another       {serial:7.2f} s   ratio {serial / wall:5.2f}x")
        print(f"  ploomber build                         {ploomber}")
        print(f"  overhead per node: driver gap median {statistics.median(gaps) * 1000:.0f} ms, max {max(gaps) * 1000:.0f} ms "
              f"(target <= 200 ms); wall - critical path of job runs = {wall - path:.2f} s over {len(NODES)} nodes "
              f"({(wall - path) / len(NODES) * 1000:.0f} ms/node)")  # fmt: skip
        print(f"  job run own duration median {statistics.median(own.values()):.2f} s, queued->ended median "
              f"{statistics.median(durations.values()):.2f} s")  # fmt: skip
        print(f"  rerun after editing leaf f6: executed {executed} ({len(executed)} node; target 1)")
        print(
            f"  fan-out: wall {fan_wall:.2f} s vs serial sum {fan_sum:.2f} s = {fan_wall / fan_sum:.2f} (target <= 0.6)"
        )
    finally:
        from nbdeploy.jobs.dispatcher import stop_local_dispatchers
        from nbdeploy.pipelines.driver import stop_local_drivers

        stop_local_drivers()
        stop_local_dispatchers()
        nbd.runtime.shutdown()
        cluster.close(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
