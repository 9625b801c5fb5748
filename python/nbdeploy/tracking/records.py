"""The typed results of experiment tracking as nbdeploy shows them (the lab's Runs panel, ``nbd.runs.tracked``):
tracked runs with their params, tags and latest metrics, metric histories and comparisons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from ..schema import Record, Rule

__all__ = ["CompareQuery", "MetricPoint", "RunComparison", "TrackedRun", "TrackedRunList", "TrackedRunsQuery"]


@dataclass(frozen=True)
class TrackedRun(Record):
    """A run logged by an MLflow client (distinct from job runs): its experiment, status, times, params, tags and
    the latest value of each metric."""

    run_id: str
    name: str
    experiment_id: str
    experiment: str
    status: str
    start_time: int
    end_time: int | None
    user: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float | None]
    artifact_uri: str

    @classmethod
    def of(cls, run: dict[str, Any], experiment: str) -> TrackedRun:
        info, data = run["info"], run["data"]
        metrics = {m["key"]: (None if m["value"] != m["value"] else m["value"]) for m in data["metrics"]}
        return cls(
            run_id=info["run_id"],
            name=info.get("run_name", ""),
            experiment_id=info["experiment_id"],
            experiment=experiment,
            status=info["status"],
            start_time=int(info["start_time"]),
            end_time=info.get("end_time"),
            user=info.get("user_id", ""),
            params={p["key"]: p["value"] for p in data["params"]},
            tags={t["key"]: t["value"] for t in data["tags"] if not t["key"].startswith("mlflow.log-model")},
            metrics=metrics,
            artifact_uri=info["artifact_uri"],
        )


@dataclass(frozen=True)
class TrackedRunList(Record):
    """Tracked runs, newest first (``GET /tracking/runs``)."""

    runs: list[TrackedRun]


@dataclass(frozen=True)
class MetricPoint(Record):
    """One logged value of a metric."""

    key: str
    value: float | None
    step: int
    timestamp: int


@dataclass(frozen=True)
class RunComparison(Record):
    """Runs side by side: every param and metric key, and each run's values (``None`` where a run has none)."""

    runs: list[TrackedRun]
    params: list[str]
    metrics: list[str]
    history: dict[str, dict[str, list[MetricPoint]]]


@dataclass(frozen=True)
class TrackedRunsQuery(Record):
    """Which tracked runs: of one experiment (by name), how many."""

    request = True
    experiment: Annotated[str, Rule(max_length=256)] | None = None
    limit: Annotated[int, Rule(minimum=1, maximum=1000)] = 100


@dataclass(frozen=True)
class CompareQuery(Record):
    """The runs to compare: their ids, comma-separated."""

    request = True
    runs: Annotated[str, Rule(pattern=r"^[0-9a-f]{32}(,[0-9a-f]{32}){0,19}$", description="run ids, comma-separated")]
