"""The models service: a registry of versioned models, served on the cluster with micro-batching.

No tornado here: the REST handlers, the magics and ``nbd.models`` all call :class:`ModelManager`.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from typing import TYPE_CHECKING, Any

from .._sync import SyncBridge
from ..exceptions import ClusterError, InvalidInputError, NbdeployError, NotFoundError, SignatureError
from ..monitor import ServingStats
from ..names import validate_name
from ..runtime.messages import UNREADABLE, ModelCall, Outcome
from ..runtime.pool_cache import PoolCache
from ..store import Store, Version, VersionCache
from .records import ModelInfo, ModelList, ModelReport, ModelVersion, Prediction
from .signature import Rows, example_payload, infer_signature, parse_payload, payload_schema, rows_from_python

if TYPE_CHECKING:
    from ..app import Nbdeploy

__all__ = ["ModelManager"]

KIND = "model"
DEFAULT_TIMEOUT = 60.0
EXAMPLE_ROWS = 5


class ModelManager(SyncBridge, ServingStats):
    """Store, list, resolve and serve the models of ``app`` (``app.models``).

    ``max_batch_size`` (requests per batch) and ``max_wait_ms`` (how long a batch may wait for more requests
    while its replica is busy) default to the settings ``model_max_batch_size`` / ``model_max_wait_ms``
    or 64 and 2 ms; a version's own ``serving`` options (given to :meth:`put`) win.
    """

    def __init__(self, app: Nbdeploy, *, max_batch_size: int | None = None, max_wait_ms: float | None = None) -> None:
        self.app = app
        settings = app.settings
        self.max_batch_size = int(max_batch_size or settings.model_max_batch_size)
        self.max_wait_ms = float(max_wait_ms if max_wait_ms is not None else settings.model_max_wait_ms)
        self._pools = PoolCache()
        self._resolved = VersionCache()  # what requests resolve, valid while the catalog is unchanged

    stats_kind = "model"

    @property
    def store(self) -> Store:
        return self.app.store

    # --- registry ---------------------------------------------------------------------------------
    def put(
        self,
        model: Any,
        name: str,
        metrics: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        sample_input: Any = None,
        tags: dict[str, Any] | None = None,
        alias: str | None = None,
        *,
        flavor: str | None = None,
        method: str = "predict",
        description: str | None = None,
        max_batch_size: int | None = None,
        max_wait_ms: float | None = None,
        resources: dict[str, float] | None = None,
    ) -> ModelVersion:
        """Store ``model`` as the next version of ``name`` and return it (with ``alias`` pointing at it).

        The flavor is picked from the model's library unless ``flavor`` names one; ``sample_input`` (a few
        training rows) gives the input signature and the profile drift is measured against; ``method`` is
        what predictions call (``predict_proba`` …); ``resources`` are the Dask resources its replicas and batch
        predictions need (``{"GPU": 1}``: only workers that offer them). Raises :class:`InvalidNameError`,
        :class:`InvalidInputError` (a model that cannot be stored, bad metadata) and
        :class:`MissingDependencyError`. Nothing is stored when serialising fails.
        """
        from .flavors import dumps_model
        from .psi import profile_sample
        from .signature import as_frame_or_array

        validate_name(name)
        if alias is not None:
            validate_name(alias, "alias")
        for label, value in (("metrics", metrics), ("params", params), ("tags", tags)):
            if value is not None and not isinstance(value, dict):
                raise InvalidInputError(f"{label} must be a dict, not a {type(value).__name__}", label)
        if not isinstance(method, str) or (
            not hasattr(model, method) and not (method == "predict" and callable(model))
        ):
            raise InvalidInputError(f"the {type(model).__name__} has no method {method!r} to predict with", "method")
        signature = infer_signature(sample_input)
        from ..runtime.resources import normalize_resources

        serving: dict[str, Any] = {
            k: v for k, v in (("max_batch_size", max_batch_size), ("max_wait_ms", max_wait_ms)) if v is not None
        }
        resources = normalize_resources(resources)
        if resources:
            serving["resources"] = resources
        blob, header = dumps_model(model, flavor, {"signature": signature, "method": method})
        metadata: dict[str, Any] = {
            "flavor": header["flavor"],
            "format": header.get("format", ""),
            "class": header["class"],
            "libraries": header["libraries"],
            "signature": signature,
            "method": method,
            "metrics": _jsonable(metrics or {}, "metrics"),
            "params": _jsonable(params or {}, "params"),
            "tags": _jsonable(tags or {}, "tags"),
            "description": description or "",
            "serving": serving,
        }
        if header.get("note"):
            metadata["note"] = header["note"]
        if sample_input is not None:
            sample = as_frame_or_array(sample_input)
            metadata["profile"] = profile_sample(sample)
            metadata["example"] = rows_from_python(sample[:EXAMPLE_ROWS], signature, allow_empty=True).data
        version = self.store.put(KIND, name, blob, metadata)
        from ..runtime.warmup import preload_version

        preload_version(self.app, KIND, version.sha256)  # the first request finds it loaded on the workers
        from ..datasets import lineage_log as lineage

        lineage.record(self.store.catalog, KIND, name, version.version, "write")  # the run that made it, if any
        if alias is not None:
            version = self.store.set_alias(KIND, name, alias, version.version)
        return ModelVersion.from_version(version)

    def get(self, name: str, version: int | str | None = None, alias: str | None = None) -> Any:
        """Return the loaded model (the newest version, a number, or an alias); raises :class:`NotFoundError`."""
        from ..runtime import load_artifact
        from .flavors import loads_model

        target = self.resolve(name, version, alias)
        return load_artifact(self.store.url, target.sha256, loader=loads_model).model

    def version(self, name: str, version: int | str | None = None, alias: str | None = None) -> ModelVersion:
        """Return one version's description (see :meth:`get` for the arguments)."""
        target = self.resolve(name, version, alias)
        return ModelVersion.from_version(self.store.get(KIND, name, target.version))  # with its aliases

    def list_signatures(self) -> builtins.list[dict[str, Any]]:
        """``{"name", "description", "request"}`` of every model's newest version: the JSON schema of its
        predict body (MLflow's formats, typed by the signature), for the OpenAPI document."""
        return [
            {
                "name": v.name,
                "description": v.metadata.get("description") or f"Predict with {v.name} v{v.version}",
                "request": payload_schema(v.metadata.get("signature")),
            }
            for v in self.store.list(KIND)
        ]

    def list(self) -> ModelList:
        """Every model's newest version."""
        return ModelList([ModelVersion.from_version(v) for v in self.store.list(KIND)])

    def versions(self, name: str) -> builtins.list[ModelVersion]:
        """Every live version of ``name``, oldest first; raises :class:`NotFoundError` when there is none."""
        found = self.store.versions(KIND, name)
        if not found:
            raise NotFoundError(f"no model named {name!r}: `nbd.models.list()` shows the stored ones")
        return [ModelVersion.from_version(v) for v in found]

    def info(self, name: str) -> ModelInfo:
        """A model: its newest version, every version, the aliases and an example predict payload."""
        from ..forms import column_fields

        versions = self.versions(name)
        latest = versions[-1]
        signature = latest.metadata.get("signature") or {}
        example = example_payload(signature, latest.metadata.get("example"))
        form = []
        if signature.get("type") == "dataframe":
            split = example.get("dataframe_split") or {}
            rows = split.get("data") or [[]]
            form = column_fields(signature["columns"], dict(zip(split.get("columns") or [], rows[0], strict=False)))
        return ModelInfo(name, latest, versions, self.store.catalog.aliases(KIND, name), example, form)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` (e.g. ``production``) at ``version`` of ``name`` and return that version."""
        return ModelVersion.from_version(self.store.set_alias(KIND, name, alias, version))

    def delete_version(self, name: str, version: int) -> None:
        """Delete one version (its aliases go with it; its number is never reused)."""
        self.store.delete_version(KIND, name, version)

    def delete(self, name: str) -> int:
        """Delete every version of ``name``; return how many there were."""
        return self.store.delete(KIND, name)

    def resolve(self, name: str, version: int | str | None = None, alias: str | None = None) -> Version:
        """Return the version to serve: the newest, a number, or an alias. Raises :class:`NotFoundError`,
        :class:`InvalidInputError` when both ``version`` and ``alias`` are given.

        Answers are cached only while the catalog reports no commit since (:class:`VersionCache`), so a put,
        an alias move or a delete is seen by the very next request. The version carries no aliases.
        """
        if version is not None and alias is not None:
            raise InvalidInputError("give a version or an alias, not both", "alias")
        if isinstance(version, str) and version and not version.isdigit() and version != "latest":
            version, alias = None, version
        ref: int | str | None = alias
        if version not in (None, "", "latest"):
            ref = int(version)
        try:
            return self._resolved.get(self.store, KIND, name, ref)
        except NotFoundError as exc:
            if ref is None:
                raise NotFoundError(f"no model named {name!r}: `nbd.models.list()` shows the stored ones") from exc
            raise

    # --- serving ----------------------------------------------------------------------------------
    async def _pool(self, serving: dict[str, Any]) -> Any:
        from .serving import ModelActor, ModelPool

        size = int(serving.get("max_batch_size") or self.max_batch_size)
        wait = float(serving.get("max_wait_ms", self.max_wait_ms))
        resources = serving.get("resources")
        client = await self.app.runtime.async_client()
        key = (id(client), self.store.url, size, wait, tuple(sorted((resources or {}).items())))
        return await self._pools.get(
            key,
            lambda: ModelPool.connect(
                client.scheduler.address,
                ModelActor,
                (key[1],),
                max_batch_size=size,
                max_wait_ms=wait,
                max_in_flight=2,  # a second batch may gather for max_wait_ms while the first one predicts
                resources=resources,
            ),
        )

    async def apredict(
        self,
        name: str,
        body: Any,
        version: int | str | None = None,
        alias: str | None = None,
        *,
        python: bool = False,
    ) -> Prediction:
        """Predict an MLflow scoring payload ``body`` (or, with ``python``, a DataFrame/array/list) with a version.

        Raises :class:`NotFoundError` (404), :class:`InvalidInputError` (400: malformed, or the model raised on
        this input, as MLflow's scoring server answers), :class:`SignatureError` (422) for input that does not fit
        the signature,
        :class:`ClusterTimeoutError` / :class:`ClusterError` when the cluster fails.
        """
        started = time.perf_counter()
        target: Version | None = None
        rows: Rows | None = None
        status = 500
        try:
            target = self.resolve(name, version, alias)
            meta = target.metadata
            signature = meta.get("signature")
            rows = rows_from_python(body, signature) if python else parse_payload(body, signature)
            pool = await self._pool(meta.get("serving") or {})
            call = ModelCall(target.sha256, rows.kind, rows.columns, rows.data)
            outcome: Outcome = await pool.call(call, timeout=DEFAULT_TIMEOUT)
            if outcome.ok:
                status = 200
                elapsed = (time.perf_counter() - started) * 1000
                return Prediction(outcome.value, target.version, elapsed, outcome.batch_rows)
            if outcome.status == "invalid" and outcome.error_type == UNREADABLE:
                raise InvalidInputError(outcome.message, "body")
            if outcome.status == "invalid":
                raise SignatureError(outcome.message, outcome.fields)
            if outcome.status == "error":  # as MLflow's scoring server: the model refused this input, a 400
                raise InvalidInputError(
                    f"model {name} v{target.version} could not predict this input: {outcome.error_type}: "
                    f"{outcome.message}; GET /models/{name} shows its signature and an example payload",
                    "body",
                )
            raise ClusterError(f"a worker could not load model {name} v{target.version}: {outcome.message}")
        except NbdeployError as exc:
            status = exc.http_status
            raise
        finally:
            self.monitor.record(
                name,
                target.version if target is not None else None,
                (time.perf_counter() - started) * 1000,
                status,
                rows if status == 200 else None,
            )

    def predict(self, name: str, data: Any, version: int | str | None = None, alias: str | None = None) -> Any:
        """Predict ``data`` (DataFrame, array, list of rows, or an MLflow payload dict) on a serving replica —
        the path HTTP requests take — and return the predictions (a numpy array, or a DataFrame when the
        model answers with records). Raises as :meth:`apredict` does."""
        answer = self._run(self.apredict(name, data, version, alias, python=True))
        values = answer.predictions
        if values and isinstance(values[0], dict):
            import pandas as pd

            return pd.DataFrame(values)
        import numpy as np

        return np.asarray(values)

    def predict_batch(self, name: str, data: Any, output: str | None = None, **options: Any) -> Any:
        """Predict a Dask/pandas DataFrame or a Parquet/CSV URL on the cluster (see :func:`.batch.predict_batch`)."""
        from .batch_predict import predict_batch

        return predict_batch(self, name, data, output, **options)

    # --- monitoring -------------------------------------------------------------------------------
    def stats(self, name: str) -> dict[str, Any]:
        """Serving statistics of ``name`` merged over every process that served it (this one included):
        ``requests``, ``errors``, ``statuses``, ``latency_ms`` (mean/p50/p99/max), ``latencies`` ([time,
        ms, status] of the latest requests) and per-version counts with their input samples."""
        return self.merged_stats(name)

    def drift(self, name: str, version: int | str | None = None, alias: str | None = None) -> Any:
        """PSI per column between the version's training sample and its served inputs (a :class:`DriftReport`)."""
        from .psi import drift_report

        target = self.resolve(name, version, alias)
        served = self.stats(name)["versions"].get(str(target.version), {})
        rows = served.get("sample", [])
        columns = served.get("columns") or [f"x{i}" for i in range(len(rows[0]) if rows else 0)]
        return drift_report(name, target.version, target.metadata.get("profile"), columns, rows)

    def report(self, name: str, version: int | str | None = None, alias: str | None = None) -> ModelReport:
        """``{"name", "stats", "drift"}``: :meth:`stats` without the raw samples and latencies, and the drift
        of the version as JSON (what ``GET /models/{name}/stats`` and ``nbdeploy models stats`` show)."""
        stats = self.stats(name)
        for v in stats["versions"].values():
            v.pop("sample", None)
        stats.pop("latencies", None)
        return ModelReport(name, stats, self.drift(name, version, alias).to_json())

    def plot(self, name: str, version: int | str | None = None, alias: str | None = None) -> Any:
        """A matplotlib figure of the model's serving latency and input drift."""
        from ..plots import model_figure

        return model_figure(self.stats(name), self.drift(name, version, alias))

    # --- lifecycle ---------------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close the serving pools of the running event loop's clients; write the statistics out one last time
        (the manager starts a new monitor if it serves again)."""
        await self._pools.aclose()
        if self._monitor is not None:
            await asyncio.to_thread(self.close_monitor)

    def close(self) -> None:
        """Close the serving pools and stop the background loop used by the synchronous API."""
        self._stop_loop(self.aclose)
        self._pools = PoolCache()
        self.close_monitor()


def _jsonable(value: dict[str, Any], label: str) -> dict[str, Any]:
    from ..runtime.encoding import to_jsonable

    try:
        return to_jsonable(value)
    except TypeError as exc:
        raise InvalidInputError(f"{label} must hold JSON values (numbers, strings, lists): {exc}", label) from exc
