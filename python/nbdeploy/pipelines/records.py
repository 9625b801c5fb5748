"""The typed results and requests of the pipelines service: what :class:`PipelineManager` returns and the REST
API sends (``to_json()`` is the body; the OpenAPI document and the lab's types are generated from these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..schema import ListRecord, Name, Record

__all__ = [
    "NodeProgress",
    "NodeState",
    "PipelineInfo",
    "PipelineList",
    "PipelineNode",
    "PipelinePreviewRequest",
    "PipelinePutRequest",
    "PipelineRun",
    "PipelineRunList",
    "PipelineRunRequest",
]

PipelineStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
NodeStatus = Literal["queued", "running", "succeeded", "skipped", "failed", "cancelled"]


@dataclass(frozen=True)
class PipelineNode(Record):
    """One node of a pipeline: the notebook (a path relative to the pipeline file) or stored ``job`` it runs, its
    upstream nodes, parameters (``{{ params.x }}`` references kept as written) and options. ``cache``: ``true``,
    ``false`` or the longest age of a result it may reuse (``"1h"``)."""

    name: str
    notebook: str | None
    job: str | None
    after: list[str]
    parameters: dict[str, Any]
    cache: bool | str
    kernel: str | None
    timeout: float | None
    retries: int


@dataclass(frozen=True)
class PipelineInfo(Record):
    """A pipeline version (``version`` is null for a preview, which stores nothing): its parameters and its nodes,
    upstreams first."""

    name: str
    version: int | None
    created_at: datetime | None
    parameters: dict[str, Any]
    nodes: list[PipelineNode]


@dataclass(frozen=True)
class PipelineList(ListRecord):
    """Every pipeline's newest version (``GET /pipelines``)."""

    pipelines: list[PipelineInfo]


@dataclass(frozen=True)
class NodeProgress(Record):
    """Cells done out of the node's notebook's cells, while its job run executes."""

    done: int
    total: int


@dataclass(frozen=True)
class NodeState(Record):
    """One node of a pipeline run: its state, why (a skip's reason: "unchanged since run 41"; a failure's
    error), the job run that executed it (or whose outputs a skipped node reused), its times and live progress."""

    status: NodeStatus
    reason: str | None
    run: int | None
    started_at: datetime | None
    ended_at: datetime | None
    progress: NodeProgress | None


@dataclass(frozen=True)
class PipelineRun(Record):
    """One run of a pipeline version and the state of each of its nodes (the object ``nbdeploy pipelines run
    --json`` prints)."""

    run: int
    pipeline: str
    version: int | None
    status: PipelineStatus
    started_at: datetime | None
    ended_at: datetime | None
    nodes: dict[str, NodeState]

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class PipelineRunList(ListRecord):
    """Runs of a pipeline, newest first."""

    runs: list[PipelineRun]


@dataclass(frozen=True)
class PipelinePutRequest(Record):
    """A pipeline to store: ``yaml`` (the file's text) with ``path`` (where the file is, relative to the server's
    root: notebooks resolve against its folder), or ``spec`` (the same mapping as JSON)."""

    request = True

    yaml: str | None = None
    path: str | None = None
    spec: dict[str, Any] | None = None


@dataclass(frozen=True)
class PipelinePreviewRequest(Record):
    """A ``.pipeline.yaml`` text to check and draw, stored nowhere; ``path`` as for :class:`PipelinePutRequest`."""

    request = True

    yaml: str
    path: str | None = None


@dataclass(frozen=True)
class PipelineRunRequest(Record):
    """Start a run: pipeline ``parameters`` (override the defaults), ``only`` these nodes, ``from`` a node on
    (it and its descendants), ``force`` these nodes to run even when their cached result is unchanged."""

    request = True

    parameters: dict[str, Any] = field(default_factory=dict)
    only: list[Name] = field(default_factory=list)
    from_: Name | None = None
    force: list[Name] = field(default_factory=list)
