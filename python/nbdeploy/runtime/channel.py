"""A direct, persistent, pipelined channel from a server to the serving actors on one Dask worker.

Dask's actor calls go straight to the worker, but each one still pays the generic RPC machinery (an
``actor_execute`` message, Dask's serialization layers, a reply dictionary), which costs more than a small
function itself. Serving replicas (:class:`ChannelActor` subclasses) therefore also answer on a channel of
their own: the actor's ``open_channel()`` (an ordinary actor call, so it travels over Dask's own, possibly
TLS-secured comm) starts one listener per worker process on the worker's host and returns its address and
a random secret; the server connects once and then sends batches as length-prefixed pickles, several on the
wire at once, answers matched by batch id.

Security: a connection must present the secret (compared in constant time, sent as plain bytes, never
unpickled) before anything it sends is unpickled; with a TLS Dask cluster the listener and the connection
use the cluster's TLS contexts. That is the same trust Dask's own worker port asks for.

Frames: ``!QI`` (batch id, payload length) then the payload. Requests: ``pickle((method, calls))``; answers:
``pickle(("ok", result))`` or ``pickle(("error", type, message))`` for a failure outside the user's code. An actor
method that takes a ``part`` argument may answer some calls of a batch early, before its final answer:
``pickle(("part", {position: answer}))`` frames (the final answer then holds ``None`` at those positions), so that
calls that are done never wait for a slow neighbour of their batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import logging
import pickle
import secrets
import struct
import uuid
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["Channel", "ChannelActor", "ChannelClosedError", "ChannelServer", "ReplicaError"]

log = logging.getLogger("nbdeploy.runtime")
HEADER = struct.Struct("!QI")
MAX_FRAME = 2**32 - 1
HANDSHAKE_LIMIT = 4096
HANDSHAKE_SECONDS = 10.0
WRITE_BUFFER_HIGH = 4 * 1024 * 1024


class ChannelClosedError(ConnectionError):
    """The channel to a worker is closed (the worker died, the actor was released, or it refused us)."""


class ReplicaError(RuntimeError):
    """The replica is alive but could not run or answer one batch (e.g. a result that cannot be pickled)."""


def _dumps(obj: Any) -> bytes:
    try:
        return pickle.dumps(obj, protocol=5)
    except Exception:  # lambdas, locally defined classes: what Dask itself would cloudpickle
        import cloudpickle

        return cloudpickle.dumps(obj, protocol=5)


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(HEADER.size)
    ident, size = HEADER.unpack(head)
    return ident, await reader.readexactly(size)


def _frame(ident: int, payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME:
        raise ValueError(f"a message of {len(payload)} bytes is over the channel's limit of {MAX_FRAME} bytes")
    return HEADER.pack(ident, len(payload)) + payload


# --- worker side ----------------------------------------------------------------------------------------
class ChannelServer:
    """The listener of one worker process; actors register with it and are looked up per connection."""

    _instance: ChannelServer | None = None

    def __init__(self) -> None:
        self.secret = secrets.token_hex(32)
        self.actors: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
        self.address: tuple[str, int] | None = None
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting = asyncio.Lock()

    @classmethod
    def instance(cls) -> ChannelServer:
        """This process's channel server (one per worker process, created on first use)."""
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    async def start(self, host: str, ssl: Any = None) -> tuple[str, int]:
        """Listen on ``host`` (a free port) unless already listening on this event loop; return the address."""
        async with self._starting:
            loop = asyncio.get_running_loop()
            if self._server is not None and self._loop is loop and self.address is not None:
                return self.address
            self._server = await asyncio.start_server(self._serve, host, 0, ssl=ssl)
            self._loop = loop
            sock = self._server.sockets[0].getsockname()
            self.address = (host, sock[1])
            log.debug("serving channel listening on %s:%s", *self.address)
            return self.address

    def register(self, actor: Any) -> str:
        """Make ``actor`` reachable on this process's channel until it is garbage collected; return its id."""
        ident = uuid.uuid4().hex
        self.actors[ident] = actor
        return ident

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
            self.address = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve_connection(reader, writer)
        except asyncio.CancelledError:
            pass  # the worker is shutting down: end quietly (asyncio would log a cancelled handler)

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks: set[asyncio.Task] = set()
        try:
            actor_id = await asyncio.wait_for(self._handshake(reader, writer), HANDSHAKE_SECONDS)
            if actor_id is None:
                return
            while True:
                ident, payload = await _read_frame(reader)
                task = asyncio.ensure_future(self._answer(actor_id, ident, payload, writer))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass  # the server went away (or never said who it is): nothing to answer
        finally:
            for task in tasks:
                task.cancel()
            writer.close()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str | None:
        _, size = HEADER.unpack(await reader.readexactly(HEADER.size))
        if size > HANDSHAKE_LIMIT:
            return None
        try:
            hello = json.loads(await reader.readexactly(size))
            secret, actor_id = str(hello["secret"]), str(hello["actor"])
        except (ValueError, KeyError, TypeError):
            return None
        if not hmac.compare_digest(secret.encode(), self.secret.encode()):
            log.warning("refused a serving-channel connection that did not present this worker's secret")
            return None
        ok = actor_id in self.actors
        writer.write(_frame(0, b"ok" if ok else b"gone"))
        await writer.drain()
        return actor_id if ok else None

    async def _answer(self, actor_id: str, ident: int, payload: bytes, writer: asyncio.StreamWriter) -> None:
        actor = self.actors.get(actor_id)
        if actor is None:  # released on this worker: closing tells the server to start another replica
            writer.close()
            return

        def part(answers: dict[int, Any]) -> None:  # early answers of some calls of this batch
            if not writer.is_closing():
                writer.write(_frame(ident, _dumps(("part", answers))))

        try:
            method, calls = pickle.loads(payload)
            run = getattr(actor, method)
            result = await (run(calls, part=part) if getattr(run, "answers_in_parts", False) else run(calls))
            answer = _dumps(("ok", result))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # every batch gets an answer, or its caller would wait for ever
            answer = _dumps(("error", type(exc).__name__, str(exc)))
        if writer.is_closing():
            return
        writer.write(_frame(ident, answer))
        if writer.transport.get_write_buffer_size() > WRITE_BUFFER_HIGH:
            with contextlib.suppress(ConnectionError):
                await writer.drain()


