"""REST routes of the Open Inference Protocol (KServe V2), relative to ``/nbdeploy/api`` (and, in ``nbdeploy
serve``, also at the root): health, server and model metadata, model readiness, and inference."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from .._version import __version__
from ..exceptions import InvalidInputError, NotFoundError
from ..server_extension.base import NbdeployHandler, Operation, RawBody, api
from .functions import function_arguments, function_outputs, function_tensors
from .records import InferRequest, InferResponse, Live, ModelMetadata, ModelReady, Ready, ServerMetadata
from .tensors import decode_binary, output_tensors, request_payload, signature_tensors

__all__ = ["default_handlers"]

TAGS = ("inference protocol",)
HEADER_LENGTH = "Inference-Header-Content-Length"


class OipHandler(NbdeployHandler):
    """Errors as the protocol has them, ``{"error": "<message>"}`` (with nbdeploy's error type beside it)."""

    error_schema = "OipError"

    def error_body(self, body: dict[str, Any]) -> dict[str, Any]:
        error = body.get("error") or {}
        out = {"error": str(error.get("message", "")), "type": str(error.get("type", "Error"))}
        if error.get("field"):
            out["field"] = str(error["field"])
        return out

    def served(self, name: str, version: int | str | None) -> tuple[str, Any]:
        """``("model", its resolved version)`` when ``name`` is a model (as the protocol expects), else
        ``("function", …)`` when it is a function; raises the model's :class:`NotFoundError` when it is neither
        (it may ask the catalog: run it in a thread, but for inference, where the resolution is cached)."""
        try:
            return "model", self.nbd.models.resolve(name, version)
        except NotFoundError as missing:
            try:
                return "function", self.nbd.functions.resolve(name, version)
            except NotFoundError:
                raise missing from None


class LiveHandler(OipHandler):
    @api(responses={200: Live}, tags=TAGS, scope="public")
    async def get(self) -> Live:
        """Liveness (Open Inference Protocol): the server answers."""
        return Live(True)


class ReadyHandler(OipHandler):
    @api(responses={200: Ready}, tags=TAGS, scope="public")
    async def get(self) -> Ready:
        """Readiness (Open Inference Protocol): the server can serve models."""
        return Ready(True)


class ServerMetadataHandler(OipHandler):
    @api(responses={200: ServerMetadata}, tags=TAGS)
    async def get(self) -> ServerMetadata:
        """The server's name, version and protocol extensions (Open Inference Protocol)."""
        return ServerMetadata("nbdeploy", __version__, ["binary_tensor_data"])


class ModelMetadataHandler(OipHandler):
    @api(responses={200: ModelMetadata}, errors=(404,), tags=TAGS, operation_id="oip_model_metadata")
    async def get(self, name: str, version: int | str | None = None) -> ModelMetadata:
        """A model's versions and input tensors (from its signature), as the Open Inference Protocol lists them."""

        def describe() -> ModelMetadata:
            kind, found = self.served(name, version)
            if kind == "function":
                numbers = [str(v.version) for v in self.nbd.functions.versions(name)]
                request = (found.metadata.get("signature") or {}).get("request")
                return ModelMetadata(name, numbers, "nbdeploy/function", function_tensors(request), [])
            versions = [str(v.version) for v in self.nbd.models.versions(name)]
            flavor = (found.metadata or {}).get("flavor") or "python"
            return ModelMetadata(
                name, versions, f"nbdeploy/{flavor}", signature_tensors(found.metadata.get("signature")), []
            )

        return await asyncio.to_thread(describe)


class ModelReadyHandler(OipHandler):
    @api(responses={200: ModelReady}, errors=(404,), tags=TAGS, operation_id="oip_model_ready")
    async def get(self, name: str, version: int | str | None = None) -> ModelReady:
        """Whether the model or function (a version) can be served: 404 when there is no such one or version."""
        await asyncio.to_thread(self.served, name, version)
        return ModelReady(name, True)


class InferHandler(OipHandler):
    def request_content_type(self, op: Operation) -> str:
        if HEADER_LENGTH in self.request.headers:  # the binary tensor data extension: a JSON header, then bytes
            return "application/octet-stream"
        return super().request_content_type(op)

    @api(
        body=InferRequest,
        responses={200: InferResponse},
        errors=(404, 422, 502, 504),
        tags=TAGS,
        metric="model",
        operation_id="oip_infer",
        consumes=("application/json", "application/octet-stream"),
    )
    async def post(self, name: str, body: InferRequest | RawBody, version: int | str | None = None) -> InferResponse:
        """Inference with typed tensors (Open Inference Protocol), for models and functions with typed arguments.

        A model takes one tensor per signature column or one whole table; a function one tensor per argument (its
        ``result`` comes back as a tensor). The binary tensor data extension is accepted
        (``Inference-Header-Content-Length``)."""
        binary: dict = {}
        if isinstance(body, RawBody):
            request, binary = self._binary(body)
        else:
            request = body
        wanted = [o.name for o in request.outputs or []]
        kind, found = self.served(name, version)
        if kind == "function":
            self.metric_target = f"function:{name}"  # counted (and its stats kept) as the function it calls
            arguments = function_arguments(request, (found.metadata.get("signature") or {}).get("request"), binary)
            result = await self.nbd.functions.ainvoke(name, arguments, found.version)
            return InferResponse(name, str(result.version), request.id, function_outputs(result.result, wanted))
        payload = request_payload(request, found.metadata.get("signature"), binary)
        answer = await self.nbd.models.apredict(name, payload, found.version)
        return InferResponse(name, str(answer.version), request.id, output_tensors(answer.predictions, wanted))

    def _binary(self, body: RawBody) -> tuple[InferRequest, dict]:
        raw = self.request.headers.get(HEADER_LENGTH, "")
        if not raw.isdigit() or int(raw) > len(body.content):
            raise InvalidInputError(
                f"{HEADER_LENGTH} ({raw[:20]!r}) must be the length of the JSON header at the start of the body "
                f"({len(body.content)} bytes)",
                HEADER_LENGTH,
            )
        size = int(raw)
        try:
            header = json.loads(body.content[:size])
        except ValueError as exc:
            raise InvalidInputError(f"the JSON header of the body is not JSON: {exc}", "body") from None
        request = InferRequest.parse(header)
        return request, decode_binary(request, body.content[size:])


_NAME = r"(?P<name>[^/]+)"
_VERSION = r"(?P<version>[^/]+)"

default_handlers = [
    (r"/v2/health/live", LiveHandler),
    (r"/v2/health/ready", ReadyHandler),
    (r"/v2", ServerMetadataHandler),
    (rf"/v2/models/{_NAME}", ModelMetadataHandler),
    (rf"/v2/models/{_NAME}/versions/{_VERSION}", ModelMetadataHandler),
    (rf"/v2/models/{_NAME}/ready", ModelReadyHandler),
    (rf"/v2/models/{_NAME}/versions/{_VERSION}/ready", ModelReadyHandler),
    (rf"/v2/models/{_NAME}/infer", InferHandler),
    (rf"/v2/models/{_NAME}/versions/{_VERSION}/infer", InferHandler),
]
