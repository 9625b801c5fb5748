"""Prometheus metrics: requests, errors and latency per target (``function:greet``, …) of this process, and
gauges read from the catalog and the store that every server of a fleet reports alike (input drift of each
model's newest version, job runs by state). Sum the per-process counters over instances for the fleet's view;
the shipped Grafana dashboard (``deploy/grafana/nbdeploy.json``) does.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .base import NbdeployHandler, Raw, api

__all__ = ["REGISTRY", "MetricsHandler", "default_handlers", "observe", "record", "render"]

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "nbdeploy_requests", "Requests served, by target and status", ["target", "status"], registry=REGISTRY
)
ERRORS = Counter("nbdeploy_errors", "Requests that ended in an error status, by target", ["target"], registry=REGISTRY)
LATENCY = Histogram(
    "nbdeploy_request_seconds",
    "Request latency in seconds, by target",
    ["target"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)


_children: dict[tuple[str, int], tuple[Any, Any, Any]] = {}  # the labelled metrics, looked up once per pair


def observe(target: str, status: int, seconds: float) -> None:
    """Record one request to ``target`` that ended with HTTP ``status`` after ``seconds``."""
    children = _children.get((target, status))
    if children is None:
        children = _children[(target, status)] = (
            REQUESTS.labels(target, str(status)),
            ERRORS.labels(target) if status >= 400 else None,
            LATENCY.labels(target),
        )
    requests, errors, latency = children
    requests.inc()
    if errors is not None:
        errors.inc()
    latency.observe(seconds)


def record(app: Any, target: str, status: int, seconds: float) -> None:
    """Record one request a handler served: in Prometheus' metrics (:func:`observe`) and, for a function call
    (``function:<name>``, REST invoke or Open Inference Protocol) of a known function, in the functions' serving
    statistics (``app.functions.stats``; models record theirs as they predict). Unknown names (404) share one label
    and are not recorded as a function."""
    if status == 404:  # names that do not exist share one label, so requests cannot grow the metrics
        observe(target.partition(":")[0] + ":(unknown)", status, seconds)
        return
    observe(target, status, seconds)
    if target.startswith("function:"):
        app.functions.monitor.record(target[9:], None, seconds * 1000.0, status)


log = logging.getLogger("nbdeploy.serve")
CATALOG_SECONDS = 15.0  # the catalog and store gauges are recomputed at most this often per process
_catalog_cache: dict[int, tuple[float, bytes]] = {}
_catalog_lock = threading.Lock()


def catalog_metrics(app: Any) -> bytes:
    """Gauges of ``app``'s catalog and store in Prometheus' text format: ``nbdeploy_model_drift_psi`` (model,
    version, column) of each model's newest version over what the whole fleet served, ``nbdeploy_model_served_rows``
    (model, version) and ``nbdeploy_runs`` (job, state). Never raises: a failing part is left out and logged."""
    registry = CollectorRegistry(auto_describe=True)
    drift = Gauge(
        "nbdeploy_model_drift_psi",
        "Population stability index of a served input column against the training sample (newest version, all servers)",
        ["model", "version", "column"],
        registry=registry,
    )
    served = Gauge(
        "nbdeploy_model_served_rows",
        "Input rows the drift of a model version is computed over (all servers)",
        ["model", "version"],
        registry=registry,
    )
    runs = Gauge("nbdeploy_runs", "Job runs in the catalog, by job and state", ["job", "state"], registry=registry)
    try:
        for model in app.models.list().models:
            report = app.models.drift(model.name, model.version)
            served.labels(model.name, str(model.version)).set(report.served_rows)
            for column, psi in report.psi.items():
                drift.labels(model.name, str(model.version), column).set(psi)
    except Exception as exc:
        log.warning("could not compute the models' drift for /metrics: %s", exc)
    try:
        for job, state, count in run_counts(app):
            runs.labels(job, state).set(count)
    except Exception as exc:
        log.warning("could not count the runs for /metrics: %s", exc)
    return generate_latest(registry)


def run_counts(app: Any) -> list[tuple[str, str, int]]:
    """``(job, state, runs)`` for every job and state in the catalog."""
    import sqlalchemy as sa

    from ..jobs.tables import RunRow

    query = sa.select(RunRow.job, RunRow.status, sa.func.count()).group_by(RunRow.job, RunRow.status)
    with app.store.catalog.session(readonly=True) as session:
        return [(str(job), str(state), int(n)) for job, state, n in session.execute(query)]


def _cached_catalog_metrics(app: Any) -> bytes:
    now = time.monotonic()
    with _catalog_lock:
        hit = _catalog_cache.get(id(app))
        if hit is not None and now - hit[0] < CATALOG_SECONDS:
            return hit[1]
    text = catalog_metrics(app)
    with _catalog_lock:
        _catalog_cache[id(app)] = (now, text)
    return text


def render(app: Any = None) -> bytes:
    """The metrics in Prometheus' text format (with ``app``, its catalog and store gauges too)."""
    text = generate_latest(REGISTRY)
    return text + _cached_catalog_metrics(app) if app is not None else text


class MetricsHandler(NbdeployHandler):
    @api(responses={200: {"text/plain": {"type": "string"}}}, tags=("server",))
    async def get(self) -> Raw:
        """Prometheus metrics: requests, errors and latency per function and model, model drift, job runs."""
        text = await asyncio.to_thread(render, self.nbd)  # the gauges read the catalog and the store
        return Raw(text, "text/plain; version=0.0.4; charset=utf-8")


default_handlers = [(r"/metrics", MetricsHandler)]
