"""The jobs service: a scheduler and a dispatcher, run inside a server or alone as ``nbdeploy scheduler``.

Both loops run in threads of their own with blocking catalog and Dask calls, so a server's event loop never
waits on them. ``start(app)`` is the servers' background task for it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from ..store import Store
from .clock import Clock
from .dispatcher import Dispatcher, local_dispatcher
from .firing import Scheduler

__all__ = ["JobService", "start"]

log = logging.getLogger("nbdeploy.jobs")


class JobService:
    """A :class:`Scheduler` and a service :class:`Dispatcher` over one store; :meth:`start` / :meth:`stop`.

    ``clock`` drives the scheduler only: leases and run times are always real time, shared across processes.
    """

    def __init__(
        self,
        store: Store,
        *,
        scheduler: bool = True,
        dispatcher: bool = True,
        clock: Clock | None = None,
        lease_ttl: float | None = None,
        poll: float = 0.5,
        client: Any = None,
        retry_backoff: float = 2.0,
    ) -> None:
        self.store = store
        self.dispatcher: Dispatcher | None = None
        self._retired: Dispatcher | None = None  # the ephemeral dispatcher this service took over from
        self.scheduler: Scheduler | None = None
        if dispatcher:
            self.dispatcher = Dispatcher(
                self.store, role="service", lease_ttl=lease_ttl, poll=poll, client=client,
                retry_backoff=retry_backoff,
            )  # fmt: skip
        if scheduler:
            self.scheduler = Scheduler(self.store, clock=clock, poll=poll, on_fire=self._fired)

    def _fired(self, run_ids: list[int]) -> None:
        target = self.dispatcher or local_dispatcher(self.store)
        if target is not None:
            target.wake()  # as leader it claims every queued run

    def start(self) -> JobService:
        """Start the dispatcher (first, so it reconciles before new runs arrive) and the scheduler."""
        if self.dispatcher is not None:
            existing = local_dispatcher(self.store)
            if existing is not None and existing.role == "ephemeral":
                # e.g. a run posted to a server before its service started (the embedded cluster takes seconds):
                # the ephemeral dispatcher finishes what it runs (stopping it would lose those runs and kill
                # their kernels) and hands the runs it has not claimed yet to the service's dispatcher
                self.dispatcher.add_runs(existing.retire())
                self._retired = existing
            self.dispatcher.start()
        if self.scheduler is not None:
            self.scheduler.start()
        log.info("nbdeploy jobs service started (catalog %s)", self.store.catalog)
        return self

    def stop(self) -> None:
        """Stop the scheduler, then the dispatcher (which hands its leadership over)."""
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self._retired is not None:
            self._retired.stop()  # no-op once it finished its runs
            self._retired = None

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Start, block until SIGINT/SIGTERM (or ``stop`` is set), then stop."""
        stop = stop or threading.Event()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        self.start()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


async def start(app: Any) -> Callable[[], Awaitable[None]]:
    """Background task of the servers (declared in :data:`nbdeploy.app.SERVICES`): start the jobs service on
    the app's store; return the coroutine function that stops it."""
    service = JobService(app.store, lease_ttl=app.settings.lease_ttl, clock=app.clock)
    await asyncio.to_thread(service.start)

    async def stop() -> None:
        await asyncio.to_thread(service.stop)

    return stop
