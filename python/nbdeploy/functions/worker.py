"""What runs on the Dask workers: the serving actor and the plain-task entry point.

Both load a function version by ``(store_url, sha256)`` through the worker's artifact cache, so a worker
loads each version once. A user's exception never escapes as a Dask error: it comes back as an outcome
``("error", type, message, traceback)`` that the server turns into a 500 with the traceback.
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
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


class FunctionActor(ChannelActor):
    """A serving replica on one worker: runs batches of calls of any version in a thread pool."""

    def __init__(self, store_url: str, threads: int | None = None) -> None:
        self.store_url = store_url
        self.threads = threads or max(2, os.cpu_count() or 2)
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="nbdeploy-fn")

    def _run_chunk(self, calls: list[tuple[str, dict[str, Any], bool]]) -> list[Outcome]:
        return [run_call(self.store_url, sha, kwargs, as_json) for sha, kwargs, as_json in calls]

    async def run_batch(self, calls: list[tuple[str, dict[str, Any], bool]]) -> list[Outcome]:
        """Run ``[(sha256, kwargs, as_json), …]``; answers come back in the same order.

        The batch is split into at most ``threads`` chunks run side by side, each chunk's calls one after
        another: tiny calls avoid a thread hand-off each, slow ones still use every thread.
        """
        loop = asyncio.get_running_loop()
        if len(calls) == 1:
            return await loop.run_in_executor(self.pool, self._run_chunk, calls)
        n = min(len(calls), self.threads)
        size = -(-len(calls) // n)
        chunks = [calls[i : i + size] for i in range(0, len(calls), size)]
        results = await asyncio.gather(*[loop.run_in_executor(self.pool, self._run_chunk, c) for c in chunks])
        return [outcome for chunk in results for outcome in chunk]

    def ping(self) -> str:
        """Return this actor's store URL (used to check that a replica is alive)."""
        return self.store_url
