"""MLflow 3's logged models, the artifacts under MLflow's artifact roots, and MLflow's model registry, over the
catalog and the store; a registered scikit-learn model becomes a version of nbdeploy's own models (served like
any other).

Artifacts live at paths under ``mlflow-artifacts:/`` (``<experiment>/<run>/artifacts/…`` for runs,
``<experiment>/models/<model id>/artifacts/…`` for logged models); each path is a row of ``tracked_artifacts``
naming a content-addressed blob, so a path is never a file name on any disk.
"""

from __future__ import annotations

import io
import re
import uuid
from typing import IO, Any

from .backend import MlflowError, TrackingBackend, _dumps, _int, _json, invalid, not_found, now_ms

__all__ = ["ArtifactTree", "LoggedModels", "ModelRegistry", "artifact_path", "nbdeploy_name"]

_UNSAFE = re.compile(r"(^|/)\.\.?(/|$)")


def artifact_path(path: Any) -> str:
    """A validated artifact path (no leading slash, no ``.``/``..`` segments, at most 1024 characters)."""
    text = str(path or "").strip("/")
    if len(text) > 1024 or _UNSAFE.search(text) or "\\" in text or "\x00" in text:
        raise invalid(f"Invalid artifact path {text[:80]!r}")
    return text


class ArtifactTree:
    """The files under MLflow's artifact roots: ``put``/``open``/``list``/``delete`` by path."""

    def __init__(self, backend: TrackingBackend, artifacts: Any) -> None:
        self.backend, self.artifacts = backend, artifacts

    def put(self, path: str, data: bytes | IO[bytes]) -> dict[str, Any]:
        path = artifact_path(path)
        if not path:
            raise invalid("An artifact needs a path")
        blob = self.artifacts.put_blob(data)
        with self.backend._tx() as run:
            run("DELETE FROM tracked_artifacts WHERE path = :p", {"p": path})
            run(
                "INSERT INTO tracked_artifacts (path, sha256, size, updated_at) VALUES (:p, :s, :n, :t)",
                {"p": path, "s": blob.sha256, "n": blob.size, "t": now_ms()},
            )
        return {}

    def _blob(self, path: str) -> tuple[str, int]:
        rows = self.backend._read(
            "SELECT sha256, size FROM tracked_artifacts WHERE path = :p", {"p": artifact_path(path)}
        )
        if not rows:
            raise not_found(f"No artifact at {path!r}")
        return rows[0][0], int(rows[0][1])

    def read(self, path: str) -> bytes:
        return self.artifacts.read_blob(self._blob(path)[0])

    def open(self, path: str) -> tuple[IO[bytes], int]:
        sha, size = self._blob(path)
        return self.artifacts.open_blob(sha), size

    def list(self, path: Any) -> dict[str, Any]:
        """The immediate children of ``path``: ``{"files": [{"path", "is_dir", "file_size"}]}``."""
        base = artifact_path(path)
        prefix = f"{base}/" if base else ""
        rows = self.backend._read(
            "SELECT path, size FROM tracked_artifacts WHERE path = :b OR path LIKE :p ESCAPE '!'",
            {"b": base, "p": _like(prefix) + "%"},
        )
        files: dict[str, dict[str, Any]] = {}
        for full, size in rows:
            if full == base:
                name = base.rsplit("/", 1)[-1]
                files[name] = {"path": name, "is_dir": False, "file_size": int(size)}
                continue
            head, sep, _ = full[len(prefix) :].partition("/")
            if sep:
                files.setdefault(head, {"path": head, "is_dir": True})
            else:
                files[head] = {"path": head, "is_dir": False, "file_size": int(size)}
        return {"files": sorted(files.values(), key=lambda f: f["path"])}

    def delete(self, path: str) -> dict[str, Any]:
        base = artifact_path(path)
        with self.backend._tx() as run:
            run(
                "DELETE FROM tracked_artifacts WHERE path = :b OR path LIKE :p ESCAPE '!'",
                {"b": base, "p": _like(base + "/") + "%"},
            )
        return {}


