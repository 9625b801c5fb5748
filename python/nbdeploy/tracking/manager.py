"""The tracking service: MLflow's tracking contract over the catalog (:mod:`.backend`, :mod:`.registry`) and what
nbdeploy shows of tracked runs (lists, histories, comparisons, figures)."""

from __future__ import annotations

import builtins
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..exceptions import NotFoundError
from .backend import MlflowError, TrackingBackend
from .records import MetricPoint, RunComparison, TrackedRun, TrackedRunList
from .registry import ArtifactTree, LoggedModels, ModelRegistry, _root_of, artifact_path

if TYPE_CHECKING:
    from ..app import Nbdeploy

__all__ = ["TrackingManager"]


class TrackingManager:
    """Experiment tracking of ``app`` (``app.tracking``): what the MLflow routes call, and tracked runs for
    ``nbd.runs.tracked()`` and the Runs panel."""

    def __init__(self, app: Nbdeploy) -> None:
        self.app = app

    @cached_property
    def backend(self) -> TrackingBackend:
        return TrackingBackend(self.app.store.catalog)

    @cached_property
    def tree(self) -> ArtifactTree:
        return ArtifactTree(self.backend, self.app.store.artifacts)

    @cached_property
    def logged(self) -> LoggedModels:
        return LoggedModels(self.backend)

    @cached_property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.backend, self.tree, self.logged, self._put_model)

    def _put_model(self, model: Any, name: str, **options: Any) -> Any:
        return self.app.models.put(model, name, **options)

    def close(self) -> None:
        """Nothing to release (the catalog and store are the app's)."""

    # --- MLflow routes that need more than the backend --------------------------------------------------------
    def create_run(self, body: dict[str, Any]) -> dict[str, Any]:
        """``runs/create``."""
        return self.backend.create_run(body)

    def list_run_artifacts(self, run_id: Any, path: Any) -> dict[str, Any]:
        """``artifacts/list`` of a run: its artifact root and the files under ``path``."""
        info = self.backend.get_run(run_id)["run"]["info"]
        root = _root_of(info["artifact_uri"])
        sub = artifact_path(path)
        listing = self.tree.list(f"{root}/{sub}" if sub else root)
        files = [{**f, "path": f"{sub}/{f['path']}" if sub else f["path"]} for f in listing["files"]]
        return {"root_uri": info["artifact_uri"], "files": files}

    # --- what nbdeploy shows ---------------------------------------------------------------------------------
    def tracking_uri(self) -> str:
        """The tracking URI MLflow clients use to log here (the server this process advertises, else the default
        ``nbdeploy serve`` address)."""
        from ..functions.magics import server_url

        base, _ = server_url()
        return f"{base.rstrip('/')}/nbdeploy/mlflow"

    def _experiments(self) -> dict[str, str]:
        return {
            e["experiment_id"]: e["name"] for e in self.backend.search_experiments({"view_type": "ALL"})["experiments"]
        }

    def runs(self, experiment: str | None = None, limit: int = 100) -> TrackedRunList:
        """Tracked runs, newest first (of one experiment, by name)."""
        names = self._experiments()
        ids = []
        if experiment is not None:
            ids = [i for i, n in names.items() if n == experiment]
            if not ids:
                raise NotFoundError(f"no experiment named {experiment!r}")
        found = self.backend.search_runs({"experiment_ids": ids, "max_results": limit})["runs"]
        return TrackedRunList([TrackedRun.of(r, names.get(r["info"]["experiment_id"], "")) for r in found])

    def run(self, run_id: str) -> TrackedRun:
        """One tracked run; raises :class:`NotFoundError`."""
        try:
            found = self.backend.get_run(run_id)["run"]
        except MlflowError as exc:
            raise NotFoundError(str(exc)) from None
        return TrackedRun.of(found, self._experiments().get(found["info"]["experiment_id"], ""))

    def history(self, run_id: str, key: str) -> builtins.list[MetricPoint]:
        """Every value of metric ``key`` of a tracked run, by step."""
        try:
            rows = self.backend.metric_history(run_id, key)["metrics"]
        except MlflowError as exc:
            raise NotFoundError(str(exc)) from None
        return [
            MetricPoint(m["key"], None if m["value"] != m["value"] else m["value"], m["step"], m["timestamp"])
            for m in rows
        ]

    def compare(self, run_ids: builtins.list[str]) -> RunComparison:
        """Runs side by side: their params and metrics, and every metric's history."""
        runs = [self.run(r) for r in run_ids]
        params = sorted({k for r in runs for k in r.params})
        metrics = sorted({k for r in runs for k in r.metrics})
        history = {r.run_id: {k: self.history(r.run_id, k) for k in r.metrics} for r in runs}
        return RunComparison(runs, params, metrics, history)

    def plot(self, run_ids: builtins.list[str], keys: builtins.list[str] | None = None) -> Any:
        """A matplotlib figure of the runs' metrics by step, one panel per metric, the runs overlaid."""
        from ..plots import tracked_metrics_figure

        return tracked_metrics_figure(self.compare(run_ids), keys)
