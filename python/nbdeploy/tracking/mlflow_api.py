"""MLflow's tracking REST API (relative to ``/nbdeploy/mlflow``): ``/api/2.0/mlflow/…`` and ``/version``.

The stock ``mlflow`` client speaks to these routes as to an ``mlflow server``: experiments, runs, params, tags,
metrics, batches, inputs and outputs, metric history, MLflow 3's logged models and the model registry. Answers and
errors are MLflow's JSON (``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": …}`` with its status). The routes
are authenticated like every nbdeploy route: Jupyter's auth in the extension, the token in ``nbdeploy serve``
(MLflow's client sends ``Authorization: Bearer $MLFLOW_TRACKING_TOKEN``).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

from tornado import web

from ..exceptions import AuthError, ConflictError, InvalidInputError, NbdeployError, NotFoundError
from ..server_extension.base import NbdeployHandler, Raw, api
from .backend import MlflowError

__all__ = ["MLFLOW_API_VERSION", "default_handlers"]

MLFLOW_API_VERSION = "3.0.0"  # what /version answers: the REST API of MLflow 3 (spans are not taken)
TAGS = ("mlflow",)
_LOGGED = re.compile(r"^logged-models/(?P<id>[A-Za-z0-9_.-]{1,64})(?P<rest>/tags(?:/(?P<tag>[^/]{1,250}))?|/params)?$")


def mlflow_error_body(exc: BaseException | None, status: int, reason: str) -> tuple[int, dict[str, str]]:
    """``(status, MLflow's error JSON)`` for an exception raised by a handler."""
    if isinstance(exc, MlflowError):
        return exc.http_status, {"error_code": exc.error_code, "message": str(exc)}
    codes = {
        NotFoundError: ("RESOURCE_DOES_NOT_EXIST", 404),
        ConflictError: ("RESOURCE_ALREADY_EXISTS", 400),
        InvalidInputError: ("INVALID_PARAMETER_VALUE", 400),
        AuthError: ("UNAUTHENTICATED", 401),
    }
    for kind, (code, code_status) in codes.items():
        if isinstance(exc, kind):
            return code_status, {"error_code": code, "message": str(exc)}
    if isinstance(exc, NbdeployError):
        fallback = "INTERNAL_ERROR" if exc.http_status >= 500 else "BAD_REQUEST"
        code = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}.get(exc.http_status, fallback)
        return exc.http_status, {"error_code": code, "message": str(exc)}
    if isinstance(exc, web.HTTPError):
        code = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "ENDPOINT_NOT_FOUND"}.get(
            exc.status_code, "BAD_REQUEST"
        )
        return exc.status_code, {"error_code": code, "message": exc.log_message or reason}
    return status, {"error_code": "INTERNAL_ERROR", "message": reason}


