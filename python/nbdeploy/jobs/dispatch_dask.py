"""The Dask side of the dispatcher: the runs it submitted, the workers' reports, cancel events and outcomes.

Workers report through Dask events (topic :data:`EVENT_TOPIC`): one handler per Dask client of this process
fans them out to every dispatcher that uses that client. A finished future becomes an outcome for the ledger
(:func:`future_outcome`); a worker that died under a run makes it *lost*.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from .ledger import lost

__all__ = [
    "EVENT_TOPIC",
    "LOST_ERRORS",
    "ActiveRun",
    "cancel_future",
    "future_outcome",
    "set_event",
    "subscribe",
    "unsubscribe",
    "warm_workers",
]

log = logging.getLogger("nbdeploy.jobs")

EVENT_TOPIC = "nbdeploy-runs"
LOST_ERRORS = ("RunLostError", "KilledWorker", "CommClosedError", "FutureCancelledError", "CancelledError")


@dataclass
class ActiveRun:
    """A run a dispatcher submitted and is watching."""

    run_id: int
    attempt: int
    key: str
    future: Any
    timeout: float | None
    submitted: float
    worker: str | None = None
    worker_gone_since: float | None = None
    cancel_sent: float | None = None

    @property
    def guard_event(self) -> str:
        return f"{self.key}-started"

    @property
    def cancel_event(self) -> str:
        return f"{self.key}-cancel"


# --- topic fan-out: one handler per Dask client, feeding every dispatcher of this process that uses it -----
_topic_lock = threading.Lock()
_topic_queues: dict[int, list[queue.SimpleQueue]] = {}


def subscribe(client: Any, q: queue.SimpleQueue) -> None:
    """Deliver the workers' run reports that reach ``client`` to ``q`` (one Dask subscription per client)."""
    with _topic_lock:
        queues = _topic_queues.setdefault(id(client), [])
        if q not in queues:
            queues.append(q)
        if len(queues) == 1:

            def handler(event: Any, _queues: list[queue.SimpleQueue] = queues) -> None:
                msg = event[1] if isinstance(event, tuple | list) and len(event) == 2 else event
                for target in list(_queues):
                    target.put(msg)

            client.subscribe_topic(EVENT_TOPIC, handler)


def unsubscribe(client: Any, q: queue.SimpleQueue) -> None:
    """Stop delivering ``client``'s run reports to ``q``."""
    with _topic_lock:
        queues = _topic_queues.get(id(client), [])
        if q in queues:
            queues.remove(q)


def warm_workers(client: Any) -> None:
    """Import papermill on every worker in the background, so the first run does not pay for it."""

    def warm() -> None:
        def imports() -> None:
            import nbformat  # noqa: F401
            import papermill  # noqa: F401

        threading.Thread(target=imports, name="nbdeploy-warm", daemon=True).start()

    try:
        client.run(warm)
    except Exception as exc:
        log.debug("warming the workers failed: %s", exc)


def future_outcome(future: Any) -> dict[str, Any]:
    """The outcome of a run's finished future: the task's own result, a failure, or *lost* (its worker died)."""
    if future.status == "finished":
        try:
            return future.result()
        except Exception as exc:  # the result could not be fetched: the worker holding it died
            return lost(str(exc))
    if future.status == "error":
        error = future.exception()
        name = type(error).__name__
        if name in LOST_ERRORS:
            return lost(str(error))
        return {"status": "failed", "error_type": name, "error_message": str(error) or name}
    return lost()


def set_event(client: Any, name: str, action: str) -> None:
    """``set`` or ``clear`` the Dask event ``name`` (best effort: a cluster that is gone is only logged)."""
    if client is None:
        return
    from distributed import Event

    try:
        getattr(Event(name, client=client), action)()
    except Exception as exc:
        log.debug("could not %s the Dask event %s: %s", action, name, exc)


def cancel_future(act: ActiveRun) -> None:
    """Cancel the task of ``act`` (best effort)."""
    try:
        act.future.cancel()
    except Exception as exc:
        log.debug("cancelling %s failed: %s", act.key, exc)
