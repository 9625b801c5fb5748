"""MLflow scoring payloads, checked against a model's signature in plain Python (no pandas on the request path).

:func:`parse_payload` runs in the server for every predict request. It accepts MLflow's four formats —
``dataframe_split`` (``{"columns": [...], "data": [[...], ...]}``), ``dataframe_records`` (``[{...}, ...]``),
``instances`` and ``inputs`` (rows as lists, rows as objects, or columns as an object of lists) — plus
MLflow's optional ``params`` (accepted and ignored), and returns a :class:`Rows` in signature column order
that the worker turns into one DataFrame or array (``signature.build_input``).

Malformed input is an :class:`~nbdeploy.exceptions.InvalidInputError` (400, ``field`` naming the format key);
input that does not fit the signature a :class:`~nbdeploy.exceptions.SignatureError` (422, ``errors`` per
column or array position) whose message carries MLflow's wording where MLflow has one ("Model is missing
inputs [...]", "Shape of input (N, 1) does not match expected shape (-1, 2)"). Checked: a payload with no
rows; ragged rows (also without a signature); values of the wrong JSON type for a column's or array's dtype,
ints out of the dtype's range, ``null`` where the dtype cannot hold it (ints, bools); arrays nested deeper or
shallower than the signature's shape; missing, unknown and repeated columns; a table sent to an array
signature whose width does not match its shape.

Deliberate differences from MLflow's scoring server (``mlflow/pyfunc/scoring_server``):

- input that does not fit the signature answers 422 (nbdeploy's contract for signature failures); MLflow
  answers 400 for it as for malformed input. Malformed input is 400 in both;
- a column the signature does not name is refused (MLflow drops it silently): it is almost always a typo
  or a payload meant for another model;
- values are checked by their JSON type before anything is converted: text is not read as a number and a
  float is not cut to an int (MLflow lets pandas coerce some of these, and refuses float → int too);
- a payload with no rows is refused up front ("the payload holds no rows"); MLflow fails later, in the
  schema check ("Input DataFrame is empty") or in the model;
- without a signature, ragged arrays are refused here rather than by numpy on the worker;
- ``params`` are accepted and ignored (models here take no inference parameters); MLflow's unwrapped LLM
  formats (``messages``, ``prompt``, ``input``) are not accepted;
- a ``text/csv`` body (header row, then data) is read by pandas as MLflow reads it and checked as a
  ``dataframe_split`` (:func:`csv_payload`); other content types are a 415 at the route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..exceptions import InvalidInputError, SignatureError

__all__ = ["FORMATS", "MAX_DEPTH", "Rows", "dtype_kind", "parse_payload", "rows_from_python"]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
MAX_DEPTH = 32  # how deeply an array without a signature may nest
_NUMBER = (int, float)
_FLOAT_MAX = 2**1024  # ints at or past this cannot be a float64
_INT_BITS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64, "int": 64, "intp": 64, "longlong": 64}
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Rows:
    """One request's input, validated: ``kind`` "frame" (``columns``, rows as lists) or "array" (nested lists)."""

    kind: str
    columns: tuple[str, ...] | None
    data: list[Any]

    def __len__(self) -> int:
        return len(self.data)


def dtype_kind(dtype: str) -> str:
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


def _checker(dtype: str) -> Callable[[Any], str | None]:
    """A function that says what is wrong with one JSON value for ``dtype`` (``None`` when it fits)."""
    kind = dtype_kind(dtype)
    nullable = dtype[:1].isupper() or dtype.lower() == "boolean"  # pandas' Int64, UInt8, boolean hold NA
    article = "an" if dtype[:1].lower() in "aeiou" else "a"
    null_hint = (
        f"null ({article} {dtype} column cannot hold missing values: send a value, or store the model with floats)"
    )
    if kind == "float":

        def check(value: Any) -> str | None:
            t = type(value)
            if t is float or value is None:
                return None
            if t is int:
                return None if -_FLOAT_MAX < value < _FLOAT_MAX else f"{value} is too large for {dtype}"
            return f"expected a number, got {_json_type(value)}"

    elif kind == "int":
        low, high = _int_range(dtype)

        def check(value: Any) -> str | None:
            if type(value) is int:
                return None if low <= value <= high else f"{value} is out of range for {dtype} ({low} to {high})"
            if value is None:
                return None if nullable else f"expected an integer, got {null_hint}"
            return f"expected an integer, got {_json_type(value)}"

    elif kind == "bool":

        def check(value: Any) -> str | None:
            if type(value) is bool or (value is None and nullable):
                return None
            return f"expected true or false, got {null_hint if value is None else _json_type(value)}"

    elif kind == "str":

        def check(value: Any) -> str | None:
            return None if type(value) is str or value is None else f"expected a string, got {_json_type(value)}"

    else:

        def check(value: Any) -> str | None:
            return None if isinstance(value, _SCALARS) else f"expected a single value, got {_json_type(value)}"

    return check


