"""Serving replicas on the workers, called directly (no scheduler round trip), with adaptive batching.

:class:`ActorPool` keeps one actor per worker, created through Dask and then called over the actor's own
direct channel (:mod:`nbdeploy.runtime.channel`: one persistent, pipelined connection per replica, far
cheaper per batch than Dask's actor RPC, which remains the fallback when a worker offers no channel,
e.g. a UCX cluster, or when ``channel=False``). A call joins the queue of the least-loaded replica; a
replica sends its queue as one batch whenever it has fewer than ``max_in_flight`` batches on the wire, so
a lone request goes out at once, and concurrent requests that arrive while a batch is in flight ride
together in the next one (optionally waiting up to ``max_wait_ms`` to fill it). While a version's calls are tiny
(their own code takes under ``TINY_CALL_MS`` on average), a call joins a batch another replica is gathering in the same
turn of the event loop instead of going to the least-loaded replica: it leaves just as soon, in one message
fewer (at concurrency that halves the messages, and the CPU they cost on both sides); slower calls keep
spreading over the workers. Answers are matched to callers by position, never reordered. Waiting for ``max_wait_ms`` applies only while the replica already has
a batch on the wire, so an idle replica never delays a request.

Isolation: every call is pickled on its own before it joins a queue (:func:`~.messages.encode_call`), and
every outcome on its own on the worker, so a call whose input cannot be pickled, read on the worker or
answered fails alone, with a 4xx (or a 500 naming the user's code): never its batch, its replica or other
callers. A replica is dropped only when the connection to its worker is lost or the worker left the
cluster; its calls are then retried once on another replica.

Start-up never blocks serving: replicas start in tasks of their own, outside any lock, each bounded by
``ACTOR_START_SECONDS``. A call waits only when no replica is live at all, and then only until the first
one is; a worker that fails to host a replica (it died, or is leaving while the scheduler still lists it)
is skipped for ``SKIP_SECONDS``, and workers that are closing get no new replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ClusterError, ClusterTimeoutError
from .channel import Channel, ReplicaError
from .messages import Outcome, decode_outcome, encode_call
from .timings import MovingAverages

__all__ = ["ActorPool"]

log = logging.getLogger("nbdeploy.functions")
REFRESH_SECONDS = 5.0
WATCH_SECONDS = 1.0
ACTOR_START_SECONDS = 20.0
SCHEDULER_SECONDS = 10.0  # how long the scheduler may take to list its workers
SKIP_SECONDS = 10.0  # a worker that failed to host a replica is not asked again for this long
MAX_BATCH_BYTES = 64 * 1024 * 1024  # a batch stops growing past this many bytes of pickled calls
TINY_CALL_MS = 1.0  # calls whose own code takes less than this on average join batches being gathered
SERVING_STATUSES = ("running", "paused")  # workers in other states (closing_gracefully, …) get no new replica


@dataclass
class _Pending:
    payload: bytes  # the call, pickled on its own (:func:`~.messages.encode_call`)
    future: asyncio.Future
    retries: int = 1
    key: Any = None  # what it calls (the version's sha256): the pool learns how long such calls take


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


_LOAD = operator.attrgetter("load")  # a replica's queued calls and batches on the wire


def _expire(future: asyncio.Future, timeout: float) -> None:
    if not future.done():
        future.set_exception(ClusterTimeoutError(f"no answer within the function's timeout of {timeout:g} s"))


def _fail(batch: list[_Pending], message: str) -> None:
    """Fail every call of ``batch`` still waiting with a :class:`ClusterError` (one per caller)."""
    for p in batch:
        if not p.future.done():
            p.future.set_exception(ClusterError(message))


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection to a worker is gone (not a fault of one batch)."""
    if isinstance(exc, ConnectionError | OSError | EOFError | asyncio.IncompleteReadError):
        return True
    return type(exc).__name__ in ("CommClosedError", "StreamClosedError")


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
        max_batch_bytes: int = MAX_BATCH_BYTES,
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
        self.max_batch_bytes = max_batch_bytes
        self.max_in_flight = max_in_flight
        self.max_wait_ms = max_wait_ms
        self.channel = channel
        self.resources = resources  # replicas only on workers that offer these (e.g. {"GPU": 1})
        self.replicas: list[_Replica] = []
        self._starting: dict[str, asyncio.Future] = {}  # worker -> the task starting a replica there
        self._skipped: dict[str, float] = {}  # worker -> monotonic time until which it gets no new replica
        self._refreshing: asyncio.Future | None = None
        self._changed = asyncio.Event()  # set whenever a replica start ends (either way)
        self._refreshed = 0.0
        self._last_error = ""
        self.batches_sent = 0
        self.closed = False
        self.batches_waited = 0  # batches that waited max_wait_ms for company (only while another was busy)
        self.calls_sent = 0
        self.replicas_dropped = 0  # replicas dropped because their worker or the connection to it was lost
        self._call_ms = MovingAverages()  # per version: the time its code takes per call

    # --- replicas ---------------------------------------------------------------------------------
    async def _workers(self) -> list[str]:
        """The workers to serve on: every running worker, or those that offer the pool's resources."""
        from .tasks import offering_workers

        info = await self.client.scheduler.identity(n_workers=-1)
        workers = info.get("workers", {})
        serving = {a: w for a, w in workers.items() if w.get("status", "running") in SERVING_STATUSES}
        return offering_workers({**info, "workers": serving}, self.resources)

    def live(self) -> list[_Replica]:
        """The replicas that take calls now."""
        return [r for r in self.replicas if not r.dead]

    async def _ensure(self) -> list[_Replica]:
        """Return the live replicas; when there are none, wait until the first one is (bounded).

        A refresh (new workers get replicas, departed ones lose them) runs in the background every
        ``REFRESH_SECONDS``, never in a call's way. Raises :class:`ClusterError` when no replica can be started.
        """
        if self.closed:
            raise ClusterError("the serving pool was closed")
        live = self.live()
        if live:
            if time.monotonic() - self._refreshed >= REFRESH_SECONDS:
                self._refresh_soon()
            return live
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ACTOR_START_SECONDS + SCHEDULER_SECONDS
        while True:
            self._changed.clear()
            await asyncio.shield(self._refresh_soon())
            live = self.live()
            if live:
                return live
            if not self._starting:
                raise self._no_replica_error()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ClusterTimeoutError(
                    f"no serving replica started within {ACTOR_START_SECONDS + SCHEDULER_SECONDS:g} s; "
                    "check `nbdeploy cluster status`"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
            if self.live():
                return self.live()

    def _no_replica_error(self) -> ClusterError:
        if self._skipped and self._last_error:
            return ClusterError(
                f"no worker could host a serving replica ({self._last_error}); check `nbdeploy cluster status`"
            )
        if self.resources:
            from .tasks import no_worker_offers

            return no_worker_offers(str(self.client.scheduler.address), self.resources)
        return ClusterError("the Dask cluster has no workers to serve on: start some (`nbdeploy cluster start`)")

    def _refresh_soon(self) -> asyncio.Future:
        """Start a refresh unless one is running; return it."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh())
            self._refreshing.add_done_callback(_quiet)
        return self._refreshing

    async def _refresh(self) -> None:
        """List the workers; forget replicas on workers that left; start replicas (each in a task of its own)
        on workers that have none."""
        try:
            workers = await asyncio.wait_for(self._workers(), SCHEDULER_SECONDS)
        except Exception as exc:
            raise ClusterError(f"the Dask scheduler did not answer: {exc}; check `nbdeploy cluster status`") from exc
        self._refreshed = time.monotonic()
        listed = set(workers)
        for replica in list(self.replicas):
            if replica.worker not in listed:
                self._drop(replica)
        have = {r.worker for r in self.replicas if not r.dead} | set(self._starting)
        now = time.monotonic()
        for worker in workers:
            if worker in have or self._skipped.get(worker, 0.0) > now or self.closed:
                continue
            self._starting[worker] = asyncio.ensure_future(self._start(worker))

    async def _start(self, worker: str) -> None:
        try:
            replica = await self._start_replica(worker)
        except Exception as exc:  # never let a start failure escape its task
            log.warning("could not start a replica on %s: %s", worker, exc)
            replica = None
        finally:
            self._starting.pop(worker, None)
        if replica is None:
            self._skipped[worker] = time.monotonic() + SKIP_SECONDS
        elif self.closed:
            if replica.channel is not None:
                await replica.channel.aclose()
        else:
            self._skipped.pop(worker, None)
            self.replicas.append(replica)
        self._changed.set()

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
        started = asyncio.ensure_future(future)
        started.add_done_callback(_quiet)
        try:
            actor = await asyncio.wait_for(asyncio.shield(started), ACTOR_START_SECONDS)
        except Exception as exc:
            self._last_error = f"{worker}: {type(exc).__name__} {exc}".strip()
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
        if not replica.dead:
            self.replicas_dropped += 1
        replica.dead = True
        if replica.channel is not None:
            replica.channel.close()
        self._refreshed = 0.0  # look for workers again on the next call
        with contextlib.suppress(ValueError):
            self.replicas.remove(replica)

    async def start_replicas(self, timeout: float = ACTOR_START_SECONDS) -> int:
        """Make sure every worker has a replica, waiting for those starting (up to ``timeout``); return how many
        are live. Failures are logged, never raised: starting ahead of the first call is an optimisation."""
        try:
            await self._ensure()
            await asyncio.shield(self._refresh_soon())
        except Exception as exc:
            log.info("could not start the serving replicas: %s", exc)
            return 0
        if self._starting:
            await asyncio.wait(list(self._starting.values()), timeout=timeout)
        return len(self.live())

    async def warm(self, method: str, *args: Any, timeout: float = ACTOR_START_SECONDS) -> int:
        """Make sure every worker has a replica (:meth:`start_replicas`) and call ``actor.method(*args)`` on
        each (e.g. to load a version before the first request); return how many replicas answered. Failures
        are logged, never raised: warming is an optimisation."""
        if not await self.start_replicas(timeout):
            return 0

        async def one(replica: _Replica) -> bool:
            try:
                await asyncio.wait_for(getattr(replica.actor, method)(*args), timeout)
                return True
            except Exception as exc:
                log.info("warming the replica on %s failed: %s", replica.worker, exc)
                return False

        return sum(await asyncio.gather(*[one(r) for r in self.live()]))

    # --- calls ------------------------------------------------------------------------------------
    async def call(self, call: Any, *, timeout: float | None = None) -> Outcome:
        """Send one call (a message of :mod:`nbdeploy.runtime.messages`, one batch item) and return its
        :class:`~.messages.Outcome`.

        Raises :class:`InvalidInputError` / :class:`PayloadTooLargeError` when the call cannot be sent (its
        own fault: nothing else is affected), :class:`ClusterTimeoutError` after ``timeout`` seconds and
        :class:`ClusterError` when no replica could run it.
        """
        payload = encode_call(call)  # raises for this caller only, before it joins any batch
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        expiry = loop.call_later(timeout, _expire, future, timeout) if timeout is not None else None
        try:
            await self._enqueue(_Pending(payload, future, key=getattr(call, "sha256", None)))
            return await future
        finally:
            if expiry is not None:
                expiry.cancel()

    async def _enqueue(self, pending: _Pending) -> None:
        live = await self._ensure()
        replica = None
        took = self._call_ms.get(pending.key)
        if took is not None and took < TINY_CALL_MS:
            # tiny calls: join a batch that is being gathered (it leaves in this same turn of the event loop, so
            # the call is not delayed) rather than start one more message to another replica
            for r in live:
                if r.gathering and len(r.queue) < self.max_batch_size:
                    replica = r
                    break
        if replica is None:  # the least-loaded replica: slow calls spread over the workers
            replica = min(live, key=_LOAD)
        replica.queue.append(pending)
        self._flush(replica)

    def _flush(self, replica: _Replica) -> None:
        """Start a sender for the queued calls unless one is already gathering them or the replica has
        ``max_in_flight`` batches on the wire."""
        if replica.queue and not replica.gathering and replica.in_flight < self.max_in_flight and not replica.dead:
            replica.gathering = True
            replica.in_flight += 1
            asyncio.get_running_loop().create_task(self._send(replica))

    def _take_batch(self, replica: _Replica) -> list[_Pending]:
        """Up to ``max_batch_size`` calls from the queue, stopping before ``max_batch_bytes`` (one call always)."""
        batch: list[_Pending] = []
        size = 0
        queue = replica.queue
        while queue and len(batch) < self.max_batch_size:
            n = len(queue[0].payload)
            if batch and size + n > self.max_batch_bytes:
                break
            batch.append(queue.popleft())
            size += n
        return batch

    async def _send(self, replica: _Replica) -> None:
        gathering = True
        try:
            # wait to fill the batch only while another batch of this replica is on the wire (``in_flight``
            # counts this one too): an idle replica sends at once, so a lone request is never delayed
            if self.max_wait_ms and replica.in_flight > 1 and len(replica.queue) < self.max_batch_size:
                self.batches_waited += 1
                await asyncio.sleep(self.max_wait_ms / 1000)
            batch = self._take_batch(replica)
            replica.gathering = gathering = False
            self._flush(replica)  # calls beyond the batch may go out at once in another one
            batch = [p for p in batch if not p.future.done()]  # callers that timed out meanwhile
            if not batch:
                return
            self.batches_sent += 1
            self.calls_sent += len(batch)

            def early(items: dict[int, Any]) -> None:  # calls of the batch answered before a slow neighbour
                for i, answer in items.items():
                    self._answered(batch[i], answer)

            try:
                answers = await self._call_watched(replica, [p.payload for p in batch], early)
            except ReplicaError as exc:  # the replica is fine; this batch's answers could not be sent back
                _fail(batch, str(exc))
                return
            except Exception as exc:
                if self.closed:
                    _fail(batch, "the serving pool was closed")
                    return
                if not (_connection_lost(exc) or isinstance(exc, ClusterError)):
                    # not a lost worker: the replica stays; these calls fail (a bug, logged in full)
                    log.exception("a batch for the replica on %s failed", replica.worker)
                    _fail(batch, f"the serving replica on {replica.worker} failed: {type(exc).__name__}: {exc}")
                    return
                log.warning("replica on %s lost (%s); retrying its %d call(s)", replica.worker, exc, len(batch))
                self._drop(replica)
                for p in batch:
                    await self._retry(p, exc)
                return
            if len(answers) != len(batch):
                _fail(batch, f"the serving replica on {replica.worker} answered {len(answers)} of {len(batch)} calls")
                return
            for p, answer in zip(batch, answers, strict=True):
                if answer is not None:  # None: answered early
                    self._answered(p, answer)
        finally:
            if gathering:  # ended before taking its batch (cancelled)
                replica.gathering = False
            replica.in_flight -= 1
            if not replica.dead:
                self._flush(replica)
            else:
                while replica.queue:  # calls queued on a dead replica move to a live one
                    await self._retry(replica.queue.popleft(), None)

    def _answered(self, pending: _Pending, answer: Any) -> None:
        outcome = decode_outcome(answer) if isinstance(answer, bytes) else answer
        if getattr(outcome, "ok", False):  # failures (a timeout too) say nothing of the call's own time
            self._learn(pending.key, outcome.duration_ms)
        if not pending.future.done():
            pending.future.set_result(outcome)

    async def _call_watched(
        self, replica: _Replica, payloads: list[bytes], early: Callable[[dict[int, Any]], None] | None = None
    ) -> list[Any]:
        """Call the replica (``early`` receives the answers of calls it sends before the batch's end); if the call is
        still pending after a second, check every second that its worker is still in the cluster (a dead worker's
        connection can otherwise take Dask's 30 s connect timeout to fail)."""
        if replica.channel is not None:
            call = asyncio.ensure_future(replica.channel.call(self.method, payloads, early))
        else:
            call = asyncio.ensure_future(getattr(replica.actor, self.method)(payloads))
        while True:
            done, _ = await asyncio.wait([call], timeout=WATCH_SECONDS)
            if done:
                return call.result()
            try:
                workers = await asyncio.wait_for(self._workers(), SCHEDULER_SECONDS)
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

    def _learn(self, key: Any, duration_ms: float) -> None:
        """Fold one call's own time into the moving average of the calls of ``key``."""
        self._call_ms.learn(key, duration_ms)

    def mean_batch_size(self) -> float:
        """Calls per batch sent so far."""
        return self.calls_sent / self.batches_sent if self.batches_sent else 0.0

    async def close(self) -> None:
        """Forget the replicas (their actors are released with their futures) and close the client."""
        self.closed = True
        for task in [*self._starting.values(), *([self._refreshing] if self._refreshing else [])]:
            task.cancel()
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


def _quiet(task: asyncio.Future) -> None:
    """Retrieve a background task's exception (it is reported to the calls that wait on it)."""
    if not task.cancelled():
        task.exception()
