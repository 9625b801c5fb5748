"""Function signatures: JSON schemas from type hints, and validation of JSON arguments against them."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from ..exceptions import SignatureError

__all__ = ["describe", "validate_arguments"]

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    bytes: {"type": "string", "contentEncoding": "base64"},
}


def type_schema(hint: Any) -> dict[str, Any]:
    """Return a JSON schema for a type hint (``{}`` — anything — when there is no useful mapping)."""
    if hint is inspect.Parameter.empty or hint is Any:
        return {}
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [type_schema(a) for a in args]
        return {"anyOf": options} if all(options) else {}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if hint in (list, tuple, set, frozenset) or origin in (list, tuple, set, frozenset):
        schema: dict[str, Any] = {"type": "array"}
        if args and origin is not tuple:
            schema["items"] = type_schema(args[0])
        return schema
    if hint is dict or origin is dict:
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = type_schema(args[1])
        return schema
    name = getattr(hint, "__name__", "")
    if name == "ndarray" or name in ("DataFrame", "Series"):
        return {"type": "array"}
    return {}


def describe(fn: Callable[..., Any]) -> dict[str, Any]:
    """Return ``{"parameters": [...], "request": schema, "response": schema, "doc": str}`` for ``fn``."""
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = {k: v for k, v in getattr(fn, "__annotations__", {}).items() if not isinstance(v, str)}
    properties: dict[str, Any] = {}
    required: list[str] = []
    params = []
    extra = False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            extra = True
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        schema = type_schema(hints.get(p.name, inspect.Parameter.empty))
        entry: dict[str, Any] = {"name": p.name, "schema": schema, "required": p.default is p.empty}
        if p.default is not p.empty:
            try:
                from ..runtime.encoding import to_jsonable

                schema = {**schema, "default": to_jsonable(p.default)}
                entry["default"] = schema["default"]
            except TypeError:
                pass
        else:
            required.append(p.name)
        properties[p.name] = schema
        params.append(entry)
    request: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": extra}
    if required:
        request["required"] = required
    return {
        "parameters": params,
        "request": request,
        "response": type_schema(hints.get("return", inspect.Parameter.empty)),
        "doc": inspect.getdoc(fn) or "",
    }


def _check(value: Any, schema: dict[str, Any]) -> str | None:
    """Return why ``value`` does not fit ``schema``, or ``None`` when it does."""
    if not schema:
        return None
    if "anyOf" in schema:
        return None if any(_check(value, s) is None for s in schema["anyOf"]) else "does not match any allowed type"
    if "enum" in schema:
        return None if value in schema["enum"] else f"must be one of {schema['enum']}"
    kind = schema.get("type")
    ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }.get(str(kind), True)
    if not ok:
        return f"expected {kind}, got {_json_type(value)}"
    if kind == "array" and "items" in schema:
        for i, item in enumerate(value):
            why = _check(item, schema["items"])
            if why:
                return f"item {i}: {why}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        for k, item in value.items():
            why = _check(item, schema["additionalProperties"])
            if why:
                return f"key {k!r}: {why}"
    return None


def _json_type(value: Any) -> str:
    for name, t in (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float), ("string", str)):
        if isinstance(value, t):
            return name
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else type(value).__name__


def validate_arguments(request_schema: dict[str, Any], arguments: Any) -> dict[str, Any]:
    """Check JSON ``arguments`` against a request schema; return them, or raise :class:`SignatureError`.

    The error's ``errors`` maps each bad field to what is wrong with it (missing, unexpected, wrong type).
    """
    if not isinstance(arguments, dict):
        raise SignatureError("arguments must be a JSON object of parameter names to values", {"body": "not an object"})
    properties: dict[str, Any] = request_schema.get("properties", {})
    errors: dict[str, str] = {}
    for name in request_schema.get("required", []):
        if name not in arguments:
            errors[name] = "missing required argument"
    for name, value in arguments.items():
        if name not in properties:
            if not request_schema.get("additionalProperties", False):
                errors[name] = f"unexpected argument (accepted: {', '.join(properties) or 'none'})"
            continue
        why = _check(value, properties[name])
        if why:
            errors[name] = why
    if errors:
        detail = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise SignatureError(f"arguments do not fit the function's signature: {detail}", errors)
    return arguments
