"""Jobs on real papermill kernels and a real two-worker Dask cluster: parameters, failures, timeout, cancel,
retries, live progress, metrics, artifacts, logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import nbdeploy as nbd
from nbdeploy.exceptions import InvalidInputError, NotFoundError
from nbdeploy.jobs.dispatcher import Dispatcher, stop_local_dispatchers
from nbdeploy.jobs.manager import JobManager
from tests.helpers import NOTEBOOKS, eventually, pid_alive


@pytest.fixture
def jobs(nbd_env: Path) -> Iterator[JobManager]:
    """A job manager over the test's home; every job notebook of tests/notebooks stored; dispatchers stopped."""
    manager = nbd.default().jobs
    for name in ("params", "fail", "wait", "quick"):
        manager.put(NOTEBOOKS / f"{name}.ipynb", name)
    yield manager
    stop_local_dispatchers()


@pytest.fixture
def dispatcher(jobs: JobManager) -> Iterator[Dispatcher]:
    """A service dispatcher with a short retry back-off (the API hands it the runs it queues)."""
    d = Dispatcher(jobs.store, role="service", retry_backoff=0.3, lease_ttl=5).start()
    yield d
    d.stop()


def test_put_infers_parameter_names_types_defaults_and_help(nbd_home: Path) -> None:
    version = nbd.jobs.put(NOTEBOOKS / "params.ipynb")
    assert (version.name, version.version, version.kernel) == ("params", 1, "python3")
    params = nbd.jobs.parameters("params")
    assert list(params) == ["n", "scale", "label", "flag", "items"]
    assert {n: (p.inferred_type_name, p.default) for n, p in params.items()} == {
        "n": ("int", "3"),
        "scale": ("float", "1.5"),
        "label": ("str", '"x"'),
        "flag": ("bool", "False"),
        "items": ("list", "[1, 2]"),
    }
    assert params["scale"].help == "multiplier"
    nb = json.loads((NOTEBOOKS / "quick.ipynb").read_text())
    assert nbd.jobs.put(nb, "quick").parameters[0].name == "x"
    assert nbd.jobs.put(json.dumps(nb), "quick").version == 2
    with pytest.raises(NotFoundError, match="no notebook at"):
        nbd.jobs.put(NOTEBOOKS / "missing.ipynb")
    with pytest.raises(InvalidInputError, match="version-4 Jupyter notebook"):
        nbd.jobs.put({"cells": "nope"}, "bad")
    with pytest.raises(InvalidInputError, match="give the job a name"):
        nbd.jobs.put(nb)


def test_parameters_are_checked_and_typed_before_a_run_is_queued(jobs: JobManager) -> None:
    with pytest.raises(InvalidInputError, match="has no parameter 'nope'") as err:
        jobs.run("params", {"nope": 1}, dispatch=False)
    assert err.value.field == "parameters.nope"
    with pytest.raises(InvalidInputError, match="parameter 'n' must be a int"):
        jobs.run("params", {"n": "three"}, dispatch=False)
    with pytest.raises(InvalidInputError, match="timeout must be a positive"):
        jobs.run("params", timeout=-1, dispatch=False)
    with pytest.raises(NotFoundError, match="no job named 'ghost'"):
        jobs.run("ghost", dispatch=False)
    run = jobs.run("params", {"n": "7", "scale": 2, "flag": "true", "items": "[3]"}, dispatch=False)
    assert run.parameters == {"n": 7, "scale": 2.0, "flag": True, "items": [3]}
    assert run.status == "queued" and run.attempt == 1


def test_run_injects_typed_parameters_and_records_output_log_metrics_artifacts(jobs: JobManager) -> None:
    run = nbd.jobs.run("params", {"n": "4", "label": "hey"})
    assert run.wait(120).status == "succeeded", run.info
    info = run.info
    assert info.started_at and info.finished_at and info.worker.startswith("tcp://")
    assert (info.current_cell, info.cell_count) == (
        3,
        4,
    )  # cells of the job's notebook (papermill's injected one aside)

    nb = run.output()
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and "n = 4" in "".join(injected[0]["source"])
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"])
    assert "result=6.0 label=hey types=int,float,bool,list" in printed

    log = run.log()
    assert "result=6.0 label=hey" in log and "to-stderr" in log and "succeeded after" in log
    assert run.metrics == {"result": 6.0, "loss": 0.25}
    assert [(m.key, m.step) for m in run.metric_history()] == [("result", None), ("loss", 1), ("loss", 2)]
    assert [a.name for a in run.artifacts] == ["greeting.txt"]
    assert run.artifact("greeting.txt") == b"hello hey"
    page = run.output(format="html")
    assert page.lstrip().lower().startswith("<!doctype html") and "result=6.0" in page


