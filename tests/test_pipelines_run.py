"""Pipeline runs on real kernels and the shared two-worker Dask cluster: independent nodes overlap, a failure stops
only its descendants, outputs travel inline and as blobs, unchanged nodes are skipped with their reason, partial
runs, and the CLI's ``run --wait --json``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

import nbdeploy as nbd
from nbdeploy.exceptions import InvalidInputError
from nbdeploy.jobs.dispatcher import stop_local_dispatchers
from nbdeploy.jobs.tables import RunOutputRow
from nbdeploy.pipelines.driver import stop_local_drivers
from nbdeploy.pipelines.tables import PipelineNodeRow
from tests.test_pipelines_support import notebook, write_pipeline

WAIT = 300  # seconds a run may take on a loaded machine (a bound, not a measurement)

DAILY = """
name: daily
parameters: {day: "2026-11-30"}
nodes:
  extract: {notebook: extract.ipynb}
  clean:   {notebook: clean.ipynb, after: [extract], parameters: {limit: 10}}
  report:  {notebook: report.ipynb, after: [clean]}
"""


@pytest.fixture
def folder(nbd_env: Path, tmp_path: Path) -> Iterator[Path]:
    """The daily pipeline's notebooks: extract records rows inline, clean a DataFrame and an array as blobs,
    report reads them back through ``upstream``."""
    notebook(
        tmp_path / "extract.ipynb",
        'day = "x"',
        "import nbdeploy as nbd\nnbd.output('rows', 42)\nnbd.output('day', day)",
    )
    notebook(
        tmp_path / "clean.ipynb",
        "upstream = {}\nlimit = 1",
        "import nbdeploy as nbd, numpy as np, pandas as pd\n"
        "rows = upstream['extract']['rows']\n"
        "nbd.output('n', rows + limit)\n"
        "nbd.output('table', pd.DataFrame({'x': range(20000)}))\n"
        "nbd.output('arr', np.arange(100000))",
    )
    notebook(
        tmp_path / "report.ipynb",
        "upstream = {}",
        "import nbdeploy as nbd\nc = upstream['clean']\n"
        "nbd.output('total', int(c['arr'].sum()) + int(c['table']['x'].sum()) + c['n'])",
    )
    write_pipeline(tmp_path, DAILY)
    yield tmp_path
    stop_local_drivers()
    stop_local_dispatchers()


def statuses(run: object) -> dict[str, tuple[str, str | None]]:
    return {n: (s.status, s.reason) for n, s in run.info.nodes.items()}  # type: ignore[attr-defined]


def executed(run: object) -> set[str]:
    return {n for n, s in run.info.nodes.items() if s.status == "succeeded"}  # type: ignore[attr-defined]


@pytest.mark.timeout(600)  # several pipeline runs of real kernels on a shared, loaded machine
def test_outputs_pass_inline_and_as_blobs_and_unchanged_nodes_are_skipped(folder: Path) -> None:
    first = nbd.pipelines.run(folder / "daily.pipeline.yaml", wait=True, timeout=WAIT)
    assert first.status == "succeeded", first.info
    assert first.outputs("extract") == {"rows": 42, "day": "2026-11-30"}  # the pipeline parameter reached it
    assert first.outputs("report")["total"] == sum(range(100000)) + sum(range(20000)) + 52
    runs = {n: s.run for n, s in first.info.nodes.items()}
    with nbd.default().store.catalog.session() as s:
        kinds = dict(s.execute(sa.select(RunOutputRow.name, RunOutputRow.encoding)).all())
    assert kinds == {"rows": "json", "day": "json", "n": "json", "table": "parquet", "arr": "npy", "total": "json"}
    injected = nbd.runs.get(runs["report"]).output()["cells"][1]
    assert "injected-parameters" in injected["metadata"]["tags"] and "lazy(" in "".join(injected["source"])

    again = nbd.pipelines.run("daily", wait=True, timeout=WAIT)
    assert statuses(again) == {n: ("skipped", f"unchanged since run {runs[n]}") for n in runs}
    assert again.status == "succeeded" and again.outputs("report") == first.outputs("report")

    # editing the leaf notebook reruns exactly that node
    notebook(folder / "report.ipynb", "upstream = {}", "import nbdeploy as nbd\nnbd.output('total', 1)")
    edited = nbd.pipelines.run(folder / "daily.pipeline.yaml", wait=True, timeout=WAIT)
    assert executed(edited) == {"report"} and edited.outputs("report") == {"total": 1}

    # a new parameter value reruns the node that declares it; its outputs changed, so clean reruns too; clean's
    # outputs did not change, so report is still unchanged
    changed = nbd.pipelines.run("daily", {"day": "2026-12-01"}, wait=True, timeout=WAIT)
    assert executed(changed) == {"extract", "clean"} and statuses(changed)["report"][0] == "skipped"

    # forcing a node reruns it; its outputs are the same, so the nodes after it are still unchanged
    forced = nbd.pipelines.run("daily", force=["extract"], wait=True, timeout=WAIT)
    assert executed(forced) == {"extract"}
    assert statuses(forced)["clean"][0] == "skipped"

    # a cached result older than the node's `cache` age is not reused
    write_pipeline(folder, DAILY.replace("after: [clean]}", "after: [clean], cache: 1h}"))
    with nbd.default().store.catalog.session() as s:
        for row in s.scalars(sa.select(PipelineNodeRow)):
            row.ended_at = row.ended_at - timedelta(hours=2)
    stale = nbd.pipelines.run(folder / "daily.pipeline.yaml", wait=True, timeout=WAIT)
    assert executed(stale) == {"report"}  # extract and clean have no age limit

    # cache: false always runs
    write_pipeline(folder, DAILY.replace("after: [clean]}", "after: [clean], cache: false}"))
    nbd.pipelines.put(folder / "daily.pipeline.yaml")
    assert executed(nbd.pipelines.run("daily", wait=True, timeout=WAIT)) == {"report"}


def test_partial_runs_only_from_and_force(folder: Path) -> None:
    with pytest.raises(InvalidInputError, match="has no node 'ghost'"):
        nbd.pipelines.run(folder / "daily.pipeline.yaml", only=["ghost"])
    first = nbd.pipelines.run("daily", wait=True, timeout=WAIT)
    runs = {n: s.run for n, s in first.info.nodes.items()}
    only = nbd.pipelines.run("daily", only=["clean"], force=["clean"], wait=True, timeout=WAIT)
    assert statuses(only)["extract"] == ("skipped", f"not selected; reusing the outputs of run {runs['extract']}")
    assert statuses(only)["report"] == ("skipped", f"not selected; reusing the outputs of run {runs['report']}")
    assert executed(only) == {"clean"}
    new_clean = only.info.nodes["clean"].run
    start = nbd.pipelines.run("daily", from_="clean", force=["clean", "report"], wait=True, timeout=WAIT)
    assert executed(start) == {"clean", "report"} and statuses(start)["extract"][0] == "skipped"
    assert start.info.nodes["clean"].run not in (new_clean, runs["clean"])


def test_independent_nodes_overlap_and_a_failure_stops_only_its_descendants(nbd_env: Path, tmp_path: Path) -> None:
    # left and right each wait for the other to have started: the run can only succeed if they overlap
    waits = "import os, time, nbdeploy as nbd\nopen(os.path.join(folder, me), 'w').close()\n" \
        "deadline = time.time() + 240\n" \
        "while not os.path.exists(os.path.join(folder, other)):\n" \
        "    assert time.time() < deadline, 'the other node never started'\n    time.sleep(0.02)\n" \
        "nbd.output('saw', other)"  # fmt: skip
    notebook(tmp_path / "side.ipynb", 'me = ""\nother = ""\nfolder = ""', waits)
    notebook(tmp_path / "bad.ipynb", "upstream = {}", "raise ValueError('broken input')")
    notebook(tmp_path / "after.ipynb", "upstream = {}", "pass")
    text = f"""
