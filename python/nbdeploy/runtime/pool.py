"""Serving replicas on the workers, called directly (no scheduler round trip), with adaptive batching.

:class:`ActorPool` keeps one actor per worker, created through Dask and then called over the actor's own
direct channel (:mod:`nbdeploy.runtime.channel`: one persistent, pipelined connection per replica, far
cheaper per batch than Dask's actor RPC, which remains the fallback when a worker offers no channel,
e.g. a UCX cluster, or when ``channel=False``). A call joins the queue of the least-loaded replica; a
replica sends its queue as one batch whenever it has fewer than ``max_in_flight`` batches on the wire, so
a lone request goes out at once, and concurrent requests that arrive while a batch is in flight ride
together in the next one (optionally waiting up to ``max_wait_ms`` to fill it). Answers are matched to
callers by position, never reordered. A replica whose worker dies is dropped and its calls are retried
once on another replica; new workers get replicas on the next refresh. Waiting for ``max_wait_ms`` applies
only while the replica already has a batch on the wire, so an idle replica never delays a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ClusterError, ClusterTimeoutError
from .channel import Channel, ReplicaError

__all__ = ["ActorPool", "PoolCache"]

log = logging.getLogger("nbdeploy.functions")
REFRESH_SECONDS = 5.0
WATCH_SECONDS = 1.0
ACTOR_START_SECONDS = 20.0


@dataclass
class _Pending:
    call: Any  # one typed message (:mod:`nbdeploy.runtime.messages`)
    future: asyncio.Future
    retries: int = 1


@dataclass
class _Replica:
    worker: str
    actor: Any
    future: Any  # the actor lives on its worker only while this future is held
    channel: Channel | None = None  # the direct channel to the actor (None: Dask's actor RPC)
    queue: deque[_Pending] = field(default_factory=deque)
    in_flight: int = 0  # batches on the wire, counting the one being gathered
    gathering: bool = False  # a sender is waiting to take the queue as its batch
    dead: bool = False

    @property
    def load(self) -> int:
        return len(self.queue) + self.in_flight


def _expire(future: asyncio.Future, timeout: float) -> None:
    if not future.done():
        future.set_exception(ClusterTimeoutError(f"no answer within the function's timeout of {timeout:g} s"))


def _fail(batch: list[_Pending], message: str) -> None:
    """Fail every call of ``batch`` still waiting with a :class:`ClusterError` (one per caller)."""
    for p in batch:
        if not p.future.done():
            p.future.set_exception(ClusterError(message))


class ActorPool:
    """Replicas of ``actor_cls(*actor_args)`` on every worker of an asynchronous Dask ``client``."""

    def __init__(
        self,
        client: Any,
        actor_cls: type,
        actor_args: tuple[Any, ...] = (),
        *,
        method: str = "run_batch",
        max_batch_size: int = 64,
        max_in_flight: int = 1,
        max_wait_ms: float = 0.0,
        channel: bool = True,
        resources: dict[str, float] | None = None,
    ) -> None:
        self.client = client
        self.actor_cls = actor_cls
        self.actor_args = actor_args
        self.method = method
        self.max_batch_size = max_batch_size
        self.max_in_flight = max_in_flight
        self.max_wait_ms = max_wait_ms
        self.channel = channel
        self.resources = resources  # replicas only on workers that offer these (e.g. {"GPU": 1})
        self.replicas: list[_Replica] = []
        self._lock = asyncio.Lock()
        self._refreshed = 0.0
        self.batches_sent = 0
        self.closed = False
        self.batches_waited = 0  # batches that waited max_wait_ms for company (only while another was busy)
        self.calls_sent = 0

    # --- replicas ---------------------------------------------------------------------------------
    async def _workers(self) -> list[str]:
        """The workers to serve on: every worker, or those that offer the pool's resources."""
        from .tasks import offering_workers

        info = await self.client.scheduler.identity(n_workers=-1)
        return offering_workers(info, self.resources)

    async def _ensure(self) -> None:
        live = [r for r in self.replicas if not r.dead]
        if live and time.monotonic() - self._refreshed < REFRESH_SECONDS:
            return
        async with self._lock:
            live = [r for r in self.replicas if not r.dead]
            if live and time.monotonic() - self._refreshed < REFRESH_SECONDS:
                return
            try:
                workers = await self._workers()
            except Exception as exc:
                raise ClusterError(
                    f"the Dask scheduler did not answer: {exc}; check `nbdeploy cluster status`"
                ) from exc
            have = {r.worker for r in live}
            self.replicas = [r for r in live if r.worker in workers]
            started = await asyncio.gather(*[self._start_replica(w) for w in workers if w not in have])
            self.replicas += [r for r in started if r is not None]
            self._refreshed = time.monotonic()
            if not self.replicas:
                if self.resources:
                    from .tasks import no_worker_offers

                    raise no_worker_offers(str(self.client.scheduler.address), self.resources)
                raise ClusterError("the Dask cluster has no workers to serve on: start some (`nbdeploy cluster start`)")

    async def _start_replica(self, worker: str) -> _Replica | None:
        """Start an actor on ``worker``; ``None`` when that worker is gone or does not answer in time (the
        scheduler may still list a worker that just died, and an actor pinned to it would wait forever)."""
        future = self.client.submit(
            self.actor_cls,
            *self.actor_args,
            actor=True,
            workers=[worker],
            allow_other_workers=False,
            pure=False,
            key=f"nbdeploy-{self.actor_cls.__name__}-{uuid.uuid4().hex}",
        )
        try:
            actor = await asyncio.wait_for(asyncio.shield(asyncio.ensure_future(future)), ACTOR_START_SECONDS)
        except Exception as exc:
            log.warning("could not start a replica on %s: %s", worker, exc)
            with contextlib.suppress(Exception):
                await future.cancel()
            return None
        actor._client, actor._future = self.client, future  # bind to our direct-to-workers client
        return _Replica(worker, actor, future, await self._open_channel(actor, worker) if self.channel else None)

    async def _open_channel(self, actor: Any, worker: str) -> Channel | None:
        """The direct channel to ``actor``, or ``None`` (calls then go through Dask's actor RPC) when the
        worker cannot offer one or it cannot be reached from here."""
        try:
            info = await asyncio.wait_for(actor.open_channel(), ACTOR_START_SECONDS)
            ssl = self.client.security.get_connection_args("client").get("ssl_context")
            return await Channel.open(info, ssl)
        except Exception as exc:
            log.warning("serving %s through Dask's actor RPC: no direct channel (%s)", worker, exc)
            return None

    def _drop(self, replica: _Replica) -> None:
        replica.dead = True
        if replica.channel is not None:
            replica.channel.close()
        self._refreshed = 0.0  # look for workers again on the next call
        with contextlib.suppress(ValueError):
            self.replicas.remove(replica)

    # --- calls ------------------------------------------------------------------------------------
    async def call(self, call: Any, *, timeout: float | None = None) -> Any:
        """Send one call (a message of :mod:`nbdeploy.runtime.messages`, one batch item) and return its answer.

        Raises :class:`ClusterTimeoutError` after ``timeout`` seconds and :class:`ClusterError` when no
        replica could run it.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        expiry = loop.call_later(timeout, _expire, future, timeout) if timeout is not None else None
        try:
            await self._enqueue(_Pending(call, future))
            return await future
        finally:
            if expiry is not None:
                expiry.cancel()

    async def _enqueue(self, pending: _Pending) -> None:
        if self.closed:
            raise ClusterError("the serving pool was closed")
        await self._ensure()
        replica = min(self.replicas, key=lambda r: r.load)
        replica.queue.append(pending)
        self._flush(replica)

    def _flush(self, replica: _Replica) -> None:
        """Start a sender for the queued calls unless one is already gathering them or the replica has
        ``max_in_flight`` batches on the wire."""
        if replica.queue and not replica.gathering and replica.in_flight < self.max_in_flight and not replica.dead:
            replica.gathering = True
            replica.in_flight += 1
            asyncio.get_running_loop().create_task(self._send(replica))

    async def _send(self, replica: _Replica) -> None:
        gathering = True
        try:
            # wait to fill the batch only while another batch of this replica is on the wire (``in_flight``
            # counts this one too): an idle replica sends at once, so a lone request is never delayed
            if self.max_wait_ms and replica.in_flight > 1 and len(replica.queue) < self.max_batch_size:
                self.batches_waited += 1
                await asyncio.sleep(self.max_wait_ms / 1000)
            batch = [replica.queue.popleft() for _ in range(min(self.max_batch_size, len(replica.queue)))]
            replica.gathering = gathering = False
            self._flush(replica)  # calls beyond max_batch_size may go out at once in another batch
            batch = [p for p in batch if not p.future.done()]  # callers that timed out meanwhile
            if not batch:
                return
            self.batches_sent += 1
            self.calls_sent += len(batch)
            try:
                answers = await self._call_watched(replica, [p.call for p in batch])
            except ReplicaError as exc:  # the replica is fine; this batch's answers could not be sent back
                _fail(batch, str(exc))
                return
            except Exception as exc:  # the worker (or the connection to it) died: not the user's code
                if self.closed:
                    _fail(batch, "the serving pool was closed")
                    return
                log.warning("replica on %s failed (%s); retrying its %d call(s)", replica.worker, exc, len(batch))
                self._drop(replica)
                for p in batch:
                    await self._retry(p, exc)
                return
            for p, answer in zip(batch, answers, strict=True):
                if not p.future.done():
                    p.future.set_result(answer)
        finally:
            if gathering:  # ended before taking its batch (cancelled)
                replica.gathering = False
            replica.in_flight -= 1
            if not replica.dead:
                self._flush(replica)
            else:
                while replica.queue:  # calls queued on a dead replica move to a live one
                    await self._retry(replica.queue.popleft(), None)

    async def _call_watched(self, replica: _Replica, calls: list[Any]) -> list[Any]:
        """Call the replica; if the call is still pending after a second, check every second that its worker
        is still in the cluster (a dead worker's connection can otherwise take Dask's 30 s connect timeout
        to fail)."""
        if replica.channel is not None:
            call = asyncio.ensure_future(replica.channel.call(self.method, calls))
        else:
            call = asyncio.ensure_future(getattr(replica.actor, self.method)(calls))
        while True:
            done, _ = await asyncio.wait([call], timeout=WATCH_SECONDS)
            if done:
                return call.result()
            try:
                workers = await self._workers()
            except Exception:
                continue
            if replica.worker not in workers:
                call.cancel()
                raise ClusterError(f"worker {replica.worker} left the cluster")

    async def _retry(self, pending: _Pending, exc: BaseException | None) -> None:
        if pending.future.done():
            return
        if pending.retries <= 0:
            pending.future.set_exception(ClusterError(f"the worker running this call died: {exc}"))
            return
        pending.retries -= 1
        try:
            await self._enqueue(pending)
        except Exception as err:
            if not pending.future.done():
                pending.future.set_exception(err)

    def mean_batch_size(self) -> float:
        """Calls per batch sent so far."""
        return self.calls_sent / self.batches_sent if self.batches_sent else 0.0

    async def close(self) -> None:
        """Forget the replicas (their actors are released with their futures) and close the client."""
        self.closed = True
        replicas, self.replicas = self.replicas, []
        for replica in replicas:
            if replica.channel is not None:
                await replica.channel.aclose()
        with contextlib.suppress(Exception):
            await self.client.close()

    @classmethod
    async def connect(
        cls, address: str, actor_cls: type, actor_args: tuple[Any, ...] = (), **options: Any
    ) -> ActorPool:
        """A pool with its own asynchronous client to the scheduler at ``address``, talking to workers
        directly (``direct_to_workers``), so that calls never pass through the scheduler."""
        from distributed import Client

        client = await Client(address, asynchronous=True, direct_to_workers=True, set_as_default=False)
        return cls(client, actor_cls, actor_args, **options)


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
