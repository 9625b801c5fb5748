"""Experiment tracking over the catalog, answering in MLflow's JSON (the shapes of its REST API): experiments,
runs, params, tags, metrics, inputs and outputs, MLflow 3's logged models. Modelled on MLflow's SQL store: the
same tables, the same checks (a run must be active to log into it, params are immutable), the same error codes.

The hot path (``log-metric``, ``log-batch``, ``log-parameter``, ``set-tag``) is one short transaction: on
SQLite, on the catalog's per-thread connection (:meth:`Catalog._fast_connection`), without the ORM.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from ..exceptions import NbdeployError

__all__ = ["MlflowError", "TrackingBackend"]

MAX_KEY = 250
MAX_PARAM = 6000
MAX_TAG = 8000
DEFAULT_EXPERIMENT = 0


class MlflowError(NbdeployError):
    """An error in MLflow's terms: ``error_code`` (``RESOURCE_DOES_NOT_EXIST`` …) and the HTTP status."""

    def __init__(self, message: str, error_code: str = "INVALID_PARAMETER_VALUE", http_status: int = 400) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.http_status = http_status


def not_found(message: str) -> MlflowError:
    return MlflowError(message, "RESOURCE_DOES_NOT_EXIST", 404)


def invalid(message: str) -> MlflowError:
    return MlflowError(message, "INVALID_PARAMETER_VALUE", 400)


def now_ms() -> int:
    return int(time.time() * 1000)


def _int(value: Any, what: str, default: int | None = None) -> int:
    if value is None or value == "":
        if default is None:
            raise invalid(f"Missing value for required parameter '{what}'")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid value {value!r} for parameter '{what}': it must be a whole number") from None


def _key(value: Any, what: str = "key") -> str:
    if not isinstance(value, str) or not value:
        raise invalid(f"Missing value for required parameter '{what}'")
    if len(value) > MAX_KEY or ".." in value.split("/") or value.startswith("/"):
        raise invalid(f"Invalid value {value[:80]!r} for parameter '{what}'")
    return value