def test_failing_cell_gives_a_failed_run_with_cell_index_and_marked_output(jobs: JobManager) -> None:
    run = nbd.jobs.run("fail").wait(120)
    info = run.info
    assert info.status == "failed" and info.attempt == 1
    assert (info.error_type, info.error_message, info.error_cell) == ("ValueError", "boom on attempt 1", 2)
    assert "raise ValueError" in info.error_traceback
    nb = run.output()
    tags = [t for c in nb["cells"] for t in c["metadata"].get("tags", [])]
    assert tags.count("papermill-error-cell-tag") == 2  # papermill's banner and its anchor before the cell
    failing = [c for c in nb["cells"] if c.get("metadata", {}).get("papermill", {}).get("exception")]
    assert len(failing) == 1 and "raise ValueError" in "".join(failing[0]["source"])
    assert "failed in cell 2: ValueError: boom on attempt 1" in run.log()
    with pytest.raises(nbd.RunFailedError, match="failed in cell 2"):
        run.raise_for_status()


def test_retries_back_off_then_the_run_succeeds(jobs: JobManager, dispatcher: Dispatcher) -> None:
    run = jobs.run("fail", {"fail_until_attempt": 1}, retries=2).wait(120)
    info = run.info
    assert (info.status, info.attempt) == ("succeeded", 2), info
    first, second = info.history
    assert (first.attempt, first.status, first.error_message) == (1, "failed", "boom on attempt 1")
    assert second.status == "succeeded" and info.error_type is None
    gap = info.started_at - datetime.fromisoformat(first.finished_at)
    assert gap >= timedelta(seconds=0.3)  # the second attempt waited for its back-off
    exhausted = jobs.run("fail", retries=1).wait(120).info
    assert (exhausted.status, exhausted.attempt, len(exhausted.history)) == ("failed", 2, 2)


def test_live_progress_shows_the_current_cell_while_it_runs(jobs: JobManager, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    run = nbd.jobs.run("wait", {"gate": str(gate)})
    info = eventually(lambda: (i := run.info).current_cell == 2 and i, what="progress to cell 2")
    assert (info.status, info.cell_count) == ("running", 4)
    gate.touch()
    assert run.wait(120).status == "succeeded"
    assert run.info.current_cell == 3


def test_timeout_marks_timed_out_and_keeps_the_partial_output(jobs: JobManager) -> None:
    run = nbd.jobs.run("wait", {"seconds": 600}, timeout=10).wait(120)  # room to start a kernel on a busy machine
    info = run.info
    assert info.status == "timed_out", info
    assert (info.error_type, info.error_cell) == ("Timeout", 2)
    assert "timeout of 10.0s" in info.error_message
    nb = run.output()
    assert "nbdeploy-stopped" in nb["cells"][0]["metadata"]["tags"]
    assert "print('done')" not in json.dumps([c["outputs"] for c in nb["cells"] if c["cell_type"] == "code"])


def test_cancel_stops_the_kernel_of_a_running_run(jobs: JobManager, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    run = nbd.jobs.run("wait", {"pidfile": str(pidfile), "seconds": 600})
    eventually(lambda: run.info.current_cell == 2, what="run reaching cell 2")
    kernel = json.loads(Path(f"{pidfile}.1").read_text())["kernel"]
    assert pid_alive(kernel)
    run.cancel()
    assert run.wait(60).status == "cancelled"
    assert run.info.error_message == "cancelled while running"
    eventually(lambda: not pid_alive(kernel), 30, "the kernel process exiting")
    assert "nbdeploy: cancelled while running in cell 2" in json.dumps(run.output()["cells"][0])


def test_cancel_a_queued_run_before_it_starts(jobs: JobManager) -> None:
    run = jobs.run("quick", dispatch=False)
    run.cancel()  # no dispatcher alive: cancelling starts one here, which carries the request out
    assert run.wait(60).status == "cancelled"
    assert run.info.error_message == "cancelled before it started" and run.info.started_at is None
    with pytest.raises(NotFoundError, match="has no output notebook"):
        run.output()
    assert nbd.runs.get(run.id).cancel().status == "cancelled"  # cancelling a finished run changes nothing


def test_runs_list_filters_by_job_and_status(jobs: JobManager) -> None:
    ok = nbd.jobs.run("quick", {"x": 2}).wait(120)
    bad = nbd.jobs.run("fail").wait(120)
    assert [r.id for r in nbd.runs.list(job="quick")] == [ok.id]
    assert [r.id for r in nbd.runs.list(status="failed")] == [bad.id]
    assert [r.id for r in nbd.runs.list()] == [bad.id, ok.id]
    with pytest.raises(InvalidInputError, match="unknown status"):
        nbd.runs.list(status="exploded")
    with pytest.raises(NotFoundError, match="no run 999"):
        nbd.runs.get(999)