def _like(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _root_of(uri: str) -> str:
    """The artifact path under ``mlflow-artifacts:/`` of a URI (``mlflow-artifacts:/1/x`` -> ``1/x``)."""
    if uri.startswith("mlflow-artifacts:"):
        return artifact_path(uri.split(":", 1)[1].lstrip("/"))
    raise invalid(f"Artifact URI {uri!r} is not under mlflow-artifacts:/ (nbdeploy keeps artifacts itself)")


# --- logged models -----------------------------------------------------------------------------------------
class LoggedModels:
    """MLflow 3's logged models."""

    _SELECT = (
        "SELECT model_id, experiment_id, name, artifact_location, creation_timestamp, last_updated_timestamp, "
        "status, lifecycle_stage, model_type, source_run_id, data FROM logged_models"
    )

    def __init__(self, backend: TrackingBackend) -> None:
        self.backend = backend

    @staticmethod
    def _json(row: Any) -> dict[str, Any]:
        data = _json(row[10]) or {}
        info = {
            "model_id": row[0],
            "experiment_id": str(row[1]),
            "name": row[2],
            "artifact_uri": row[3],
            "creation_timestamp_ms": row[4],
            "last_updated_timestamp_ms": row[5],
            "status": row[6],
            "tags": [{"key": k, "value": v} for k, v in (data.get("tags") or {}).items()],
            "registrations": [],
        }
        if row[8]:
            info["model_type"] = row[8]
        if row[9]:
            info["source_run_id"] = row[9]
        params = [{"key": k, "value": v} for k, v in (data.get("params") or {}).items()]
        return {"info": info, "data": {"params": params, "metrics": data.get("metrics") or []}}

    def _row(self, model_id: Any) -> Any:
        rows = self.backend._read(self._SELECT + " WHERE model_id = :m", {"m": str(model_id or "")})
        if not rows or rows[0][7] != "active":
            raise not_found(f"Logged model with ID '{model_id}' not found.")
        return rows[0]

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        experiment = self.backend.get_experiment(_int(body.get("experiment_id"), "experiment_id"))["experiment"]
        model_id = f"m-{uuid.uuid4().hex}"
        name = str(body.get("name") or f"model-{model_id[2:10]}")[:500]
        stamp = now_ms()
        data = {
            "tags": {t["key"]: str(t.get("value", "")) for t in body.get("tags") or [] if t.get("key")},
            "params": {p["key"]: str(p.get("value", "")) for p in body.get("params") or [] if p.get("key")},
        }
        location = f"{experiment['artifact_location'].rstrip('/')}/models/{model_id}/artifacts"
        with self.backend._tx() as run:
            run(
                "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp, "
                "last_updated_timestamp, status, lifecycle_stage, model_type, source_run_id, data) VALUES "
                "(:m, :e, :n, :a, :t, :t, 'LOGGED_MODEL_PENDING', 'active', :mt, :r, :d)",
                {
                    "m": model_id,
                    "e": int(experiment["experiment_id"]),
                    "n": name,
                    "a": location,
                    "t": stamp,
                    "mt": body.get("model_type"),
                    "r": body.get("source_run_id"),
                    "d": _dumps(data),
                },
            )
        return {"model": self._json(self._row(model_id))}

    def get(self, model_id: str) -> dict[str, Any]:
        return {"model": self._json(self._row(model_id))}

    def _update(self, model_id: str, **changes: Any) -> None:
        row = self._row(model_id)
        data = _json(row[10]) or {}
        for key in ("tags", "params"):
            if key in changes:
                data.setdefault(key, {}).update(changes.pop(key))
        if "drop_tag" in changes:
            data.get("tags", {}).pop(changes.pop("drop_tag"), None)
        sets = ", ".join(f"{k} = :{k}" for k in changes)
        with self.backend._tx() as run:
            run(
                f"UPDATE logged_models SET data = :d, last_updated_timestamp = :t{', ' + sets if sets else ''} WHERE model_id = :m",
                {"d": _dumps(data), "t": now_ms(), "m": model_id, **changes},
            )

    def finalize(self, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
        status = str(body.get("status") or "LOGGED_MODEL_READY")
        if status not in ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"):
            raise invalid(f"Invalid logged model status {status!r}")
        self._update(model_id, status=status)
        return self.get(model_id)

    def set_tags(self, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self._update(model_id, tags={t["key"]: str(t.get("value", "")) for t in body.get("tags") or [] if t.get("key")})
        return {}

    def delete_tag(self, model_id: str, key: str) -> dict[str, Any]:
        self._update(model_id, drop_tag=key)
        return {}

    def log_params(self, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self._update(
            model_id, params={p["key"]: str(p.get("value", "")) for p in body.get("params") or [] if p.get("key")}
        )
        return {}

    def delete(self, model_id: str) -> dict[str, Any]:
        self._row(model_id)
        with self.backend._tx() as run:
            run("UPDATE logged_models SET lifecycle_stage = 'deleted' WHERE model_id = :m", {"m": model_id})
        return {}

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = [int(e) for e in body.get("experiment_ids") or [] if str(e).isdigit()]
        rows = [
            r
            for r in self.backend._read(
                self._SELECT + " WHERE lifecycle_stage = 'active' ORDER BY creation_timestamp DESC"
            )
            if not ids or r[1] in ids
        ]
        for key, value in re.findall(r"(\w+)\s*=\s*'([^']*)'", str(body.get("filter") or "")):
            column = {"name": 2, "source_run_id": 9, "model_id": 0, "status": 6, "model_type": 8}.get(key)
            if column is not None:
                rows = [r for r in rows if str(r[column]) == value]
        limit = _int(body.get("max_results"), "max_results", 100)
        return {"models": [self._json(r) for r in rows[:limit]]}


# --- the registry --------------------------------------------------------------------------------------------
def nbdeploy_name(name: str) -> str:
    """The nbdeploy model name of an MLflow registered model name (``Churn Model`` -> ``churn-model``)."""
    text = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")
    text = re.sub(r"\.{2,}", ".", text)[:64].rstrip("-._") or "mlflow-model"
    return text if text[0].isalnum() else f"m{text}"[:64]


class ModelRegistry:
    """MLflow's model registry: registered models and their versions; creating a version of a scikit-learn
    model also stores it in nbdeploy's models (``models_put(model, name, **meta)``)."""

    def __init__(self, backend: TrackingBackend, tree: ArtifactTree, logged: LoggedModels, models_put: Any) -> None:
        self.backend, self.tree, self.logged, self.models_put = backend, tree, logged, models_put

    def _registered_json(self, row: Any) -> dict[str, Any]:
        latest = self.backend._read(
            "SELECT name, version FROM registered_model_versions WHERE name = :n ORDER BY version DESC", {"n": row[0]}
        )
        return {
            "name": row[0],
            "creation_timestamp": row[1],
            "last_updated_timestamp": row[2],
            "description": row[3],
            "latest_versions": [self._version_json(self._version_row(n, v)) for n, v in latest[:1]],
            "tags": [],
            "aliases": [],
        }

    def create_registered(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 256:
            raise invalid("Registered model name cannot be empty.")
        stamp = now_ms()
        with self.backend._tx() as run:
            if run("SELECT name FROM registered_models WHERE name = :n", {"n": name}):
                raise MlflowError(f"Registered Model (name={name}) already exists.", "RESOURCE_ALREADY_EXISTS", 400)
            run(
                "INSERT INTO registered_models (name, creation_timestamp, last_updated_timestamp, description) VALUES (:n, :t, :t, :d)",
                {"n": name, "t": stamp, "d": str(body.get("description") or "")},
            )
        return self.get_registered(name)

    def get_registered(self, name: Any) -> dict[str, Any]:
        rows = self.backend._read(
            "SELECT name, creation_timestamp, last_updated_timestamp, description FROM registered_models WHERE name = :n",
            {"n": str(name or "")},
        )
        if not rows:
            raise not_found(f"Registered Model with name={name} not found")
        return {"registered_model": self._registered_json(rows[0])}

    def search_registered(self, query: dict[str, Any]) -> dict[str, Any]:
        rows = self.backend._read(
            "SELECT name, creation_timestamp, last_updated_timestamp, description FROM registered_models ORDER BY name"
        )
        return {"registered_models": [self._registered_json(r) for r in rows]}

    _VERSION = (
        "SELECT name, version, creation_timestamp, source, run_id, model_id, status, status_message, nbdeploy_model, "
        "nbdeploy_version FROM registered_model_versions"
    )

    def _version_row(self, name: Any, version: Any) -> Any:
        rows = self.backend._read(
            self._VERSION + " WHERE name = :n AND version = :v", {"n": str(name or ""), "v": _int(version, "version")}
        )
        if not rows:
            raise not_found(f"Model Version (name={name}, version={version}) not found")
        return rows[0]

    @staticmethod
    def _version_json(row: Any) -> dict[str, Any]:
        tags = []
        if row[8]:
            tags = [
                {"key": "nbdeploy.model", "value": row[8]},
                {"key": "nbdeploy.version", "value": str(row[9])},
                {"key": "nbdeploy.predict", "value": f"/nbdeploy/api/models/{row[8]}/versions/{row[9]}"},
            ]
        out = {
            "name": row[0],
            "version": str(row[1]),
            "creation_timestamp": row[2],
            "last_updated_timestamp": row[2],
            "current_stage": "None",
            "source": row[3],
            "status": row[6],
            "status_message": row[7],
            "tags": tags,
            "aliases": [],
        }
        if row[4]:
            out["run_id"] = row[4]
        if row[5]:
            out["model_id"] = row[5]
        return out

    def create_version(self, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("name") or "")
        self.get_registered(name)
        source = str(body.get("source") or "")
        if not source:
            raise invalid("Missing value for required parameter 'source'")
        model_id = body.get("model_id")
        root = self._artifact_root(source, model_id)
        status, message, target, number = "READY", "", None, None
        try:
            target, number = self._into_nbdeploy(name, root, body)
            message = f"served by nbdeploy as {target} v{number}"
        except MlflowError as exc:
            message = f"not added to nbdeploy's models: {exc}"
        stamp = now_ms()
        with self.backend._tx() as run:
            current = run("SELECT MAX(version) FROM registered_model_versions WHERE name = :n", {"n": name})
            version = int(current[0][0] or 0) + 1
            run(
                "INSERT INTO registered_model_versions (name, version, creation_timestamp, source, run_id, model_id, status, "
                "status_message, nbdeploy_model, nbdeploy_version) VALUES (:n, :v, :t, :s, :r, :m, :st, :sm, :nm, :nv)",
                {
                    "n": name,
                    "v": version,
                    "t": stamp,
                    "s": source,
                    "r": body.get("run_id"),
                    "m": model_id,
                    "st": status,
                    "sm": message,
                    "nm": target,
                    "nv": number,
                },
            )
            run("UPDATE registered_models SET last_updated_timestamp = :t WHERE name = :n", {"t": stamp, "n": name})
        return {"model_version": self._version_json(self._version_row(name, version))}

    def get_version(self, name: Any, version: Any) -> dict[str, Any]:
        return {"model_version": self._version_json(self._version_row(name, version))}

    def download_uri(self, name: Any, version: Any) -> dict[str, Any]:
        return {"artifact_uri": self._version_row(name, version)[3]}

    def search_versions(self, query: dict[str, Any]) -> dict[str, Any]:
        rows = self.backend._read(self._VERSION + " ORDER BY name, version DESC")
        match = re.search(r"name\s*=\s*'([^']*)'", str(query.get("filter") or ""))
        if match:
            rows = [r for r in rows if r[0] == match.group(1)]
        return {"model_versions": [self._version_json(r) for r in rows]}

    # --- into nbdeploy -----------------------------------------------------------------------------------------
    def _artifact_root(self, source: str, model_id: Any) -> str:
        if source.startswith("models:/"):
            ident = source.split(":/", 1)[1].strip("/").split("/")[0]
            row = self.logged._row(model_id or ident)
            return _root_of(row[3])
        if source.startswith("runs:/"):
            run_id, _, sub = source.split(":/", 1)[1].strip("/").partition("/")
            info = self.backend.get_run(run_id)["run"]["info"]
            return artifact_path(f"{_root_of(info['artifact_uri'])}/{sub}")
        return _root_of(source)

    def _into_nbdeploy(self, name: str, root: str, body: dict[str, Any]) -> tuple[str, int]:
        import yaml

        try:
            spec = yaml.safe_load(self.tree.read(f"{root}/MLmodel"))
        except MlflowError as exc:
            raise invalid(f"no MLmodel file at {root}") from exc
        flavor = (spec.get("flavors") or {}).get("sklearn")
        if not flavor:
            raise invalid(f"the model's flavors are {sorted(spec.get('flavors') or {})}; nbdeploy takes sklearn ones")
        path = f"{root}/{flavor.get('pickled_model') or 'model.pkl'}"
        fmt = flavor.get("serialization_format") or "cloudpickle"
        data = self.tree.read(path)
        if fmt == "skops":
            import skops.io

            model = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
        else:
            import cloudpickle  # what mlflow.sklearn writes by default; registering is an authenticated act

            model = cloudpickle.loads(data)
        sample = None
        try:
            example = _json(self.tree.read(f"{root}/input_example.json").decode())
            import pandas as pd

            if isinstance(example, dict) and "columns" in example:
                sample = pd.DataFrame(example["data"], columns=example["columns"])
            elif isinstance(example, dict) and "inputs" in example:
                sample = pd.DataFrame(example["inputs"])
        except MlflowError:
            pass
        target = nbdeploy_name(name)
        version = self.models_put(
            model,
            target,
            sample_input=sample,
            description=str(body.get("description") or f"registered through MLflow as {name}"),
            tags={"mlflow.source": str(body.get("source")), "mlflow.run_id": str(body.get("run_id") or "")},
        )
        return target, int(version.version)


def stream_to(fh: IO[bytes]) -> IO[bytes]:
    """``fh`` rewound (for a spooled upload)."""
    fh.seek(0)
    return fh if hasattr(fh, "read") else io.BytesIO(fh)  # type: ignore[arg-type]
