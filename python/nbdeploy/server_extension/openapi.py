"""The OpenAPI 3.0 document of the REST API, generated from the handlers' declarations (:func:`~.base.api`) and the
records they take and return (:mod:`nbdeploy.schema`), plus one typed path per deployed function and model.

The same declarations parse every request, so the document is what the server enforces. ``python -m
nbdeploy.server_extension.openapi`` prints the static document (no functions or models): the lab extension's
TypeScript types are generated from it (``js/openapi.json`` → ``js/src/generated/api.ts``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ..schema import Record, components, schema_of
from .base import API_PREFIX, PATH_PARAMETERS, NbdeployHandler, Operation
from .routes import collect_handlers
from .scopes import required_scope

__all__ = ["ERROR_SCHEMA", "build_openapi", "mounted_routes", "operations"]

_METHODS = ("get", "post", "put", "patch", "delete")
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_REASONS = {
    400: "Malformed input: the error names the offending field",
    401: "Missing or wrong credentials",
    403: "Not authenticated or not allowed",
    404: "No such name, version, alias or id",
    409: "Conflicts with the current state",
    413: "The request body is over the size limit",
    415: "The request body's Content-Type is not one this route takes",
    422: "The input does not fit the function's or model's signature",
    500: "A bug in nbdeploy, or the user's own code raised (its traceback in the body)",
    502: "The Dask cluster did not answer or a worker died",
    504: "The cluster or the call timed out",
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An error answer: what went wrong and what to do.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "traceback": {"type": "string"},
            },
            "required": ["type", "message"],
        }
    },
    "required": ["error"],
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
#: the Open Inference Protocol's error body (``{"error": "<message>"}``), which its clients read
OIP_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An Open Inference Protocol error answer: the message, and nbdeploy's error type.",
    "properties": {"error": {"type": "string"}, "type": {"type": "string"}, "field": {"type": "string"}},
    "required": ["error"],
}


def operations(
    routes: Sequence[tuple[str, type[NbdeployHandler]]] | None = None,
) -> list[tuple[str, str, list[str], Operation, type]]:
    """``(path template, method, path parameter names, operation, handler)`` of every declared route."""
    out = []
    for route, handler in routes if routes is not None else collect_handlers():
        path = _GROUP.sub(lambda m: "{" + m.group(1) + "}", route).rstrip("$")
        params = re.findall(r"{(\w+)}", path)
        for method in _METHODS:
            op = getattr(getattr(handler, method, None), "operation", None)
            if op is not None:
                out.append((path, method, params, op, handler))
    return out


def mounted_routes(app: Any) -> list[tuple[str, list[str], type]]:
    """``(path template, methods, handler class)`` of every nbdeploy route a tornado application serves."""
    found = []
    for rule in _rules([app.default_router, app.wildcard_router]):
        target, pattern = rule.target, getattr(rule.matcher, "regex", None)
        if not isinstance(target, type) or not issubclass(target, NbdeployHandler) or pattern is None:
            continue
        path = _GROUP.sub(lambda m: "{" + m.group(1) + "}", pattern.pattern).rstrip("$")
        methods = [m for m in _METHODS if getattr(getattr(target, m, None), "operation", None) is not None]
        if methods:
            found.append((path, methods, target))
    return found


def _rules(routers: list[Any]) -> list[Any]:
    """Every rule of ``routers``, descending into nested routers (Jupyter mounts handlers per host)."""
    out = []
    for router in routers:
        for rule in getattr(router, "rules", []):
            out += _rules([rule.target]) if hasattr(rule.target, "rules") else [rule]
    return out


def _schema_or_ref(target: Any) -> dict[str, Any]:
    if isinstance(target, type) and issubclass(target, Record):
        return {"$ref": f"#/components/schemas/{target.__name__}"}
    if target is dict:
        return {"type": "object"}
    return {}


def _responses(op: Operation, error_ref: dict[str, str] = _ERROR_REF) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, target in op.responses.items():
        if target is None:
            out[str(status)] = {"description": "No content"}
        elif isinstance(target, dict):
            out[str(status)] = {
                "description": "OK",
                "content": {ctype: {"schema": schema} for ctype, schema in target.items()},
            }
        else:
            entry: dict[str, Any] = {
                "description": (target.__doc__ or "OK").strip().split("\n\n")[0].replace("\n", " "),
                "content": {"application/json": {"schema": _schema_or_ref(target)}},
            }
            if status == 201:
                entry["headers"] = {"Location": {"schema": {"type": "string"}, "description": "where it lives"}}
            out[str(status)] = entry
    errors = {400, 401, 403, 500, *op.errors}
    if op.body is not None:
        errors.add(413)
    if op.consumes is not None:
        errors.add(415)
    for status in sorted(errors):
        out[str(status)] = {"description": _REASONS[status], "content": {"application/json": {"schema": error_ref}}}
    return out


def _query_parameters(record: type[Record]) -> list[dict[str, Any]]:
    from ..schema import _hints

    hints = _hints(record)
    params = []
    schema = record.json_schema()
    for f in record._fields():
        key = record._key(f.name)
        params.append(
            {
                "name": key,
                "in": "query",
                "required": key in schema.get("required", []),
                "schema": schema_of(hints[f.name]),
            }
        )
    return params


def _operation(path: str, method: str, params: list[str], op: Operation, handler: type) -> dict[str, Any]:
    parameters = [
        {
            "name": p,
            "in": "path",
            "required": True,
            "description": PATH_PARAMETERS[p].description if p in PATH_PARAMETERS else "",
            "schema": PATH_PARAMETERS[p].schema if p in PATH_PARAMETERS else {"type": "string"},
        }
        for p in params
    ]
    if op.query is not None:
        parameters += _query_parameters(op.query)
    suffix = "_".join(re.sub(r"[{}]", "", part) for part in path.removeprefix(API_PREFIX).split("/") if part)
    item: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.operation_id or f"{method}_{suffix or 'root'}",
        "tags": list(op.tags),
        "parameters": parameters,
        "responses": _responses(op, {"$ref": f"#/components/schemas/{getattr(handler, 'error_schema', 'Error')}"}),
    }
    if op.operation_id and "version" in params:
        item["operationId"] = f"{op.operation_id}_version"
    if op.description:
        item["description"] = op.description
    if op.body is not None:
        content = {"application/json": {"schema": _schema_or_ref(op.body)}}
        for ctype in op.consumes or ():
            content.setdefault(ctype, {"schema": {"type": "string"}})
        item["requestBody"] = {"required": op.body_required, "content": content}
    # what a token of `nbdeploy serve` needs (see nbdeploy.tokens)
    item["x-nbdeploy-scope"] = required_scope(op, method, {"name": "{name}"} if "name" in params else {})
    return item


def _records(ops: list[tuple[str, str, list[str], Operation, type]]) -> list[type[Record]]:
    found: list[type[Record]] = []
    for *_, op, _handler in ops:
        for target in [op.body, *op.responses.values()]:
            if isinstance(target, type) and issubclass(target, Record):
                found.append(target)
    return found


def _typed_post(summary: str, operation: str, tag: str, request: dict[str, Any], answer: str) -> dict[str, Any]:
    """A path item with one POST: ``request`` as the JSON body, the record ``answer`` as the 200 body."""
    return {
        "post": {
            "summary": summary,
            "operationId": re.sub(r"\W", "_", operation),
            "tags": [tag],
            "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{answer}"}}},
                },
                **{
                    str(s): {"description": _REASONS[s], "content": {"application/json": {"schema": _ERROR_REF}}}
                    for s in (400, 401, 403, 404, 413, 422, 500, 502, 504)
                },
            },
        }
    }


def build_openapi(
    functions: Sequence[dict[str, Any]] = (),
    models: Sequence[dict[str, Any]] = (),
    *,
    extra_routes: Sequence[tuple[str, type[NbdeployHandler]]] = (),
) -> dict[str, Any]:
    """The document: every declared route (the services' and ``extra_routes``), and for each function in
    ``functions`` (``{"name", "description", "signature"}``) a typed invoke path and for each model in ``models``
    (``{"name", "description", "request"}``) a typed predict path."""
    ops = operations([*collect_handlers(), *extra_routes])
    paths: dict[str, Any] = {}
    for path, method, params, op, handler in ops:
        paths.setdefault(path, {})[method] = _operation(path, method, params, op, handler)
    for fn in functions:
        sig = fn.get("signature") or {}
        paths[f"{API_PREFIX}/functions/{fn['name']}/invoke"] = _typed_post(
            fn.get("description") or f"Invoke {fn['name']}",
            f"invoke_{fn['name']}",
            "functions",
            sig.get("request", {"type": "object"}),
            "InvokeResult",
        )
    for model in models:
        item = _typed_post(
            model["description"], f"predict_{model['name']}", "models", model["request"], "PredictResult"
        )
        item["post"]["parameters"] = _query_parameters(_predict_query())
        paths[f"{API_PREFIX}/models/{model['name']}/predict"] = item
    schemas = components(_records(ops))
    schemas["Error"] = ERROR_SCHEMA
    schemas["OipError"] = OIP_ERROR_SCHEMA
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "nbdeploy",
            "version": __version__,
            "description": "Notebooks into deployed functions, scheduled papermill jobs and served models, on Dask.",
        },
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "Authorization"}},
            "schemas": dict(sorted(schemas.items())),
        },
        "security": [{"token": []}],
        "paths": dict(sorted(paths.items())),
    }


def _predict_query() -> type[Record]:
    from ..models.records import PredictQuery

    return PredictQuery


def main() -> None:
    """Print the static document (what the lab extension's types are generated from)."""
    sys.stdout.write(json.dumps(build_openapi(), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
