"""The OpenAPI 3 document of a server: every mounted nbdeploy route, plus one typed path per function."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from tornado import web

from .._version import __version__
from .base import API_PREFIX, NbdeployHandler

__all__ = ["build_openapi", "mounted_routes"]

_METHODS = ("get", "post", "put", "patch", "delete")
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")

ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
                "fields": {"type": "object"},
                "traceback": {"type": "string"},
            },
        }
    },
}


def mounted_routes(app: web.Application) -> list[tuple[str, list[str], type]]:
    """Return ``(path template, methods, handler class)`` for every nbdeploy route ``app`` serves."""
    found = []
    for rule in _rules([app.default_router, app.wildcard_router]):
        target = rule.target
        pattern = getattr(rule.matcher, "regex", None)
        if not isinstance(target, type) or not issubclass(target, NbdeployHandler) or pattern is None:
            continue
        path = _GROUP.sub(lambda m: "{" + m.group(1) + "}", pattern.pattern).rstrip("$")
        methods = [
            m
            for m in _METHODS
            if any(m in vars(k) for k in target.__mro__ if issubclass(k, NbdeployHandler) and k is not NbdeployHandler)
        ]
        if methods:
            found.append((path, methods, target))
    return found


def _rules(routers: list[Any]) -> list[Any]:
    """Every rule of ``routers``, descending into nested routers (Jupyter mounts handlers per host)."""
    out = []
    for router in routers:
        for rule in getattr(router, "rules", []):
            if hasattr(rule.target, "rules"):
                out += _rules([rule.target])
            else:
                out.append(rule)
    return out


def _typed_post(
    summary: str, operation: str, tag: str, request: dict[str, Any], answer: dict[str, Any], unfit: str
) -> dict[str, Any]:
    """A path item with one POST: ``request`` as the JSON body, ``answer``'s properties as the 200 body."""
    return {
        "post": {
            "summary": summary,
            "operationId": re.sub(r"\W", "_", operation),
            "tags": [tag],
            "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"type": "object", "properties": answer}}},
                },
                "422": {"description": unfit},
                "default": {"description": "error", "content": {"application/json": {"schema": ERROR}}},
            },
        }
    }


def build_openapi(
    app: web.Application, functions: list[dict[str, Any]], models: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """Build the document: management routes from ``app``'s handlers, for each function in ``functions``
    (``{"name", "description", "signature"}``) a typed invoke path, and for each model in ``models``
    (``{"name", "description", "request"}``) a typed predict path."""
    paths: dict[str, Any] = {}
    for path, methods, handler in mounted_routes(app):
        rel = path[path.find(API_PREFIX) :] if API_PREFIX in path else path
        item = paths.setdefault(rel, {})
        params = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in re.findall(r"{(\w+)}", rel)
        ]
        for method in methods:
            doc = (handler.__doc__ or "").strip().splitlines()
            item[method] = {
                "summary": doc[0] if doc else f"{method.upper()} {rel}",
                "parameters": params,
                "responses": {
                    "200": {"description": "OK"},
                    "default": {"description": "error", "content": {"application/json": {"schema": ERROR}}},
                },
            }
    for fn in functions:
        sig = fn.get("signature", {})
        paths[f"{API_PREFIX}/functions/{fn['name']}/invoke"] = _typed_post(
            fn.get("description") or f"Invoke {fn['name']}",
            f"invoke_{fn['name']}",
            "functions",
            sig.get("request", {"type": "object"}),
            {"result": sig.get("response", {}), "version": {"type": "integer"}, "duration_ms": {"type": "number"}},
            "arguments do not fit the signature",
        )
    for model in models:
        path = _typed_post(
            model["description"],
            f"predict_{model['name']}",
            "models",
            model["request"],
            {"predictions": {"type": "array", "items": {}}, "version": {"type": "integer"}},
            "input does not fit the model's signature",
        )
        path["post"]["parameters"] = [
            {"name": "version", "in": "query", "required": False, "schema": {"type": "integer"}},
            {"name": "alias", "in": "query", "required": False, "schema": {"type": "string"}},
        ]
        paths[f"{API_PREFIX}/models/{model['name']}/predict"] = path
    return {
        "openapi": "3.0.3",
        "info": {"title": "nbdeploy", "version": __version__},
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "Authorization"}},
        },
        "security": [{"token": []}],
        "paths": dict(sorted(paths.items())),
    }
