"""REST routes of the tokens service (relative to ``/nbdeploy/api``), every one for ``admin`` tokens only.

``GET /tokens`` lists them (never a secret), ``POST /tokens`` (``{"scopes": [...], "name", "expires"}``) issues
one and answers its secret once, ``DELETE /tokens/{token_id}`` revokes one.
"""

from __future__ import annotations

import asyncio

from ..server_extension.base import NbdeployHandler, api
from .records import NewToken, TokenCreate, TokenInfo, TokenList

__all__ = ["default_handlers"]

TAGS = ("tokens",)


class TokensHandler(NbdeployHandler):
    @api(responses={200: TokenList}, tags=TAGS, scope="admin")
    async def get(self) -> TokenList:
        """Every API token with its scopes, expiry and last use (never its secret)."""
        return await asyncio.to_thread(self.nbd.tokens.list)

    @api(body=TokenCreate, responses={201: NewToken}, tags=TAGS, scope="admin")
    async def post(self, body: TokenCreate) -> NewToken:
        """Issue a token with the given scopes; its secret is in this answer only."""
        return await asyncio.to_thread(self.nbd.tokens.create, body.scopes, body.name, body.expires, "rest")


class TokenHandler(NbdeployHandler):
    @api(responses={200: TokenInfo}, errors=(404,), tags=TAGS, scope="admin")
    async def delete(self, token_id: int) -> TokenInfo:
        """Revoke a token: every server refuses it within seconds."""
        return await asyncio.to_thread(self.nbd.tokens.revoke, token_id)


default_handlers = [
    (r"/tokens", TokensHandler),
    (r"/tokens/(?P<token_id>[^/]+)", TokenHandler),
]
