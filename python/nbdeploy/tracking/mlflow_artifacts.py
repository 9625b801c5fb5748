"""MLflow's artifact proxy API (relative to ``/nbdeploy/mlflow``): ``/api/2.0/mlflow-artifacts/artifacts[/<path>]``.

``PUT`` stores a file (streamed to a spooled temporary file, then into the store as a blob), ``GET`` sends it
back, ``GET …/artifacts?path=`` lists a folder, ``DELETE`` removes a path. The client's ``mlflow-artifacts:/``
URIs resolve here, so ``mlflow.log_artifact`` and ``mlflow.<flavor>.log_model`` store their files in nbdeploy.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from typing import Any

from ..exceptions import PayloadTooLargeError
from ..server_extension.base import Raw, api
from .mlflow_api import TAGS, MlflowHandlerBase, _query

__all__ = ["MAX_ARTIFACT_BYTES", "default_handlers"]

MAX_ARTIFACT_BYTES = 8 * 1024**3  # one uploaded file; bodies are spooled to disk past 8 MB, never held whole
SPOOL_BYTES = 8 * 1024 * 1024


class ArtifactsHandler(MlflowHandlerBase):
    """One artifact file: PUT (upload), GET (download), DELETE."""

    def _limit(self) -> int:
        return MAX_ARTIFACT_BYTES if self.request.method == "PUT" else super()._limit()

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self.request.method == "PUT":
            self.request.connection.set_max_body_size(MAX_ARTIFACT_BYTES + 1)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        if self.request.method != "PUT":
            super().data_received(chunk)
            return
        if not hasattr(self, "_spool"):
            self._spool = tempfile.SpooledTemporaryFile(SPOOL_BYTES)
        self._received += len(chunk)
        if self._received > MAX_ARTIFACT_BYTES:
            self._too_large = True
            return
        self._spool.write(chunk)

    def on_finish(self) -> None:
        spool = getattr(self, "_spool", None)
        if spool is not None:
            spool.close()
        super().on_finish()

    @api(
        responses={200: {"application/octet-stream": {"type": "string", "format": "binary"}}}, errors=(404,), tags=TAGS
    )
    async def get(self, path: str) -> Raw:
        """Download an artifact file."""
        data = await asyncio.to_thread(self.nbd.tracking.tree.read, path)
        return Raw(data, "application/octet-stream")

    @api(responses={200: dict}, errors=(413,), tags=TAGS)
    async def put(self, path: str) -> Raw:
        """Upload an artifact file (the request body is the file)."""
        if self._too_large:
            raise PayloadTooLargeError(f"an artifact is at most {MAX_ARTIFACT_BYTES:,d} bytes")
        spool = getattr(self, "_spool", None) or tempfile.SpooledTemporaryFile(SPOOL_BYTES)
        spool.seek(0)
        await asyncio.to_thread(self.nbd.tracking.tree.put, path, spool)
        return Raw("{}", "application/json")

    @api(responses={200: dict}, errors=(404,), tags=TAGS)
    async def delete(self, path: str) -> Raw:
        """Delete an artifact file or folder."""
        await asyncio.to_thread(self.nbd.tracking.tree.delete, path)
        return Raw("{}", "application/json")


class ArtifactListHandler(MlflowHandlerBase):
    @api(responses={200: dict}, tags=TAGS)
    async def get(self) -> Raw:
        """List a folder of artifacts (``?path=``): ``{"files": [{"path", "is_dir", "file_size"}]}``."""
        listing: Any = await asyncio.to_thread(self.nbd.tracking.tree.list, _query(self).get("path", ""))
        return Raw(json.dumps(listing), "application/json")


default_handlers = [
    (r"/api/2.0/mlflow-artifacts/artifacts", ArtifactListHandler),
    (r"/api/2.0/mlflow-artifacts/artifacts/(?P<path>.{1,1024})", ArtifactsHandler),
]
