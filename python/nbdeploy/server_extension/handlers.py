"""The server's own routes: ``GET /status`` (version and settings) and ``GET /openapi.json``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .._version import __version__
from ..forms import FormInputs, FormValues, coerce
from ..runtime.encoding import dumps
from ..schema import Record
from .base import NbdeployHandler, Raw, api

__all__ = ["ServerStatus", "SettingValue", "default_handlers"]


@dataclass(frozen=True)
class SettingValue(Record):
    """A setting's value (secrets masked) and where it came from."""

    value: str
    source: str


@dataclass(frozen=True)
class ServerStatus(Record):
    """The version of nbdeploy this server runs and its settings."""

    version: str
    settings: dict[str, SettingValue]


class StatusHandler(NbdeployHandler):
    @api(responses={200: ServerStatus}, tags=("server",))
    async def get(self) -> ServerStatus:
        """Version and settings of the serving process (secrets masked)."""
        rows = self.nbd.settings.describe()
        return ServerStatus(__version__, {name: SettingValue(value, source) for name, value, source in rows})


class FormsHandler(NbdeployHandler):
    @api(body=FormInputs, responses={200: FormValues}, tags=("server",), scope="read")  # computes, writes nothing
    async def post(self, body: FormInputs) -> FormValues:
        """Turn what was typed into a form's fields into JSON values, with an error per field that does not fit."""
        return coerce(body.fields, body.inputs, body.include_defaults)


class OpenAPIHandler(NbdeployHandler):
    @api(responses={200: {"application/json": {"type": "object"}}}, tags=("server",))
    async def get(self) -> Raw:
        """This API's OpenAPI document, with a typed path per deployed function and model."""
        from .openapi import build_openapi

        functions = await asyncio.to_thread(self.nbd.functions.list_signatures)
        models = await asyncio.to_thread(self.nbd.models.list_signatures)
        extra = self.settings.get("nbdeploy_extra_routes", [])
        return Raw(dumps(build_openapi(functions, models, extra_routes=extra)), "application/json")


default_handlers = [
    (r"/status", StatusHandler),
    (r"/openapi.json", OpenAPIHandler),
    (r"/forms/coerce", FormsHandler),
]
