"""The routes of every server: the services' handler modules collected, and bound to one server's authenticated
base handler (Jupyter's in the extension, the token-checking one of ``nbdeploy serve``)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from tornado import web

from .base import API_PREFIX, NbdeployHandler

__all__ = ["SERVING_METRICS", "bind_handlers", "collect_handlers", "collect_mounted_handlers", "serves"]


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


def collect_mounted_handlers(*, standalone: bool = False) -> list[tuple[str, type[NbdeployHandler]]]:
    """The routes services mount under prefixes of their own (``Service.mounts``: e.g. MLflow's tracking API under
    ``/nbdeploy/mlflow``; with ``standalone`` also ``Service.serve_mounts``: the Open Inference Protocol at the
    root). They are bound like every other route (same authentication) but are not part of nbdeploy's OpenAPI
    document under these prefixes: they follow the API they implement."""
    from ..app import Nbdeploy

    routes: list[tuple[str, type[NbdeployHandler]]] = []
    for prefix, name in Nbdeploy.mounted_handler_modules(standalone):
        module = importlib.import_module(name)
        for route, cls in module.default_handlers:
            routes.append((prefix.rstrip("/") + route, cls))
    return routes


#: the operations' ``metric`` of the serving routes, matched first (see :func:`bind_handlers`)
SERVING_METRICS = ("function", "model")


def serves(cls: type) -> bool:
    """Whether a handler class has a serving operation (a function call or a prediction)."""
    return any(
        getattr(getattr(cls, verb, None), "operation", None) is not None
        and getattr(cls, verb).operation.metric in SERVING_METRICS
        for verb in ("post", "get")
    )


def bind_handlers(
    routes: Sequence[tuple[str, type[NbdeployHandler]]], base: type[web.RequestHandler], prefix: str = ""
) -> list[tuple[str, type[web.RequestHandler]]]:
    """Return concrete handlers: each nbdeploy handler with the server's authenticated ``base`` mixed in.

    The serving routes (function calls, predictions, inference) come first: tornado tries the rules in order, and
    they take nearly every request of a busy server (no path matches two of nbdeploy's routes, so the order
    changes no answer; a test checks it)."""
    bound = []
    for route, cls in sorted(routes, key=lambda rc: not serves(rc[1])):
        sets_type = bool(getattr(base, "finish_sets_content_type", False))
        concrete = type(
            cls.__name__, (cls, base), {"__module__": cls.__module__, "finish_sets_content_type": sets_type}
        )
        bound.append((prefix.rstrip("/") + route, concrete))
    return bound
