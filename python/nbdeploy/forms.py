"""Forms: the typed fields a person fills in (a notebook's parameters, a function's arguments, a model's input
columns), and turning what they typed into JSON values.

The server decides, the lab renders: :func:`parameter_fields`, :func:`schema_fields` and :func:`column_fields`
describe the fields (type, default, the text the input starts with, help, whether required);
:func:`coerce` turns the inputs (text, or a checkbox's state) into values, with an error per field. The
"Schedule this notebook" dialog, the "Try it" forms of functions and models, and the magics all go through here.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from .schema import Record

__all__ = ["FieldType", "FormField", "FormInputs", "FormValues", "coerce", "column_fields", "parameter_fields"]

FieldType = Literal["int", "float", "bool", "str", "list", "dict", "none", "expr"]
_DECLARED: dict[str, FieldType] = {
    "int": "int",
    "integer": "int",
    "float": "float",
    "number": "float",
    "bool": "bool",
    "boolean": "bool",
    "str": "str",
    "string": "str",
    "list": "list",
    "array": "list",
    "tuple": "list",
    "dict": "dict",
    "object": "dict",
}
MAX_LITERAL = 100_000  # characters of a default or an input parsed as a Python literal


@dataclass(frozen=True)
class FormField(Record):
    """One field of a form: its ``type`` (``expr``: a default the notebook computes, left as it is unless
    typed over; ``none``: any JSON value), its ``default`` (a JSON value), the Python or JSON ``source`` of that
    default, ``initial`` (the text — or checkbox state — the input starts with), ``help`` and ``required``."""

    name: str
    type: FieldType
    default: Any = None
    source: str = ""
    initial: str | bool = ""
    help: str = ""
    required: bool = False


@dataclass(frozen=True)
class FormInputs(Record):
    """``POST /forms/coerce``: what was typed into each field of ``fields`` (text, or a checkbox's state);
    ``include_defaults`` also returns the fields left as they were."""

    request = True
    fields: list[FormField]
    inputs: dict[str, str | bool] = field(default_factory=dict)
    include_defaults: bool = False


@dataclass(frozen=True)
class FormValues(Record):
    """The JSON value of each field that was given (``values``) and why each bad one is wrong (``errors``)."""

    values: dict[str, Any]
    errors: dict[str, str]


# --- describing fields --------------------------------------------------------------------------------------
def _literal(source: str) -> tuple[bool, Any]:
    """``(True, value)`` when ``source`` is a Python literal JSON can hold, else ``(False, None)``."""
    if len(source) > MAX_LITERAL:
        return False, None
    try:
        value = ast.literal_eval(source.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False, None
    return True, value


def type_of(value: Any) -> FieldType:
    """The field type of a JSON value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "list" if isinstance(value, list) else "dict"


def initial_input(kind: FieldType, value: Any) -> str | bool:
    """The text (or checkbox state) a field of ``kind`` starts with for ``value``."""
    if kind == "bool":
        return value is True
    if kind in ("expr", "none") or value is None:
        return ""
    if kind in ("list", "dict"):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _field(name: str, kind: FieldType, value: Any, source: str, help_: str = "", required: bool = False) -> FormField:
    return FormField(name, kind, value, source, initial_input(kind, value), help_, required)


def parameter_fields(parameters: list[Any]) -> list[FormField]:
    """Fields for a notebook's parameters (``{name, inferred_type_name, default, help}`` as papermill inspects
    them: the default is Python source). A default that is not a literal is an ``expr`` field."""
    out = []
    for p in parameters:
        data = p.to_json() if hasattr(p, "to_json") else dict(p)
        name, source = str(data["name"]), str(data.get("default") or "None")
        declared = _DECLARED.get(str(data.get("inferred_type_name") or "").split("[")[0].strip().lower())
        ok, value = _literal(source)
        if not ok:
            out.append(FormField(name, "expr", source, source, "", str(data.get("help") or "")))
            continue
        kind = type_of(value)
        if declared is not None and (kind == "none" or (declared == "float" and kind == "int")):
            kind = declared
            value = float(value) if declared == "float" and value is not None else value
        out.append(_field(name, kind, value, source, str(data.get("help") or "")))
    return out


def _schema_type(schema: dict[str, Any]) -> FieldType:
    kind = schema.get("type")
    if kind is None and isinstance(schema.get("anyOf"), list):
        kinds = [s.get("type") for s in schema["anyOf"] if isinstance(s, dict) and s.get("type") != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    return _DECLARED.get(str(kind), "none")


def schema_fields(request: dict[str, Any]) -> list[FormField]:
    """Fields for a JSON schema of an object (a function's arguments): one per property, typed by it."""
    required = set(request.get("required") or [])
    out = []
    for name, schema in (request.get("properties") or {}).items():
        schema = schema if isinstance(schema, dict) else {}
        kind = _schema_type(schema)
        default = schema.get("default")
        source = "" if "default" not in schema else json.dumps(default)
        help_ = str(schema.get("description") or schema.get("title") or "")
        out.append(_field(name, kind, default, source, help_, name in required))
    return out


def _dtype_type(dtype: str) -> FieldType:
    d = dtype.lower()
    if d.startswith(("float", "double")):
        return "float"
    if re.match(r"u?int", d):
        return "int"
    if d.startswith("bool"):
        return "bool"
    if d in ("object", "str", "string", "category") or d.startswith(("string", "datetime")):
        return "str"
    return "none"


def column_fields(columns: list[dict[str, str]], record: dict[str, Any] | None = None) -> list[FormField]:
    """Fields for a model's input columns (every one required), starting from one example row ``record``."""
    record = record or {}
    out = []
    for column in columns:
        kind = _dtype_type(str(column.get("dtype", "")))
        value = record.get(column["name"])
        help_ = f"dtype {column.get('dtype')}: any JSON value" if kind == "none" else ""
        source = "" if value is None else json.dumps(value)
        out.append(_field(str(column["name"]), kind, value, source, help_, True))
    return out


# --- coercing inputs ----------------------------------------------------------------------------------------
class _Bad(ValueError):
    """What the person typed does not fit the field (the message says what to type)."""


def coerce_input(kind: FieldType, given: str | bool) -> Any:
    """The JSON value of one input for a field of ``kind``; raises ``ValueError`` saying what to type."""
    if isinstance(given, bool):
        if kind != "bool":
            raise _Bad("expected text, not a checkbox")
        return given
    text = given.strip()
    if kind in ("str", "expr"):
        return given
    if kind == "bool":
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise _Bad("expected true or false")
    if kind == "int":
        if not re.fullmatch(r"[-+]?[0-9][0-9_]{0,40}", text):
            raise _Bad(f'expected a whole number, not "{text[:40]}"')
        return int(text.replace("_", ""))
    if kind == "float":
        try:
            number = float(text.replace("_", ""))
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise _Bad(f'expected a number, not "{text[:40]}"')
        return number
    parsed = _parse_json_or_literal(text)
    if kind == "none":
        if text in ("", "None", "null"):
            return None
        return given if parsed is _NOT_PARSED else parsed
    wanted = list if kind == "list" else dict
    if parsed is _NOT_PARSED or not isinstance(parsed, wanted):
        example = "list like [1, 2]" if kind == "list" else 'object like {"a": 1}'
        raise _Bad(f"expected a JSON {example}")
    return parsed


_NOT_PARSED = object()


def _parse_json_or_literal(text: str) -> Any:
    if len(text) > MAX_LITERAL:
        return _NOT_PARSED
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        ok, value = _literal(text)
        return value if ok else _NOT_PARSED


def coerce(fields: list[FormField], inputs: dict[str, str | bool], include_defaults: bool = False) -> FormValues:
    """Turn the ``inputs`` of a form into values: a field left as it started (or emptied) takes its default when
    required or asked for (``include_defaults``), an ``expr`` field left alone is left to the notebook, and a
    field whose input does not fit gets an error saying what to type."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        given = inputs.get(f.name)
        untouched = given is None or given == f.initial
        emptied = isinstance(given, str) and not given.strip() and f.type != "str"
        if untouched or emptied:
            if f.required and (f.default is None or emptied):
                errors[f.name] = "a value is required"
            elif (include_defaults or f.required) and f.type != "expr" and not (f.type != "none" and f.default is None):
                values[f.name] = f.default
            continue
        assert given is not None
        try:
            value = coerce_input(f.type, given)
        except ValueError as exc:
            errors[f.name] = str(exc)
            continue
        if f.type == "expr" and value == f.default:
            continue
        if include_defaults or f.required or json.dumps(value, sort_keys=True) != json.dumps(f.default, sort_keys=True):
            values[f.name] = value
    return FormValues(values, errors)