class MlflowHandlerBase(NbdeployHandler):
    """Answers errors in MLflow's JSON."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        status, body = mlflow_error_body(exc, status_code, self._reason)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


def _query(handler: NbdeployHandler) -> dict[str, Any]:
    args = handler.request.query_arguments
    return {k: v[-1].decode("utf-8", "replace") for k, v in args.items() if v}


class VersionHandler(MlflowHandlerBase):
    @api(responses={200: {"text/plain": {"type": "string"}}}, tags=TAGS)
    async def get(self) -> Raw:
        """The MLflow API version this server speaks."""
        return Raw(MLFLOW_API_VERSION, "text/plain; charset=utf-8")


class MlflowHandler(MlflowHandlerBase):
    """One route for ``/api/2.0/mlflow/<endpoint>``, dispatched by method and endpoint."""

    def _call(self, method: str, endpoint: str, body: dict[str, Any]) -> Callable[[], Any]:
        t = self.nbd.tracking
        b, q = t.backend, body
        table: dict[tuple[str, str], Callable[[], Any]] = {
            ("POST", "experiments/create"): lambda: b.create_experiment(q),
            ("GET", "experiments/get"): lambda: b.get_experiment(q.get("experiment_id")),
            ("GET", "experiments/get-by-name"): lambda: b.get_experiment_by_name(q.get("experiment_name")),
            ("POST", "experiments/search"): lambda: b.search_experiments(q),
            ("GET", "experiments/search"): lambda: b.search_experiments(q),
            ("POST", "experiments/delete"): lambda: b.delete_experiment(q),
            ("POST", "experiments/restore"): lambda: b.restore_experiment(q),
            ("POST", "experiments/update"): lambda: b.update_experiment(q),
            ("POST", "experiments/set-experiment-tag"): lambda: b.set_experiment_tag(q),
            ("POST", "experiments/delete-experiment-tag"): lambda: b.delete_experiment_tag(q),
            ("POST", "runs/create"): lambda: t.create_run(q),
            ("POST", "runs/update"): lambda: b.update_run(q),
            ("GET", "runs/get"): lambda: b.get_run(q.get("run_id") or q.get("run_uuid")),
            ("POST", "runs/delete"): lambda: b.delete_run(q),
            ("POST", "runs/restore"): lambda: b.restore_run(q),
            ("POST", "runs/search"): lambda: b.search_runs(q),
            ("POST", "runs/log-metric"): lambda: b.log_metric(q),
            ("POST", "runs/log-parameter"): lambda: b.log_param(q),
            ("POST", "runs/set-tag"): lambda: b.set_tag(q),
            ("POST", "runs/delete-tag"): lambda: b.delete_tag(q),
            ("POST", "runs/log-batch"): lambda: b.log_batch(q),
            ("POST", "runs/log-inputs"): lambda: b.log_inputs(q),
            ("POST", "runs/outputs"): lambda: b.log_outputs(q),
            ("POST", "runs/log-model"): lambda: b.log_model(q),
            ("GET", "metrics/get-history"): lambda: b.metric_history(
                q.get("run_id") or q.get("run_uuid"), q.get("metric_key"), q.get("max_results"), q.get("page_token")
            ),
            ("GET", "artifacts/list"): lambda: t.list_run_artifacts(
                q.get("run_id") or q.get("run_uuid"), q.get("path")
            ),
            ("POST", "logged-models"): lambda: t.logged.create(q),
            ("POST", "logged-models/search"): lambda: t.logged.search(q),
            ("POST", "registered-models/create"): lambda: t.registry.create_registered(q),
            ("GET", "registered-models/get"): lambda: t.registry.get_registered(q.get("name")),
            ("GET", "registered-models/search"): lambda: t.registry.search_registered(q),
            ("POST", "model-versions/create"): lambda: t.registry.create_version(q),
            ("GET", "model-versions/get"): lambda: t.registry.get_version(q.get("name"), q.get("version")),
            ("GET", "model-versions/get-download-uri"): lambda: t.registry.download_uri(
                q.get("name"), q.get("version")
            ),
            ("GET", "model-versions/search"): lambda: t.registry.search_versions(q),
        }
        found = table.get((method, endpoint))
        if found is not None:
            return found
        m = _LOGGED.match(endpoint)
        if m is not None:
            model_id, rest, tag = m.group("id"), m.group("rest") or "", m.group("tag")
            logged = {
                ("GET", ""): lambda: t.logged.get(model_id),
                ("PATCH", ""): lambda: t.logged.finalize(model_id, q),
                ("DELETE", ""): lambda: t.logged.delete(model_id),
                ("PATCH", "/tags"): lambda: t.logged.set_tags(model_id, q),
                ("POST", "/params"): lambda: t.logged.log_params(model_id, q),
            }
            if tag is not None and method == "DELETE":
                return lambda: t.logged.delete_tag(model_id, tag)
            if (method, rest) in logged:
                return logged[(method, rest)]
        raise MlflowError(f"No endpoint {method} /api/2.0/mlflow/{endpoint[:200]} here", "ENDPOINT_NOT_FOUND", 404)

    async def _answer(self, method: str, endpoint: str, body: dict[str, Any]) -> Raw:
        call = self._call(method, endpoint, body)
        result = await asyncio.to_thread(call)
        return Raw(json.dumps(result, allow_nan=True), "application/json")

    @api(responses={200: dict}, errors=(404,), tags=TAGS)
    async def get(self, endpoint: str) -> Raw:
        """A read of MLflow's tracking API (query arguments as MLflow's client sends them)."""
        return await self._answer("GET", endpoint, _query(self))

    @api(body=dict, body_required=False, responses={200: dict}, errors=(404,), tags=TAGS)
    async def post(self, endpoint: str, body: dict[str, Any]) -> Raw:
        """A write of MLflow's tracking API (a JSON body)."""
        return await self._answer("POST", endpoint, body)

    @api(body=dict, body_required=False, responses={200: dict}, errors=(404,), tags=TAGS)
    async def patch(self, endpoint: str, body: dict[str, Any]) -> Raw:
        """An update of MLflow's tracking API (logged models)."""
        return await self._answer("PATCH", endpoint, body)

    @api(body=dict, body_required=False, responses={200: dict}, errors=(404,), tags=TAGS)
    async def delete(self, endpoint: str, body: dict[str, Any]) -> Raw:
        """A delete of MLflow's tracking API (logged models and their tags)."""
        return await self._answer("DELETE", endpoint, {**_query(self), **body})


default_handlers = [
    (r"/version", VersionHandler),
    (r"/api/2.0/mlflow/(?P<endpoint>[A-Za-z0-9_./-]{1,400})", MlflowHandler),
]