class ChannelActor:
    """Mixin for serving actors: ``await actor.open_channel()`` returns where to reach it directly."""

    async def open_channel(self) -> dict[str, Any]:
        """Start (or reuse) this worker's channel listener and return ``{"host", "port", "secret", "actor"}``.

        Raises ``ValueError`` when the worker's address has no TCP host (then the caller stays on Dask RPC).
        """
        from distributed import get_worker
        from distributed.comm import get_address_host, parse_address

        worker = get_worker()
        scheme, _ = parse_address(worker.address)
        if scheme not in ("tcp", "tls"):
            raise ValueError(f"a {scheme}:// worker has no TCP address for a direct channel")
        ssl = worker.security.get_listen_args("worker").get("ssl_context") if scheme == "tls" else None
        server = ChannelServer.instance()
        host, port = await server.start(get_address_host(worker.address), ssl)
        if not hasattr(self, "_channel_id"):
            self._channel_id = server.register(self)
        return {"host": host, "port": port, "secret": server.secret, "actor": self._channel_id, "tls": bool(ssl)}


# --- server side ----------------------------------------------------------------------------------------
class Channel:
    """One connection to one actor; ``await channel.call(method, calls)`` sends a batch and returns its answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, label: str) -> None:
        self.label = label
        self._reader, self._writer = reader, writer
        self._pending: dict[int, asyncio.Future] = {}
        self._parts: dict[int, Callable[[dict[int, Any]], None]] = {}
        self._ids = itertools.count(1)
        self._closed: BaseException | None = None
        self._reading = asyncio.ensure_future(self._read_loop())

    @classmethod
    async def open(cls, info: dict[str, Any], ssl: Any = None, timeout: float = 10.0) -> Channel:
        """Connect to the listener described by ``info`` (what ``open_channel()`` returned) and authenticate."""
        label = f"{info['host']}:{info['port']}"
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(info["host"], info["port"], ssl=ssl if info.get("tls") else None), timeout
        )
        try:
            writer.write(_frame(0, json.dumps({"secret": info["secret"], "actor": info["actor"]}).encode()))
            _, answer = await asyncio.wait_for(_read_frame(reader), timeout)
        except asyncio.IncompleteReadError:
            writer.close()
            raise ChannelClosedError(f"the serving channel at {label} closed the connection (wrong secret?)") from None
        except BaseException:
            writer.close()
            raise
        if answer != b"ok":
            writer.close()
            raise ChannelClosedError(f"the serving channel at {label} refused the connection ({answer!r})")
        return cls(reader, writer, label)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    async def call(self, method: str, calls: Any, on_part: Callable[[dict[int, Any]], None] | None = None) -> Any:
        """Send ``calls`` to ``actor.method`` and return its result; ``on_part`` receives the early answers of some
        calls (``{position: answer}``) when the actor sends them. Raises :class:`ChannelClosedError`."""
        if self._closed is not None:
            raise ChannelClosedError(f"the serving channel to {self.label} is closed: {self._closed}")
        ident = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        if on_part is not None:
            self._parts[ident] = on_part
        try:
            self._writer.write(_frame(ident, _dumps((method, calls))))
            if self._writer.transport.get_write_buffer_size() > WRITE_BUFFER_HIGH:
                await self._writer.drain()
            answer = await future
        finally:
            self._pending.pop(ident, None)
            self._parts.pop(ident, None)
        if answer[0] == "ok":
            return answer[1]
        raise ReplicaError(f"the serving replica at {self.label} could not answer: {answer[1]}: {answer[2]}")

    async def _read_loop(self) -> None:
        try:
            while True:
                ident, payload = await _read_frame(self._reader)
                future = self._pending.get(ident)
                if future is None or future.done():
                    continue
                answer = pickle.loads(payload)
                if answer[0] != "part":
                    future.set_result(answer)
                    continue
                on_part = self._parts.get(ident)
                if on_part is not None:
                    try:
                        on_part(answer[1])
                    except Exception:  # a bug of the receiver: logged, the batch's final answer still comes
                        log.exception("handling early answers from %s failed", self.label)
        except asyncio.CancelledError:
            self._fail(ChannelClosedError("closed"))
            raise
        except Exception as exc:  # EOF or reset: the worker died or closed the connection
            self._fail(ChannelClosedError(f"connection to {self.label} lost: {type(exc).__name__} {exc}"))

    def _fail(self, exc: BaseException) -> None:
        self._closed = exc
        self._parts.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
        self._pending.clear()
        self._writer.close()

    def close(self) -> None:
        """Close the connection; calls still waiting fail with :class:`ChannelClosedError`."""
        if self._closed is None:
            self._reading.cancel()
            self._fail(ChannelClosedError("closed"))

    async def aclose(self) -> None:
        """Close, and wait until the connection's reader has stopped."""
        self.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reading
