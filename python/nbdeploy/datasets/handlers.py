"""REST routes of the datasets service (relative to ``/nbdeploy/api``): thin over ``app.datasets``.

``GET|POST /datasets``, ``GET|DELETE /datasets/{name}``, ``DELETE /datasets/{name}/versions/{number}``,
``PUT /datasets/{name}/aliases/{alias}``, ``GET /datasets/{name}/rows``, ``GET /datasets/{name}/lineage``,
``GET /datasets/{name}/diff?v1=&v2=``, ``POST /datasets/{name}/versions/{version}/profile`` and
``GET /datasets/{name}/versions/{version}/profile.html``. Catalog, store and cluster calls run in a thread.
"""

from __future__ import annotations

import asyncio

from ..exceptions import InvalidInputError, MissingDependencyError
from ..models.records import AliasSet
from ..server_extension.base import NbdeployHandler, Raw, api
from .records import (
    DatasetCreate,
    DatasetDiff,
    DatasetInfo,
    DatasetList,
    DatasetProfileInfo,
    DatasetVersion,
    DiffQuery,
    Lineage,
    ProfileQuery,
    ProfileRequest,
    Rows,
    RowsQuery,
)

__all__ = ["default_handlers"]

TAGS = ("datasets",)


class DatasetsHandler(NbdeployHandler):
    @api(responses={200: DatasetList}, tags=TAGS)
    async def get(self) -> DatasetList:
        """Every dataset's newest version."""
        return await asyncio.to_thread(self.nbd.datasets.list)

    @api(body=DatasetCreate, responses={201: DatasetVersion}, errors=(404,), tags=TAGS)
    async def post(self, body: DatasetCreate) -> DatasetVersion:
        """Store rows (JSON objects) as the next version of a dataset (``append``: after the newest one's rows)."""
        version = await asyncio.to_thread(
            self.nbd.datasets.put,
            body.records,
            body.name,
            append=body.append,
            description=body.description,
            alias=body.alias,
        )
        self.set_header("Location", f"/nbdeploy/api/datasets/{version.name}")
        return version


class DatasetHandler(NbdeployHandler):
    @api(responses={200: DatasetInfo}, errors=(404,), tags=TAGS)
    async def get(self, name: str) -> DatasetInfo:
        """A dataset: every version (columns, rows, size, hash, URL) and its aliases."""
        return await asyncio.to_thread(self.nbd.datasets.info, name)

    @api(responses={204: None}, errors=(404,), tags=TAGS)
    async def delete(self, name: str) -> None:
        """Delete every version of a dataset (``store gc`` frees the files)."""
        await asyncio.to_thread(self.nbd.datasets.delete, name)


class VersionHandler(NbdeployHandler):
    @api(responses={204: None}, errors=(404,), tags=TAGS)
    async def delete(self, name: str, number: int) -> None:
        """Delete one version of a dataset (its aliases go with it; its number is never reused)."""
        await asyncio.to_thread(self.nbd.datasets.delete, name, number)


class AliasHandler(NbdeployHandler):
    @api(body=AliasSet, responses={200: DatasetVersion}, errors=(404,), tags=TAGS)
    async def put(self, name: str, alias: str, body: AliasSet) -> DatasetVersion:
        """Point an alias (e.g. ``training``) at a version."""
        return await asyncio.to_thread(self.nbd.datasets.set_alias, name, alias, body.version)


class RowsHandler(NbdeployHandler):
    @api(query=RowsQuery, responses={200: Rows}, errors=(404,), tags=TAGS)
    async def get(self, name: str, query: RowsQuery) -> Rows:
        """The first rows of a version (the newest, ``?version=N`` or ``?alias=A``)."""
        columns = [c for c in query.columns.split(",") if c] if query.columns else None
        ref = query.version if query.version is not None else query.alias
        return await asyncio.to_thread(self.nbd.datasets.head, name, query.limit, columns, ref)


class LineageHandler(NbdeployHandler):
    @api(responses={200: Lineage}, errors=(404,), tags=TAGS)
    async def get(self, name: str) -> Lineage:
        """Which run produced each version and which runs read it."""
        return await asyncio.to_thread(self.nbd.datasets.lineage, name)


class DiffHandler(NbdeployHandler):
    @api(query=DiffQuery, responses={200: DatasetDiff}, errors=(404,), tags=TAGS)
    async def get(self, name: str, query: DiffQuery) -> DatasetDiff:
        """How version ``v2`` (the newest by default) differs from ``v1``: columns and row counts."""
        return await asyncio.to_thread(self.nbd.datasets.diff, name, query.v1, query.v2)


class ProfileHandler(NbdeployHandler):
    @api(
        body=ProfileRequest, body_required=False, responses={200: DatasetProfileInfo}, errors=(404, 502, 504), tags=TAGS
    )
    async def post(self, name: str, version: int | str, body: ProfileRequest | None) -> DatasetProfileInfo:
        """Profile a version on the cluster (or return its stored profile); the report is stored with it."""
        request = body or ProfileRequest()
        try:
            profile = await asyncio.to_thread(
                self.nbd.datasets.profile, name, version, engine=request.engine, refresh=request.refresh
            )
        except MissingDependencyError as exc:  # an engine this server lacks: the request asks for the impossible
            raise InvalidInputError(str(exc), "engine") from exc
        return profile.info()


class ProfileHtmlHandler(NbdeployHandler):
    @api(query=ProfileQuery, responses={200: {"text/html": {"type": "string"}}}, errors=(404, 502, 504), tags=TAGS)
    async def get(self, name: str, version: int | str, query: ProfileQuery) -> Raw:
        """A version's profile report as a page (computed first when it has none)."""
        try:
            page = await asyncio.to_thread(self.nbd.datasets.profile_html, name, version, query.engine)
        except MissingDependencyError as exc:
            raise InvalidInputError(str(exc), "engine") from exc
        return Raw(page, "text/html; charset=utf-8")


_NAME = r"(?P<name>[^/]+)"
_VERSION = r"(?P<version>[^/]+)"
default_handlers = [
    (r"/datasets", DatasetsHandler),
    (rf"/datasets/{_NAME}", DatasetHandler),
    (rf"/datasets/{_NAME}/versions/(?P<number>[^/]+)", VersionHandler),
    (rf"/datasets/{_NAME}/aliases/(?P<alias>[^/]+)", AliasHandler),
    (rf"/datasets/{_NAME}/rows", RowsHandler),
    (rf"/datasets/{_NAME}/lineage", LineageHandler),
    (rf"/datasets/{_NAME}/diff", DiffHandler),
    (rf"/datasets/{_NAME}/versions/{_VERSION}/profile", ProfileHandler),
    (rf"/datasets/{_NAME}/versions/{_VERSION}/profile.html", ProfileHtmlHandler),
]
