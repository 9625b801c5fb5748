"""Checking the values given to a job's parameters, as papermill users expect.

Papermill injects whatever it is given (``execute_notebook(parameters={"msg": "1"})`` runs ``msg = "1"``); its
CLI's ``-p`` reads ``True``/``False``/``None``, ints and floats out of the text. nbdeploy follows it and adds
checks where the notebook asks for them:

- a parameter **declared** with a type (``n: int = 3`` or ``n = 3  # type: int``) is checked strictly: a value
  of another type is refused (:class:`~nbdeploy.exceptions.InvalidInputError`, ``field`` ``parameters.NAME``);
  text from a command line or a query string (``"4"``) is converted to the declared type (``4``);
- a parameter whose type is only **inferred** from a literal default (``n = 3``) takes text converted the
  same way when it converts, and otherwise runs what it is given, as papermill would — with a warning, or
  refused like a declared one when the caller asks for ``strict=True``;
- a parameter of **unknown** type (``msg = None``) takes any value unchanged; only text that the caller says
  came from a command line (``from_text=True``) is read with papermill's ``-p`` rules;
- names the notebook does not declare are refused when it declares any; values must be JSON (what a run
  stores), finite numbers included.

Declared types understood: ``int``, ``float``, ``str``, ``bool``, ``list``/``List[X]``, ``dict``/``Dict[K, V]``,
``tuple``/``Tuple[…]``, ``Optional[X]``, ``Union[…]``, ``X | Y``, ``Literal[…]``, ``Annotated[X, …]``, ``Any``,
``None`` — bare or ``typing.``-prefixed. Any other type (``pd.Timestamp``, a class) is not checked: its values
run as given, as in papermill. An int is accepted for a float (as a float); an integral float (``4.0``, what a
JSON client may send) for an int.
"""

from __future__ import annotations

import ast
import json
import keyword
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..exceptions import InvalidInputError
from .parameter_cell import Parameter

__all__ = ["CheckedParameters", "ParameterWarning", "check_parameters", "coerce_parameters", "parse_assignments"]

log = logging.getLogger("nbdeploy.jobs")

MAX_PARAMETERS = 1000
_MAX_TYPE_CHARS = 256
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
_NAMES = {
    "int": "int",
    "float": "float",
    "str": "str",
    "bool": "bool",
    "list": "list",
    "List": "list",
    "Sequence": "list",
    "MutableSequence": "list",
    "Iterable": "list",
    "dict": "dict",
    "Dict": "dict",
    "Mapping": "dict",
    "MutableMapping": "dict",
    "tuple": "tuple",
    "Tuple": "tuple",
    "None": "none",
    "NoneType": "none",
    "Any": "any",
    "object": "any",
}


