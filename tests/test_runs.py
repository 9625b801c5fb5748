"""``nbd.log_metric`` / ``nbd.log_artifact`` outside and inside a run, and run records as JSON."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest

import nbdeploy as nbd
from nbdeploy.exceptions import InvalidInputError
from nbdeploy.jobs import tracking
from tests.helpers import NOTEBOOKS


def test_logging_outside_a_job_warns_once_and_records_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (tracking.ENV_RUN_ID, tracking.ENV_EVENTS):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(tracking, "_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert nbd.log_metric("rmse", 0.31) is None
        assert nbd.log_artifact(b"x", "x.bin") is None
    assert len(caught) == 1 and "not running as an nbdeploy job" in str(caught[0].message)
    assert nbd.runs.current_run() is None


def test_logging_inside_a_run_appends_records_and_stores_artifacts(
    nbd_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(tracking.ENV_RUN_ID, "7")
    monkeypatch.setenv(tracking.ENV_ATTEMPT, "2")
    monkeypatch.setenv(tracking.ENV_EVENTS, str(events))
    monkeypatch.setenv(tracking.ENV_STORE, nbd.default().store.url)
    assert nbd.runs.current_run() == {"id": 7, "attempt": 2}
    nbd.log_metric("rmse", 0.31)
    nbd.log_metric("loss", 2, step=3)
    report = tmp_path / "report.csv"
    report.write_text("a,b\n1,2\n")
    stored = nbd.log_artifact(report)
    assert stored["name"] == "report.csv" and stored["size"] == 8
    assert nbd.default().store.artifacts.read_blob(stored["sha256"]) == b"a,b\n1,2\n"
    records = [json.loads(line) for line in events.read_text().splitlines()]
    assert [(r["kind"], r.get("key") or r.get("name")) for r in records] == [
        ("metric", "rmse"),
        ("metric", "loss"),
        ("artifact", "report.csv"),
    ]
    assert records[1]["value"] == 2.0 and records[1]["step"] == 3
    assert records[0]["seq"] < records[1]["seq"] < records[2]["seq"]

    for bad in ("high", math.nan, math.inf, None):
        with pytest.raises(InvalidInputError):
            nbd.log_metric("rmse", bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="give the artifact a name"):
        nbd.log_artifact(b"bytes")
    with pytest.raises(InvalidInputError, match="must be a file name"):
        nbd.log_artifact(b"bytes", "../escape")


def test_run_json_describes_state_progress_and_error(nbd_home: Path) -> None:
    nbd.jobs.put(NOTEBOOKS / "quick.ipynb", "quick")

    run = nbd.default().jobs.run("quick", {"x": "3"}, timeout=30, retries=2, dispatch=False)
    data = run.to_json()
    assert (data["status"], data["attempt"], data["retries"], data["timeout"]) == ("queued", 1, 2, 30.0)
    assert data["parameters"] == {"x": 3} and data["error"] is None and data["has_output"] is False
    assert data["progress"] == {"current_cell": None, "cell_count": None}
    assert json.dumps(data)  # JSON-ready as it is
    assert f"<td>{run.id}</td>" in run._repr_html_() and "queued" in repr(run)
