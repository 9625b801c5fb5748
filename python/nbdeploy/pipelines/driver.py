"""The pipeline driver: advances pipeline runs node by node, each node an ordinary job run.

A pipeline run is a graph of job runs: the driver queues the job run of every node whose upstream nodes all
ended (so independent nodes run side by side, as many as the Dask workers have threads, through the jobs
service's dispatcher: leases, retries, timeouts, warm kernels, output notebooks, live progress), records each
node's outcome from its job run, and stops only the descendants of a node that failed. Before queuing a node it
computes the node's cache key (:mod:`.cache`); a key that matches an earlier successful run makes the node
*skipped*, reusing that run's outputs, with the reason said.

Drivers share the catalog the way dispatchers do: a driver advances a pipeline run only while it holds the run's
lease (``lease_owner``, ``lease_until``, renewed every pass), so a run whose driver died is taken over by another
one (a server's ``service`` driver, which adopts every active run whose lease expired). A process that starts a run
with no server runs an ``ephemeral`` driver that drives only its own runs and exits when they are done. Job-run
state stays with the dispatcher: a node only reads it, so a worker killed mid-pipeline leaves its node failed
(or retried) as soon as the dispatcher settles the job run.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..jobs.tables import RunRow
from ..store.tables import utcnow
from . import cache
from .spec import NodeSpec, PipelineSpec, staleness
from .tables import NODE_TERMINAL, PipelineNodeRow, PipelineRunRow

__all__ = ["PipelineDriver", "ensure_driver", "local_driver", "start", "stop_local_drivers"]

log = logging.getLogger("nbdeploy.pipelines")

_JOB_TO_NODE = {"succeeded": "succeeded", "failed": "failed", "timed_out": "failed", "cancelled": "cancelled"}


class PipelineDriver:
    """Advances the pipeline runs of ``app``'s catalog (see the module). ``role``: ``"service"`` adopts every
    active run whose lease is free; ``"ephemeral"`` only the runs given to :meth:`add_runs`, and exits when idle."""

    def __init__(
        self,
        app: Any,
        *,
        role: str = "service",
        poll: float = 0.05,
        lease_ttl: float | None = None,
        idle_exit: float = 5.0,
    ) -> None:
        if role not in ("service", "ephemeral"):
            raise ValueError("role must be 'service' or 'ephemeral'")
        self.app, self.store, self.role, self.poll, self.idle_exit = app, app.store, role, poll, idle_exit
        self.lease_ttl = float(lease_ttl or app.settings.lease_ttl)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:pipelines:{uuid.uuid4().hex[:8]}"
        self._wanted: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle_since = time.monotonic()
        self._specs: dict[tuple[str, int | None], PipelineSpec] = {}

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> PipelineDriver:
        """Run :meth:`step` in a thread until :meth:`stop` (an ephemeral driver also stops when idle)."""
        _register(self)
        self._thread = threading.Thread(target=self._loop, name=f"nbdeploy-pipelines-{self.role}", daemon=True)
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def add_runs(self, run_ids: Iterable[int]) -> None:
        """Drive these pipeline runs (an ephemeral driver drives only these); wake the loop."""
        with self._lock:
            self._wanted.update(int(i) for i in run_ids)
            self._idle_since = time.monotonic()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and give up the leases of the runs it drove (another driver adopts them at once)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        _unregister(self)
        try:
            with self.store.catalog.session() as s:
                s.execute(
                    sa.update(PipelineRunRow)
                    .where(PipelineRunRow.lease_owner == self.owner)
                    .values(lease_owner=None, lease_until=None)
                )
        except Exception:
            log.exception("pipeline driver %s: releasing its leases failed", self.owner)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.step()
            except Exception:
                log.exception("pipeline driver %s: step failed; retrying", self.owner)
                busy = True
                self._stop.wait(1.0)
            if busy:
                self._idle_since = time.monotonic()
            elif self.role == "ephemeral" and time.monotonic() - self._idle_since > self.idle_exit:
                self._stop.set()
                _unregister(self)
                break
            self._wake.wait(self.poll if busy else max(self.poll, 0.5))
            self._wake.clear()

    # --- one pass ------------------------------------------------------------------------------------------
    def step(self) -> bool:
        """Claim (or renew) the leases of the active runs this driver drives and advance each; return whether any
        is still active."""
        now = utcnow()
        ids = self._claim(now)
        for run_id in ids:
            try:
                self.advance(run_id)
            except Exception:
                log.exception("pipeline run %s: advancing failed", run_id)
        return bool(ids)

    def _claim(self, now: datetime) -> list[int]:
        until = now + timedelta(seconds=self.lease_ttl)
        free = sa.or_(
            PipelineRunRow.lease_owner.is_(None),
            PipelineRunRow.lease_owner == self.owner,
            PipelineRunRow.lease_until < now,
        )
        query = sa.select(PipelineRunRow.id).where(PipelineRunRow.status.in_(("queued", "running")), free)
        with self._lock:
            wanted = set(self._wanted)
        if self.role == "ephemeral":
            if not wanted:
                return []
            query = query.where(PipelineRunRow.id.in_(wanted))
        fresh = now + timedelta(seconds=self.lease_ttl / 2)
        with self.store.catalog.session() as s:
            found = s.execute(
                query.add_columns(PipelineRunRow.lease_owner, PipelineRunRow.lease_until)
                .order_by(PipelineRunRow.id)
                .limit(100)
            ).all()
            if not found:
                with self._lock:
                    self._wanted -= wanted
                return []
            held = [i for i, owner, until in found if owner == self.owner and until is not None and until > fresh]
            candidates = [i for i, _, _ in found if i not in held]
            if not candidates:  # our leases are fresh: no write this pass
                return held
            s.execute(
                sa.update(PipelineRunRow)
                .where(PipelineRunRow.id.in_(candidates), free)
                .values(lease_owner=self.owner, lease_until=until)
            )
        with self.store.catalog.session() as s:
            owned = list(
                s.scalars(
                    sa.select(PipelineRunRow.id).where(
                        PipelineRunRow.id.in_(candidates), PipelineRunRow.lease_owner == self.owner
                    )
                )
            )
        return held + owned

    def spec_of(self, name: str, version: int | None) -> PipelineSpec:
        key = (name, version)
        if key not in self._specs:
            self._specs[key] = self.app.pipelines.definition(name, version)
        return self._specs[key]

    def advance(self, run_id: int) -> None:
        """One step of pipeline run ``run_id``: start it, settle nodes whose job run ended, queue the nodes whose
        upstreams all ended (or skip them from the cache), and end the run once every node ended."""
        now = utcnow()
        with self.store.catalog.session() as s:
            prow = s.get(PipelineRunRow, run_id)
            if prow is None or prow.lease_owner != self.owner or prow.status not in ("queued", "running"):
                return
            name, version, cancel = prow.pipeline, prow.version, prow.cancel_requested
            params, options, was_queued = dict(prow.parameters or {}), dict(prow.options or {}), prow.status == "queued"
        try:
            if version is None:  # a scheduled run takes the newest version when it starts
                version = self.app.pipelines.get(name).version
            spec = self.spec_of(name, version)
        except Exception as exc:
            self._end(run_id, "failed", f"{type(exc).__name__}: {exc}")
            return
        nodes = create_nodes(self.app, run_id, spec, options)
        if was_queued:
            with self.store.catalog.session() as s:
                s.execute(
                    sa.update(PipelineRunRow)
                    .where(PipelineRunRow.id == run_id, PipelineRunRow.status == "queued")
                    .values(status="running", started_at=now, version=version)
                )
        self._settle(nodes)
        if cancel:
            self._cancel(run_id, nodes)
        started: list[int] = []
        if not cancel:
            values = {**spec.parameters, **params}
            for node in spec.nodes.values():
                row = nodes[node.name]
                if row.status != "queued":
                    continue
                ups = [nodes[u] for u in node.after]
                if any(u.status not in NODE_TERMINAL for u in ups):
                    continue
                bad = next((u for u in ups if u.status in ("failed", "cancelled")), None)
                if bad is not None:
                    why = "failed" if bad.status == "failed" else "was cancelled"
                    self._set(row, "cancelled", f"upstream {bad.node!r} {why}", ended=True)
                    continue
                queued = self._start_node(spec, node, row, nodes, values, set(options.get("force") or ()))
                if queued is not None:
                    started.append(queued)
        if started:  # one hand-over to the dispatcher for every node queued in this pass
            from ..jobs.dispatcher import ensure_dispatcher

            ensure_dispatcher(self.store, started)
        if all(r.status in NODE_TERMINAL for r in nodes.values()):
            failed = [n for n, r in nodes.items() if r.status in ("failed", "cancelled")]
            if cancel:
                self._end(run_id, "cancelled", "cancelled")
            elif failed:
                self._end(run_id, "failed", f"node(s) {', '.join(failed)} did not succeed")
            else:
                self._end(run_id, "succeeded", None)

    # --- nodes ---------------------------------------------------------------------------------------------
    def _settle(self, nodes: dict[str, PipelineNodeRow]) -> None:
        running = {r.job_run_id: r for r in nodes.values() if r.status == "running" and r.job_run_id is not None}
        if not running:
            return
        with self.store.catalog.session() as s:
            rows = s.execute(
                sa.select(
                    RunRow.id,
                    RunRow.status,
                    RunRow.error_type,
                    RunRow.error_message,
                    RunRow.started_at,
                    RunRow.finished_at,
                ).where(RunRow.id.in_(list(running)))
            ).all()
        for run_id, status, error_type, error_message, started_at, finished_at in rows:
            if status not in _JOB_TO_NODE:
                continue
            reason = None if status == "succeeded" else f"{error_type or status}: {error_message or ''}".strip(": ")
            node = running[run_id]
            self._set(node, _JOB_TO_NODE[status], reason, ended=True, started=started_at, when=finished_at)

    def _start_node(
        self,
        spec: PipelineSpec,
        node: NodeSpec,
        row: PipelineNodeRow,
        nodes: dict[str, PipelineNodeRow],
        values: dict[str, Any],
        force: set[str],
    ) -> int | None:
        """Skip ``node`` from the cache, or queue its job run (returned, for the dispatcher); ``None`` otherwise."""
        try:
            plan = cache.plan(self.app, spec, node, {u: nodes[u].job_run_id for u in node.after}, values)
        except Exception as exc:
            self._set(row, "failed", f"{type(exc).__name__}: {exc}", ended=True)
            return None
        age = staleness(node.cache)
        if node.name not in force and age != 0:
            hit = cache.lookup(self.store, spec.name, node.name, plan.key, age)
            if hit is not None:
                self._set(row, "skipped", f"unchanged since run {hit}", ended=True, job_run=hit, key=plan.key)
                return None
        try:
            run = self.app.jobs.run(
                plan.job,
                plan.parameters,
                kernel=node.kernel,
                timeout=node.timeout,
                retries=node.retries,
                version=plan.job_version,
                resources=node.resources,
                dispatch=False,
            )
        except Exception as exc:
            self._set(row, "failed", f"{type(exc).__name__}: {exc}", ended=True, key=plan.key)
            return None
        self._set(row, "running", None, job_run=run.id, key=plan.key, started=utcnow())
        return int(run.id)

    def _set(
        self,
        row: PipelineNodeRow,
        status: str,
        reason: str | None,
        *,
        ended: bool = False,
        job_run: int | None = None,
        key: str | None = None,
        started: datetime | None = None,
        when: datetime | None = None,
    ) -> None:
        now = when or utcnow()
        values: dict[str, Any] = {"status": status, "reason": reason}
        if job_run is not None:
            values["job_run_id"] = job_run
        if key is not None:
            values["cache_key"] = key
        if started is not None or row.started_at is None:
            values["started_at"] = started or now
        if ended:
            values["ended_at"] = now
        with self.store.catalog.session() as s:
            s.execute(sa.update(PipelineNodeRow).where(PipelineNodeRow.id == row.id).values(**values))
        for k, v in values.items():
            setattr(row, k, v)

    def _cancel(self, run_id: int, nodes: dict[str, PipelineNodeRow]) -> None:
        for row in nodes.values():
            if row.status == "queued":
                self._set(row, "cancelled", "the pipeline run was cancelled", ended=True)
            elif row.status == "running" and row.job_run_id is not None:
                self.app.runs.cancel(row.job_run_id)

    def _end(self, run_id: int, status: str, message: str | None) -> None:
        with self.store.catalog.session() as s:
            s.execute(
                sa.update(PipelineRunRow)
                .where(PipelineRunRow.id == run_id, PipelineRunRow.lease_owner == self.owner)
                .values(status=status, ended_at=utcnow(), error_message=message, lease_owner=None, lease_until=None)
            )
            notify = s.scalar(sa.select(PipelineRunRow.notify).where(PipelineRunRow.id == run_id))
        with self._lock:
            self._wanted.discard(run_id)
        if notify:  # the jobs' webhooks: {"event": "run.<status>", "run": <the pipeline run>}
            from ..jobs.notify import notify_run

            notify_run(notify, self.app.pipelines.run_info(run_id).to_json() | {"status": status})


def create_nodes(app: Any, run_id: int, spec: PipelineSpec, options: dict[str, Any]) -> dict[str, PipelineNodeRow]:
    """The node rows of pipeline run ``run_id`` (created on first call): nodes left out by ``only``/``from`` are
    skipped at once, reusing their newest successful run's outputs."""
    with app.store.catalog.session() as s:
        rows = {
            r.node: r for r in s.scalars(sa.select(PipelineNodeRow).where(PipelineNodeRow.pipeline_run_id == run_id))
        }
        if rows:
            s.expunge_all()
            return {n: rows[n] for n in spec.nodes if n in rows}
    selected = set(spec.nodes)
    only, start = list(options.get("only") or ()), options.get("from")
    if only or start:
        selected = set(only) | (spec.descendants({start}) if start else set())
    now = utcnow()
    made: dict[str, PipelineNodeRow] = {}
    for name in spec.nodes:
        row = PipelineNodeRow(pipeline_run_id=run_id, pipeline=spec.name, node=name, status="queued")
        if name not in selected:
            previous = cache.lookup(app.store, spec.name, name, None, None)
            row.status, row.started_at, row.ended_at = "skipped", now, now
            row.job_run_id = previous
            row.reason = (
                f"not selected; reusing the outputs of run {previous}"
                if previous is not None
                else "not selected (it never ran: no outputs)"
            )
        made[name] = row
    with app.store.catalog.session() as s:
        s.add_all(made.values())
        s.flush()
        s.expunge_all()
    return made


