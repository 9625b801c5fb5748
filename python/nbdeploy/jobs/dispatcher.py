"""The dispatcher: the one writer of run state. It claims queued runs, runs them on Dask, records the outcome.

Several dispatchers may share a catalog (one per server, ``nbdeploy scheduler``, a notebook that called
``nbd.jobs.run`` with no server up). Safety comes from the catalog (see :mod:`.ledger`):

- *leadership* — a row in ``dispatcher_leases`` that a ``service`` dispatcher takes when it is free or expired
  and renews every ``lease_ttl / 3`` seconds. Only the leader claims queued runs in general; an ``ephemeral``
  dispatcher (started in-process by the API when no leader is alive) claims only the runs it was handed.
- *claims* — a queued run becomes ``running`` in one transaction that sets ``lease_owner`` and
  ``lease_until``; every later write checks ``lease_owner``, ``attempt`` and ``status``.
- *reconciliation* — when a dispatcher becomes leader, and every few seconds after (ephemeral ones too), runs
  whose lease expired are *lost*: retried (``attempt + 1``, after a back-off) while retries remain, else
  failed with ``"lost: worker or server died"``. So no run stays ``running`` once the process that ran it is
  gone.

Workers report through Dask events (topic ``nbdeploy-runs``): start, current cell, metrics, artifacts. The
dispatcher batches them into the catalog; the task's result (output notebook, log, metrics) is authoritative.
A cancel is a Dask ``Event`` the worker's watchdog polls; a worker that dies is noticed through Dask.

An ephemeral dispatcher that gets no Dask cluster fails the runs it was handed, so ``run.wait()`` never hangs
(:mod:`.cluster_wait`). The Dask side (submitted runs, the reports' fan-out, outcomes) is in
:mod:`.dispatch_dask`; the dispatchers of this process are found and started through :mod:`.dispatch_local`.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from ..config import get_settings
from ..store import Store
from . import dispatch_local as _local
from .clock import Clock, SystemClock
from .cluster_wait import ClusterWait, fail_queued
from .dispatch_dask import ActiveRun, cancel_future, future_outcome, set_event, subscribe, unsubscribe, warm_workers
from .dispatch_local import local_dispatcher, stop_local_dispatchers
from .ledger import LOST_MESSAGE, RunLedger, artifact_row, leader_alive, lost, metric_row
from .notify import notify_run

__all__ = [
    "LOST_MESSAGE",
    "Dispatcher",
    "ensure_dispatcher",
    "leader_alive",
    "local_dispatcher",
    "stop_local_dispatchers",
]

log = logging.getLogger("nbdeploy.jobs")


def _default_client() -> Any:
    from .. import runtime

    return runtime.client()


class Dispatcher:
    """Claims and runs queued runs of one catalog on the Dask cluster; start with :meth:`start`.

    ``role`` is ``"service"`` (competes for leadership; claims every queued run while leader) or
    ``"ephemeral"`` (claims only the runs given to :meth:`add_runs`, and exits when idle for ``idle_exit``
    seconds). ``client`` (or ``client_factory``) gives the Dask client (default: ``nbdeploy.runtime.client()``).
    An ephemeral dispatcher that gets no client fails the runs it was handed, at once when the cluster cannot
    start at all, else after ``dispatch_timeout`` seconds (setting ``dispatch_timeout``; see :mod:`.cluster_wait`);
    a service dispatcher keeps them queued until its cluster is back.
    """

    def __init__(
        self,
        store: Store,
        *,
        role: str = "service",
        client: Any = None,
        client_factory: Callable[[], Any] | None = None,
        clock: Clock | None = None,
        lease_ttl: float | None = None,
        poll: float = 0.5,
        retry_backoff: float = 2.0,
        max_backoff: float = 300.0,
        idle_exit: float = 15.0,
        cancel_grace: float = 20.0,
        timeout_grace: float = 30.0,
        dispatch_timeout: float | None = None,
    ) -> None:
        if role not in ("service", "ephemeral"):
            raise ValueError("role must be 'service' or 'ephemeral'")
        self.store, self.role, self.clock = store, role, clock or SystemClock()
        self.lease_ttl = float(lease_ttl or get_settings().lease_ttl)
        self.poll, self.idle_exit = poll, idle_exit
        self.cancel_grace, self.timeout_grace = cancel_grace, timeout_grace
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.ledger = RunLedger(store, self.owner, self.lease_ttl, retry_backoff, max_backoff)
        self.is_leader = False
        self.notifications: list[threading.Thread] = []
        self._client = client
        self._client_factory = client_factory or _default_client
        self._client_retry_at = 0.0
        wait = get_settings().dispatch_timeout if dispatch_timeout is None else dispatch_timeout
        self._no_cluster = ClusterWait(float(wait))
        self._subscribed_to: Any = None
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._active: dict[int, ActiveRun] = {}
        self._wanted: set[int] = set()
        self._lock = threading.Lock()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._next_heartbeat = self._next_reconcile = self._next_check = 0.0
        self._nthreads: dict[str, int] = {}
        self._nthreads_at = -1e9
        self._idle_since = time.monotonic()
        self._changed: dict[int, threading.Event] = {}
        self._retired = False

    # --- lifecycle -----------------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """Whether the dispatcher's thread is running."""
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def start(self) -> Dispatcher:
        """Start the dispatcher's thread (and register it as this process's dispatcher for its catalog)."""
        self._thread = threading.Thread(target=self._loop, name=f"nbdeploy-dispatcher-{self.role}", daemon=True)
        self._thread.start()
        _local.register(self)
        return self

    def retire(self) -> list[int]:
        """Hand over to another dispatcher of this process: claim nothing more, finish the runs already
        submitted (their leases stay renewed), then exit. Returns the handed runs not claimed yet, for the
        successor to take. Unlike :meth:`stop`, no running run is lost."""
        with self._lock:
            self._retired = True
            handed = sorted(self._wanted - set(self._active))
            self._wanted.clear()
        _local.unregister(self)
        _local.retiring(self, self.alive)
        self._wake.set()
        return handed

    def add_runs(self, run_ids: Iterable[int]) -> None:
        """Hand runs to this dispatcher (an ephemeral one claims only these) and wake it."""
        with self._lock:
            self._wanted.update(int(i) for i in run_ids)
        self._wake.set()

    def changed_event(self, run_id: int) -> threading.Event:
        """An event set whenever this dispatcher records an outcome of run ``run_id`` (``Run.wait`` uses it
        to return at once instead of at its next poll)."""
        with self._lock:
            return self._changed.setdefault(int(run_id), threading.Event())

    def _signal(self, run_ids: Iterable[int]) -> None:
        with self._lock:
            events = [self._changed.pop(int(i), None) for i in run_ids]
        for event in events:
            if event is not None:
                event.set()

    def wake(self) -> None:
        """Make the dispatcher look at the catalog now instead of at its next poll."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loop. Runs still executing are recorded lost (retried while retries remain) and the
        leadership is released, so another dispatcher takes over at once."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        _local.unregister(self)
        _local.retiring(self, False)
        try:
            for act in list(self._active.values()):
                cancel_future(act)
                self._finalize(act, lost(message="lost: its dispatcher stopped before the run ended"))
            if self.is_leader:
                self.is_leader = False
                self.ledger.release(self.clock.now())
        except Exception:
            log.exception("dispatcher %s: clean-up on stop failed", self.owner)
        if self._subscribed_to is not None:
            unsubscribe(self._subscribed_to, self._events)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("dispatcher %s: step failed; retrying", self.owner)
                self._stop.wait(1.0)
            handed_over = self._retired and not self._active
            if handed_over or (self.role == "ephemeral" and self._idle_for() > self.idle_exit):
                log.info("dispatcher %s: %s, exiting", self.owner, "handed over" if handed_over else "idle")
                self._stop.set()
                _local.unregister(self)
                _local.retiring(self, False)
                if self.is_leader:  # a retired service dispatcher hands its leadership over at once
                    self.is_leader = False
                    self.ledger.release(self.clock.now())
                if self._subscribed_to is not None:
                    unsubscribe(self._subscribed_to, self._events)
                break
            self._wake.wait(self.poll)
            self._wake.clear()

    def _idle_for(self) -> float:
        with self._lock:
            if self._active or self._wanted:
                self._idle_since = time.monotonic()
        return time.monotonic() - self._idle_since

    # --- one pass ------------------------------------------------------------------------------------------
    def step(self) -> None:
        """One pass: heartbeat and leases, worker events, finished runs, cancels/timeouts, reconcile, claim."""
        mono, now = time.monotonic(), self.clock.now()
        if mono >= self._next_heartbeat:
            self._next_heartbeat = mono + self.lease_ttl / 3
            self._heartbeat(now)
        self._apply_events()
        self._collect_done()
        if self._active and mono >= self._next_check:
            self._next_check = mono + 0.5
            self._check_active()
        if (self.is_leader or self.role == "ephemeral") and mono >= self._next_reconcile:
            # an ephemeral dispatcher reconciles too, so lost runs are settled even where no service ever runs
            self._next_reconcile = mono + max(1.0, self.lease_ttl / 2)
            self.reconcile(now)
        self._claim(now)

    def _heartbeat(self, now: datetime) -> None:
        if self.role == "service" and not self._retired:
            leader = self.ledger.acquire_or_renew(now)
            if leader and not self.is_leader:
                log.info("dispatcher %s is now the leader", self.owner)
                self.is_leader = True
                self.reconcile(now)
            self.is_leader = leader
        if self._active:
            self.ledger.renew_runs(list(self._active), now)

    def reconcile(self, now: datetime | None = None) -> None:
        """Record runs whose lease expired as lost (retried while retries remain)."""
        for row in self.ledger.reconcile(now or self.clock.now(), set(self._active)):
            self._notify(row)

    def _notify(self, row: Any) -> None:
        from .records import RunInfo

        thread = notify_run(row.notify, RunInfo.from_row(row).to_json())
        if thread is not None:
            self.notifications.append(thread)

    # --- what workers report ----------------------------------------------------------------------------------
    def _apply_events(self) -> None:
        updates: dict[tuple[int, int], dict[str, Any]] = {}
        rows: list[Any] = []
        for _ in range(10000):
            try:
                msg = self._events.get_nowait()
            except queue.Empty:
                break
            act = self._active.get(int(msg.get("run") or 0)) if isinstance(msg, dict) else None
            if act is None or act.attempt != msg.get("attempt"):
                continue
            kind, values = msg.get("kind"), updates.setdefault((act.run_id, act.attempt), {})
            if kind == "started":
                act.worker = str(msg.get("worker"))
                values.update(worker=act.worker, started_at=datetime.fromtimestamp(float(msg["time"]), UTC))
            elif kind == "cell":
                values.update(current_cell=msg["cell"], cell_count=msg["cells"])
            elif kind == "metric":
                rows.append(metric_row(act.run_id, act.attempt, msg))
            elif kind == "artifact":
                rows.append(artifact_row(act.run_id, act.attempt, msg))
        if updates or rows:
            self.ledger.record_progress(updates, rows)

    def _collect_done(self) -> None:
        for act in list(self._active.values()):
            if act.future.done():
                self._finalize(act, future_outcome(act.future))

    def _check_active(self) -> None:
        mono = time.monotonic()
        pending = [a.run_id for a in self._active.values() if a.cancel_sent is None]
        for run_id in self.ledger.cancel_requested(pending) if pending else ():
            act = self._active[run_id]
            act.cancel_sent = mono
            set_event(self._client, act.cancel_event, "set")
        workers = self._workers(max_age=2.0)
        for act in list(self._active.values()):
            if act.future.done():
                continue
            if act.cancel_sent is not None and mono - act.cancel_sent > self.cancel_grace:
                cancel_future(act)
                self._finalize(act, {"status": "cancelled", "error_type": "Cancelled", "error_message": "cancelled (forced)"})  # fmt: skip
            elif act.timeout and mono - act.submitted > act.timeout + self.timeout_grace:
                cancel_future(act)
                message = f"the run took longer than its timeout of {act.timeout}s (forced)"
                self._finalize(act, {"status": "timed_out", "error_type": "Timeout", "error_message": message})
            elif act.worker is not None and workers is not None and act.worker not in workers:
                act.worker_gone_since = act.worker_gone_since or mono
                if mono - act.worker_gone_since > 3.0:  # gone, and Dask has not re-run it anywhere
                    cancel_future(act)
                    self._finalize(act, lost())

    def _finalize(self, act: ActiveRun, outcome: dict[str, Any]) -> None:
        terminal = self.ledger.finish(act.run_id, act.attempt, outcome, self.clock.now())
        with self._lock:
            self._active.pop(act.run_id, None)
            if terminal is not None:
                self._wanted.discard(act.run_id)
        for name in (act.guard_event, act.cancel_event):
            set_event(self._client, name, "clear")
        if terminal is not None:
            self._notify(terminal)
        self._signal([act.run_id])
        self._wake.set()

    # --- the Dask side ------------------------------------------------------------------------------------
    def _get_client(self) -> Any:
        if self._client is not None and getattr(self._client, "status", "running") in ("closed", "closing"):
            self._client = None  # the runtime replaced it (settings or cluster changed)
        if self._client is None:
            if time.monotonic() < self._client_retry_at:
                return None
            try:
                self._client = self._client_factory()
            except Exception as exc:
                self._client_retry_at = time.monotonic() + min(5.0, max(0.5, self._no_cluster.timeout / 4))
                self._no_cluster.failed(exc)
                waits = "queued runs wait" if self.role == "service" else "its runs fail if this lasts"
                log.warning("dispatcher %s: no Dask cluster (%s); %s", self.owner, exc, waits)
                return None
            self._no_cluster.connected()
        if self._subscribed_to is not self._client:
            subscribe(self._client, self._events)
            self._subscribed_to = self._client
            warm_workers(self._client)
        return self._client

    def _workers(self, max_age: float) -> dict[str, int] | None:
        if self._client is None:
            return None
        if time.monotonic() - self._nthreads_at > max_age:
            try:
                self._nthreads = dict(self._client.nthreads())
                self._nthreads_at = time.monotonic()
            except Exception as exc:
                log.warning("dispatcher %s: cannot reach the Dask scheduler: %s", self.owner, exc)
                return None
        return self._nthreads

    # --- claiming ------------------------------------------------------------------------------------------
    def _claim(self, now: datetime) -> None:
        if self._retired:
            return
        with self._lock:
            wanted = set(self._wanted)
        if not self.is_leader and not wanted:
            return
        rows = self.ledger.queued(now, None if self.is_leader else wanted)
        if not self.is_leader:
            gone = wanted - {r.id for r in rows} - set(self._active)
            if gone:  # forget handed-over runs that ended or that another dispatcher claimed
                with self._lock:
                    self._wanted -= gone - self.ledger.still_queued(gone)
        cancelled = [r.id for r in rows if r.cancel_requested]
        if cancelled:
            self.ledger.cancel_queued(cancelled, now)
            with self._lock:
                self._wanted -= set(cancelled)
            self._signal(cancelled)
        candidates = [r for r in rows if not r.cancel_requested]
        client = self._get_client() if candidates else None
        if client is None and candidates and self.role == "ephemeral" and self._no_cluster.given_up():
            self._fail_undispatchable([r.id for r in candidates], now)
            return
        workers = self._workers(max_age=1.0) if client is not None else None
        if not workers:
            return
        free = sum(workers.values()) - len(self._active)
        schedule_ids = {c.schedule_id for c in candidates if c.schedule_id is not None}
        limits, running = self.ledger.schedule_slots(schedule_ids) if schedule_ids and free > 0 else ({}, {})
        for cand in candidates:
            if free <= 0:
                break
            sid = cand.schedule_id
            if sid is not None and running.get(sid, 0) >= limits.get(sid, 1):
                continue
            spec, failed = self.ledger.claim(cand.id, cand.attempt, now)
            if failed is not None:
                self._notify(failed)
                self._signal([failed.id])
            if spec is None:
                continue
            if sid is not None:
                running[sid] = running.get(sid, 0) + 1
            free -= 1
            self._submit(client, spec)

    def _fail_undispatchable(self, run_ids: list[int], now: datetime) -> None:
        """Fail handed runs that no cluster can run (see :mod:`.cluster_wait`), and wake whoever waits on them."""
        error_type, message = self._no_cluster.outcome()
        rows = fail_queued(self.store, run_ids, error_type, message, now)
        log.warning("dispatcher %s: failed runs %s: %s", self.owner, [r.id for r in rows], message)
        with self._lock:
            self._wanted -= set(run_ids)
        for row in rows:
            self._notify(row)
        self._signal(run_ids)

    def _submit(self, client: Any, spec: dict[str, Any]) -> None:
        from .execute import run_notebook

        key = f"nbdeploy-run-{spec['run_id']}-{spec['attempt']}-{uuid.uuid4().hex[:8]}"
        act = ActiveRun(spec["run_id"], spec["attempt"], key, None, spec["timeout"], time.monotonic())
        spec = {**spec, "guard_event": act.guard_event, "cancel_event": act.cancel_event}
        with self._lock:
            self._active[act.run_id] = act
            self._wanted.discard(act.run_id)
        resources = spec.get("resources") or None
        if resources:  # a GPU run on a cluster without GPUs would wait for ever: say so instead
            from ..runtime.tasks import check_resources

            try:
                check_resources(client, resources)
            except Exception as exc:
                self._finalize(act, {"status": "failed", "error_type": type(exc).__name__, "error_message": str(exc)})
                return
        try:
            act.future = client.submit(run_notebook, spec, key=key, pure=False, retries=0, resources=resources)
            act.future.add_done_callback(lambda _future: self._wake.set())  # record the outcome at once
        except Exception as exc:
            log.warning("submitting run %s failed: %s", spec["run_id"], exc)
            self._finalize(act, lost(str(exc)))


def ensure_dispatcher(store: Store, run_ids: Iterable[int] = ()) -> Dispatcher | None:
    """Make sure someone dispatches ``run_ids``: this process's dispatcher, a live leader elsewhere, or a new
    ephemeral dispatcher in this process. Returns the local dispatcher used (``None`` for a remote leader)."""
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
