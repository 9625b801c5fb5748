"""What a node runs with, and its cache key: the hash of its notebook's code cells, its resolved parameters, its
upstream outputs' hashes and its kernelspec. A node whose key matches an earlier successful run of the same node
is skipped and reuses that run's outputs (:func:`lookup`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from ..jobs.tables import RunOutputRow, RunRow
from ..store.tables import utcnow
from .spec import NodeSpec, PipelineSpec, resolve
from .tables import PipelineNodeRow
from .values import marker

__all__ = ["NodePlan", "code_hash", "lookup", "outputs_of", "plan"]

_code_hashes: dict[str, str] = {}


@dataclass(frozen=True)
class NodePlan:
    """A node ready to run: its job and version, its parameters (``upstream`` included) and its cache key."""

    job: str
    job_version: int
    parameters: dict[str, Any]
    key: str


def code_hash(store: Any, notebook_sha256: str) -> str:
    """The hash of a stored notebook's code cells (sources only: outputs, metadata and markdown do not count)."""
    if notebook_sha256 not in _code_hashes:
        nb = json.loads(store.artifacts.read_blob(notebook_sha256))
        digest = hashlib.sha256()
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "code":
                source = cell.get("source", "")
                digest.update(("".join(source) if isinstance(source, list) else str(source)).encode())
                digest.update(b"\x00")
        _code_hashes[notebook_sha256] = digest.hexdigest()
    return _code_hashes[notebook_sha256]


def outputs_of(store: Any, job_run_id: int | None) -> tuple[dict[str, Any], dict[str, str]]:
    """``(values, hashes)`` of the outputs job run ``job_run_id`` recorded (its final attempt; a later output of a
    name wins): inline JSON as it is, blobs as markers a downstream kernel loads lazily."""
    if job_run_id is None:
        return {}, {}
    with store.catalog.session() as s:
        attempt = s.scalar(sa.select(RunRow.attempt).where(RunRow.id == job_run_id))
        rows = s.scalars(
            sa.select(RunOutputRow)
            .where(RunOutputRow.run_id == job_run_id, RunOutputRow.attempt == attempt)
            .order_by(RunOutputRow.seq, RunOutputRow.id)
        ).all()
        values: dict[str, Any] = {}
        hashes: dict[str, str] = {}
        for r in rows:
            values[r.name] = (
                r.value if r.encoding == "json" and r.value is not None else marker(r.encoding, r.sha256, r.size)
            )
            hashes[r.name] = r.sha256
    return values, hashes


def plan(
    app: Any, spec: PipelineSpec, node: NodeSpec, upstream_runs: dict[str, int | None], values: dict[str, Any]
) -> NodePlan:
    """The job, parameters and cache key of ``node``: pipeline parameters it declares, its own parameters
    (``{{ params.x }}`` resolved against ``values``), and ``upstream`` (when it declares it) from the outputs of
    ``upstream_runs`` (node name -> the job run whose outputs it takes)."""
    assert node.job is not None  # stored specs always name their job
    version = app.jobs.get(node.job, node.job_version)
    declared = {p["name"] for p in version.metadata.get("parameters", [])}
    params = {k: v for k, v in values.items() if k in declared}
    params.update(resolve(node.parameters, values))
    upstream: dict[str, Any] = {}
    upstream_hashes: dict[str, Any] = {}
    for name, run_id in upstream_runs.items():
        upstream[name], upstream_hashes[name] = outputs_of(app.store, run_id)
    if "upstream" in declared:
        params["upstream"] = upstream
    kernel = node.kernel or version.metadata.get("kernel")
    material = {
        "code": code_hash(app.store, version.sha256),
        "parameters": {k: v for k, v in params.items() if k != "upstream"},
        "upstream": upstream_hashes,
        "kernel": kernel,
    }
    key = hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()
    return NodePlan(node.job, version.version, params, key)


def lookup(store: Any, pipeline: str, node: str, key: str | None, max_age: float | None) -> int | None:
    """The job run of the newest successful run of ``pipeline``'s ``node`` with cache key ``key`` (any key when
    ``None``), ended at most ``max_age`` seconds ago (any age when ``None``); ``None`` when there is none."""
    query = sa.select(PipelineNodeRow.job_run_id).where(
        PipelineNodeRow.pipeline == pipeline,
        PipelineNodeRow.node == node,
        PipelineNodeRow.status == "succeeded",
        PipelineNodeRow.job_run_id.is_not(None),
    )
    if key is not None:
        query = query.where(PipelineNodeRow.cache_key == key)
    if max_age is not None:
        query = query.where(PipelineNodeRow.ended_at >= utcnow() - timedelta(seconds=max_age))
    with store.catalog.session() as s:
        return s.scalar(query.order_by(PipelineNodeRow.ended_at.desc(), PipelineNodeRow.id.desc()).limit(1))