def _int_range(dtype: str) -> tuple[int, int]:
    d = dtype.lower()
    unsigned = d.startswith("uint")
    bits = _INT_BITS.get(d[1:] if unsigned else d, 64)
    return (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _json_type(value: Any) -> str:
    """``null``, ``integer 3``, ``string 'abc'``, ``an array``: a JSON value for messages."""
    if isinstance(value, str):
        return f"string {value[:20]!r}"
    for name, t in (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float)):
        if isinstance(value, t):
            return f"{name} {value!r}"
    return "an array" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__


def _fail(errors: dict[str, str], what: str, lead: str = "") -> SignatureError:
    detail = "; ".join(f"{k}: {v}" for k, v in list(errors.items())[:5])
    return SignatureError(f"the input does not fit the model's {what}: {lead}{detail}", errors)


def _no_rows(where: str) -> InvalidInputError:
    return InvalidInputError(
        f"the payload holds no rows: {where} is empty; send at least one row, e.g. "
        '{"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}} or {"inputs": [[1.0, 2.0]]}',
        where,
    )


def _per_row(inner: list[int]) -> str:
    return "one value" if not inner else f"{inner[0]} values" if len(inner) == 1 else f"an array of {_dims(inner)}"


def _dims(shape: list[int]) -> str:
    return "x".join("N" if s < 0 else str(s) for s in shape)


# --- tables -------------------------------------------------------------------------------------------------
def _columns_rows(columns: list[Any], data: Any, signature: dict[str, Any] | None, where: str) -> Rows:
    """Check ``data`` (rows of values in ``columns`` order) against the signature; reorder if needed."""
    if not isinstance(data, list):
        raise InvalidInputError(f"{where} must be a list of rows", where)
    if not data:
        raise _no_rows(where)
    if not all(isinstance(c, str | int | float) and not isinstance(c, bool) for c in columns):
        raise InvalidInputError(f"{where} column names must be strings", where)
    names = [str(c) for c in columns]
    repeated = sorted({n for n in names if names.count(n) > 1}) if len(set(names)) != len(names) else []
    if repeated:
        raise InvalidInputError(f"{where} names column {repeated[0]!r} more than once: name each column once", where)
    if signature is not None and signature.get("type") == "ndarray":
        return _table_to_array(names, data, signature, where)
    if signature is None or signature.get("type") != "dataframe":
        for i, row in enumerate(data):
            if not isinstance(row, list) or len(row) != len(names):
                raise InvalidInputError(f"{where} row {i} must be a list of {len(names)} values", where)
        return Rows("frame", tuple(names), data)
    spec = signature["columns"]
    wanted = [c["name"] for c in spec]
    _check_column_names(names, wanted)
    position = {n: i for i, n in enumerate(names)}
    order = [position[c] for c in wanted]
    width = len(names)
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else _json_type(row)
            raise SignatureError(
                f"row {i} has {got}, the model takes {width} ({', '.join(wanted)}): send one value per column",
                {f"row {i}": f"expected {width} values"},
            )
    errors: dict[str, str] = {}
    for c, j in zip(spec, order, strict=True):
        check = _checker(c["dtype"])
        for i, row in enumerate(data):
            why = check(row[j])
            if why:
                errors[c["name"]] = f"row {i}: {why} (column dtype {c['dtype']})"
                break
    if errors:
        raise _fail(errors, "columns")
    if order != list(range(width)):
        data = [[row[j] for j in order] for row in data]
    return Rows("frame", tuple(wanted), data)


def _check_column_names(names: list[str], wanted: list[str]) -> None:
    """MLflow's "Model is missing inputs [...]", and unknown columns refused."""
    missing = [c for c in wanted if c not in names]
    extra = [n for n in names if n not in wanted]
    if not missing and not extra:
        return
    errors = {c: "missing column" for c in missing}
    errors.update({n: f"unexpected column (the model takes {', '.join(wanted)})" for n in extra})
    lead = f"Model is missing inputs {missing}. " if missing else ""
    lead += f"Unknown inputs {extra}. " if extra else ""
    raise _fail(errors, "columns", lead)


