"""Typed records of the tokens service: what :class:`TokenManager` returns and the REST API sends and takes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from ..schema import Name, Record, Rule

__all__ = ["NewToken", "TokenCreate", "TokenInfo", "TokenList"]

Scope = Annotated[
    str,
    Rule(
        pattern=r"^(read|admin|(invoke|deploy):[a-z0-9.*?_\[\]-]{1,64})$",
        max_length=71,
        description="read, admin, invoke:<glob> or deploy:<glob> (a glob of names, e.g. churn-*)",
        example="invoke:churn-*",
    ),
]
Expiry = Annotated[
    str,
    Rule(pattern=r"^[0-9]{1,6}[smhdw]$", description="a duration: 30d, 12h, 90m, 2w", example="30d"),
]


@dataclass(frozen=True)
class TokenInfo(Record):
    """An API token as listed: never its secret, only the first characters that identify it."""

    id: int
    name: str
    prefix: str
    scopes: list[str]
    owner: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    active: bool


@dataclass(frozen=True)
class TokenList(Record):
    """Every API token (``GET /tokens``), revoked and expired ones included."""

    tokens: list[TokenInfo]


@dataclass(frozen=True)
class NewToken(Record):
    """A token just created: ``token`` is its secret, shown this once (only its hash is stored)."""

    token: str
    info: TokenInfo


@dataclass(frozen=True)
class TokenCreate(Record):
    """What ``POST /tokens`` takes: the token's scopes, a name and an optional lifetime."""

    request = True

    scopes: list[Scope]
    name: Name = "token"
    expires: Expiry | None = None
