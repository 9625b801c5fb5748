"""Model input signatures and the MLflow scoring payloads.

A signature is inferred from ``sample_input`` at ``put`` time: a DataFrame gives column names and dtypes
(``{"type": "dataframe", "columns": [{"name", "dtype"}, …]}``), an array its shape (first axis free) and dtype
(``{"type": "ndarray", "shape": [-1, 4], "dtype": "float64"}``).

:func:`parse_payload` runs in the server for every request: it accepts the four MLflow formats
(``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``), checks them against the signature in
plain Python (no pandas on the request path) and returns a :class:`Rows` — rows in signature column order —
that the worker turns into one DataFrame or array for many requests at once (:func:`build_input`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..exceptions import InvalidInputError, SignatureError

__all__ = [
    "FORMATS",
    "Rows",
    "build_input",
    "example_payload",
    "infer_signature",
    "parse_payload",
    "payload_schema",
]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_NUMBER = (int, float)


@dataclass(frozen=True)
class Rows:
    """One request's input, validated: ``kind`` "frame" (``columns``, rows as lists) or "array" (nested lists)."""

    kind: str
    columns: tuple[str, ...] | None
    data: list[Any]

    def __len__(self) -> int:
        return len(self.data)


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


def _kind(dtype: str) -> str:
    """A dtype's kind for JSON checks: "float", "int", "bool", "str" or "any"."""
    d = dtype.lower()
    if d.startswith(("float", "double")):
        return "float"
    if d.startswith(("int", "uint")):
        return "int"
    if d.startswith(("bool",)):
        return "bool"
    if d in ("object", "string", "str", "category") or d.startswith(("string", "datetime")):
        return "str"
    return "any"


_SCHEMA_TYPES = {"float": {"type": "number"}, "int": {"type": "integer"}, "bool": {"type": "boolean"}}


def _value_schema(dtype: str) -> dict[str, Any]:
    kind = _kind(dtype)
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


# --- checking payloads ----------------------------------------------------------------------------
def _check_value(value: Any, kind: str) -> str | None:
    t = type(value)
    if kind == "float":
        if t in _NUMBER or value is None:
            return None
        return f"expected a number, got {_json_type(value)}"
    if kind == "int":
        return None if t is int else f"expected an integer, got {_json_type(value)}"
    if kind == "bool":
        return None if t is bool else f"expected true or false, got {_json_type(value)}"
    if kind == "str":
        return None if t is str or value is None else f"expected a string, got {_json_type(value)}"
    return None


def _json_type(value: Any) -> str:
    for name, t in (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float), ("string", str)):
        if isinstance(value, t):
            return f"{name} {value!r}" if name != "string" else f"string {value[:20]!r}"
    return "an array" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__


def _fail(errors: dict[str, str], what: str) -> SignatureError:
    detail = "; ".join(f"{k}: {v}" for k, v in list(errors.items())[:5])
    return SignatureError(f"the input does not fit the model's {what}: {detail}", errors)


def _columns_rows(columns: list[Any], data: Any, signature: dict[str, Any] | None, where: str) -> Rows:
    """Check ``data`` (rows of values in ``columns`` order) against a dataframe signature; reorder if needed."""
    if not isinstance(data, list):
        raise InvalidInputError(f"{where} must be a list of rows", where)
    names = [str(c) for c in columns]
    if signature is None or signature.get("type") != "dataframe":
        for i, row in enumerate(data):
            if not isinstance(row, list) or len(row) != len(names):
                raise InvalidInputError(f"{where} row {i} must be a list of {len(names)} values", where)
        return Rows("frame", tuple(names), data)
    spec = signature["columns"]
    wanted = [c["name"] for c in spec]
    errors: dict[str, str] = {}
    position = {n: i for i, n in enumerate(names)}
    for c in wanted:
        if c not in position:
            errors[c] = "missing column"
    for n in names:
        if n not in wanted:
            errors[n] = f"unexpected column (the model takes {', '.join(wanted)})"
    if errors:
        raise _fail(errors, "columns")
    order = [position[c] for c in wanted]
    width = len(names)
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            raise SignatureError(
                f"row {i} has {len(row) if isinstance(row, list) else 'no list of'} values, the model takes {width}",
                {f"row {i}": f"expected {width} values"},
            )
    for c, j in zip(spec, order, strict=True):
        kind = _kind(c["dtype"])
        if kind == "any":
            continue
        for i, row in enumerate(data):
            why = _check_value(row[j], kind)
            if why:
                errors[c["name"]] = f"row {i}: {why} (column dtype {c['dtype']})"
                break
    if errors:
        raise _fail(errors, "columns")
    if order != list(range(width)):
        data = [[row[j] for j in order] for row in data]
    return Rows("frame", tuple(wanted), data)


