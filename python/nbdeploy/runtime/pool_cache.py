"""A manager's serving pools (:class:`~.pool.ActorPool`), one per key, each created once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pool import ActorPool

__all__ = ["PoolCache"]


class PoolCache:
    """A manager's serving pools by key; each is created once, even when a burst of concurrent first requests
    asks for it at the same moment (they all wait for the one being started)."""

    def __init__(self) -> None:
        self.pools: dict[Hashable, ActorPool] = {}
        self._starting: dict[Hashable, asyncio.Future] = {}

    async def get(self, key: Hashable, make: Callable[[], Awaitable[ActorPool]]) -> ActorPool:
        """Return the pool for ``key``, creating it with ``make()`` unless it exists or is being created."""
        pool = self.pools.get(key)
        if pool is not None:
            return pool
        starting = self._starting.get(key)
        if starting is None:
            starting = asyncio.ensure_future(make())
            self._starting[key] = starting

            def stored(done: asyncio.Future) -> None:
                self._starting.pop(key, None)
                if not done.cancelled() and done.exception() is None:
                    self.pools[key] = done.result()

            starting.add_done_callback(stored)
        return await asyncio.shield(starting)

    def values(self) -> list[ActorPool]:
        return list(self.pools.values())

    async def aclose(self) -> None:
        """Close every pool (they are forgotten first, so a call meanwhile starts a fresh one)."""
        pools, self.pools = list(self.pools.values()), {}
        for pool in pools:
            await pool.close()
