"""What runs on the Dask workers: the serving actor and the plain-task entry point.

Both load a function version by ``(store_url, sha256)`` through the worker's artifact cache, so a worker
loads each version once. A user's exception never escapes as a Dask error: it comes back as an outcome
``("error", type, message, traceback)`` that the server turns into a 500 with the traceback.
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

__all__ = ["FunctionActor", "missing_modules", "run_call", "run_task"]

Outcome = tuple[Any, ...]


def run_call(store_url: str, sha256: str, kwargs: dict[str, Any], as_json: bool = False) -> Outcome:
    """Load the version and call it; return ``("ok", result, ms)`` or ``("error", type, message, tb)``.

    With ``as_json`` the result comes back already encoded as a JSON string (numpy/pandas converted
    here, on the worker).
    """
    from ..runtime import load_artifact
    from .capture import load_package

    try:
        fn = load_artifact(store_url, sha256, loader=load_package)
    except Exception as exc:
        return ("load_error", type(exc).__name__, f"cannot load version {sha256[:12]}: {exc}", traceback.format_exc())
    started = time.perf_counter()
    try:
        result = fn(**kwargs)
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc), traceback.format_exc())
    elapsed = (time.perf_counter() - started) * 1000
    if as_json:
        from ..server_extension.encoding import dumps

        try:
            result = dumps(result)
        except (TypeError, ValueError) as exc:
            return ("error", "TypeError", f"the function's result cannot be encoded as JSON: {exc}", "")
    return ("ok", result, elapsed)


def run_task(store_url: str, sha256: str, kwargs: dict[str, Any]) -> Any:
    """Plain-task entry point (long or batch calls): return the result or raise the user's exception."""
    outcome = run_call(store_url, sha256, kwargs)
    if outcome[0] == "ok":
        return outcome[1]
    from ..exceptions import UserCodeError

    raise UserCodeError(outcome[1], outcome[2], outcome[3])


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

    def _run_chunk(self, calls: list[tuple[str, dict[str, Any], bool, float | None]]) -> list[Outcome]:
        me, pool = threading.get_ident(), self.pool
        out: list[Outcome] = [()] * len(calls)
        for i, (sha, kwargs, as_json, timeout) in enumerate(calls):
            try:  # an interrupt meant for this call may land anywhere in here: it always ends as its outcome
                with self._lock:
                    self._running[me] = [time.monotonic() + timeout if timeout else None, None, pool]
                try:
                    out[i] = run_call(self.store_url, sha, kwargs, as_json)
                finally:
                    with self._lock:
                        self._running.pop(me, None)
            except CallInterrupted:
                out[i] = ("error", "TimeoutError", f"the call ran past its timeout of {timeout:g} s", "")
        return out

    async def run_batch(self, calls: list[tuple[str, dict[str, Any], bool, float | None]]) -> list[Outcome]:
        """Run ``[(sha256, kwargs, as_json, timeout), …]``; answers come back in the same order.

        The batch is split into at most ``threads`` chunks run side by side, each chunk's calls one after
        another: tiny calls avoid a thread hand-off each, slow ones still use every thread.
        """
        loop = asyncio.get_running_loop()
        if not self._watching and any(c[3] for c in calls):
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
