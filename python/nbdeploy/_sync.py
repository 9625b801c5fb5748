"""A bridge from synchronous callers (notebooks, the CLI) to nbdeploy's async serving path."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = ["SyncBridge"]


class _LoopThread:
    """An asyncio loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="nbdeploy-sync", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


class SyncBridge:
    """Mixin: ``self._run(coro)`` runs a coroutine on a private loop thread (started on first use), and
    ``self._stop_loop(aclose)`` runs a last coroutine there and stops the thread."""

    _loop_thread: _LoopThread | None = None
    _bridge_lock = threading.Lock()

    def _run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        with self._bridge_lock:
            if self._loop_thread is None:
                self._loop_thread = _LoopThread()
        return self._loop_thread.run(coro, timeout)

    def _stop_loop(self, last: Callable[[], Awaitable[Any]] | None = None) -> None:
        thread, self._loop_thread = self._loop_thread, None
        if thread is None:
            return
        if last is not None:
            with contextlib.suppress(Exception):
                thread.run(last(), timeout=10)  # type: ignore[arg-type]
        thread.loop.call_soon_threadsafe(thread.loop.stop)