@dataclass(frozen=True)
class ParameterWarning:
    """A value accepted although it does not fit the type its parameter's default suggests."""

    field: str
    message: str

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, str]:
        """``{"field", "message"}``."""
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True)
class CheckedParameters:
    """The checked, converted ``values`` to inject, and the ``warnings`` a caller should show."""

    values: dict[str, Any]
    warnings: tuple[ParameterWarning, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """``{"values", "warnings"}``."""
        return {"values": self.values, "warnings": [w.to_json() for w in self.warnings]}


class _Mismatch(Exception):
    """A value that does not fit a type; ``args[0]`` says how."""


@dataclass(frozen=True)
class _Type:
    kind: str  # int float str bool list dict tuple (any length) fixed (a fixed-length tuple) none any union literal
    args: tuple[Any, ...] = ()


_ANY = _Type("any")


def check_parameters(
    values: Mapping[str, Any] | None,
    declared: Mapping[str, Parameter],
    job: str,
    *,
    strict: bool = False,
    from_text: bool = False,
) -> CheckedParameters:
    """Check ``values`` against the parameters ``declared`` by job ``job``'s notebook; return them converted,
    with the warnings to show (see the module docstring for the rules).

    ``strict`` checks parameters with an inferred type like declared ones; ``from_text`` says that string
    values came from a command line or a query string, so that those of parameters of unknown type are read
    with papermill's ``-p`` rules (``"1"`` → ``1``). Raises :class:`InvalidInputError` (``field``
    ``parameters`` or ``parameters.NAME``) for a value that is refused.
    """
    if values is None:
        return CheckedParameters({})
    if not isinstance(values, Mapping):
        raise InvalidInputError(
            f"parameters must be a mapping of name to value, not a {type(values).__name__}", "parameters"
        )
    if len(values) > MAX_PARAMETERS:
        raise InvalidInputError(f"at most {MAX_PARAMETERS} parameters can be given, got {len(values)}", "parameters")
    out: dict[str, Any] = {}
    warnings: list[ParameterWarning] = []
    for name, value in values.items():
        _check_name(name, declared, job)
        param = declared.get(name)
        checked, warning = _check_value(name, value, param, strict=strict, from_text=from_text)
        _check_json(name, checked)
        out[name] = checked
        if warning is not None:
            warnings.append(warning)
    return CheckedParameters(out, tuple(warnings))


def coerce_parameters(
    values: Mapping[str, Any] | None,
    declared: Mapping[str, Parameter],
    job: str,
    *,
    strict: bool = False,
    from_text: bool = False,
) -> dict[str, Any]:
    """Check ``values`` against the declared parameters and convert strings to the declared types.

    Strings (from the CLI, magics or a query string) become ints, floats, bools, lists or dicts when the
    parameter is declared or inferred that way; other values are checked as :func:`check_parameters`
    describes and returned (warnings are logged; call :func:`check_parameters` to get them); ``strict`` and
    ``from_text`` are :func:`check_parameters`'s. Raises
    :class:`InvalidInputError` for an undeclared name (when the notebook declares parameters), a value that
    does not fit a declared type, or one that is not JSON.
    """
    checked = check_parameters(values, declared, job, strict=strict, from_text=from_text)
    for warning in checked.warnings:
        log.warning("job %s: %s", job, warning.message)
    return checked.values


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Parse ``["k=v", …]`` (from ``-p k=v`` options) into ``{k: v}``; raise :class:`InvalidInputError`."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"parameter {item!r} is not of the form name=value", "parameters")
        out[key.strip()] = value
    return out


# --- one value ------------------------------------------------------------------------------------------------
def _check_name(name: Any, declared: Mapping[str, Parameter], job: str) -> None:
    if not isinstance(name, str) or not name.isidentifier() or len(name) > 255:
        raise InvalidInputError(f"parameter name {_short(repr(name))} is not a Python identifier", "parameters")
    if keyword.iskeyword(name):
        raise InvalidInputError(f"parameter name {name!r} is a Python keyword: it cannot be assigned", "parameters")
    if declared and name not in declared:
        raise InvalidInputError(
            f"job {job!r} has no parameter {_short(repr(name))}; its parameters are {_short(', '.join(declared), 400)}",
            f"parameters.{name}",
        )


def _check_value(
    name: str, value: Any, param: Parameter | None, *, strict: bool, from_text: bool
) -> tuple[Any, ParameterWarning | None]:
    if param is None or param.type_source == "unknown":
        return (_papermill_text(value) if from_text and isinstance(value, str) else value), None
    kind = parse_type(param.inferred_type_name)
    if kind is None or kind.kind == "any":
        return value, None
    try:
        return _convert(value, kind, text=isinstance(value, str)), None
    except _Mismatch as exc:
        got = f"{exc.args[0]}" if exc.args else _what(value)
        if param.type_source == "declared" or strict:
            how = "its declared type" if param.type_source == "declared" else "the type of its default; strict"
            raise InvalidInputError(
                f"parameter {name!r} must be a {param.inferred_type_name} ({how}), got {got}: pass a value of "
                "that type, or text that converts to it",
                f"parameters.{name}",
            ) from None
    fallback = _papermill_text(value) if from_text and isinstance(value, str) else value
    return fallback, ParameterWarning(
        f"parameters.{name}",
        f"parameter {name!r} defaults to {_a(param.inferred_type_name)} ({name} = {_short(param.default)}) but got "
        f"{got}; it runs as given, as papermill would. Annotate it (`{name}: <type> = ...`) to declare the type "
        "it takes, or pass strict=True to refuse such values",
    )


def _papermill_text(text: str) -> Any:
    """Papermill's ``-p`` rule for text: True/False/None, an int, a float, else the text itself."""
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    if text in ("None", "null"):
        return None
    for convert in (int, float):
        try:
            number = convert(text)
        except ValueError:
            continue
        return number if not isinstance(number, float) or math.isfinite(number) else text
    return text


def _check_json(name: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError as exc:
        if "Circular" in str(exc):
            why = "it refers to itself"
        else:
            why = "NaN and infinities are not JSON: pass a finite number, or None"
        raise InvalidInputError(f"parameter {name!r} cannot be stored: {why}", f"parameters.{name}") from exc
    except (TypeError, RecursionError) as exc:
        raise InvalidInputError(
            f"parameter {name!r} must be a JSON value (number, string, bool, list, dict or None), got {_what(value)}",
            f"parameters.{name}",
        ) from exc


def _convert(value: Any, t: _Type, text: bool) -> Any:
    """``value`` as type ``t`` (text converted when ``text``); raises :class:`_Mismatch`."""
    kind = t.kind
    if kind == "any":
        return value
    if kind == "union":
        return _convert_union(value, t.args, text)
    if kind == "literal":
        for option in t.args:
            if type(option) is type(value) and option == value:
                return value
            if text and isinstance(value, str) and not isinstance(option, str) and str(option) == value:
                return option
        raise _Mismatch(f"{_what(value)} (one of {', '.join(map(repr, t.args))} is expected)")
    if text and isinstance(value, str) and kind != "str":
        return _from_text(value, t)
    if kind == "none":
        if value is None:
            return None
    elif kind == "int":
        if type(value) is int:
            return value
        if type(value) is float and value.is_integer():
            return int(value)
    elif kind == "float":
        if type(value) in (int, float):
            try:
                return float(value)
            except OverflowError:
                raise _Mismatch(f"{_what(value)} (too large for a float)") from None
    elif kind == "str":
        if isinstance(value, str):
            return value
    elif kind == "bool":
        if type(value) is bool:
            return value
    elif kind in ("list", "tuple", "fixed"):
        if isinstance(value, list | tuple):
            return _convert_items(list(value), t)
    elif kind == "dict":
        if isinstance(value, Mapping):
            return _convert_mapping(value, t)
    raise _Mismatch(_what(value))


def _from_text(text: str, t: _Type) -> Any:
    kind = t.kind
    stripped = text.strip()
    if kind == "none" and stripped in ("None", "null"):
        return None
    try:
        if kind == "int":
            return int(stripped)
        if kind == "float":
            number = float(stripped)
            if math.isfinite(number):
                return number
        if kind == "bool" and stripped.lower() in _TRUE + _FALSE:
            return stripped.lower() in _TRUE
        if kind in ("list", "tuple", "fixed", "dict"):
            return _convert(json.loads(text), t, text=False)
    except (ValueError, RecursionError):
        pass
    raise _Mismatch(_what(text))


def _convert_union(value: Any, members: tuple[_Type, ...], text: bool) -> Any:
    if text and isinstance(value, str) and any(m.kind in ("str", "any") for m in members):
        return value  # text is a fine str: keep it
    for exact in (True, False):
        for member in members:
            try:
                converted = _convert(value, member, text and not exact)
            except _Mismatch:
                continue
            if not exact or type(converted) is type(value):
                return converted
    raise _Mismatch(_what(value))


def _convert_items(items: list[Any], t: _Type) -> list[Any]:
    if t.kind == "fixed":
        if len(items) != len(t.args):
            raise _Mismatch(f"a list of {len(items)} items ({len(t.args)} are expected)")
        kinds = list(t.args)
    else:
        kinds = [t.args[0] if t.args else _ANY] * len(items)
    out = []
    for index, (item, kind) in enumerate(zip(items, kinds, strict=True)):
        try:
            out.append(_convert(item, kind, text=False))
        except _Mismatch as exc:
            raise _Mismatch(f"a list whose item {index} is {exc.args[0]}") from None
    return out


def _convert_mapping(value: Mapping[Any, Any], t: _Type) -> dict[Any, Any]:
    key_type, value_type = t.args if len(t.args) == 2 else (_ANY, _ANY)
    out = {}
    for key, item in value.items():
        try:
            checked_key = _convert(key, key_type, text=isinstance(key, str))
            out[checked_key] = _convert(item, value_type, text=False)
        except _Mismatch as exc:
            raise _Mismatch(f"a dict whose item {_short(repr(key))} is {exc.args[0]}") from None
    return out


def _what(value: Any) -> str:
    """``a str 'abc'``, ``an int 1``, ``None``: a value for messages."""
    return "None" if value is None else f"{_a(type(value).__name__)} {_short(repr(value))}"


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- declared types -------------------------------------------------------------------------------------------
@lru_cache(maxsize=512)
def parse_type(text: str) -> _Type | None:
    """The checkable form of a type's source (``"Optional[int]"``); ``None`` when none is known."""
    if not isinstance(text, str) or not text.strip() or len(text) > _MAX_TYPE_CHARS or text == "None":
        return None  # "None" is papermill's "unknown"; `x: None` declares nothing useful either
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    parsed = _from_node(node, 0)
    return None if parsed.kind == "any" else parsed


def _from_node(node: ast.expr, depth: int) -> _Type:
    if depth > 8:
        return _ANY
    if isinstance(node, ast.Constant):
        if node.value is None:
            return _Type("none")
        if isinstance(node.value, str):  # a forward reference: "int"
            inner = parse_type(node.value) if depth < 4 else None
            return inner or _ANY
        return _ANY
    if isinstance(node, ast.Name | ast.Attribute):
        name = node.id if isinstance(node, ast.Name) else node.attr
        kind = _NAMES.get(name)
        return _Type(kind) if kind else _ANY
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union([_from_node(node.left, depth + 1), _from_node(node.right, depth + 1)])
    if isinstance(node, ast.Subscript):
        base = node.value.id if isinstance(node.value, ast.Name) else getattr(node.value, "attr", "")
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base == "Optional" and len(args) == 1:
            return _union([_from_node(args[0], depth + 1), _Type("none")])
        if base == "Union":
            return _union([_from_node(a, depth + 1) for a in args])
        if base == "Annotated" and args:
            return _from_node(args[0], depth + 1)
        if base == "Literal":
            values = [a.value for a in args if isinstance(a, ast.Constant)]
            return _Type("literal", tuple(values)) if len(values) == len(args) else _ANY
        kind = _NAMES.get(base)
        if kind in ("list", "tuple", "dict"):
            if kind == "tuple" and len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is ...:
                return _Type("tuple", (_from_node(args[0], depth + 1),))  # Tuple[X, ...]: any length
            items = tuple(_from_node(a, depth + 1) for a in args)
            return _Type("fixed" if kind == "tuple" else kind, items)
    return _ANY


def _union(members: list[_Type]) -> _Type:
    flat: list[_Type] = []
    for member in members:
        flat.extend(member.args if member.kind == "union" else (member,))
    if any(m.kind == "any" for m in flat):
        return _ANY
    return _Type("union", tuple(dict.fromkeys(flat)))
