"""Model input signatures: inferring them, their JSON schema, and building a model's input from checked rows.

A signature is inferred from ``sample_input`` at ``put`` time: a DataFrame gives column names and dtypes
(``{"type": "dataframe", "columns": [{"name", "dtype"}, …]}``), an array its shape (first axis free) and dtype
(``{"type": "ndarray", "shape": [-1, 4], "dtype": "float64"}``).

:func:`parse_payload` (in :mod:`.payloads`, re-exported here) runs in the server for every request: it accepts
the four MLflow formats (``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``), checks them
against the signature in plain Python (no pandas on the request path) and returns a :class:`Rows` — rows in
signature column order — that the worker turns into one DataFrame or array for many requests at once
(:func:`build_input`). Its module docstring lists what is checked and where nbdeploy deliberately differs
from MLflow's scoring server (422 for a signature mismatch, unknown columns refused, no rows refused).
"""

from __future__ import annotations

from typing import Any

from ..exceptions import InvalidInputError, SignatureError
from .payloads import FORMATS, Rows, dtype_kind, parse_payload, rows_from_python

__all__ = [
    "FORMATS",
    "Rows",
    "as_frame_or_array",
    "build_input",
    "dtype_kind",
    "example_payload",
    "infer_signature",
    "parse_payload",
    "payload_schema",
    "rows_from_python",
]


# --- inferring ------------------------------------------------------------------------------------
def infer_signature(sample: Any) -> dict[str, Any] | None:
    """Return the signature of ``sample`` (a DataFrame, Series, ndarray, list of rows or dict of columns), or
    ``None`` when ``sample`` is ``None``. Raises :class:`InvalidInputError` for anything else."""
    if sample is None:
        return None
    sample = as_frame_or_array(sample)
    if hasattr(sample, "columns"):
        return {
            "type": "dataframe",
            "columns": [{"name": str(c), "dtype": str(t)} for c, t in sample.dtypes.items()],
        }
    return {"type": "ndarray", "shape": [-1, *sample.shape[1:]], "dtype": str(sample.dtype)}


def as_frame_or_array(sample: Any) -> Any:
    """``sample`` as a pandas DataFrame (frames, series, dicts of columns) or a numpy array (the rest)."""
    import numpy as np

    if hasattr(sample, "to_frame") and not hasattr(sample, "columns"):  # a Series
        sample = sample.to_frame()
    if hasattr(sample, "columns") and hasattr(sample, "dtypes"):
        return sample
    if isinstance(sample, dict):
        import pandas as pd

        return pd.DataFrame(sample)
    try:
        array = np.asarray(sample)
    except Exception as exc:
        raise InvalidInputError(
            f"sample_input must be a DataFrame, an array or a list of rows, not a {type(sample).__name__}",
            "sample_input",
        ) from exc
    if array.dtype == object or array.ndim == 0:
        raise InvalidInputError("sample_input must be a DataFrame or a numeric array with rows", "sample_input")
    return array


_SCHEMA_TYPES = {"float": {"type": "number"}, "int": {"type": "integer"}, "bool": {"type": "boolean"}}


def _value_schema(dtype: str) -> dict[str, Any]:
    kind = dtype_kind(dtype)
    return dict(_SCHEMA_TYPES.get(kind, {"type": "string"} if kind == "str" else {}), nullable=True)


def _array_schema(shape: list[int], item: dict[str, Any]) -> dict[str, Any]:
    schema = item
    for size in reversed(shape):
        schema = {"type": "array", "items": schema}
        if size is not None and size >= 0:
            schema.update(minItems=size, maxItems=size)
    return schema


def payload_schema(signature: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON schema (OpenAPI 3.0 flavour) of a predict request for ``signature``: one of MLflow's four
    payload formats, typed by the signature's columns or array shape; a plain object without a signature."""
    params = {"params": {"type": "object", "description": "accepted and ignored"}}

    def one_key(key: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": {key: schema, **params}, "required": [key]}

    if not signature:
        return {"type": "object", "description": f"one of {', '.join(FORMATS)} (MLflow's scoring formats)"}
    if signature.get("type") == "dataframe":
        columns = signature["columns"]
        names = [c["name"] for c in columns]
        record = {
            "type": "object",
            "properties": {c["name"]: _value_schema(c["dtype"]) for c in columns},
            "required": names,
        }
        row = {"type": "array", "items": {}, "minItems": len(names), "maxItems": len(names)}
        split = {
            "type": "object",
            "properties": {
                "columns": {"type": "array", "items": {"type": "string", "enum": names}},
                "data": {"type": "array", "items": row},
            },
            "required": ["data"],
        }
        rows = {"oneOf": [{"type": "array", "items": record}, {"type": "array", "items": row}]}
        return {
            "oneOf": [
                one_key("dataframe_split", split),
                one_key("dataframe_records", {"type": "array", "items": record}),
                one_key("inputs", rows),
                one_key("instances", rows),
            ]
        }
    shape = [int(d) for d in signature.get("shape", [-1])]
    array = _array_schema(shape, _value_schema(signature.get("dtype", "float64")))
    return {"oneOf": [one_key("inputs", array), one_key("instances", array)]}


# --- building the model's input on the worker ----------------------------------------------------
def build_input(kind: str, columns: tuple[str, ...] | None, rows: list[Any], signature: dict[str, Any] | None) -> Any:
    """Return one DataFrame (``kind`` "frame") or ndarray ("array") of ``rows``, with the signature's dtypes.

    Raises :class:`SignatureError` when a value cannot take its column's dtype.
    """
    import numpy as np

    if kind == "array":
        dtype = signature.get("dtype") if signature and signature.get("type") == "ndarray" else None
        try:
            return np.asarray(rows, dtype=dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SignatureError(
                f"the input cannot be read as {dtype or 'an array'}: {exc}", {"value": str(exc)}
            ) from exc
    import pandas as pd

    names = list(columns or ())
    # an object Index, as scikit-learn keeps feature names: its check of the names (on every predict) is half the
    # cost with it than with pandas' default string dtype
    index = pd.Index(names, dtype=object)
    dtypes = {}
    if signature and signature.get("type") == "dataframe":
        dtypes = {c["name"]: c["dtype"] for c in signature["columns"]}
    if dtypes and all(dtype_kind(dtypes[n]) == "float" for n in names) and len({dtypes[n] for n in names}) == 1:
        return pd.DataFrame(np.asarray(rows, dtype=dtypes[names[0]]).reshape(len(rows), len(names)), columns=index)
    frame = pd.DataFrame(rows, columns=index)
    for name in names:
        want = dtypes.get(name)
        if want is None or str(frame[name].dtype) == want:
            continue
        try:
            if want.startswith("datetime"):
                frame[name] = pd.to_datetime(frame[name]).astype(want)
            else:
                frame[name] = frame[name].astype(want)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SignatureError(f"column {name!r} cannot be read as {want}: {exc}", {name: str(exc)}) from exc
    return frame


def example_payload(signature: dict[str, Any] | None, example: list[Any] | None) -> dict[str, Any]:
    """A payload a client can send: ``dataframe_split`` of the stored example rows, or ``inputs``."""
    if signature and signature.get("type") == "dataframe":
        names = [c["name"] for c in signature["columns"]]
        return {"dataframe_split": {"columns": names, "data": (example or [])[:2]}}
    return {"inputs": (example or [])[:2]}
