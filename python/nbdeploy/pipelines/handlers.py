"""REST routes of pipelines (relative to ``/nbdeploy/api``): thin over :class:`PipelineManager`. Catalog and
store calls run in a thread, off the event loop."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ..exceptions import InvalidInputError
from ..server_extension.base import API_PREFIX, NbdeployHandler, api
from .records import (
    PipelineInfo,
    PipelineList,
    PipelinePreviewRequest,
    PipelinePutRequest,
    PipelineRun,
    PipelineRunList,
    PipelineRunRequest,
)

__all__ = ["default_handlers"]

TAGS = ("pipelines",)


def _root(handler: NbdeployHandler) -> str:
    """The folder a request's ``path`` is relative to: Jupyter's root folder, or the standalone server's own."""
    contents = handler.settings.get("contents_manager")
    root = getattr(contents, "root_dir", None) or handler.settings.get("server_root_dir")
    return str(root or os.getcwd())


class PipelinesHandler(NbdeployHandler):
    @api(responses={200: PipelineList}, tags=TAGS)
    async def get(self) -> PipelineList:
        """Every pipeline's newest version."""
        return await asyncio.to_thread(self.nbd.pipelines.list)

    @api(body=PipelinePutRequest, responses={201: PipelineInfo}, errors=(404, 422), tags=TAGS, scope="admin")
    async def post(self, body: PipelinePutRequest) -> PipelineInfo:
        """Store a pipeline's next version from a ``.pipeline.yaml`` text (``path``: the file's place under the
        server's root, its notebooks resolve against its folder) or a ``spec`` mapping.

        422 names the node and the problem (a cycle, an unknown upstream, a missing notebook, a bad name or
        parameter); nothing is stored then.
        """
        source: Any = body.spec if body.spec is not None else body.yaml
        if source is None or (body.spec is not None and body.yaml is not None):
            raise InvalidInputError("give either yaml (with path) or spec", "yaml")
        root = _root(self)
        info = await asyncio.to_thread(lambda: self.nbd.pipelines.put(source, path=body.path, root=root))
        base = str(self.settings.get("base_url") or "/").rstrip("/")
        self.set_header("Location", f"{base}{API_PREFIX}/pipelines/{info.name}")
        return info


class PreviewHandler(NbdeployHandler):
    @api(body=PipelinePreviewRequest, responses={200: PipelineInfo}, errors=(404, 422), tags=TAGS, scope="read")
    async def post(self, body: PipelinePreviewRequest) -> PipelineInfo:
        """Check a ``.pipeline.yaml`` text and return it as a pipeline with ``version`` null; stores nothing."""
        root = _root(self)
        return await asyncio.to_thread(lambda: self.nbd.pipelines.preview(body.yaml, path=body.path, root=root))


class PipelineHandler(NbdeployHandler):
    @api(responses={200: PipelineInfo}, errors=(404,), tags=TAGS)
    async def get(self, name: str) -> PipelineInfo:
        """A pipeline's newest version: parameters and nodes, upstreams first."""
        return await asyncio.to_thread(self.nbd.pipelines.get, name)

    @api(responses={204: None}, errors=(404, 409), tags=TAGS)
    async def delete(self, name: str) -> None:
        """Delete every version of a pipeline (409 while a schedule fires it); its runs stay."""
        await asyncio.to_thread(self.nbd.pipelines.delete, name)


class PipelineRunsHandler(NbdeployHandler):
    @api(responses={200: PipelineRunList}, errors=(404,), tags=TAGS)
    async def get(self, name: str) -> PipelineRunList:
        """The pipeline's runs, newest first."""
        await asyncio.to_thread(self.nbd.pipelines.get, name)
        return await asyncio.to_thread(self.nbd.pipelines.runs, name)

    @api(
        body=PipelineRunRequest,
        body_required=False,
        responses={201: PipelineRun},
        errors=(404, 422),
        tags=TAGS,
        scope="invoke:{name}",
    )
    async def post(self, name: str, body: PipelineRunRequest | None) -> PipelineRun:
        """Start a run: ``parameters`` override the pipeline's, ``only`` / ``from`` choose the nodes that run,
        ``force`` ignores those nodes' caches."""
        body = body or PipelineRunRequest()
        handle = await asyncio.to_thread(
            lambda: self.nbd.pipelines.run(name, body.parameters, only=body.only, from_=body.from_, force=body.force)
        )
        base = str(self.settings.get("base_url") or "/").rstrip("/")
        self.set_header("Location", f"{base}{API_PREFIX}/pipeline-runs/{handle.id}")
        return handle.snapshot


class PipelineRunHandler(NbdeployHandler):
    @api(responses={200: PipelineRun}, errors=(404,), tags=TAGS)
    async def get(self, run_id: int) -> PipelineRun:
        """A pipeline run and each node's state (a running node's cells done, a skipped node's reason)."""
        return await asyncio.to_thread(self.nbd.pipelines.run_info, run_id)


class PipelineRunCancelHandler(NbdeployHandler):
    @api(responses={202: PipelineRun}, errors=(404,), tags=TAGS, scope="admin")
    async def post(self, run_id: int) -> PipelineRun:
        """Ask for a pipeline run to be cancelled (202 with its state; an ended run is returned as it is)."""
        return await asyncio.to_thread(self.nbd.pipelines.cancel, run_id)


_NAME = r"(?P<name>[^/]+)"
_RUN = r"/pipeline-runs/(?P<run_id>[^/]+)"
default_handlers = [
    (r"/pipelines", PipelinesHandler),
    (r"/pipelines/preview", PreviewHandler),
    (rf"/pipelines/{_NAME}", PipelineHandler),
    (rf"/pipelines/{_NAME}/runs", PipelineRunsHandler),
    (_RUN, PipelineRunHandler),
    (rf"{_RUN}/cancel", PipelineRunCancelHandler),
]