class TrackingBackend:
    """MLflow's tracking operations over ``catalog``; every method takes and returns MLflow's JSON."""

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog

    # --- connections -------------------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """A write transaction yielding ``run(sql, params) -> rows`` (named ``:params``, portable SQL)."""
        fast = self.catalog._fast_connection()
        if fast is not None:
            fast.execute("BEGIN IMMEDIATE")
            try:
                yield lambda sql, params=None: fast.execute(sql, params or {}).fetchall()
                fast.execute("COMMIT")
            except BaseException:
                fast.execute("ROLLBACK")
                raise
            return
        with self.catalog.engine.begin() as conn:

            def run(sql: str, params: Any = None) -> list[Any]:
                result = conn.execute(sa.text(sql), params or {})
                return list(result.fetchall()) if result.returns_rows else []

            yield run

    def _read(self, sql: str, params: Any = None) -> list[Any]:
        with self.catalog.engine.execution_options(nbd_readonly=True).connect() as conn:
            return list(conn.execute(sa.text(sql), params or {}).fetchall())

    # --- experiments ---------------------------------------------------------------------------------------
    def _experiment_json(self, row: Any, tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
        if tags is None:
            tags = [
                {"key": k, "value": v}
                for k, v in self._read("SELECT key, value FROM experiment_tags WHERE experiment_id = :e", {"e": row[0]})
            ]
        return {
            "experiment_id": str(row[0]),
            "name": row[1],
            "artifact_location": row[2],
            "lifecycle_stage": row[3],
            "creation_time": row[4],
            "last_update_time": row[5],
            "tags": tags,
        }

    _EXPERIMENT = "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time FROM experiments"

    def create_experiment(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 256:
            raise invalid("Invalid experiment name: it must be a non-empty string of at most 256 characters")
        stamp = now_ms()
        with self._tx() as run:
            if run("SELECT experiment_id FROM experiments WHERE name = :n", {"n": name}):
                raise MlflowError(f"Experiment(name={name}) already exists.", "RESOURCE_ALREADY_EXISTS", 400)
            run(
                "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) "
                "VALUES (:n, '', 'active', :t, :t)",
                {"n": name, "t": stamp},
            )
            experiment_id = run("SELECT experiment_id FROM experiments WHERE name = :n", {"n": name})[0][0]
            location = body.get("artifact_location") or f"mlflow-artifacts:/{experiment_id}"
            run(
                "UPDATE experiments SET artifact_location = :a WHERE experiment_id = :e",
                {"a": location, "e": experiment_id},
            )
            for tag in body.get("tags") or []:
                run(
                    "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (:e, :k, :v)",
                    {"e": experiment_id, "k": _key(tag.get("key")), "v": str(tag.get("value", ""))},
                )
        return {"experiment_id": str(experiment_id)}

    def get_experiment(self, experiment_id: Any) -> dict[str, Any]:
        rows = self._read(self._EXPERIMENT + " WHERE experiment_id = :e", {"e": _int(experiment_id, "experiment_id")})
        if not rows:
            raise not_found(f"No Experiment with id={experiment_id} exists")
        return {"experiment": self._experiment_json(rows[0])}

    def get_experiment_by_name(self, name: Any) -> dict[str, Any]:
        rows = self._read(self._EXPERIMENT + " WHERE name = :n", {"n": str(name or "")})
        if not rows:
            raise not_found(f"Could not find experiment with name '{name}'")
        return {"experiment": self._experiment_json(rows[0])}

    def search_experiments(self, body: dict[str, Any]) -> dict[str, Any]:
        view = body.get("view_type") or "ACTIVE_ONLY"
        query = self._EXPERIMENT
        if view in ("ACTIVE_ONLY", 1):
            query += " WHERE lifecycle_stage = 'active'"
        elif view in ("DELETED_ONLY", 2):
            query += " WHERE lifecycle_stage = 'deleted'"
        rows = self._read(query + " ORDER BY experiment_id DESC")
        wanted = str(body.get("filter") or "")
        if wanted.startswith("name ="):  # the filter the client itself sends: name = 'x'
            name = wanted.split("=", 1)[1].strip().strip("'\"")
            rows = [r for r in rows if r[1] == name]
        limit = _int(body.get("max_results"), "max_results", 1000)
        return {"experiments": [self._experiment_json(r) for r in rows[:limit]]}

    def _set_experiment_stage(self, body: dict[str, Any], stage: str) -> dict[str, Any]:
        experiment_id = _int(body.get("experiment_id"), "experiment_id")
        self.get_experiment(experiment_id)
        with self._tx() as run:
            run(
                "UPDATE experiments SET lifecycle_stage = :s, last_update_time = :t WHERE experiment_id = :e",
                {"s": stage, "t": now_ms(), "e": experiment_id},
            )
        return {}

    def delete_experiment(self, body: dict[str, Any]) -> dict[str, Any]:
        if _int(body.get("experiment_id"), "experiment_id") == DEFAULT_EXPERIMENT:
            raise invalid("Cannot delete the default experiment '0'.")
        return self._set_experiment_stage(body, "deleted")

    def restore_experiment(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._set_experiment_stage(body, "active")

    def update_experiment(self, body: dict[str, Any]) -> dict[str, Any]:
        experiment_id = _int(body.get("experiment_id"), "experiment_id")
        self.get_experiment(experiment_id)
        if body.get("new_name"):
            with self._tx() as run:
                run(
                    "UPDATE experiments SET name = :n WHERE experiment_id = :e",
                    {"n": str(body["new_name"]), "e": experiment_id},
                )
        return {}

    def set_experiment_tag(self, body: dict[str, Any]) -> dict[str, Any]:
        experiment_id = _int(body.get("experiment_id"), "experiment_id")
        self.get_experiment(experiment_id)
        key, value = _key(body.get("key")), str(body.get("value", ""))[:MAX_TAG]
        with self._tx() as run:
            run("DELETE FROM experiment_tags WHERE experiment_id = :e AND key = :k", {"e": experiment_id, "k": key})
            run(
                "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (:e, :k, :v)",
                {"e": experiment_id, "k": key, "v": value},
            )
        return {}

    def delete_experiment_tag(self, body: dict[str, Any]) -> dict[str, Any]:
        experiment_id = _int(body.get("experiment_id"), "experiment_id")
        with self._tx() as run:
            run(
                "DELETE FROM experiment_tags WHERE experiment_id = :e AND key = :k",
                {"e": experiment_id, "k": _key(body.get("key"))},
            )
        return {}

    # --- runs --------------------------------------------------------------------------------------------------
    _RUN = (
        "SELECT run_uuid, name, experiment_id, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri "
        "FROM tracked_runs"
    )

    @staticmethod
    def _run_info(row: Any) -> dict[str, Any]:
        info = {
            "run_id": row[0],
            "run_uuid": row[0],
            "run_name": row[1],
            "experiment_id": str(row[2]),
            "user_id": row[3],
            "status": row[4],
            "start_time": row[5],
            "artifact_uri": row[8],
            "lifecycle_stage": row[7],
        }
        if row[6] is not None:
            info["end_time"] = row[6]
        return info

    def _run_row(self, run_id: Any, run: Any = None) -> Any:
        if not isinstance(run_id, str) or not run_id or len(run_id) > 32:
            raise invalid(f"Invalid run id {str(run_id)[:40]!r}")
        rows = (run or self._read)(self._RUN + " WHERE run_uuid = :r", {"r": run_id})
        if not rows:
            raise not_found(f"Run with id={run_id} not found")
        return rows[0]

    def _run_json(self, row: Any) -> dict[str, Any]:
        run_id = row[0]
        metrics = self.latest_metrics([run_id]).get(run_id, [])
        params = [
            {"key": k, "value": v}
            for k, v in self._read("SELECT key, value FROM tracked_params WHERE run_uuid = :r", {"r": run_id})
        ]
        tags = [
            {"key": k, "value": v}
            for k, v in self._read("SELECT key, value FROM tracked_tags WHERE run_uuid = :r", {"r": run_id})
        ]
        inputs: list[Any] = []
        outputs: list[Any] = []
        for direction, _name, _digest, data in self._read(
            "SELECT direction, name, digest, data FROM tracked_inputs WHERE run_uuid = :r ORDER BY id", {"r": run_id}
        ):
            data = _json(data)
            (inputs if direction == "input" else outputs).append(data)
        return {
            "info": self._run_info(row),
            "data": {"metrics": metrics, "params": params, "tags": tags},
            "inputs": {"dataset_inputs": inputs, "model_inputs": []},
            "outputs": {"model_outputs": outputs},
        }

    def latest_metrics(self, run_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The newest value (by step, then time) of every metric of each run."""
        if not run_ids:
            return {}
        out: dict[str, dict[str, dict[str, Any]]] = {}
        rows = self._metrics_of(run_ids)
        for run_uuid, key, value, timestamp, step, is_nan in rows:
            current = out.setdefault(run_uuid, {}).get(key)
            if current is None or (step, timestamp) >= (current["step"], current["timestamp"]):
                out[run_uuid][key] = {
                    "key": key,
                    "value": math.nan if is_nan else value,
                    "timestamp": timestamp,
                    "step": step,
                }
        return {r: list(m.values()) for r, m in out.items()}

    def _metrics_of(self, run_ids: Sequence[str]) -> list[Any]:
        stmt = sa.text(
            "SELECT run_uuid, key, value, timestamp, step, is_nan FROM tracked_metrics WHERE run_uuid IN :ids ORDER BY id"
        ).bindparams(sa.bindparam("ids", expanding=True))
        with self.catalog.engine.execution_options(nbd_readonly=True).connect() as conn:
            return list(conn.execute(stmt, {"ids": list(run_ids)}).fetchall())

    def create_run(self, body: dict[str, Any]) -> dict[str, Any]:
        experiment_id = _int(body.get("experiment_id"), "experiment_id", DEFAULT_EXPERIMENT)
        experiment = self.get_experiment(experiment_id)["experiment"]
        if experiment["lifecycle_stage"] != "active":
            raise invalid(f"The experiment {experiment_id} must be in the 'active' state.")
        run_id = uuid.uuid4().hex
        tags = {t.get("key"): str(t.get("value", "")) for t in body.get("tags") or [] if t.get("key")}
        name = str(body.get("run_name") or tags.get("mlflow.runName") or f"run-{run_id[:8]}")
        tags["mlflow.runName"] = name
        start = _int(body.get("start_time"), "start_time", now_ms())
        location = experiment["artifact_location"].rstrip("/")
        with self._tx() as run:
            run(
                "INSERT INTO tracked_runs (run_uuid, name, experiment_id, user_id, status, start_time, end_time, "
                "lifecycle_stage, artifact_uri) VALUES (:r, :n, :e, :u, 'RUNNING', :s, NULL, 'active', :a)",
                {
                    "r": run_id,
                    "n": name[:250],
                    "e": experiment_id,
                    "u": str(body.get("user_id") or ""),
                    "s": start,
                    "a": f"{location}/{run_id}/artifacts",
                },
            )
            for key, value in tags.items():
                run(
                    "INSERT INTO tracked_tags (run_uuid, key, value) VALUES (:r, :k, :v)",
                    {"r": run_id, "k": _key(key), "v": value[:MAX_TAG]},
                )
        return {"run": self._run_json(self._run_row(run_id))}

    def get_run(self, run_id: Any) -> dict[str, Any]:
        return {"run": self._run_json(self._run_row(run_id))}

    def update_run(self, body: dict[str, Any]) -> dict[str, Any]:
        run_id = body.get("run_id") or body.get("run_uuid")
        self._run_row(run_id)
        changes: dict[str, Any] = {"r": run_id}
        sets = []
        if body.get("status"):
            status = str(body["status"])
            if status not in ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"):
                raise invalid(f"Invalid run status {status!r}")
            sets.append("status = :status")
            changes["status"] = status
        if body.get("end_time") is not None:
            sets.append("end_time = :end")
            changes["end"] = _int(body["end_time"], "end_time")
        if body.get("run_name"):
            sets.append("name = :name")
            changes["name"] = str(body["run_name"])[:250]
        with self._tx() as run:
            if sets:
                run(f"UPDATE tracked_runs SET {', '.join(sets)} WHERE run_uuid = :r", changes)
            if "name" in changes:
                run("DELETE FROM tracked_tags WHERE run_uuid = :r AND key = 'mlflow.runName'", {"r": run_id})
                run(
                    "INSERT INTO tracked_tags (run_uuid, key, value) VALUES (:r, 'mlflow.runName', :v)",
                    {"r": run_id, "v": changes["name"]},
                )
        return {"run_info": self._run_info(self._run_row(run_id))}

    def _set_run_stage(self, body: dict[str, Any], stage: str) -> dict[str, Any]:
        run_id = body.get("run_id")
        self._run_row(run_id)
        with self._tx() as run:
            run("UPDATE tracked_runs SET lifecycle_stage = :s WHERE run_uuid = :r", {"s": stage, "r": run_id})
        return {}

    def delete_run(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._set_run_stage(body, "deleted")

    def restore_run(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._set_run_stage(body, "active")

    def search_runs(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = [_int(e, "experiment_ids") for e in body.get("experiment_ids") or []]
        view = body.get("run_view_type") or "ACTIVE_ONLY"
        query = self._RUN + " WHERE 1 = 1"
        params: dict[str, Any] = {}
        stmt_ids = bool(ids)
        if view in ("ACTIVE_ONLY", 1):
            query += " AND lifecycle_stage = 'active'"
        elif view in ("DELETED_ONLY", 2):
            query += " AND lifecycle_stage = 'deleted'"
        if stmt_ids:
            query += " AND experiment_id IN :ids"
        query += " ORDER BY start_time DESC, run_uuid"
        stmt = sa.text(query)
        if stmt_ids:
            stmt = stmt.bindparams(sa.bindparam("ids", expanding=True))
            params["ids"] = ids
        with self.catalog.engine.execution_options(nbd_readonly=True).connect() as conn:
            rows = list(conn.execute(stmt, params).fetchall())
        rows = _filter_runs(self, rows, str(body.get("filter") or ""))
        offset = _int(body.get("page_token") or 0, "page_token", 0)
        limit = min(_int(body.get("max_results"), "max_results", 1000), 50000)
        page = rows[offset : offset + limit]
        out: dict[str, Any] = {"runs": [self._run_json(r) for r in page]}
        if offset + limit < len(rows):
            out["next_page_token"] = str(offset + limit)
        return out

    # --- logging -----------------------------------------------------------------------------------------------
    def _active(self, run: Any, run_id: Any) -> None:
        if not isinstance(run_id, str) or not run_id or len(run_id) > 32:
            raise invalid(f"Invalid run id {str(run_id)[:40]!r}")
        rows = run("SELECT lifecycle_stage FROM tracked_runs WHERE run_uuid = :r", {"r": run_id})
        if not rows:
            raise not_found(f"Run with id={run_id} not found")
        if rows[0][0] != "active":
            raise invalid(f"The run {run_id} must be in the 'active' state. Current state is {rows[0][0]}.")

    @staticmethod
    def _metric_values(run_id: str, metric: dict[str, Any]) -> dict[str, Any]:
        key = _key(metric.get("key"))
        raw: Any = metric.get("value")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise invalid(f"Got invalid value {raw!r} for metric '{key}'") from None
        is_nan = math.isnan(value)
        if math.isinf(value):
            value = math.copysign(1.7976931348623157e308, value)
        return {
            "r": run_id,
            "k": key,
            "v": 0.0 if is_nan else value,
            "t": _int(metric.get("timestamp"), "timestamp", now_ms()),
            "s": _int(metric.get("step"), "step", 0),
            "n": is_nan,
            "m": metric.get("model_id"),
        }

    _INSERT_METRIC = (
        "INSERT INTO tracked_metrics (run_uuid, key, value, timestamp, step, is_nan, model_id) "
        "VALUES (:r, :k, :v, :t, :s, :n, :m)"
    )

    def log_metric(self, body: dict[str, Any]) -> dict[str, Any]:
        run_id = body.get("run_id") or body.get("run_uuid")
        values = self._metric_values(str(run_id), body)
        with self._tx() as run:
            self._active(run, run_id)
            run(self._INSERT_METRIC, values)
        return {}

    def _put_param(self, run: Any, run_id: str, key: str, value: str) -> None:
        found = run("SELECT value FROM tracked_params WHERE run_uuid = :r AND key = :k", {"r": run_id, "k": key})
        if found:
            if found[0][0] != value:
                raise invalid(
                    f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                    f"value='{found[0][0]}' for run ID='{run_id}'. Attempted logging new value '{value}'."
                )
            return
        run(
            "INSERT INTO tracked_params (run_uuid, key, value) VALUES (:r, :k, :v)", {"r": run_id, "k": key, "v": value}
        )

    def _put_tag(self, run: Any, run_id: str, key: str, value: str) -> None:
        run("DELETE FROM tracked_tags WHERE run_uuid = :r AND key = :k", {"r": run_id, "k": key})
        run("INSERT INTO tracked_tags (run_uuid, key, value) VALUES (:r, :k, :v)", {"r": run_id, "k": key, "v": value})
        if key == "mlflow.runName":
            run("UPDATE tracked_runs SET name = :v WHERE run_uuid = :r", {"r": run_id, "v": value[:250]})

    def log_param(self, body: dict[str, Any]) -> dict[str, Any]:
        run_id = body.get("run_id") or body.get("run_uuid")
        key, value = _key(body.get("key")), str(body.get("value", ""))[:MAX_PARAM]
        with self._tx() as run:
            self._active(run, run_id)
            self._put_param(run, str(run_id), key, value)
        return {}

    def set_tag(self, body: dict[str, Any]) -> dict[str, Any]:
        run_id = body.get("run_id") or body.get("run_uuid")
        key, value = _key(body.get("key")), str(body.get("value", ""))[:MAX_TAG]
        with self._tx() as run:
            self._active(run, run_id)
            self._put_tag(run, str(run_id), key, value)
        return {}

    def delete_tag(self, body: dict[str, Any]) -> dict[str, Any]:
        run_id = body.get("run_id")
        key = _key(body.get("key"))
        with self._tx() as run:
            self._active(run, run_id)
            if not run("SELECT key FROM tracked_tags WHERE run_uuid = :r AND key = :k", {"r": run_id, "k": key}):
                raise not_found(f"No tag with name: {key} in run with id {run_id}")
            run("DELETE FROM tracked_tags WHERE run_uuid = :r AND key = :k", {"r": run_id, "k": key})
        return {}

    def log_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        run_id = str(body.get("run_id") or "")
        metrics = [self._metric_values(run_id, m) for m in body.get("metrics") or []]
        params = [(_key(p.get("key")), str(p.get("value", ""))[:MAX_PARAM]) for p in body.get("params") or []]
        tags = [(_key(t.get("key")), str(t.get("value", ""))[:MAX_TAG]) for t in body.get("tags") or []]
        if len(metrics) > 1000 or len(params) > 100 or len(tags) > 100:
            raise invalid("A batch holds at most 1000 metrics, 100 params and 100 tags")
        with self._tx() as run:
            self._active(run, run_id)
            for key, value in params:
                self._put_param(run, run_id, key, value)
            for key, value in tags:
                self._put_tag(run, run_id, key, value)
            for values in metrics:
                run(self._INSERT_METRIC, values)
        return {}

    def log_inputs(self, body: dict[str, Any]) -> dict[str, Any]:
        run_id = str(body.get("run_id") or "")
        with self._tx() as run:
            self._active(run, run_id)
            for item in body.get("datasets") or []:
                dataset = item.get("dataset") or {}
                run(
                    "INSERT INTO tracked_inputs (run_uuid, direction, name, digest, data) VALUES (:r, 'input', :n, :d, :j)",
                    {
                        "r": run_id,
                        "n": str(dataset.get("name", ""))[:500],
                        "d": str(dataset.get("digest", ""))[:64],
                        "j": _dumps(item),
                    },
                )
        return {}

    def log_outputs(self, body: dict[str, Any]) -> dict[str, Any]:
        run_id = str(body.get("run_id") or "")
        with self._tx() as run:
            self._active(run, run_id)
            for item in body.get("models") or []:
                run(
                    "INSERT INTO tracked_inputs (run_uuid, direction, name, digest, data) VALUES (:r, 'output', :n, '', :j)",
                    {"r": run_id, "n": str(item.get("model_id", ""))[:500], "j": _dumps(item)},
                )
        return {}

    def log_model(self, body: dict[str, Any]) -> dict[str, Any]:
        run_id = str(body.get("run_id") or "")
        with self._tx() as run:
            self._active(run, run_id)
            found = run(
                "SELECT value FROM tracked_tags WHERE run_uuid = :r AND key = 'mlflow.log-model.history'", {"r": run_id}
            )
            history = _json(found[0][0]) if found else []
            history.append(_json(body.get("model_json") or "{}"))
            self._put_tag(run, run_id, "mlflow.log-model.history", _dumps(history))
        return {}

    def metric_history(self, run_id: Any, key: Any, max_results: Any = None, page_token: Any = None) -> dict[str, Any]:
        self._run_row(run_id)
        rows = self._read(
            "SELECT key, value, timestamp, step, is_nan FROM tracked_metrics WHERE run_uuid = :r AND key = :k ORDER BY step, timestamp, id",
            {"r": run_id, "k": _key(key, "metric_key")},
        )
        offset = _int(page_token or 0, "page_token", 0)
        limit = _int(max_results, "max_results", 25000)
        page = rows[offset : offset + limit]
        out: dict[str, Any] = {
            "metrics": [{"key": k, "value": math.nan if n else v, "timestamp": t, "step": s} for k, v, t, s, n in page]
        }
        if offset + limit < len(rows):
            out["next_page_token"] = str(offset + limit)
        return out


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def _json(value: Any) -> Any:
    import json

    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _filter_runs(backend: TrackingBackend, rows: list[Any], text: str) -> list[Any]:
    """Apply a search filter of the simple form the client and people write: ``tags.k = 'v'``,
    ``params.k = 'v'``, ``attributes.status = 'FINISHED'``, ``metrics.k > 0.5``, joined by ``and``."""
    import operator
    import re

    if not text.strip():
        return rows
    ops = {
        "=": operator.eq,
        "!=": operator.ne,
        ">": operator.gt,
        ">=": operator.ge,
        "<": operator.lt,
        "<=": operator.le,
    }
    clauses = re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE)
    pattern = re.compile(
        r"^\s*(?:(tags|params|metrics|attributes|attribute|tag|param|metric)\.)?[`\"]?([\w.\-/ ]+?)[`\"]?\s*(=|!=|>=|<=|>|<)\s*(.+?)\s*$"
    )
    parsed = []
    for clause in clauses:
        m = pattern.match(clause)
        if m is None:
            raise invalid(f"Invalid search filter: {clause!r}")
        scope, key, op, raw = m.groups()
        value: Any = raw.strip("'\"")
        parsed.append(((scope or "attributes").rstrip("s") if scope else "attribute", key, ops[op], value, raw))
    out = []
    for row in rows:
        run_id = row[0]
        keep = True
        for scope, key, fn, value, raw in parsed:
            if scope == "tag":
                found = backend._read(
                    "SELECT value FROM tracked_tags WHERE run_uuid = :r AND key = :k", {"r": run_id, "k": key}
                )
                have = found[0][0] if found else None
            elif scope == "param":
                found = backend._read(
                    "SELECT value FROM tracked_params WHERE run_uuid = :r AND key = :k", {"r": run_id, "k": key}
                )
                have = found[0][0] if found else None
            elif scope == "metric":
                latest = {m["key"]: m["value"] for m in backend.latest_metrics([run_id]).get(run_id, [])}
                have = latest.get(key)
                value = float(raw)
            else:
                names = {"status": 4, "run_name": 1, "run_id": 0, "user_id": 3, "start_time": 5, "end_time": 6}
                if key not in names:
                    raise invalid(f"Invalid attribute key {key!r}")
                have = row[names[key]]
                if key in ("start_time", "end_time"):
                    value = int(raw)
            if have is None or not fn(have, value):
                keep = False
                break
        if keep:
            out.append(row)
    return out
