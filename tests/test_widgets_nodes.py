"""The run view's shape for runs made of nodes (pipelines): node rows with their states, refreshed with the run.

The pipelines service is being built elsewhere; until it lands, the run here is a small stand-in with the
surface the view reads (``id``, ``snapshot``, ``refresh()``, ``log()``), at the boundary this test is not about."""

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
