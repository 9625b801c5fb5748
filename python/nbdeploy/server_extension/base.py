"""What every nbdeploy REST handler shares, whichever server mounts it: the boundary.

Each service's ``handlers.py`` defines its handlers as subclasses of :class:`NbdeployHandler` (a mixin with no
server of its own) and exports ``default_handlers = [(route, class), …]`` with routes relative to
``/nbdeploy/api``. :func:`.routes.bind_handlers` turns them into concrete tornado handlers for one server by mixing in that
server's authenticated base class: Jupyter's ``APIHandler`` in the extension, the token-checking handler of
``nbdeploy serve``.

Every handler method is declared with :func:`api`: what its path parameters, query and body are (records of
:mod:`nbdeploy.schema`) and what it answers. The declaration is the OpenAPI document (:mod:`.openapi`) *and* the
parsing: a request is parsed once, here, against the schemas the document publishes, before the handler runs —
a body over the size limit is a 413 (read and dropped, never a reset connection), malformed JSON, JSON nested
deeper than :data:`~nbdeploy.schema.MAX_JSON_DEPTH`, a bad name or id, a field of the wrong type are 400s naming
the field. Handlers stay thin: they get typed arguments, call a manager, return a record.

Every operation also declares the **scope** a token needs to call it (:func:`.scopes.required_scope`): by default a read
(``GET``) needs ``read``, invoking a function or predicting with a model (an operation with a ``metric``) needs
``invoke:<name>``, any other write ``deploy:<name>`` on a named route and ``admin`` elsewhere; ``scope="admin"``,
``"public"`` (no credentials at all in ``nbdeploy serve``) and templates such as ``"invoke:{name}"`` override it.
``nbdeploy serve`` checks it against the token's scopes (:mod:`nbdeploy.tokens`); in Jupyter the user's own
authorization applies.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tornado import web

from ..exceptions import InvalidInputError, NbdeployError, PayloadTooLargeError, UserCodeError
from ..names import NAME_MAX, NAME_PATTERN
from ..runtime.encoding import dumps
from ..schema import ID_MAX, Record, check_depth

__all__ = [
    "API_PREFIX",
    "PATH_PARAMETERS",
    "NbdeployHandler",
    "Operation",
    "Raw",
    "RawBody",
    "api",
]

API_PREFIX = "/nbdeploy/api"
READ_CAP = 1 << 30  # a body over the limit is read and dropped up to this size, so the client gets its 413
log = logging.getLogger("nbdeploy.server")

_NAME_RE = re.compile(NAME_PATTERN)
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII digits only: "²".isdigit() is true, int("²") is not


@dataclass(frozen=True)
class PathParameter:
    """How a path parameter is published (``schema``) and parsed (``parse``: text -> value, or ``None`` when
    malformed)."""

    schema: dict[str, Any]
    parse: Callable[[str], Any]
    description: str


def _id(text: str) -> int | None:
    return int(text) if _DIGITS.fullmatch(text) and 1 <= int(text) <= ID_MAX else None


def _name(text: str) -> str | None:
    return text if len(text) <= NAME_MAX and _NAME_RE.fullmatch(text) else None


def _version_ref(text: str) -> int | str | None:
    return _id(text) if text[:1].isascii() and text[:1].isdigit() else _name(text)


_NAME_SCHEMA = {"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_MAX}
_ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": ID_MAX}

#: every path parameter, by the name its route group uses
PATH_PARAMETERS: dict[str, PathParameter] = {
    "name": PathParameter(_NAME_SCHEMA, _name, "a name: 1-64 of a-z 0-9 . _ -"),
    "alias": PathParameter(_NAME_SCHEMA, _name, "an alias name, e.g. production"),
    "run_id": PathParameter(_ID_SCHEMA, _id, "a run id"),
    "schedule_id": PathParameter(_ID_SCHEMA, _id, "a schedule id"),
    "number": PathParameter(_ID_SCHEMA, _id, "a version number"),
    "token_id": PathParameter(_ID_SCHEMA, _id, "a token id"),
    "version": PathParameter(
        {"oneOf": [_ID_SCHEMA, _NAME_SCHEMA]}, _version_ref, "a version number or an alias (e.g. 3 or production)"
    ),
}


@dataclass(frozen=True)
class Raw:
    """A non-JSON answer: ``content`` sent as it is with ``content_type``."""

    content: bytes | str
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RawBody:
    """A request body of a content type other than JSON (e.g. ``text/csv``), as its bytes."""

    content: bytes
    content_type: str
    headers: Any = None


_JSON_TYPES = ("application/json", "")


@dataclass(frozen=True)
class Operation:
    """The declaration of one handler method (see :func:`api`)."""

    summary: str
    description: str
    tags: tuple[str, ...]
    query: type[Record] | None
    body: Any  # a Record class, ``dict`` (any JSON object, checked only for shape and depth) or None
    body_required: bool
    responses: dict[int, Any]  # status -> Record class, None (no body) or a content type string (Raw)
    errors: tuple[int, ...]
    metric: str | None
    operation_id: str | None
    scope: str | None = None  # None: derived from the method and the route (see :func:`.scopes.required_scope`)
    consumes: tuple[str, ...] | None = None  # request content types, 415 for others (None: JSON, type unchecked)


def api(
    *,
    responses: dict[int, Any],
    query: type[Record] | None = None,
    body: Any = None,
    body_required: bool | None = None,
    errors: Sequence[int] = (),
    tags: Sequence[str] = (),
    metric: str | None = None,
    operation_id: str | None = None,
    scope: str | None = None,
    consumes: Sequence[str] | None = None,
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[None]]]:
    """Declare a handler method: its ``query`` record, ``body`` (a record, or ``dict`` for any JSON object),
    ``responses`` (``{201: Run}``; ``None`` for no body; a content-type string for :class:`Raw` answers), the
    error statuses it may answer beyond the common ones, and ``metric`` (``"function"``: requests are counted
    per ``function:<name>``), the ``scope`` a token needs (default: derived, see :func:`.scopes.required_scope`) and the
    request content types it ``consumes`` (declared: others are a 415, a missing one is read as JSON, and a body of
    a non-JSON type reaches the method as :class:`RawBody`; by default the body is read as JSON whatever its
    declared type, so that ``curl -d`` works). The method receives the parsed path parameters, ``query=`` and ``body=``, and returns a
    record (sent as JSON with the first declared status), a :class:`Raw` or ``None``."""

    def decorate(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[None]]:
        doc = (method.__doc__ or "").strip().split("\n", 1)
        op = Operation(
            summary=doc[0],
            description=doc[1].strip() if len(doc) > 1 else "",
            tags=tuple(tags),
            query=query,
            body=body,
            body_required=body is not None if body_required is None else body_required,
            responses=dict(responses),
            errors=tuple(errors),
            metric=metric,
            operation_id=operation_id,
            scope=scope,
            consumes=tuple(consumes) if consumes is not None else None,
        )

        @functools.wraps(method)
        async def handle(self: NbdeployHandler, **path: str) -> None:
            kwargs: dict[str, Any] = {name: self.path_argument(name, value) for name, value in path.items()}
            if op.metric and "name" in kwargs:
                self.metric_target = f"{op.metric}:{kwargs['name']}"
            if op.query is not None:
                kwargs["query"] = parse_query(op.query, self.request.query_arguments)
            if op.body is not None:
                content_type = self.request_content_type(op) if op.consumes is not None else "application/json"
                if content_type not in _JSON_TYPES:
                    kwargs["body"] = RawBody(self.body_bytes(), content_type, self.request.headers)
                    self.send_result(await method(self, **kwargs), op)
                    return
                data = self.json_body(required=op.body_required)
                if op.body is dict:
                    if data is None and not op.body_required:
                        data = {}
                    if not isinstance(data, dict):
                        raise InvalidInputError("the request body must be a JSON object", "body")
                    kwargs["body"] = data
                elif op.body is Any:
                    kwargs["body"] = data
                elif data is None and op.body_required:
                    raise InvalidInputError("the request body must be a JSON object", "body")
                else:
                    kwargs["body"] = op.body.parse(data) if data is not None else None
            self.send_result(await method(self, **kwargs), op)

        handle.operation = op  # type: ignore[attr-defined]
        return handle

    return decorate


def parse_query(cls: type[Record], arguments: dict[str, list[bytes]]) -> Record:
    """Build the query record ``cls`` from tornado's query arguments (strings converted to the fields' JSON
    types first, then validated like a body). Unknown query arguments are ignored."""
    from ..schema import _hints, scalar_type

    hints = _hints(cls)
    data: dict[str, Any] = {}
    for f in cls._fields():
        key = cls._key(f.name)
        if key not in arguments or not arguments[key]:
            continue
        raw = arguments[key][-1].decode("utf-8", "replace")
        if raw == "":
            continue
        kind = {int: "int", float: "float", bool: "bool"}.get(scalar_type(hints[f.name]), "str")
        data[key] = _convert_query(key, raw, kind)
    if data:
        return cls.parse(data, label="query argument")
    # no query arguments (most requests): the record of defaults is the same every time, and records are frozen;
    # validating ``{}`` against the schema cost ≈ 50 µs of every predict request
    empty = _EMPTY_QUERIES.get(cls)
    if empty is None:
        empty = _EMPTY_QUERIES[cls] = cls.parse(data, label="query argument")  # raises when a field is required
    return empty


_EMPTY_QUERIES: dict[type[Record], Record] = {}


def _convert_query(key: str, raw: str, kind: str) -> Any:
    if kind == "int":
        if not re.fullmatch(r"-?[0-9]{1,19}", raw):
            raise InvalidInputError(f"query argument {key} must be a whole number, got {raw[:40]!r}", key)
        return int(raw)
    if kind == "float":
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise InvalidInputError(f"query argument {key} must be a number, got {raw[:40]!r}", key)
        return value
    if kind == "bool":
        if raw.lower() not in ("true", "false", "1", "0"):
            raise InvalidInputError(f"query argument {key} must be true or false, got {raw[:40]!r}", key)
        return raw.lower() in ("true", "1")
    return raw


@web.stream_request_body
class NbdeployHandler(web.RequestHandler):
    """Mixin for nbdeploy's REST handlers: the boundary (limits, parsing), JSON errors, per-target metrics.

    ``self.nbd`` is the server's :class:`~nbdeploy.app.Nbdeploy`.
    """

    #: label recorded in the metrics for this request, e.g. ``function:greet`` (set once the name is valid)
    metric_target: str | None = None
    _started: float = 0.0

    @property
    def nbd(self) -> Any:
        return self.settings["nbdeploy"]

    @property
    def include_traceback(self) -> bool:
        """Whether user tracebacks go into error bodies (always in Jupyter; with --debug standalone)."""
        return bool(self.settings.get("nbdeploy_debug", True))

    def initialize(self, **kwargs: Any) -> None:  # type: ignore[override]
        self._started = time.perf_counter()
        self._chunks: list[bytes] = []
        self._received = 0
        self._too_large = False
        super().initialize(**kwargs)  # type: ignore[misc]

    async def prepare(self) -> None:  # type: ignore[override]
        result = super().prepare()  # the server's authentication comes first
        if result is not None:
            await result
        limit = self._limit()
        length = self.request.headers.get("Content-Length", "")
        if length.isascii() and length.isdigit() and int(length) > limit:
            self._too_large = True
        if self.request.method in ("POST", "PUT", "PATCH", "DELETE"):
            self.request.connection.set_max_body_size(READ_CAP)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._too_large or self._received > self._limit():
            self._too_large = True
            self._chunks.clear()  # read and dropped: the client still gets its 413
            return
        self._chunks.append(chunk)

    def _limit(self) -> int:
        return int(self.nbd.settings.max_body_bytes)

    # --- input --------------------------------------------------------------------------------------
    def path_argument(self, name: str, value: str) -> Any:
        """Parse a path parameter by its name (see :data:`PATH_PARAMETERS`); 400 naming it when malformed."""
        spec = PATH_PARAMETERS.get(name)
        if spec is None:
            return value
        parsed = spec.parse(value)
        if parsed is None:
            shown = value if len(value) <= 80 else value[:80] + "…"
            raise InvalidInputError(f"{name} {shown!r} is not {spec.description}", name)
        return parsed

    def request_content_type(self, op: Operation) -> str:
        """The request's media type (``application/json`` …, ``""`` when not given, read as JSON); 415 when the
        operation does not consume it."""
        from ..exceptions import UnsupportedMediaTypeError

        given = self.request.headers.get("Content-Type", "")
        media = given.split(";", 1)[0].strip().lower()
        consumes = op.consumes or ("application/json",)
        if media == "" or media in consumes or (media.endswith("+json") and "application/json" in consumes):
            return "application/json" if media.endswith("+json") else media
        raise UnsupportedMediaTypeError(
            f"this route takes {', '.join(consumes)}; got Content-Type {given[:80]!r}: send one of those"
        )

    def body_bytes(self) -> bytes:
        """The request body; 413 when it was over the limit."""
        if self._too_large:
            limit = self._limit()
            raise PayloadTooLargeError(
                f"the request body ({self._received:,d} bytes or more) is over the limit of {limit:,d} bytes "
                "(setting max_body_bytes, NBDEPLOY_MAX_BODY_BYTES)"
            )
        return b"".join(self._chunks)

    def json_body(self, *, required: bool = True) -> Any:
        """The request body parsed as JSON (``None`` when empty and not ``required``); 400 when malformed or
        nested deeper than the limit, 413 when over the size limit."""
        body = self.body_bytes()
        if not body.strip():
            if required:
                raise InvalidInputError("the request needs a JSON body", "body")
            return None
        try:
            data = json.loads(body)
        except RecursionError as exc:
            raise InvalidInputError("the request body nests too deeply", "body") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"the request body is not valid JSON: {exc}", "body") from exc
        check_depth(data, "body")
        return data

    # --- output -------------------------------------------------------------------------------------
    def send_result(self, result: Any, op: Operation) -> None:
        """Send what a handler returned, with the operation's first declared status."""
        status = next(iter(op.responses))
        if isinstance(result, Raw):
            self.set_status(status)
            for key, value in result.headers.items():
                self.set_header(key, value)
            self.finish_as(result.content, result.content_type)
        elif result is None:
            self.set_status(204 if status == 204 else status)
            self.finish()
        elif isinstance(result, Record):
            self.send_json(result.to_json(), status)
        else:
            self.send_json(result, status)

    #: whether ``finish`` takes ``set_content_type`` (Jupyter's ``APIHandler`` does, and would otherwise force JSON's
    #: content type; a plain tornado handler does not): set by :func:`.routes.bind_handlers` from the server's base handler
    finish_sets_content_type = False

    def finish_as(self, data: bytes | str, content_type: str) -> None:
        """Finish with a body of this content type."""
        self.set_header("Content-Type", content_type)
        if self.finish_sets_content_type:
            self.finish(data, set_content_type=content_type)  # type: ignore[call-arg]
        else:  # a plain tornado handler (``nbdeploy serve``)
            self.finish(data)

    def send_json(self, data: Any, status: int = 200) -> None:
        """Write ``data`` as JSON (numpy/pandas/datetime values encoded) and finish."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(dumps(data))

    #: the component schema of this handler's error answers in the OpenAPI document (see :meth:`error_body`)
    error_schema = "Error"

    def error_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The error answer sent for nbdeploy's error ``body`` (``{"error": {"type", "message", …}}``); handlers
        of another protocol override it (and :attr:`error_schema`)."""
        return body

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, UserCodeError):
            self.set_status(exc.http_status)
            body = exc.to_json(include_traceback=self.include_traceback)
        elif isinstance(exc, NbdeployError):
            self.set_status(exc.http_status)
            body = exc.to_json()
        elif isinstance(exc, web.HTTPError):
            body = {"error": {"type": "HTTPError", "message": exc.log_message or self._reason}}
        else:
            body = {"error": {"type": type(exc).__name__ if exc else "HTTPError", "message": self._reason}}
            if exc is not None and self.include_traceback:
                body["error"]["traceback"] = "".join(traceback.format_exception(exc))
        self.set_header("Content-Type", "application/json")
        self.finish(dumps(self.error_body(body)))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, NbdeployError) and not isinstance(value, UserCodeError | PayloadTooLargeError):
            log.info("%s %s -> %s %s", self.request.method, self.request.path, value.http_status, value)
        elif isinstance(value, NbdeployError):
            log.info("%s %s -> %s %s", self.request.method, self.request.path, value.http_status, type(value).__name__)
        else:
            super().log_exception(typ, value, tb)

    def on_finish(self) -> None:
        if self.metric_target:
            from . import metrics

            metrics.record(self.nbd, self.metric_target, self.get_status(), time.perf_counter() - self._started)
        super().on_finish()
