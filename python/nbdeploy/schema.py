"""Typed records: the dataclasses managers return, whose ``to_json()`` is exactly the REST body, and the request
bodies and queries the REST API parses; one JSON schema for both, generated from their type hints.

A :class:`Record` is a frozen dataclass. :meth:`Record.json_schema` describes it in OpenAPI 3.0's schema dialect
(nested records by ``$ref`` to ``#/components/schemas/<Name>``); the OpenAPI document's components are built from
them (:func:`components`) and the lab extension's TypeScript types are generated from that document.
:meth:`Record.parse` is the one validation a request goes through at the boundary: the JSON is checked against the
very schema the document publishes (``jsonschema``), then the record is built; anything that does not fit is an
:class:`~nbdeploy.exceptions.InvalidInputError` naming the field (a 400), never a 500.

Constraints ride on ``typing.Annotated`` (:class:`Rule`): ``Name``, ``Id``, ``Seconds`` … below are the shared ones.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args, get_origin

from .exceptions import InvalidInputError
from .names import NAME_PATTERN

__all__ = [
    "ID_MAX",
    "MAX_JSON_DEPTH",
    "Id",
    "KernelName",
    "Name",
    "Record",
    "Rule",
    "Seconds",
    "check_depth",
    "components",
    "schema_of",
]

ID_MAX = 2**63 - 1  # the largest id or version a catalog (SQLite, PostgreSQL BIGINT) holds
MAX_JSON_DEPTH = 64  # deeper JSON is refused at the boundary (no recursion in parsers, pickling or encoders)
R = TypeVar("R", bound="Record")


@dataclass(frozen=True)
class Rule:
    """JSON-schema keywords for an ``Annotated`` type: ``Annotated[str, Rule(pattern=…, max_length=64)]``."""

    description: str | None = None
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    format: str | None = None
    example: Any = None

    def keywords(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, name in (
            ("description", "description"),
            ("pattern", "pattern"),
            ("min_length", "minLength"),
            ("max_length", "maxLength"),
            ("minimum", "minimum"),
            ("maximum", "maximum"),
            ("format", "format"),
            ("example", "example"),
        ):
            value = getattr(self, key)
            if value is not None:
                out[name] = value
        if self.exclusive_minimum:
            out["exclusiveMinimum"] = True
        return out


Name = Annotated[str, Rule(pattern=NAME_PATTERN, max_length=64, description="lower-case name", example="churn")]
Id = Annotated[int, Rule(minimum=1, maximum=ID_MAX, description="a positive whole number")]
VersionNumber = Annotated[int, Rule(minimum=1, maximum=ID_MAX, description="a version number")]
Seconds = Annotated[float, Rule(minimum=0, exclusive_minimum=True, maximum=10**9, description="seconds")]
KernelName = Annotated[
    str, Rule(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description="a kernelspec name", example="python3")
]
Timestamp = Annotated[dt.datetime, Rule(format="date-time")]


# --- schemas from type hints ------------------------------------------------------------------------------
_HINTS: dict[type, dict[str, Any]] = {}
_VALIDATORS: dict[type, Any] = {}


def _hints(cls: type) -> dict[str, Any]:
    """``cls``'s type hints, extras kept (cached: records are immutable classes)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls, include_extras=True)
    return hints


def schema_of(hint: Any) -> dict[str, Any]:
    """The OpenAPI 3.0 schema of a type hint (``{}`` for ``Any``); records become ``$ref``s."""
    rules: list[Rule] = []
    while get_origin(hint) is Annotated:
        hint, *extra = get_args(hint)
        rules += [r for r in extra if isinstance(r, Rule)]
    schema = _base_schema(hint)
    for rule in rules:
        if "$ref" in schema:
            schema = {"allOf": [schema], **rule.keywords()}
        else:
            schema.update(rule.keywords())
    return schema


def _base_schema(hint: Any) -> dict[str, Any]:
    if hint is Any or hint is object:
        return {}
    origin, args = get_origin(hint), get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        inner = schema_of(options[0]) if len(options) == 1 else {"anyOf": [schema_of(a) for a in options]}
        if type(None) in args:
            inner = {"allOf": [inner], "nullable": True} if "$ref" in inner else {**inner, "nullable": True}
        return inner
    if origin is Literal:
        kinds = {type(a) for a in args}
        base = {str: "string", int: "integer", bool: "boolean", float: "number"}.get(next(iter(kinds)), "string")
        return {"type": base, "enum": list(args)} if len(kinds) == 1 else {"enum": list(args)}
    if isinstance(hint, type) and issubclass(hint, Record):
        return {"$ref": f"#/components/schemas/{hint.__name__}"}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if hint in simple:
        return {"type": simple[hint]}
    if hint in (dt.datetime, dt.date):
        return {"type": "string", "format": "date-time" if hint is dt.datetime else "date"}
    if hint in (list, tuple) or origin in (list, tuple, set, frozenset):
        items = args[0] if args and args[0] is not Ellipsis else Any
        return {"type": "array", "items": schema_of(items)}
    if hint is dict or origin in (dict, Mapping):
        value = args[1] if len(args) == 2 else Any
        return {"type": "object", "additionalProperties": schema_of(value)}
    raise TypeError(f"no JSON schema for the type {hint!r}")


