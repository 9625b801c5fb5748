"""The warm kernel pool on a real two-worker Dask cluster with real kernels: a kernel runs one job and is discarded
(variables, ``os.environ`` and patched modules do not reach the next run on the same worker), the run's
environment and working folder are applied when a pooled kernel is claimed, a pooled kernel that died is replaced
and never handed out, ``warm=False`` starts its own kernel, a kernelspec the worker lacks fails the run clearly, and
every run records its timing breakdown."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

import nbdeploy as nbd
from nbdeploy.jobs.dispatcher import stop_local_dispatchers
from nbdeploy.jobs.manager import JobManager
from nbdeploy.jobs.runs import Run
from tests.helpers import eventually
from tests.test_jobs_cli import cli

LEAK_CHECK = """\
import json
import os
import sys

import nbdeploy as nbd

leaks = [name for name, found in (
    ("variable", "leftover" in globals()),
    ("environ", "NBD_LEAK_TEST" in os.environ),
    ("module", getattr(json, "_nbd_patched", False)),
    ("sys.path", "/nbd-leak" in sys.path),
) if found]
nbd.log_metric("pid", os.getpid())
nbd.log_metric("run_id_seen", int(os.environ["NBDEPLOY_RUN_ID"]))
nbd.log_metric("cwd_is_the_runs", int(os.path.basename(os.getcwd()) == "work"
                                      and "nbdeploy-run-" + os.environ["NBDEPLOY_RUN_ID"] + "-" in os.getcwd()))
print("leaks:", leaks)
"""
LEAK_SET = """\
leftover = marker
os.environ["NBD_LEAK_TEST"] = marker
json._nbd_patched = True
sys.path.append("/nbd-leak")
assert not leaks, f"state leaked from an earlier run: {leaks}"
"""


def leak_notebook() -> dict:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('marker = "set"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(LEAK_CHECK), nbformat.v4.new_code_cell(LEAK_SET)]
    return dict(nb)


@pytest.fixture
def jobs(nbd_env: Path) -> Iterator[JobManager]:
    manager = nbd.default().jobs
    manager.put(leak_notebook(), "leak")
    yield manager
    stop_local_dispatchers()


def metric(run: Run, key: str) -> float:
    found = [m.value for m in nbd.runs.detail(run.id).metrics or () if m.key == key]
    assert found, f"run {run.id} logged no {key}"
    return found[-1]


def pools(kind: str = "python3") -> list[dict]:
    listed = nbd.default().kernels.list()
    return [p.to_json() | {"worker": w.worker} for w in listed.workers for p in w.pool if p.kernel == kind]


def test_consecutive_runs_on_one_worker_share_no_state_and_each_gets_its_own_pooled_kernel(jobs: JobManager) -> None:
    runs = []
    for i in range(4):
        run = jobs.run("leak", {"marker": f"run-{i}"}).wait(300)
        assert run.status == "succeeded", (run.info.error, nbd.runs.log(run.id))
        runs.append(run)
    per_worker = Counter(r.info.worker for r in runs)
    assert max(per_worker.values()) >= 2  # some worker ran consecutive runs
    pids = [metric(r, "pid") for r in runs]
    assert len(set(pids)) == len(pids), "a kernel served two runs"
    for r in runs:
        assert metric(r, "run_id_seen") == r.id  # the run's environment, applied on claim
        assert metric(r, "cwd_is_the_runs") == 1  # and its working folder
        assert "leaks: []" in nbd.runs.log(r.id)
        assert "without encryption" not in nbd.runs.log(r.id)  # IPC, not TCP
        timings = r.info.timings
        assert timings is not None and timings.kernel_source == "pool"
        assert None not in (timings.queue, timings.kernel, timings.cells, timings.upload, timings.to_first_cell)
    for pid in pids:  # discarded after its run
        eventually(lambda pid=pid: not _alive(int(pid)), 60, f"kernel {pid} discarded")
    out = cli("runs", "show", str(runs[-1].id))
    assert "timings: queue" in out.stdout and "(pool)" in out.stdout


def test_a_pooled_kernel_that_died_is_replaced_not_handed_out(jobs: JobManager) -> None:
    ready = eventually(
        lambda: (found := pools()) and len(found) == 2 and all(p["ready"] == 1 for p in found) and found,
        240,
        "both workers' pools ready",
    )
    killed = {pid for p in ready for pid in p["ready_pids"]}
    before = sum(p["replaced"] for p in ready)
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    eventually(lambda: not any(_alive(pid) for pid in killed), 30, "pooled kernels dead")
    run = jobs.run("leak", {"marker": "after-kill"}).wait(300)
    assert run.status == "succeeded", (run.info.error, nbd.runs.log(run.id))
    assert metric(run, "pid") not in killed
    eventually(lambda: sum(p["replaced"] for p in pools()) >= before + len(killed), 60, "dead kernels counted")
    refilled = eventually(
        lambda: (found := pools()) and all(p["ready"] == 1 for p in found) and found, 240, "pools refilled"
    )
    assert not killed & {pid for p in refilled for pid in p["ready_pids"]}


def test_warm_false_runs_in_a_kernel_started_for_it(jobs: JobManager) -> None:
    run = jobs.run("leak", {"marker": "cold"}, warm=False).wait(300)
    assert run.status == "succeeded", (run.info.error, nbd.runs.log(run.id))
    assert run.info.warm is False
    assert run.info.timings is not None and run.info.timings.kernel_source == "started"
    assert "(warm=False)" in nbd.runs.log(run.id)


def test_a_kernelspec_the_worker_lacks_fails_the_run_clearly(jobs: JobManager, monkeypatch) -> None:
    from nbdeploy.kernels.manager import KernelService

    monkeypatch.setattr(KernelService, "names", lambda self: None)  # as when no cluster was connected at run()
    run = jobs.run("leak", kernel="no-such-kernel").wait(300)
    assert run.status == "failed"
    assert run.info.error is not None and run.info.error.type == "UnknownKernelError"
    assert "no kernelspec named 'no-such-kernel' on the worker tcp://" in (run.info.error.message or "")
    assert "python3" in (run.info.error.message or "")
    assert nbd.runs.info(run.id).status == "failed"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (killed, not yet reaped by its worker) is gone too
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False