# --- the drivers of this process ------------------------------------------------------------------------------
_local_lock = threading.Lock()
_local: dict[str, PipelineDriver] = {}


def _register(driver: PipelineDriver) -> None:
    with _local_lock:
        _local[driver.store.catalog.url] = driver


def _unregister(driver: PipelineDriver) -> None:
    with _local_lock:
        if _local.get(driver.store.catalog.url) is driver:
            del _local[driver.store.catalog.url]


def local_driver(store: Any) -> PipelineDriver | None:
    """This process's running driver for ``store``'s catalog, if any."""
    with _local_lock:
        driver = _local.get(store.catalog.url)
    return driver if driver is not None and driver.alive else None


def ensure_driver(app: Any, run_ids: Iterable[int]) -> PipelineDriver:
    """Make sure this process drives ``run_ids``: its driver (a server's service driver), or a new ephemeral one."""
    run_ids = list(run_ids)
    driver = local_driver(app.store)
    if driver is None:
        driver = PipelineDriver(app, role="ephemeral").start()
    driver.add_runs(run_ids)
    if not driver.alive:  # it was exiting, idle, as the runs arrived
        driver = PipelineDriver(app, role="ephemeral").start()
        driver.add_runs(run_ids)
    return driver


def stop_local_drivers() -> None:
    """Stop every pipeline driver of this process (tests and interpreter exit)."""
    with _local_lock:
        drivers = list(_local.values())
    for driver in drivers:
        driver.stop()


atexit.register(stop_local_drivers)


async def start(app: Any) -> Any:
    """Background task of the servers: a service driver adopting every active pipeline run of the catalog
    (scheduled ones included); returns the coroutine function that stops it."""
    import asyncio

    driver = PipelineDriver(app, role="service", poll=0.1)
    existing = local_driver(app.store)
    if existing is not None:
        existing.stop()
    driver.start()

    async def stop() -> None:
        await asyncio.to_thread(driver.stop)

    return stop
