"""Models: a registry of versioned models, served over REST with micro-batching, and batch prediction on Dask.

``nbd.models.put(model, "churn", sample_input=X[:100], alias="production")`` stores a version (serialised by
its flavor: scikit-learn, XGBoost, LightGBM, PyTorch or cloudpickle); it is served at once at
``POST /nbdeploy/api/models/churn/predict`` (MLflow's scoring formats) and by ``nbd.models.predict``;
``nbd.models.predict_batch`` predicts data larger than memory on the cluster; ``drift`` and ``plot`` compare
served inputs with the training sample. The module-level functions use one process-wide
:class:`ModelManager` over the default store.
"""

from __future__ import annotations

import builtins
from typing import Any

from .drift import DriftReport
from .flavors import Flavor, available_flavors, register_flavor
from .manager import ModelManager, ModelVersion, Prediction

__all__ = [
    "DriftReport",
    "Flavor",
    "ModelManager",
    "ModelVersion",
    "Prediction",
    "available_flavors",
    "default_manager",
    "delete",
    "delete_version",
    "drift",
    "get",
    "info",
    "list",
    "plot",
    "predict",
    "predict_batch",
    "put",
    "register_flavor",
    "set_alias",
    "stats",
    "versions",
]

_manager: ModelManager | None = None


def default_manager() -> ModelManager:
    """The process-wide manager (over the default store, which follows the settings)."""
    global _manager
    if _manager is None:
        _manager = ModelManager()
    return _manager


def put(
    model: Any,
    name: str,
    metrics: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    sample_input: Any = None,
    tags: dict[str, Any] | None = None,
    alias: str | None = None,
    **options: Any,
) -> ModelVersion:
    """Store ``model`` as the next version of ``name`` and return its :class:`ModelVersion`.

    ``options``: ``flavor``, ``method`` (default ``"predict"``), ``description``, ``max_batch_size``,
    ``max_wait_ms``. See :meth:`ModelManager.put` for what it raises.
    """
    return default_manager().put(model, name, metrics, params, sample_input, tags, alias, **options)


def get(name: str, version: int | str | None = None, alias: str | None = None) -> Any:
    """Return the loaded model: the newest version, ``version=N`` or ``alias="production"``."""
    return default_manager().get(name, version, alias)


def info(name: str) -> dict[str, Any]:
    """The newest version of ``name`` with its signature, metrics, aliases and every version."""
    return default_manager().info(name)


def list() -> builtins.list[dict[str, Any]]:
    """Summaries of every stored model's newest version."""
    return default_manager().list()


def versions(name: str) -> builtins.list[ModelVersion]:
    """Every version of ``name``, oldest first."""
    return default_manager().versions(name)


def set_alias(name: str, alias: str, version: int) -> ModelVersion:
    """Point ``alias`` (e.g. ``production``) at ``version`` of ``name``."""
    return default_manager().set_alias(name, alias, version)


def delete_version(name: str, version: int) -> None:
    """Delete one version of ``name``."""
    default_manager().delete_version(name, version)


def delete(name: str) -> int:
    """Delete every version of ``name``; return how many there were."""
    return default_manager().delete(name)


def predict(name: str, data: Any, version: int | str | None = None, alias: str | None = None) -> Any:
    """Predict ``data`` with a served version (the HTTP path: a replica on a Dask worker)."""
    return default_manager().predict(name, data, version, alias)


def predict_batch(name: str, data: Any, output: str | None = None, **options: Any) -> Any:
    """Predict a Dask or pandas DataFrame, or a Parquet/CSV URL, on the cluster; return a Dask DataFrame, or
    write Parquet to ``output`` and return it. ``options``: ``version``, ``alias``, ``storage_options``."""
    return default_manager().predict_batch(name, data, output, **options)


def stats(name: str) -> dict[str, Any]:
    """Serving statistics of ``name`` over every process that served it."""
    return default_manager().stats(name)


def drift(name: str, version: int | str | None = None, alias: str | None = None) -> DriftReport:
    """PSI per column between the training sample and the served inputs of a version."""
    return default_manager().drift(name, version, alias)


def plot(name: str, version: int | str | None = None, alias: str | None = None) -> Any:
    """A matplotlib figure of the serving latency and input drift of ``name``."""
    return default_manager().plot(name, version, alias)
