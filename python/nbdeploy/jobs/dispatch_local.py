"""The dispatchers of this process: at most one per catalog, found by :func:`local_dispatcher` (started on demand
by :func:`nbdeploy.jobs.dispatcher.ensure_dispatcher`) and stopped at interpreter exit."""

from __future__ import annotations

import atexit
import threading
from typing import Any

from ..store import Store

__all__ = ["local_dispatcher", "register", "stop_local_dispatchers", "unregister"]

Dispatcher = Any  # a jobs.dispatcher.Dispatcher (named loosely: the registry does not import it)
_local_lock = threading.Lock()
_local: dict[str, Dispatcher] = {}
_retiring: set[Dispatcher] = set()  # retired dispatchers still finishing their runs


def register(dispatcher: Dispatcher) -> None:
    """Make ``dispatcher`` this process's dispatcher for its catalog."""
    with _local_lock:
        _local[dispatcher.store.catalog.url] = dispatcher


def unregister(dispatcher: Dispatcher) -> None:
    """Forget ``dispatcher`` as this process's dispatcher for its catalog (if it still is)."""
    url = dispatcher.store.catalog.url
    with _local_lock:
        if _local.get(url) is dispatcher:
            del _local[url]


def retiring(dispatcher: Dispatcher, still: bool) -> None:
    """Record whether ``dispatcher`` is retired but still finishing its runs (stopped at exit all the same)."""
    with _local_lock:
        if still:
            _retiring.add(dispatcher)
        else:
            _retiring.discard(dispatcher)


def local_dispatcher(store: Store) -> Dispatcher | None:
    """The running dispatcher of this process for ``store``'s catalog, if any."""
    with _local_lock:
        d = _local.get(store.catalog.url)
    return d if d is not None and d.alive else None


def stop_local_dispatchers() -> None:
    """Stop every dispatcher this process runs (tests and interpreter exit call this)."""
    with _local_lock:
        dispatchers = [*_local.values(), *_retiring]
    for d in dispatchers:
        d.stop()


atexit.register(stop_local_dispatchers)
