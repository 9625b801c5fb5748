"""The dispatchers of this process: at most one per catalog, found by :func:`local_dispatcher`, started on
demand by :func:`ensure_dispatcher` and stopped at interpreter exit."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..store import Store
from .ledger import leader_alive

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

__all__ = ["ensure_dispatcher", "local_dispatcher", "register", "stop_local_dispatchers", "unregister"]

_local_lock = threading.Lock()
_local: dict[str, Dispatcher] = {}
_retiring: set[Dispatcher] = set()  # retired dispatchers still finishing their runs


def register(dispatcher: Dispatcher) -> None:
    """Make ``dispatcher`` this process's dispatcher for its catalog."""
    with _local_lock:
        _local[dispatcher.store.catalog.url] = dispatcher


def unregister(dispatcher: Dispatcher) -> None:
    """Forget ``dispatcher`` as this process's dispatcher for its catalog (if it still is)."""
    with _local_lock:
        if _local.get(dispatcher.store.catalog.url) is dispatcher:
            del _local[dispatcher.store.catalog.url]


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


def ensure_dispatcher(store: Store, run_ids: Iterable[int] = ()) -> Dispatcher | None:
    """Make sure someone dispatches ``run_ids``: this process's dispatcher, a live leader elsewhere, or a new
    ephemeral dispatcher in this process. Returns the local dispatcher used (``None`` for a remote leader)."""
    from .dispatcher import Dispatcher

    run_ids = list(run_ids)
    local = local_dispatcher(store)
    if local is not None:
        local.add_runs(run_ids)
        return local
    if leader_alive(store):
        return None
    dispatcher = Dispatcher(store, role="ephemeral")
    dispatcher.add_runs(run_ids)
    return dispatcher.start()


def stop_local_dispatchers() -> None:
    """Stop every dispatcher this process runs (tests and interpreter exit call this)."""
    with _local_lock:
        dispatchers = [*_local.values(), *_retiring]
    for d in dispatchers:
        d.stop()


atexit.register(stop_local_dispatchers)