def _table_to_array(names: list[str], data: list[Any], signature: dict[str, Any], where: str) -> Rows:
    """A table sent to an array signature: its columns must make the array's rows (as MLflow reads it)."""
    shape = [int(s) for s in signature["shape"]]
    inner, width = shape[1:], len(names)
    if inner in ([], [1], [-1]) and width == 1:
        rows = [row[0] if isinstance(row, list) and len(row) == 1 else row for row in data]
        rows = [[v] for v in rows] if inner else rows
    elif len(inner) == 1 and inner[0] in (width, -1):
        rows = data
    else:
        expected = ", ".join(str(s) for s in shape)
        raise SignatureError(
            f"the input does not fit the model's shape {_dims(shape)} ({signature['dtype']}): Shape of input "
            f"({len(data)}, {width}) does not match expected shape ({expected}): the model takes "
            f"{_per_row(inner)} per row; {where} has {width} column(s) ({', '.join(names)[:80]})",
            {"shape": f"expected {_per_row(inner)} per row, got {width} column(s)"},
        )
    return _array_rows(rows, signature, where)


def _records(records: Any, signature: dict[str, Any] | None, where: str) -> Rows:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidInputError(f"{where} must be a list of objects (one per row)", where)
    if not records:
        raise _no_rows(where)
    if signature is not None and signature.get("type") == "dataframe":
        names = [c["name"] for c in signature["columns"]]
        _check_column_names(list(dict.fromkeys(k for r in records for k in r)), names)
    else:
        names = list(dict.fromkeys(k for r in records for k in r))
    errors: dict[str, str] = {}
    for i, rec in enumerate(records):
        for n in names:
            if n not in rec:
                errors.setdefault(n, f"missing column (row {i})")
    if errors:
        raise _fail(errors, "columns", f"Model is missing inputs {list(errors)}. ")
    return _columns_rows(names, [[r[n] for n in names] for r in records], signature, where)


def _columnar(columns: dict[str, Any], signature: dict[str, Any] | None, where: str) -> Rows:
    """Columns as an object of lists (or of single values: one row, as MLflow reads it)."""
    if not columns:
        raise _no_rows(where)
    values = list(columns.values())
    if all(isinstance(v, _SCALARS) for v in values):
        return _columns_rows(list(columns), [values], signature, where)
    lengths = {len(v) if isinstance(v, list) else -1 for v in values}
    if len(lengths) != 1 or -1 in lengths:
        raise InvalidInputError(
            f"{where} as an object needs a list of values per column, all of the same length (the length of "
            "values for each input/column name are not the same)",
            where,
        )
    if lengths == {0}:
        raise _no_rows(where)
    rows = [list(r) for r in zip(*values, strict=True)]
    return _columns_rows(list(columns), rows, signature, where)


# --- arrays -------------------------------------------------------------------------------------------------
def _check_array(
    value: Any,
    shape: list[int],
    check: Callable[[Any], str | None],
    path: str,
    errors: dict[str, str],
    free: dict[int, int],
    depth: int = 0,
) -> None:
    """Check one row against the signature's inner ``shape``. ``free`` holds the length each free (-1) axis
    took in the rows before, so that ragged rows are refused; a fault is recorded under ``errors[path]``, and
    ``errors["_dtype"]`` marks a value (not a shape) fault."""
    if not shape:
        if isinstance(value, list):
            errors.setdefault(path or "value", "expected a value, got an array (nested deeper than the signature)")
            return
        why = check(value)
        if why:
            errors.setdefault(path or "value", why)
            errors["_dtype"] = "1"
        return
    if not isinstance(value, list):
        errors.setdefault(path or "value", f"expected an array of {_dims(shape)}, got {_json_type(value)}")
        return
    size = shape[0]
    if size >= 0 and len(value) != size:
        errors.setdefault(path or "value", f"expected {size} values, got {len(value)}")
        return
    if size < 0:
        expected = free.setdefault(depth, len(value))  # the first row fixes the length of a free axis
        if len(value) != expected:
            errors.setdefault(path, f"ragged: expected {expected} values like the rows before, got {len(value)}")
            return
    for i, item in enumerate(value):
        _check_array(item, shape[1:], check, f"{path}[{i}]", errors, free, depth + 1)
        if errors:
            return