def scalar_type(hint: Any) -> Any:
    """The plain type under ``Annotated`` and ``X | None`` (``Id | None`` -> ``int``); a Literal's value type."""
    while True:
        origin, args = get_origin(hint), get_args(hint)
        if origin is Annotated:
            hint = args[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in args if a is not type(None)]
            if len(options) != 1:
                return Any
            hint = options[0]
        elif origin is Literal:
            return type(args[0])
        else:
            return hint


def _collect(hint: Any, into: dict[str, type[Record]]) -> None:
    """Every record a type hint mentions, transitively."""
    if isinstance(hint, type) and issubclass(hint, Record):
        if hint.__name__ in into:
            return
        into[hint.__name__] = hint
        for field_hint in _hints(hint).values():
            _collect(field_hint, into)
        return
    for arg in get_args(hint):
        _collect(arg, into)


def components(records: list[type[Record]]) -> dict[str, Any]:
    """``{name: schema}`` of ``records`` and of every record they mention (for ``components.schemas``)."""
    found: dict[str, type[Record]] = {}
    for record in records:
        _collect(record, found)
    return {name: found[name].json_schema() for name in sorted(found)}


# --- validating JSON against the same schemas ---------------------------------------------------------------
def _to_json_schema(schema: Any, defs: dict[str, Any]) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema (``nullable`` becomes a null alternative; ``$ref``s point at ``defs``)."""
    if isinstance(schema, list):
        return [_to_json_schema(s, defs) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "$defs"):  # a map of names to schemas: every name is kept
            out[key] = {name: _to_json_schema(v, defs) for name, v in value.items()}
        elif key not in ("nullable", "example"):
            out[key] = _to_json_schema(value, defs)
    if "$ref" in out:
        out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
    if schema.get("exclusiveMinimum") is True:  # OpenAPI 3.0's boolean form -> draft 2020-12's number form
        out["exclusiveMinimum"] = out.pop("minimum", 0)
    if schema.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _validator(cls: type[Record]) -> Any:
    """The JSON-schema validator of ``cls`` (built once per record class)."""
    validator = _VALIDATORS.get(cls)
    if validator is None:
        import jsonschema

        defs = {name: _to_json_schema(s, {}) for name, s in components([cls]).items()}
        # nested records inlined where they do not recur: resolving a ``$ref`` on every request cost about as much
        # as validating what it points to (an inference request: 78 µs with references, 45 µs inlined)
        root = _inline_refs({"$ref": f"#/$defs/{cls.__name__}"}, defs, ())
        if root is None:
            root = {"$ref": f"#/$defs/{cls.__name__}", "$defs": defs}
        validator = _VALIDATORS[cls] = jsonschema.Draft202012Validator(root, format_checker=None)
    return validator


def _inline_refs(node: Any, defs: dict[str, Any], inside: tuple[str, ...]) -> Any:
    """``node`` with every ``{"$ref": "#/$defs/X"}`` replaced by ``defs[X]`` (inlined too; keywords beside the
    reference kept beside it under ``allOf``: the same meaning), or ``None`` when a record contains itself."""
    if isinstance(node, list):
        items = [_inline_refs(v, defs, inside) for v in node]
        return None if any(v is None for v in items) else items
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            continue
        inlined = _inline_refs(value, defs, inside)
        if inlined is None:
            return None
        out[key] = inlined
    ref = node.get("$ref")
    if ref is None:
        return out
    name = ref.removeprefix("#/$defs/") if isinstance(ref, str) else ""
    if name in inside or name not in defs or name == ref:
        return None
    target = _inline_refs(defs[name], defs, (*inside, name))
    if target is None:
        return None
    return {"allOf": [target], **out} if out else target


def _where(path: Any, root: str) -> str:
    out = root
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def check_depth(value: Any, where: str = "body", limit: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`InvalidInputError` when JSON ``value`` nests deeper than ``limit`` (checked iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                raise InvalidInputError(f"the {where} nests deeper than {limit} levels", where)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


# --- the record base -----------------------------------------------------------------------------------------
class Record:
    """Base of nbdeploy's typed results and requests (use with ``@dataclass(frozen=True)``).

    Class attributes: ``request`` (a request body or query: keys with defaults may be left out; a result always
    has every key, so its schema requires them all), ``extra_fields`` (accept unknown keys), ``json_exclude``
    (fields kept off the JSON). Fields whose name ends in ``_`` are published without it (``from_`` → ``from``).
    """

    request: ClassVar[bool] = False
    extra_fields: ClassVar[bool] = False
    json_exclude: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _fields(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if f.name not in cls.json_exclude]  # type: ignore[arg-type]

    @staticmethod
    def _key(name: str) -> str:
        return name[:-1] if name.endswith("_") else name

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """This record's OpenAPI 3.0 schema (an object; required keys are the fields without defaults)."""
        hints = _hints(cls)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for f in cls._fields():
            schema = schema_of(hints[f.name])
            doc = f.metadata.get("description")
            if doc:
                schema = {"allOf": [schema], "description": doc} if "$ref" in schema else {**schema, "description": doc}
            properties[cls._key(f.name)] = schema
            no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if no_default or not cls.request:
                required.append(cls._key(f.name))
        out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": cls.extra_fields}
        if required:
            out["required"] = required
        doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        if doc:
            out["description"] = doc
        return out

    def to_json(self) -> dict[str, Any]:
        """The JSON body of this record (datetimes as ISO 8601, nested records as their JSON)."""
        return {self._key(f.name): _jsonable(getattr(self, f.name)) for f in self._fields()}

    @classmethod
    def parse(cls: type[R], data: Any, where: str = "", label: str = "") -> R:
        """Validate JSON ``data`` against :meth:`json_schema` and build the record; raise :class:`InvalidInputError`
        for anything that does not fit, its ``field`` naming the offending part (prefixed with ``where``) and its
        message saying what is wrong (after ``label``, e.g. "query argument")."""
        if data is None:
            data = {}
        check_depth(data, where or "body")
        errors = list(_validator(cls).iter_errors(data))
        if errors:
            from jsonschema.exceptions import best_match

            error = best_match(errors)  # into anyOf/oneOf too: the branch that nearly fits says what is wrong
            while error.validator in ("anyOf", "oneOf") and error.context:
                real = [e for e in error.context if e.schema.get("type") != "null"]  # "X or null": say what X is
                if not real:
                    break
                error = best_match(real)
            path = list(error.absolute_path)
            if error.validator == "additionalProperties" and isinstance(error.instance, dict):
                known = set(error.schema.get("properties", {}))
                path.append(sorted(k for k in error.instance if k not in known)[0])
            elif error.validator == "required" and isinstance(error.instance, dict):
                path.append(next(k for k in error.validator_value if k not in error.instance))
            field_name = _where(path, where)
            prefix = f"{label} {field_name}" if label else field_name
            raise InvalidInputError(f"{prefix}: {_message(error)}", field_name)
        return cls._build(data)

    @classmethod
    def _build(cls: type[R], data: Mapping[str, Any]) -> R:
        hints = _hints(cls)
        values = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            key = cls._key(f.name)
            if key in data:
                values[f.name] = _from_json(hints[f.name], data[key])
        record = cls(**values)
        object.__setattr__(record, "_given", frozenset(values))
        return record

    def given(self) -> frozenset[str]:
        """The fields a parsed request actually held (the others took their defaults)."""
        return getattr(self, "_given", frozenset(f.name for f in dataclasses.fields(self)))  # type: ignore[arg-type]


