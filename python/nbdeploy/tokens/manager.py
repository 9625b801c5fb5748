"""The tokens service: create, list and revoke scoped API tokens, and authenticate a request's token.

A token is ``nbdt_`` + 43 random URL-safe characters; the catalog keeps its SHA-256 (a random secret of that
length needs no slow hash) and its first characters to tell tokens apart. :meth:`TokenManager.authenticate`
runs on every request of ``nbdeploy serve``: answers are cached while the catalog reports no change
(SQLite's ``data_version``, PostgreSQL's ``LISTEN/NOTIFY``; at most ``CACHE_SECONDS`` without either), so a
revocation is seen by every server within that bound, and the last use is written at most once a minute per
token, in the background.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..exceptions import InvalidInputError, NotFoundError
from ..names import validate_name
from .records import NewToken, TokenInfo, TokenList

if TYPE_CHECKING:
    from ..app import Nbdeploy

__all__ = ["Grant", "TokenManager", "parse_duration", "validate_scopes"]

log = logging.getLogger("nbdeploy.tokens")
PREFIX = "nbdt_"
CACHE_SECONDS = 5.0  # how long an answer is trusted when the catalog cannot say whether it changed
LAST_USE_SECONDS = 60.0  # a token's last use is written at most this often
_SCOPE = re.compile(r"(read|admin|(invoke|deploy):[a-z0-9.*?_\[\]-]{1,64})")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Grant:
    """What an authenticated token may do: its id, name and scopes."""

    token_id: int | None  # None: the server's own token
    name: str
    scopes: tuple[str, ...]


ADMIN = Grant(None, "server token", ("admin",))


def validate_scopes(scopes: Sequence[str]) -> builtins.list[str]:
    """Return ``scopes`` checked (``read``, ``admin``, ``invoke:<glob>``, ``deploy:<glob>``); raise
    :class:`InvalidInputError` naming a malformed one."""
    if isinstance(scopes, str):
        scopes = [scopes]
    if not scopes:
        raise InvalidInputError(
            "a token needs at least one scope: read, invoke:<glob>, deploy:<glob> or admin", "scope"
        )
    out = []
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
            raise InvalidInputError(
                f"scope {str(scope)[:80]!r} is not read, admin, invoke:<glob> or deploy:<glob> (a glob of names such "
                "as churn-* or *)",
                "scope",
            )
        out.append(scope)
    return sorted(set(out))


def parse_duration(text: str | None) -> timedelta | None:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` as a timedelta (``None`` for none); raises InvalidInputError."""
    if text is None or text == "":
        return None
    match = re.fullmatch(r"([0-9]{1,6})([smhdw])", str(text).strip())
    if not match or int(match.group(1)) == 0:
        raise InvalidInputError(f"expires {str(text)[:40]!r} is not a duration such as 30d, 12h, 90m or 2w", "expires")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: Any, now: datetime) -> TokenInfo:
    active = row.revoked_at is None and (row.expires_at is None or row.expires_at > now)
    return TokenInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=list(row.scopes or []),
        owner=row.owner,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        active=active,
    )