def _check_array(value: Any, shape: list[int], kind: str, path: str, errors: dict[str, str]) -> None:
    if not shape:
        why = _check_value(value, kind) if not isinstance(value, list) else "expected a value, got an array"
        if why:
            errors.setdefault(path or "value", why)
        return
    if not isinstance(value, list):
        errors.setdefault(path or "value", f"expected an array of {shape[0]}, got {_json_type(value)}")
        return
    if shape[0] >= 0 and len(value) != shape[0]:
        errors.setdefault(path or "value", f"expected {shape[0]} values, got {len(value)}")
        return
    for i, item in enumerate(value):
        _check_array(item, shape[1:], kind, f"{path}[{i}]", errors)
        if errors:
            return


def _array_rows(data: Any, signature: dict[str, Any] | None, where: str) -> Rows:
    if not isinstance(data, list):
        raise InvalidInputError(f"{where} must be a list", where)
    if signature is not None and signature.get("type") == "ndarray":
        shape = [int(s) for s in signature["shape"]]
        errors: dict[str, str] = {}
        for i, row in enumerate(data):
            _check_array(row, shape[1:], _kind(signature["dtype"]), f"shape [{i}]", errors)
            if errors:
                dims = "x".join("N" if s < 0 else str(s) for s in shape)
                raise _fail(errors, f"shape {dims} ({signature['dtype']})")
        return Rows("array", None, data)
    if signature is not None and signature.get("type") == "dataframe":
        names = [c["name"] for c in signature["columns"]]
        if data and all(isinstance(r, dict) for r in data):
            return _records(data, signature, where)
        return _columns_rows(names, data, signature, where)
    return Rows("array", None, data)


def _records(records: Any, signature: dict[str, Any] | None, where: str) -> Rows:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidInputError(f"{where} must be a list of objects (one per row)", where)
    if signature is not None and signature.get("type") == "dataframe":
        names = [c["name"] for c in signature["columns"]]
    else:
        names = list(dict.fromkeys(k for r in records for k in r))
    errors: dict[str, str] = {}
    for i, rec in enumerate(records):
        for n in names:
            if n not in rec:
                errors.setdefault(n, f"missing column (row {i})")
        if signature is not None:
            for k in rec:
                if k not in names:
                    errors.setdefault(k, f"unexpected column (the model takes {', '.join(names)})")
    if errors:
        raise _fail(errors, "columns")
    return _columns_rows(names, [[r[n] for n in names] for r in records], signature, where)


def _columnar(columns: dict[str, Any], signature: dict[str, Any] | None, where: str) -> Rows:
    names = list(columns)
    lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise InvalidInputError(f"{where} as an object needs a list of values of equal length per column", where)
    rows = [list(r) for r in zip(*columns.values(), strict=True)]
    return _columns_rows(names, rows, signature, where)