name: fan
parameters: {{folder: "{tmp_path}"}}
nodes:
  left:  {{notebook: side.ipynb, parameters: {{me: left, other: right}}}}
  right: {{notebook: side.ipynb, parameters: {{me: right, other: left}}}}
  bad:   {{notebook: bad.ipynb, after: [left]}}
  after-bad: {{notebook: after.ipynb, after: [bad]}}
  after-right: {{notebook: after.ipynb, after: [right]}}
"""
    try:
        run = nbd.pipelines.run(write_pipeline(tmp_path, text, "fan"), wait=True, timeout=WAIT)
        nodes = run.info.nodes
        assert run.status == "failed"
        assert run.outputs("left") == {"saw": "right"} and run.outputs("right") == {"saw": "left"}
        left, right = nodes["left"], nodes["right"]
        assert left.started_at < right.ended_at and right.started_at < left.ended_at
        assert nodes["bad"].status == "failed" and "ValueError: broken input" in nodes["bad"].reason
        assert (nodes["after-bad"].status, nodes["after-bad"].reason) == ("cancelled", "upstream 'bad' failed")
        assert nodes["after-right"].status == "succeeded"
        assert nbd.runs.get(nodes["bad"].run).status == "failed"
    finally:
        stop_local_drivers()
        stop_local_dispatchers()


@pytest.mark.timeout(600)  # several pipeline runs of real kernels on a shared, loaded machine
def test_cli_run_wait_json_prints_one_object_and_exits_by_the_outcome(nbd_env: Path, tmp_path: Path) -> None:
    notebook(tmp_path / "one.ipynb", "x = 1", "y = x + 1")
    notebook(tmp_path / "two.ipynb", "upstream = {}\nfail = False", "assert not fail, 'asked to fail'")
    text = "name: small\nnodes:\n  one: {notebook: one.ipynb}\n  two: {notebook: two.ipynb, after: [one]}\n"
    path = write_pipeline(tmp_path, text, "small")
    command = [sys.executable, "-m", "nbdeploy.cli", "pipelines", "run", str(path), "--wait"]
    try:
        done = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=WAIT)
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout)
        assert out["status"] == "succeeded" and set(out["nodes"]) == {"one", "two"}
        assert all(
            n["status"] == "succeeded" and n["run"] and n["started_at"] and n["ended_at"] for n in out["nodes"].values()
        )
        write_pipeline(tmp_path, text.replace("after: [one]}", "after: [one], parameters: {fail: true}}"), "small")
        done = subprocess.run(command, capture_output=True, text=True, timeout=WAIT)
        assert done.returncode == 1, done.stdout + done.stderr[-3000:]
        assert "unchanged since run" in done.stdout and "AssertionError: asked to fail" in done.stdout
    finally:
        stop_local_drivers()
        stop_local_dispatchers()
