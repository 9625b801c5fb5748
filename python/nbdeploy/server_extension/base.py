"""What every nbdeploy REST handler shares, whichever server mounts it.

Each service's ``handlers.py`` defines its handlers as subclasses of :class:`NbdeployHandler` (a mixin with
no server of its own) and exports ``default_handlers = [(route, class), …]`` with routes relative to
``/nbdeploy/api``. :func:`bind_handlers` turns them into concrete tornado handlers for one server by mixing
in that server's authenticated base class: Jupyter's ``APIHandler`` in the extension, the token-checking
:class:`TokenAuthHandler` in ``nbdeploy serve``. Handlers stay thin: parse, call a manager, render.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
import traceback
from collections.abc import Sequence
from typing import Any

from tornado import web

from ..exceptions import InvalidInputError, NbdeployError, PayloadTooLargeError, UserCodeError
from ..runtime.encoding import dumps

__all__ = ["API_PREFIX", "NbdeployHandler", "bind_handlers", "collect_handlers"]

API_PREFIX = "/nbdeploy/api"

log = logging.getLogger("nbdeploy.server")


class NbdeployHandler(web.RequestHandler):
    """Mixin for nbdeploy's REST handlers: JSON in and out, errors as JSON, per-target metrics.

    ``self.nbd`` is the server's :class:`~nbdeploy.app.Nbdeploy`.
    """

    #: label recorded in the metrics for this request, e.g. ``function:greet`` (set by the handler)
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
        super().initialize(**kwargs)  # type: ignore[misc]

    # --- input --------------------------------------------------------------------------------------
    def json_body(self, *, required: bool = True) -> Any:
        """Return the request body parsed as JSON; 400 when malformed, 413 when over the size limit."""
        body = self.request.body or b""
        limit = self.nbd.settings.max_body_bytes
        if len(body) > limit:
            raise PayloadTooLargeError(f"request body of {len(body)} bytes is over the limit of {limit} bytes")
        if not body.strip():
            if required:
                raise InvalidInputError("the request needs a JSON body", "body")
            return None
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"the request body is not valid JSON: {exc}", "body") from exc

    def json_object(self) -> dict[str, Any]:
        """Return the JSON body, which must be an object (empty body → ``{}``)."""
        data = self.json_body(required=False)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise InvalidInputError("the request body must be a JSON object", "body")
        return data

    def query_int(self, name: str, default: int | None = None) -> int | None:
        """Return the query argument ``name`` as an int (``default`` when absent); 400 when it is not one."""
        value = self.get_query_argument(name, None)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError as exc:
            raise InvalidInputError(f"query argument {name} must be a whole number, got {value!r}", name) from exc

    # --- output -------------------------------------------------------------------------------------
    def send_json(self, data: Any, status: int = 200) -> None:
        """Write ``data`` as JSON (numpy/pandas/datetime values encoded) and finish."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(dumps(data))

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
        self.finish(dumps(body))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, NbdeployError):
            log.info("%s %s -> %s %s", self.request.method, self.request.uri, value.http_status, value)
        else:
            super().log_exception(typ, value, tb)

    def on_finish(self) -> None:
        if self.metric_target:
            from . import metrics

            target, status = self.metric_target, self.get_status()
            if status == 404:  # names that do not exist share one label, so requests cannot grow the metrics
                target = target.partition(":")[0] + ":(unknown)"
            metrics.observe(target, status, time.perf_counter() - self._started)
        super().on_finish()


def collect_handlers(modules: Sequence[str] = ()) -> list[tuple[str, type[NbdeployHandler]]]:
    """Import every handler module (the services' by default) and return their ``default_handlers``, with
    routes under ``/nbdeploy/api``."""
    from ..app import Nbdeploy

    routes: list[tuple[str, type[NbdeployHandler]]] = []
    for name in modules or Nbdeploy.handler_modules():
        module = importlib.import_module(name)
        for route, cls in module.default_handlers:
            routes.append((API_PREFIX + route, cls))
    return routes


def bind_handlers(
    routes: Sequence[tuple[str, type[NbdeployHandler]]], base: type[web.RequestHandler], prefix: str = ""
) -> list[tuple[str, type[web.RequestHandler]]]:
    """Return concrete handlers: each nbdeploy handler with the server's authenticated ``base`` mixed in."""
    bound = []
    for route, cls in routes:
        concrete = type(cls.__name__, (cls, base), {"__module__": cls.__module__})
        bound.append((prefix.rstrip("/") + route, concrete))
    return bound
