"""What runs on the Dask workers: the serving actor and the plain-task entry point.

Both load a function version by ``(store_url, sha256)`` through the worker's artifact cache, so a worker
loads each version once. A user's exception never escapes as a Dask error: it comes back as an
:class:`~nbdeploy.runtime.messages.Outcome` with the traceback, which the server turns into a 500; the
traceback shows the lines of the user's own source, registered as ``<nbdeploy NAME vN>``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..runtime.channel import ChannelActor
from ..runtime.messages import FunctionCall, Outcome, decode_calls, encode_outcome

__all__ = ["FunctionActor", "missing_modules", "run_call", "run_task"]

#: a batch whose chunks are not all done this long after it started answers the finished ones at once
PART_AFTER_SECONDS = 0.005
#: while a batch runs long, its ended calls are looked for at growing intervals up to this
PART_POLL_MAX_SECONDS = 0.1


def _user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` from the user's own code on (nbdeploy's frames above it left out)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def run_call(store_url: str, call: FunctionCall) -> Outcome:
    """Load the version and call it; the :class:`Outcome` holds the result or the user's error.

    With ``call.as_json`` the result comes back already encoded as a JSON string (numpy/pandas converted
    here, on the worker).
    """
    from ..runtime import load_artifact
    from .capture import load_package, named

    try:
        fn = named(load_artifact(store_url, call.sha256, loader=load_package), call.label)
    except Exception as exc:
        message = f"cannot load {call.label} ({call.sha256[:12]}): {exc}"
        return Outcome.failed("load_error", exc, message, traceback.format_exc())
    from ..datasets.lineage_log import running

    started = time.perf_counter()
    try:
        with running("function", call.label.replace(" v", "@", 1)):  # datasets it reads or writes name this call
            result = fn(**call.arguments)
    except Exception as exc:
        return Outcome.failed("error", exc, tb=_user_traceback(exc))
    elapsed = (time.perf_counter() - started) * 1000
    if call.as_json:
        from ..runtime.encoding import dumps

        try:
            result = dumps(result)
        except (TypeError, ValueError) as exc:
            message = f"the function's result cannot be encoded as JSON: {exc}"
            return Outcome("error", error_type="TypeError", message=message)
    return Outcome("ok", result, duration_ms=elapsed)


def run_task(store_url: str, call: FunctionCall) -> Any:
    """Plain-task entry point (long or batch calls): return the result or raise the user's exception."""
    outcome = run_call(store_url, call)
    if outcome.ok:
        return outcome.value
    from ..exceptions import UserCodeError

    raise UserCodeError(outcome.error_type, outcome.message, outcome.traceback)


def missing_modules(modules: list[str]) -> list[str]:
    """Return the modules in ``modules`` that cannot be found in this (worker) process."""
    import importlib.util

    missing = []
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    return missing


class CallInterrupted(BaseException):
    """Raised inside a worker thread whose call ran past its timeout (a BaseException, so that the user's
    ``except Exception`` cannot swallow it)."""


def _interrupt(thread_id: int) -> bool:
    """Raise :class:`CallInterrupted` in thread ``thread_id`` at its next Python instruction."""
    import ctypes

    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(CallInterrupted))
    return done == 1


