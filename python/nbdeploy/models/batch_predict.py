"""Batch prediction on the cluster: ``map_partitions`` of a stored model over data larger than memory.

Each partition is predicted on a worker by the version loaded through the worker's artifact cache (once per
worker, whatever the number of partitions). Input can be a Dask DataFrame, a pandas DataFrame, or a Parquet or
CSV URL on any fsspec store (read by the workers themselves); output is a lazy Dask DataFrame of predictions
(index kept), or Parquet written to ``output``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..exceptions import InvalidInputError, MissingDependencyError, SignatureError

__all__ = ["predict_batch", "predict_partition"]


def _dask_dataframe() -> Any:
    try:
        import dask.dataframe as dd
    except ImportError as exc:  # dask.dataframe needs pandas and pyarrow
        raise MissingDependencyError("batch prediction", "dask[dataframe]") from exc
    return dd


def _output_frame(predictions: Any, index: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        out = predictions.copy()
        out.index = index
        return out
    if isinstance(predictions, pd.Series):
        return pd.DataFrame({"prediction": predictions.to_numpy()}, index=index)
    array = np.asarray(predictions)
    if array.ndim == 1:
        return pd.DataFrame({"prediction": array}, index=index)
    array = array.reshape(len(array), -1)
    return pd.DataFrame(array, index=index, columns=[f"prediction_{i}" for i in range(array.shape[1])])


def predict_partition(part: Any, store_url: str, sha256: str, columns: list[str] | None) -> Any:
    """Predict one pandas partition with the stored version and return a DataFrame of predictions (same index)."""
    from ..runtime import load_artifact
    from .flavors import loads_model

    loaded = load_artifact(store_url, sha256, loader=loads_model)
    signature = loaded.signature or {}
    data = part[columns] if columns else part
    if signature.get("type") == "dataframe":
        dtypes = {c["name"]: c["dtype"] for c in signature["columns"]}
        wrong = {c: t for c, t in dtypes.items() if str(data[c].dtype) != t}
        if wrong:
            data = data.astype(wrong)
    elif signature.get("type") == "ndarray":
        data = data.to_numpy(dtype=signature.get("dtype"))
    return _output_frame(loaded.predict(data), part.index)


def _read(dd: Any, data: Any, storage_options: dict[str, Any] | None, npartitions: int | None) -> Any:
    if isinstance(data, str):
        path = data.rstrip("/")
        options = {"storage_options": storage_options} if storage_options else {}
        if path.endswith((".csv", ".csv.gz", ".tsv")) or "*.csv" in path:
            return dd.read_csv(data, **options)
        return dd.read_parquet(data, **options)
    if hasattr(data, "map_partitions") and hasattr(data, "npartitions"):
        return data
    if hasattr(data, "columns") and hasattr(data, "iloc"):
        return dd.from_pandas(data, npartitions=npartitions or max(2, min(32, len(data) // 250_000 + 1)))
    raise InvalidInputError(
        f"data must be a Dask or pandas DataFrame or a Parquet/CSV URL, not a {type(data).__name__}", "data"
    )


def predict_batch(
    manager: Any,
    name: str,
    data: Any,
    output: str | None = None,
    *,
    version: int | str | None = None,
    alias: str | None = None,
    storage_options: dict[str, Any] | None = None,
    npartitions: int | None = None,
) -> Any:
    """Predict every row of ``data`` with a version of ``manager`` (an app's models) on the cluster.

    Returns a lazy Dask DataFrame of predictions (columns ``prediction``, or ``prediction_0…`` for several
    outputs, or the model's own columns) with the input's index; with ``output`` (a URL on any fsspec store)
    writes it as Parquet on the cluster and returns ``output``. Raises :class:`NotFoundError`,
    :class:`SignatureError` (columns the signature needs are missing), :class:`InvalidInputError`.
    """
    from .. import runtime

    dd = _dask_dataframe()
    target = manager.resolve(name, version, alias)
    signature = target.metadata.get("signature") or {}
    frame = _read(dd, data, storage_options, npartitions)
    columns = None
    if signature.get("type") == "dataframe":
        columns = [c["name"] for c in signature["columns"]]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise SignatureError(
                f"the data lacks the column(s) {', '.join(missing)} that model {name} v{target.version} needs",
                dict.fromkeys(missing, "missing column"),
            )
    client = manager.app.runtime.client()
    store_url = manager.store.url
    # the output's schema: predict a few rows on a worker (it loads and caches the model there)
    sample = frame.head(5, npartitions=1) if not target.metadata.get("example") else None
    if sample is None:
        import pandas as pd

        example = target.metadata["example"]
        if signature.get("type") == "dataframe":
            sample = pd.DataFrame(example, columns=columns)
        else:
            sample = pd.DataFrame(example, columns=list(frame.columns)[: len(example[0]) if example else 0])
    resources = (target.metadata.get("serving") or {}).get("resources")
    runtime.check_resources(client, resources)  # a model for GPU workers predicts only there
    meta = client.submit(
        predict_partition, sample, store_url, target.sha256, columns, pure=False, resources=resources
    ).result()
    import dask

    with dask.annotate(resources=resources) if resources else contextlib.nullcontext():
        predictions = frame.map_partitions(
            predict_partition, store_url, target.sha256, columns, meta=meta.iloc[:0], enforce_metadata=False
        )
    if output is None:
        return predictions
    with runtime.cluster_errors("the batch prediction"):
        written = predictions.to_parquet(output, storage_options=storage_options, compute=False)
        client.compute(written).result()
    return output
