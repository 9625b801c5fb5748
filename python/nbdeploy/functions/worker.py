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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..runtime.channel import ChannelActor
from ..runtime.messages import FunctionCall, Outcome, decode_calls, encode_outcome, merge_outcomes

__all__ = ["FunctionActor", "missing_modules", "run_call", "run_task"]


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

    def _run_chunk(self, calls: list[FunctionCall]) -> list[Outcome]:
        me, pool = threading.get_ident(), self.pool
        out: list[Outcome] = []
        for call in calls:
            try:  # an interrupt meant for this call may land anywhere in here: it always ends as its outcome
                timeout = call.timeout
                with self._lock:
                    self._running[me] = [time.monotonic() + timeout if timeout else None, None, pool]
                try:
                    outcome = run_call(self.store_url, call)
                finally:
                    with self._lock:
                        self._running.pop(me, None)
            except CallInterrupted:
                message = f"the call ran past its timeout of {call.timeout:g} s"
                outcome = Outcome("error", error_type="TimeoutError", message=message)
            out.append(outcome)
        return out

    async def run_batch(self, payloads: list[Any]) -> list[bytes]:
        """Run a batch of calls (each pickled on its own); the outcomes come back in the same order, each
        pickled on its own, so a call that cannot be read here or whose result cannot be sent back fails alone.

        The batch is split into at most ``threads`` chunks run side by side, each chunk's calls one after
        another: tiny calls avoid a thread hand-off each, slow ones still use every thread.
        """
        calls, failed = decode_calls(payloads)
        outcomes = await self._run_calls(calls) if calls else []
        outcomes = merge_outcomes(len(payloads), outcomes, failed)
        labels = [getattr(c, "label", "the call") for c in calls]
        labelled = merge_outcomes(len(payloads), labels, {i: "the call" for i in failed})
        return [encode_outcome(o, str(label)) for o, label in zip(outcomes, labelled, strict=True)]

    async def _run_calls(self, calls: list[FunctionCall]) -> list[Outcome]:
        loop = asyncio.get_running_loop()
        if not self._watching and any(c.timeout for c in calls):
            self._watching = True
            task = loop.create_task(_watch(weakref.ref(self)))
            _WATCHERS.add(task)
            task.add_done_callback(_WATCHERS.discard)
        if len(calls) == 1:
            return await loop.run_in_executor(self.pool, self._run_chunk, calls)
        n = min(len(calls), self.threads)
        size = -(-len(calls) // n)
        chunks = [calls[i : i + size] for i in range(0, len(calls), size)]
        results = await asyncio.gather(*[loop.run_in_executor(self.pool, self._run_chunk, c) for c in chunks])
        return [outcome for chunk in results for outcome in chunk]

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
