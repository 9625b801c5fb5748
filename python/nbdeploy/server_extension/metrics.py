"""Prometheus metrics of the REST API: requests, errors and latency per target (``function:greet``, …)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from .base import NbdeployHandler, Raw, api

__all__ = ["REGISTRY", "MetricsHandler", "default_handlers", "observe", "render"]

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


def render() -> bytes:
    """The metrics in Prometheus' text format."""
    return generate_latest(REGISTRY)


class MetricsHandler(NbdeployHandler):
    @api(responses={200: {"text/plain": {"type": "string"}}}, tags=("server",))
    async def get(self) -> Raw:
        """Prometheus metrics: requests, errors and latency per function and model, model drift, job runs."""
        return Raw(render(), "text/plain; version=0.0.4; charset=utf-8")


default_handlers = [(r"/metrics", MetricsHandler)]
