"""The run view's shape for runs made of nodes (pipelines): node rows with their states, refreshed with the run.

The first test's run is a small stand-in with the surface the view reads (``id``, ``snapshot``, ``refresh()``,
``log()``); the second drives a real ``PipelineRunHandle`` over a stand-in of the pipelines manager's read side, the
boundary this test is not about (pipeline runs themselves are tested in tests/test_pipelines_*.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Snapshot:
    status: str
    name: str = "nightly"
    current_cell: int | None = None
    cell_count: int | None = None
    attempt: int = 1
    has_output: bool = False
    has_log: bool = True

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled", "timed_out")


class PipelineRun:
    """Three nodes that finish one per refresh."""

    id = 7

    def __init__(self) -> None:
        self.snapshot = Snapshot("running")
        self.finished = 0

    def refresh(self) -> PipelineRun:
        self.finished = min(3, self.finished + 1)
        if self.finished == 3:
            self.snapshot = replace(self.snapshot, status="succeeded")
        return self

    def nodes(self) -> list[Any]:
        from nbdeploy.widgets import NodeRow

        states = ["succeeded"] * self.finished + ["running"] + ["queued"] * 3
        return [NodeRow(name, states[i], run_id=10 + i) for i, name in enumerate(("extract", "train", "report"))]

    def log(self, follow: bool = False) -> str:
        return "pipeline done\n"


def test_run_view_shows_the_nodes_of_a_pipeline_run_until_it_ends() -> None:
    from nbdeploy.widgets import RunView

    run = PipelineRun()
    view = RunView(run, nodes=run.nodes, interval=0.01, follow_log=False).wait(timeout=30)
    assert run.snapshot.status == "succeeded"
    table = view.nodes_html.value
    for name in ("extract", "train", "report"):
        assert f"<td style='padding:2px 10px 2px 0'>{name}</td>" in table
    assert table.count("succeeded") == 3 and "running" not in table
    assert "pipeline done" in view.log_html.value
    assert view.text().splitlines()[0] == "run 7 of nightly: succeeded"
    assert "extract" in view.text() and "report" in view.text()


class Ledger:
    """The pipelines manager's read side at the boundary: two refreshes from queued to succeeded."""

    def __init__(self) -> None:
        import threading

        self.reads = 0
        self.go = threading.Event()

    def run_info(self, run_id: int) -> Any:
        from nbdeploy.pipelines.records import NodeProgress, NodeState, PipelineRun

        self.reads += 1
        if self.reads > 1:
            assert self.go.wait(30)
        extract = NodeState("skipped", "unchanged since run 41", 41, None, None, None)
        if self.reads == 1:
            train = NodeState("running", None, 52, None, None, NodeProgress(done=2, total=5))
            status = "running"
        else:
            train = NodeState("succeeded", None, 52, None, None, NodeProgress(done=5, total=5))
            status = "succeeded"
        return PipelineRun(run_id, "daily", 3, status, None, None, {"extract": extract, "train": train})


def test_a_pipeline_run_handle_is_shown_with_a_row_per_node_and_nodes_ended_out_of_all() -> None:
    from nbdeploy.pipelines.manager import PipelineRunHandle
    from nbdeploy.widgets.run_view import pipeline_run_view

    ledger = Ledger()
    handle = PipelineRunHandle(ledger, ledger.run_info(9))  # type: ignore[arg-type]
    view = pipeline_run_view(handle, interval=0.01)
    first = view.nodes_html.value
    assert "unchanged since run 41" in first and "cell 2/5" in first
    assert view.progress.description == "nodes" and view.progress_label.value == "1/2"
    ledger.go.set()
    view.wait(timeout=30)
    assert "pipeline run 9" in view.title.value and "daily" in view.title.value
    assert view.progress.value == 2 and view.progress.max == 2
    assert view.text().splitlines()[0] == "pipeline run 9 of daily: succeeded (2/2 nodes)"
    assert pipeline_run_view(handle) is view