def parse_payload(body: Any, signature: dict[str, Any] | None) -> Rows:
    """Check an MLflow scoring payload against ``signature`` and return its :class:`Rows`.

    MLflow's optional ``params`` key is accepted and ignored (models here take no inference parameters).

    Raises :class:`InvalidInputError` (400) for a malformed body and :class:`SignatureError` (422, with
    ``errors`` naming each column or position at fault) for input that does not fit the signature.
    """
    if not isinstance(body, dict):
        raise InvalidInputError(f"the body must be a JSON object with one of {', '.join(FORMATS)}", "body")
    keys = [k for k in body if k in FORMATS]
    others = [k for k in body if k not in FORMATS and k != "params"]
    if len(keys) != 1 or others:
        raise InvalidInputError(
            f"the body must have exactly one of {', '.join(FORMATS)}, got {', '.join(map(repr, body)) or 'none'}",
            others[0] if others else "body",
        )
    where = keys[0]
    value = body[where]
    if where == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise InvalidInputError("dataframe_split needs {'columns': [...], 'data': [[...], ...]}", where)
        columns = value.get("columns")
        if columns is None:
            if signature is None or signature.get("type") != "dataframe":
                raise InvalidInputError("dataframe_split needs 'columns' for a model without a signature", where)
            columns = [c["name"] for c in signature["columns"]]
        if not isinstance(columns, list):
            raise InvalidInputError("dataframe_split 'columns' must be a list of names", where)
        return _columns_rows(columns, value["data"], signature, where)
    if where == "dataframe_records":
        return _records(value, signature, where)
    if isinstance(value, dict):
        return _columnar(value, signature, where)
    return _array_rows(value, signature, where)


def rows_from_python(data: Any, signature: dict[str, Any] | None) -> Rows:
    """Rows from what a Python caller passes: an MLflow payload dict, a DataFrame, an array or a list."""
    if isinstance(data, dict) and any(k in data for k in FORMATS):
        return parse_payload(data, signature)
    if hasattr(data, "to_frame") and not hasattr(data, "columns"):
        data = data.to_frame()
    if hasattr(data, "columns") and hasattr(data, "dtypes"):
        columns = [_python_values(data[c]) for c in data.columns]
        rows = [list(r) for r in zip(*columns, strict=True)]
        return parse_payload({"dataframe_split": {"columns": [str(c) for c in data.columns], "data": rows}}, signature)
    if isinstance(data, dict):
        return parse_payload({"inputs": data}, signature)
    if hasattr(data, "tolist"):
        data = data.tolist()
    return parse_payload({"inputs": data}, signature)


def _python_values(series: Any) -> list[Any]:
    """A column's values as JSON-like Python values (exact floats; datetimes as ISO text; NaN in text as None)."""
    kind = series.dtype.kind
    if kind == "M":
        return [None if v is None or v != v else v.isoformat() for v in series.tolist()]
    values = series.tolist()
    if kind in "fiub":
        return values
    return [None if isinstance(v, float) and v != v else v for v in values]


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
        except (TypeError, ValueError) as exc:
            raise SignatureError(
                f"the input cannot be read as {dtype or 'an array'}: {exc}", {"value": str(exc)}
            ) from exc
    import pandas as pd

    names = list(columns or ())
    dtypes = {}
    if signature and signature.get("type") == "dataframe":
        dtypes = {c["name"]: c["dtype"] for c in signature["columns"]}
    if dtypes and all(_kind(dtypes[n]) == "float" for n in names) and len({dtypes[n] for n in names}) == 1:
        frame = pd.DataFrame(np.asarray(rows, dtype=dtypes[names[0]]).reshape(len(rows), len(names)), columns=names)
        return frame
    frame = pd.DataFrame(rows, columns=names)
    for name in names:
        want = dtypes.get(name)
        if want is None or str(frame[name].dtype) == want:
            continue
        try:
            if want.startswith("datetime"):
                frame[name] = pd.to_datetime(frame[name]).astype(want)
            else:
                frame[name] = frame[name].astype(want)
        except (TypeError, ValueError) as exc:
            raise SignatureError(f"column {name!r} cannot be read as {want}: {exc}", {name: str(exc)}) from exc
    return frame


def example_payload(signature: dict[str, Any] | None, example: list[Any] | None) -> dict[str, Any]:
    """A payload a client can send: ``dataframe_split`` of the stored example rows, or ``inputs``."""
    if signature and signature.get("type") == "dataframe":
        names = [c["name"] for c in signature["columns"]]
        return {"dataframe_split": {"columns": names, "data": (example or [])[:2]}}
    return {"inputs": (example or [])[:2]}