class FunctionActor(ChannelActor):
    """A serving replica on one worker: runs batches of calls of any version in a thread pool.

    Each call carries its function's timeout. A watchdog interrupts a call that runs past it (Python code
    stops at its next instruction); a thread that stays stuck anyway (inside a C call) is left behind and
    the replica moves on to fresh threads, so runaway calls never starve the calls that come after them.
    """

    WATCH_SECONDS = 0.25
    STUCK_SECONDS = 2.0  # after an interrupt, how long a thread may take to let go before it is abandoned

    def __init__(self, store_url: str, threads: int | None = None) -> None:
        self.store_url = store_url
        self.threads = threads or max(2, os.cpu_count() or 2)
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="nbdeploy-fn")
        self._running: dict[int, list[Any]] = {}  # thread id -> [deadline, interrupted at, pool]
        self._lock = threading.Lock()
        self._watching = False
        self.interrupted = 0  # calls stopped past their timeout
        self.abandoned = 0  # threads left behind because they did not stop

    def _run_one(self, call: FunctionCall) -> Outcome:
        """Run one call in this thread under the watchdog (its timeout interrupts it)."""
        me = threading.get_ident()
        try:  # an interrupt meant for this call may land anywhere in here: it always ends as its outcome
            timeout = call.timeout
            with self._lock:
                self._running[me] = [time.monotonic() + timeout if timeout else None, None, self.pool]
            try:
                return run_call(self.store_url, call)
            finally:
                with self._lock:
                    self._running.pop(me, None)
        except CallInterrupted:
            message = f"the call ran past its timeout of {call.timeout:g} s"
            return Outcome("error", error_type="TimeoutError", message=message)

    def _drain(self, queue: deque[tuple[int, FunctionCall]], out: list[Any], ended: list[int]) -> None:
        """Take calls from the batch's ``queue`` one after another until it is empty; put each outcome at its
        position in ``out`` and then its position in ``ended`` (read by the event loop). Several threads drain one
        queue: a slow call holds one thread while the others run the rest."""
        while True:
            try:
                i, call = queue.popleft()
            except IndexError:
                return
            out[i] = self._run_one(call)
            ended.append(i)

    async def run_batch(self, payloads: list[Any], part: Callable[[dict[int, bytes]], None] | None = None) -> list[Any]:
        """Run a batch of calls (each pickled on its own); the outcomes come back in the same order, each
        pickled on its own, so a call that cannot be read here or whose result cannot be sent back fails alone.

        Up to ``threads`` threads take the batch's calls one after another from one queue: tiny calls avoid a thread
        hand-off each, slow ones still use every thread, and a slow call holds only its own thread. When the batch still runs
        :data:`PART_AFTER_SECONDS` after it started, the calls that have ended are answered at once through ``part``
        (``{position: outcome}``; ``None`` at those positions in the final answer), and those that end later within
        at most :data:`PART_POLL_MAX_SECONDS`: an ended call never waits for a slow neighbour of its batch.
        """
        calls, failed = decode_calls(payloads)
        positions = [i for i in range(len(payloads)) if i not in failed]  # where each readable call sits
        labels = [str(getattr(c, "label", "the call")) for c in calls]
        answers: list[Any] = [None] * len(payloads)
        for i, outcome in failed.items():
            answers[i] = encode_outcome(outcome)

        def early(ended: list[tuple[int, Outcome]]) -> None:
            if part is not None:
                part({positions[k]: encode_outcome(outcome, labels[k]) for k, outcome in ended})

        results = await self._run_calls(calls, early if part is not None else None) if calls else []
        for k, result in enumerate(results):
            if result is not None:
                answers[positions[k]] = encode_outcome(result, labels[k])
        return answers

    run_batch.answers_in_parts = True  # type: ignore[attr-defined]  # the channel passes ``part``

    async def _run_calls(
        self, calls: list[FunctionCall], early: Callable[[list[tuple[int, Outcome]]], None] | None = None
    ) -> list[Outcome | None]:
        """The outcomes of ``calls`` in order (``None`` for those already handed to ``early([(index, outcome)])``)."""
        loop = asyncio.get_running_loop()
        if not self._watching and any(c.timeout for c in calls):
            self._watching = True
            task = loop.create_task(_watch(weakref.ref(self)))
            _WATCHERS.add(task)
            task.add_done_callback(_WATCHERS.discard)
        if len(calls) == 1:
            return [await loop.run_in_executor(self.pool, self._run_one, calls[0])]
        queue = deque(enumerate(calls))
        out: list[Outcome | None] = [None] * len(calls)
        ended: list[int] = []  # positions in the order their calls ended
        running = [
            loop.run_in_executor(self.pool, self._drain, queue, out, ended)
            for _ in range(min(len(calls), self.threads))
        ]
        if early is None:
            await asyncio.gather(*running)
            return out
        reported = 0
        wait = PART_AFTER_SECONDS
        _, pending = await asyncio.wait(running, timeout=wait)
        while pending:  # the batch runs long: answer the calls that have ended, then look again
            n = len(ended)  # threads may append meanwhile: what is past n goes next time
            if n > reported:
                early([(i, o) for i in ended[reported:n] if (o := out[i]) is not None])
                reported = n
            wait = min(wait * 2, PART_POLL_MAX_SECONDS)
            _, pending = await asyncio.wait(pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        for future in running:
            future.result()  # an error of nbdeploy's own in a thread fails the batch, as before
        for i in ended[:reported]:
            out[i] = None  # answered early
        return out

    async def load(self, sha256: str) -> bool:
        """Load a version into this worker's cache ahead of its first call (deploys warm replicas with it);
        return whether it loaded."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.pool, self._load, sha256)
            return True
        except Exception:
            return False

    def _load(self, sha256: str) -> None:
        from ..runtime import load_artifact
        from ..runtime.warmup import serving_imports
        from .capture import load_package

        serving_imports("function")  # what the first call would import
        load_artifact(self.store_url, sha256, loader=load_package)

    def _check_deadlines(self) -> bool:
        """Interrupt overdue calls, abandon threads that ignore it; return whether calls are still running."""
        now = time.monotonic()
        stuck = 0
        with self._lock:
            for thread_id, entry in self._running.items():
                deadline, interrupted_at, pool = entry
                if deadline is None or now < deadline:
                    continue
                if interrupted_at is None:
                    entry[1] = now
                    if _interrupt(thread_id):
                        self.interrupted += 1
                elif now - interrupted_at <= self.STUCK_SECONDS:
                    # again: an interrupt that lands in a callback of the interpreter (a gc callback) is
                    # printed and ignored there, and the call would run on
                    _interrupt(thread_id)
                elif now - interrupted_at > self.STUCK_SECONDS and pool is self.pool:
                    stuck += 1
            if stuck:  # those threads may never come back: new calls get a fresh pool
                self.abandoned += stuck
                old, self.pool = self.pool, ThreadPoolExecutor(self.threads, thread_name_prefix="nbdeploy-fn")
                old.shutdown(wait=False)
            return bool(self._running)

    def ping(self) -> str:
        """Return this actor's store URL (used to check that a replica is alive)."""
        return self.store_url


_WATCHERS: set[asyncio.Task] = set()


async def _watch(actor_ref: Any) -> None:
    """Check the actor's running calls every ``WATCH_SECONDS`` while it has any (holds it only weakly, so a
    released actor is not kept alive)."""
    while True:
        await asyncio.sleep(FunctionActor.WATCH_SECONDS)
        actor = actor_ref()
        if actor is None:
            return
        if not actor._check_deadlines():
            actor._watching = False
            return
        del actor