class ListRecord(Record):
    """A result that wraps one list (``{"functions": [...]}`` on the wire) and behaves as that list in Python:
    ``for f in nbd.functions.list()``, ``len(...)``, ``[0]``."""

    def _items(self) -> list[Any]:
        return getattr(self, dataclasses.fields(self)[0].name)  # type: ignore[arg-type]

    def __iter__(self) -> typing.Iterator[Any]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __getitem__(self, index: int) -> Any:
        return self._items()[index]


def _message(error: Any) -> str:
    if error.validator == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return f"expected {'an' if str(wanted)[0] in 'aeiou' else 'a'} {wanted}, got {json.dumps(error.instance)[:80]}"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(k for k in error.instance if k not in known)
        return f"unknown field(s) {', '.join(map(repr, unknown))[:200]}; known: {', '.join(known)}"
    if error.validator == "pattern" and error.validator_value == NAME_PATTERN:
        return (
            f"{json.dumps(error.instance)[:80]} is not a valid name: use 1-64 lower-case letters, digits, '.', '_' "
            "or '-', starting with a letter or digit, e.g. 'churn-model'"
        )
    if error.validator == "pattern":
        return f"{json.dumps(error.instance)[:80]} does not match {error.validator_value}"
    if error.validator == "required":
        return "is required"
    text = error.message
    return text if len(text) <= 300 else text[:300] + "…"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _from_json(hint: Any, value: Any) -> Any:
    """Convert validated JSON into the field's Python type (records, tuples, datetimes)."""
    while get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    origin, args = get_origin(hint), get_args(hint)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return _from_json(options[0], value) if len(options) == 1 else value
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint._build(value)
    if hint is dt.datetime and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if origin is tuple:
        return tuple(_from_json(args[0], v) for v in value) if args else tuple(value)
    if origin is list and args:
        return [_from_json(args[0], v) for v in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