def _array_rows(data: Any, signature: dict[str, Any] | None, where: str) -> Rows:
    if not isinstance(data, list):
        raise InvalidInputError(f"{where} must be a list", where)
    if not data:
        raise _no_rows(where)
    if signature is not None and signature.get("type") == "ndarray":
        shape = [int(s) for s in signature["shape"]]
        errors: dict[str, str] = {}
        check = _checker(signature["dtype"])
        free: dict[int, int] = {}
        for i, row in enumerate(data):
            _check_array(row, shape[1:], check, f"shape [{i}]", errors, free)
            if errors:
                if errors.pop("_dtype", None):
                    lead = f"dtype of input does not match expected dtype {signature['dtype']}. "
                else:
                    lead = f"Shape of input does not match expected shape ({', '.join(str(s) for s in shape)}). "
                raise _fail(errors, f"shape {_dims(shape)} ({signature['dtype']})", lead)
        return Rows("array", None, data)
    if signature is not None and signature.get("type") == "dataframe":
        names = [c["name"] for c in signature["columns"]]
        if all(isinstance(r, dict) for r in data):
            return _records(data, signature, where)
        if len(names) == 1 and all(isinstance(r, _SCALARS) for r in data):
            data = [[r] for r in data]  # one column: a list of values is that column (as in MLflow)
        return _columns_rows(names, data, signature, where)
    _check_rectangular(data, where)
    return Rows("array", None, data)


def _check_rectangular(data: list[Any], where: str) -> None:
    """Without a signature: every level of nested lists has one length (numpy's rule), level by level."""
    level, depth = data, 0
    while any(isinstance(item, list) for item in level):
        depth += 1
        if depth > MAX_DEPTH:
            raise InvalidInputError(f"{where} nests arrays more than {MAX_DEPTH} deep", where)
        if not all(isinstance(item, list) for item in level):
            raise InvalidInputError(
                f"{where} is ragged: at depth {depth} some items are arrays and some are single values", where
            )
        lengths = {len(item) for item in level}
        if len(lengths) != 1:
            raise InvalidInputError(
                f"{where} is ragged: at depth {depth} arrays have {sorted(lengths)[:5]} values; send rows of one "
                "length",
                where,
            )
        level = [x for item in level for x in item]


# --- the entry points --------------------------------------------------------------------------------------
def parse_payload(body: Any, signature: dict[str, Any] | None) -> Rows:
    """Check an MLflow scoring payload against ``signature`` and return its :class:`Rows`.

    MLflow's optional ``params`` key is accepted and ignored (models here take no inference parameters).

    Raises :class:`InvalidInputError` (400) for a malformed body or one with no rows, and
    :class:`SignatureError` (422, with ``errors`` naming each column or position at fault) for input that
    does not fit the signature.
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


def csv_payload(content: bytes) -> dict[str, Any]:
    """A ``text/csv`` body (a header row, then one row per record) as the ``dataframe_split`` payload MLflow's
    scoring server makes of it (pandas infers each column's type). Raises :class:`InvalidInputError` (400) for a
    body pandas cannot read or one with no rows."""
    import io
    import json

    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(content))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(
            f"the CSV body could not be read: {reason}; send a header row, then the rows", "body"
        ) from None
    if frame.empty:
        raise _no_rows("the CSV body")
    split = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
    return {"dataframe_split": {"columns": [str(c) for c in split["columns"]], "data": split["data"]}}


def rows_from_python(data: Any, signature: dict[str, Any] | None, *, allow_empty: bool = False) -> Rows:
    """Rows from what a Python caller passes: an MLflow payload dict, a DataFrame, an array or a list.

    Raises what :func:`parse_payload` raises; a DataFrame, array or list without rows is refused unless
    ``allow_empty`` (then it gives empty :class:`Rows`, e.g. for a model's stored example).
    """
    if isinstance(data, dict) and any(k in data for k in FORMATS):
        return parse_payload(data, signature)
    if hasattr(data, "to_frame") and not hasattr(data, "columns"):
        data = data.to_frame()
    if hasattr(data, "columns") and hasattr(data, "dtypes"):
        names = [str(c) for c in data.columns]
        if allow_empty and len(data) == 0:
            framed = signature is not None and signature.get("type") == "dataframe"
            wanted = [c["name"] for c in signature["columns"]] if framed and signature else None
            return Rows("frame", tuple(wanted or names), [])
        columns = [_python_values(data[c]) for c in data.columns]
        rows = [list(r) for r in zip(*columns, strict=True)]
        return parse_payload({"dataframe_split": {"columns": names, "data": rows}}, signature)
    if isinstance(data, dict):
        return parse_payload({"inputs": data}, signature)
    if hasattr(data, "tolist"):
        data = data.tolist()
    if allow_empty and isinstance(data, list) and not data:
        if signature is not None and signature.get("type") == "dataframe":
            return Rows("frame", tuple(c["name"] for c in signature["columns"]), [])
        return Rows("array", None, [])
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