class TokenManager:
    """Scoped API tokens of ``app`` (``app.tokens``), kept in its catalog."""

    def __init__(self, app: Nbdeploy) -> None:
        self.app = app
        self._cache: dict[str, tuple[Any, float, Grant | None, datetime | None]] = {}
        self._used: dict[int, float] = {}
        self._lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None

    @property
    def catalog(self) -> Any:
        return self.app.store.catalog

    # --- managing -------------------------------------------------------------------------------------
    def create(
        self,
        scopes: Sequence[str],
        name: str = "token",
        expires: str | timedelta | None = None,
        owner: str | None = None,
    ) -> NewToken:
        """Issue a token with ``scopes`` (e.g. ``["invoke:churn-*"]``) that expires after ``expires`` (``"30d"``;
        never when ``None``); return it with its secret (shown this once). Raises :class:`InvalidInputError`."""
        from ..store.tables import utcnow
        from .tables import TokenRow

        validate_name(name, "name")
        checked = validate_scopes(scopes)
        lifetime = expires if isinstance(expires, timedelta) else parse_duration(expires)
        secret = PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        row = TokenRow(
            name=name,
            token_hash=_hash(secret),
            prefix=secret[: len(PREFIX) + 6],
            scopes=checked,
            owner=owner,
            created_at=now,
            expires_at=now + lifetime if lifetime else None,
        )
        with self.catalog.session() as s:
            s.add(row)
            s.flush()
            info = _info(row, now)
        self.catalog.notify_change()
        return NewToken(secret, info)

    def list(self) -> TokenList:
        """Every token, newest first (revoked and expired ones too), without secrets."""
        from sqlalchemy import select

        from ..store.tables import utcnow
        from .tables import TokenRow

        now = utcnow()
        with self.catalog.session(readonly=True) as s:
            rows = s.scalars(select(TokenRow).order_by(TokenRow.id.desc())).all()
            return TokenList([_info(r, now) for r in rows])

    def revoke(self, token_id: int) -> TokenInfo:
        """Revoke a token (it stops working on every server within seconds); return it. Raises NotFoundError."""
        from ..store.tables import utcnow
        from .tables import TokenRow

        now = utcnow()
        with self.catalog.session() as s:
            row = s.get(TokenRow, int(token_id))
            if row is None:
                raise NotFoundError(f"no token {token_id}: `nbdeploy tokens list` shows them")
            if row.revoked_at is None:
                row.revoked_at = now
            info = _info(row, now)
        self.catalog.notify_change()
        with self._lock:
            self._cache.clear()
        return info

    # --- authenticating ---------------------------------------------------------------------------------
    async def aauthenticate(self, secret: str) -> Grant | None:
        """:meth:`authenticate` for coroutines: answered from the cache when it can be, else the catalog is
        queried in a thread (never on the event loop)."""
        if not secret.startswith(PREFIX) or len(secret) > 128:
            return None
        if self._cached(_hash(secret), self.catalog.change_token(), time.monotonic()) is None:
            return await asyncio.to_thread(self.authenticate, secret)
        return self.authenticate(secret)  # a cache hit: no query

    def _cached(self, digest: str, token: int | None, now: float) -> tuple[Grant | None, datetime | None] | None:
        """``(grant, expires)`` of ``digest`` from the cache while the catalog has not changed since, else ``None``."""
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and (hit[0] == token if token is not None else now - hit[1] < CACHE_SECONDS):
            return hit[2], hit[3]
        return None

    def authenticate(self, secret: str) -> Grant | None:
        """The :class:`Grant` of a presented token, or ``None`` when it is unknown, revoked or expired."""
        if not secret.startswith(PREFIX) or len(secret) > 128:
            return None
        digest = _hash(secret)
        token = self.catalog.change_token()
        now = time.monotonic()
        cached = self._cached(digest, token, now)
        if cached is not None:
            grant, expires = cached
        else:
            grant, expires = self._lookup(digest)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (token, now, grant, expires)
        if grant is None:
            return None
        if expires is not None:
            from ..store.tables import utcnow

            if expires <= utcnow():
                return None
        self._note_use(grant)
        return grant

    def _lookup(self, digest: str) -> tuple[Grant | None, datetime | None]:
        from sqlalchemy import select

        from .tables import TokenRow

        with self.catalog.session(readonly=True) as s:
            row = s.scalar(select(TokenRow).where(TokenRow.token_hash == digest))
            if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
                return None, None
            return Grant(row.id, row.name, tuple(row.scopes or ())), row.expires_at

    def _note_use(self, grant: Grant) -> None:
        """Write the token's last use, at most once a minute, off the request path."""
        if grant.token_id is None:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._used.get(grant.token_id, -LAST_USE_SECONDS) < LAST_USE_SECONDS:
                return
            self._used[grant.token_id] = now
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="nbdeploy-tokens")
            self._writer.submit(self._write_use, grant.token_id)

    def _write_use(self, token_id: int) -> None:
        import sqlalchemy as sa

        from ..store.tables import utcnow
        from .tables import TokenRow

        try:
            with self.catalog.session() as s:
                s.execute(sa.update(TokenRow).where(TokenRow.id == token_id).values(last_used_at=utcnow()))
        except Exception as exc:  # a busy catalog: the next use writes it
            log.info("could not record the last use of token %s: %s", token_id, exc)

    def close(self) -> None:
        """Finish writing last uses."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)
