"""Pipelines: DAGs of notebooks stored as versions of kind ``pipeline``, and runs of them.

``PipelineManager.put`` checks a definition (a ``.pipeline.yaml`` file, its text, a dict or a
:class:`~.spec.Pipeline` builder), stores each node's notebook as a job (``<pipeline>.<node>``, a new version only
when it changed) and the pipeline as the next version, pinned to those job versions; nothing is stored when any
check fails. ``PipelineManager.run`` queues a pipeline run that a driver (:mod:`.driver`) advances node by node.
No tornado, papermill or Dask import here.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..exceptions import ClusterTimeoutError, ConflictError, InvalidInputError, NotFoundError
from ..names import validate_name
from ..store import Version, _owner
from ..store.tables import utcnow
from .records import NodeProgress, NodeState, PipelineInfo, PipelineList, PipelineNode, PipelineRun, PipelineRunList
from .spec import NodeSpec, Pipeline, PipelineSpec, SpecError, parse, parse_yaml
from .tables import PipelineNodeRow, PipelineRunRow

if TYPE_CHECKING:
    from ..app import Nbdeploy
    from ..jobs.schedules import Schedule

__all__ = ["PipelineManager", "PipelineRunHandle"]

KIND = "pipeline"


class PipelineRunHandle:
    """A handle on one pipeline run: ``status``, ``wait()``, ``nodes``, ``outputs(node)``, ``cancel()``."""

    def __init__(self, manager: PipelineManager, info: PipelineRun) -> None:
        self._manager, self._info = manager, info

    @property
    def id(self) -> int:
        return self._info.run

    @property
    def snapshot(self) -> PipelineRun:
        """The last snapshot read (no catalog query)."""
        return self._info

    @property
    def info(self) -> PipelineRun:
        """A fresh snapshot."""
        self._info = self._manager.run_info(self.id)
        return self._info

    @property
    def status(self) -> str:
        return self.info.status

    def refresh(self) -> PipelineRunHandle:
        """Read a fresh snapshot (``snapshot`` then has it); return ``self``."""
        self._info = self._manager.run_info(self.id)
        return self

    @property
    def nodes(self) -> dict[str, NodeState]:
        return self.info.nodes

    def wait(self, timeout: float | None = None, poll: float = 0.05) -> PipelineRunHandle:
        """Block until the run ended (or ``timeout`` seconds passed: :class:`ClusterTimeoutError`); return ``self``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.info.done:
            if deadline is not None and time.monotonic() >= deadline:
                raise ClusterTimeoutError(f"pipeline run {self.id} is still {self._info.status} after {timeout}s")
            time.sleep(poll)
        return self

    def outputs(self, node: str) -> dict[str, Any]:
        """The outputs node ``node`` recorded (or reused), blobs loaded."""
        return self._manager.outputs(self.id, node)

    def cancel(self) -> PipelineRunHandle:
        """Ask for the run to be cancelled (running nodes' job runs are cancelled, queued nodes never start)."""
        self._info = self._manager.cancel(self.id)
        return self

    def to_json(self) -> dict[str, Any]:
        return self._info.to_json()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any] | None:
        """In a notebook with widgets: the live run view with a row per node; elsewhere nothing (``repr``)."""
        from ..widgets import widgets_enabled

        if not widgets_enabled():
            return None
        from ..widgets.run_view import pipeline_run_view

        bundle: dict[str, Any] = pipeline_run_view(self)._repr_mimebundle_()
        return bundle

    def __repr__(self) -> str:
        states = ", ".join(f"{n}={s.status}" for n, s in self._info.nodes.items())
        return f"<PipelineRun {self.id} {self._info.pipeline!r} {self._info.status}: {states}>"


def _info(spec: PipelineSpec, version: Version | None) -> PipelineInfo:
    return PipelineInfo(
        name=spec.name,
        version=version.version if version is not None else None,
        created_at=version.created_at if version is not None else None,
        parameters=dict(spec.parameters),
        nodes=[
            PipelineNode(
                name=n.name,
                notebook=n.notebook,
                job=n.job,
                after=list(n.after),
                parameters=dict(n.parameters),
                cache=n.cache,
                kernel=n.kernel,
                timeout=n.timeout,
                retries=n.retries,
            )
            for n in spec.nodes.values()
        ],
    )


def _inside(path: Path, root: Path | None, where: str) -> Path:
    try:
        resolved = path.resolve()
    except (OSError, ValueError) as exc:
        raise SpecError(where, f"cannot read {str(path)[:200]!r}: {exc}") from None
    if root is not None and not resolved.is_relative_to(root.resolve()):
        raise SpecError(where, f"{str(path)[:200]!r} is outside the server's root folder")
    return resolved


class PipelineManager:
    """The pipelines of ``app`` (``app.pipelines``)."""

    def __init__(self, app: Nbdeploy) -> None:
        self.app = app
        self.store = app.store

    # --- definitions ----------------------------------------------------------------------------------------
    def load(
        self, source: Any, *, path: str | None = None, root: str | Path | None = None
    ) -> tuple[PipelineSpec, Path]:
        """Parse ``source`` (a ``.pipeline.yaml`` path, YAML text, a dict or a :class:`Pipeline`) and return the spec
        with the folder its notebooks resolve against. ``path``: where the YAML text's file is (relative to ``root``,
        the server's root folder, outside which nothing is read). Raises :class:`SpecError` (422)."""
        rootp = Path(root) if root is not None else None
        if isinstance(source, Pipeline):
            source = source.to_dict()
        if path is not None:
            if not isinstance(path, str) or "\x00" in path:
                raise SpecError("path", "must be a file path")
            base_file = _inside((rootp or Path.cwd()) / path.lstrip("/"), rootp, "path")
            folder = base_file.parent
        else:
            folder = rootp or Path.cwd()
        if isinstance(source, dict):
            return parse(source, folder, root=rootp), folder
        if isinstance(source, Path) or (
            isinstance(source, str) and "\n" not in source and source.strip().endswith((".yaml", ".yml"))
        ):
            file = _inside(folder / source if rootp is not None else Path(source).expanduser(), rootp, "path")
            try:
                text = file.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise NotFoundError(f"no pipeline file at {str(source)[:200]!r}") from None
            except (OSError, ValueError) as exc:
                raise SpecError("path", f"cannot read {str(source)[:200]!r}: {exc}") from None
            return parse_yaml(text, file.parent, root=rootp), file.parent
        if isinstance(source, str):
            return parse_yaml(source, folder, root=rootp), folder
        raise InvalidInputError("give a .pipeline.yaml path, its text, a dict or a Pipeline builder", "pipeline")

    def _check_nodes(self, spec: PipelineSpec, folder: Path, root: Path | None) -> dict[str, tuple[dict, bytes]]:
        """Load every node's notebook (or stored job) and check its parameters; return the loaded notebooks."""
        from ..jobs import notebooks

        loaded: dict[str, tuple[dict, bytes]] = {}
        for node in spec.nodes.values():
            where = f"nodes.{node.name}"
            if node.notebook is not None:
                file = _inside(folder / node.notebook, root, f"{where}.notebook")
                try:
                    nb, data = notebooks.load_notebook(file)
                except (NotFoundError, InvalidInputError) as exc:
                    raise SpecError(f"{where}.notebook", str(exc)) from None
                loaded[node.name] = (nb, data)
                declared = set(notebooks.inspect_parameters(nb))
                shown = node.notebook
                if len(f"{spec.name}.{node.name}") > 64:
                    raise SpecError(where, "the pipeline and node names together must be at most 63 characters")
            else:
                assert node.job is not None
                try:
                    version = self.app.jobs.get(node.job, node.job_version)
                except NotFoundError as exc:
                    raise SpecError(f"{where}.job", str(exc)) from None
                declared = {p["name"] for p in version.metadata.get("parameters", [])}
                shown = f"job {node.job!r}"
            unknown = sorted(set(node.parameters) - declared)
            if unknown:
                has = ", ".join(sorted(declared)) or "none"
                raise SpecError(
                    f"{where}.parameters",
                    f"{shown} declares no parameter {', '.join(map(repr, unknown))} (its parameters: {has}); "
                    "add them to its cell tagged 'parameters'",
                )
        return loaded

    def preview(self, source: Any, *, path: str | None = None, root: str | Path | None = None) -> PipelineInfo:
        """Check a definition as :meth:`put` would and return it drawn as a :class:`PipelineInfo` with ``version``
        null; stores nothing. Raises :class:`SpecError` (422) naming the node and the problem."""
        spec, folder = self.load(source, path=path, root=root)
        self._check_nodes(spec, folder, Path(root) if root is not None else None)
        return _info(spec, None)

    def put(
        self, source: Any, name: str | None = None, *, path: str | None = None, root: str | Path | None = None
    ) -> PipelineInfo:
        """Check ``source`` (see :meth:`load`) and store it as the next version of pipeline ``name`` (default: its
        own name); notebook nodes become jobs ``<pipeline>.<node>``. Returns the stored :class:`PipelineInfo`.

        Raises :class:`SpecError` (422) for a cycle, an unknown upstream, a missing notebook, a bad name or a
        parameter a notebook does not declare, naming the node; nothing is stored then."""
        spec, folder = self.load(source, path=path, root=root)
        if name is not None:
            spec = PipelineSpec(validate_name(name, "name"), spec.parameters, spec.nodes, spec.description)
        loaded = self._check_nodes(spec, folder, Path(root) if root is not None else None)
        pinned: dict[str, NodeSpec] = {}
        for node in spec.nodes.values():
            if node.notebook is None:
                pinned[node.name] = node
                continue
            job = f"{spec.name}.{node.name}"
            _nb, data = loaded[node.name]
            version = self._job_version(job, data, node.notebook)
            pinned[node.name] = NodeSpec(**{**node.__dict__, "job": job, "job_version": version})
        spec = spec.with_nodes(pinned)
        body = json.dumps(spec.to_json(), sort_keys=True).encode()
        stored = self.store.put(KIND, spec.name, body, {"spec": spec.to_json()})
        return _info(spec, stored)

    def _job_version(self, job: str, data: bytes, source: str) -> int:
        try:
            latest = self.store.get("job", job)
            if latest.sha256 == hashlib.sha256(data).hexdigest():
                return latest.version
        except NotFoundError:
            pass
        return self.app.jobs.put(data.decode(), job, metadata={"source": Path(source).name}).version

    def definition(self, name: str, version: int | str | None = None) -> PipelineSpec:
        """The stored spec of pipeline ``name`` (newest version by default); raises :class:`NotFoundError`."""
        return PipelineSpec.from_json(self._version(name, version).metadata["spec"])

    def _version(self, name: str, version: int | str | None = None) -> Version:
        try:
            return self.store.get(KIND, validate_name(name), version)
        except NotFoundError as exc:
            raise NotFoundError(f"{exc}; store it with `nbdeploy pipelines put FILE.pipeline.yaml`") from None

    def get(self, name: str, version: int | str | None = None) -> PipelineInfo:
        """Pipeline ``name`` (its newest version by default); raises :class:`NotFoundError`."""
        v = self._version(name, version)
        return _info(PipelineSpec.from_json(v.metadata["spec"]), v)

    def list(self) -> PipelineList:
        """The newest version of every pipeline."""
        return PipelineList([_info(PipelineSpec.from_json(v.metadata["spec"]), v) for v in self.store.list(KIND)])

    def delete(self, name: str) -> int:
        """Delete every version of pipeline ``name`` (its runs and jobs stay); return how many versions. Raises
        :class:`ConflictError` while a schedule fires it, :class:`NotFoundError` when there is none."""
        from ..jobs.tables import ScheduleRow

        self._version(name)
        with self.store.catalog.session() as s:
            ids = builtins.list(
                s.scalars(sa.select(ScheduleRow.id).where(ScheduleRow.job == name, ScheduleRow.target == KIND))
            )
        if ids:
            raise ConflictError(
                f"pipeline {name!r} is fired by schedule(s) {ids}: delete them first (`nbdeploy schedules rm ID`)"
            )
        return self.store.delete(KIND, name)

    # --- runs ----------------------------------------------------------------------------------------------
    def run(
        self,
        pipeline: Any,
        parameters: dict[str, Any] | None = None,
        *,
        only: builtins.list[str] | None = None,
        from_: str | None = None,
        force: builtins.list[str] | None = None,
        version: int | str | None = None,
        notify: Any = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> PipelineRunHandle:
        """Start a run of ``pipeline`` (a stored name; a ``.pipeline.yaml`` path, a dict or a builder is stored
        first) and return its handle (``wait=True``: when it ended). ``only`` runs just these nodes, ``from_`` a
        node and its descendants (the others reuse their newest outputs), ``force`` ignores these nodes' caches;
        ``notify`` is a webhook as for jobs (``"https://…"`` or ``{"url", "on"}``), told when the run ends.

        Raises :class:`NotFoundError` for an unknown pipeline, :class:`InvalidInputError` for unknown nodes or
        parameters, :class:`SpecError` for a definition that does not check."""
        if isinstance(pipeline, str) and validate_name_or_none(pipeline):
            stored: int | None = self._version(pipeline, version).version
            spec = self.definition(pipeline, stored)
        else:
            info = self.put(pipeline)
            spec, stored = self.definition(info.name, info.version), info.version
        params = check_parameters(spec, parameters)
        only_list, force_list = builtins.list(only or []), builtins.list(force or [])
        options: dict[str, Any] = {"only": only_list, "from": from_, "force": force_list}
        for key, names in (("only", only_list), ("from", [from_] if from_ else []), ("force", force_list)):
            for n in names:
                if n not in spec.nodes:
                    raise InvalidInputError(
                        f"{key}: pipeline {spec.name!r} has no node {n!r} (nodes: {', '.join(spec.nodes)})", key
                    )
        from ..jobs.notify import normalize_notify

        notify = normalize_notify(notify)
        with self.store.catalog.session() as s:
            row = PipelineRunRow(
                pipeline=spec.name,
                notify=notify,
                version=stored,
                status="queued",
                trigger="manual",
                parameters=params,
                options=options,
                queued_at=utcnow(),
                cancel_requested=False,
                owner=_owner(),
            )
            s.add(row)
            s.flush()
            run_id = row.id
        from .driver import create_nodes, ensure_driver

        create_nodes(self.app, run_id, spec, options)
        ensure_driver(self.app, [run_id])
        handle = PipelineRunHandle(self, self.run_info(run_id))
        return handle.wait(timeout) if wait else handle

    def run_info(self, run_id: int) -> PipelineRun:
        """The state of pipeline run ``run_id`` and of each node (live: a running node's cells done); raises
        :class:`NotFoundError`."""
        from ..jobs.tables import RunRow

        with self.store.catalog.session() as s:
            row = s.get(PipelineRunRow, int(run_id))
            if row is None:
                raise NotFoundError(f"no pipeline run {run_id}: `nbdeploy pipelines runs NAME` lists them")
            nodes = builtins.list(
                s.scalars(sa.select(PipelineNodeRow).where(PipelineNodeRow.pipeline_run_id == row.id))
            )
            job_ids = [n.job_run_id for n in nodes if n.status == "running" and n.job_run_id is not None]
            jobs = {r.id: r for r in s.scalars(sa.select(RunRow).where(RunRow.id.in_(job_ids)))} if job_ids else {}
            try:
                order = builtins.list(self.definition(row.pipeline, row.version).nodes) if row.version else []
            except NotFoundError:
                order = []
            rank = {n: i for i, n in enumerate(order)}
            states: dict[str, NodeState] = {}
            for n in sorted(nodes, key=lambda n: (rank.get(n.node, len(rank)), n.id)):
                status, progress, started = n.status, None, n.started_at
                job = jobs.get(n.job_run_id) if n.job_run_id is not None else None
                if job is not None:
                    status = "queued" if job.status == "queued" else "running"
                    started = job.started_at
                    if job.status == "running" and job.cell_count:
                        progress = NodeProgress(int(job.current_cell or 0), int(job.cell_count))
                states[n.node] = NodeState(status, n.reason, n.job_run_id, started, n.ended_at, progress)  # type: ignore[arg-type]
            return PipelineRun(row.id, row.pipeline, row.version, row.status, row.started_at, row.ended_at, states)  # type: ignore[arg-type]

    def get_run(self, run_id: int) -> PipelineRunHandle:
        """A handle on pipeline run ``run_id``."""
        return PipelineRunHandle(self, self.run_info(run_id))

    def runs(self, name: str | None = None, limit: int = 50) -> PipelineRunList:
        """Runs (of pipeline ``name``), newest first."""
        query = sa.select(PipelineRunRow.id).order_by(PipelineRunRow.id.desc()).limit(max(1, min(int(limit), 500)))
        if name is not None:
            query = query.where(PipelineRunRow.pipeline == validate_name(name))
        with self.store.catalog.session() as s:
            ids = builtins.list(s.scalars(query))
        return PipelineRunList([self.run_info(i) for i in ids])

    def cancel(self, run_id: int) -> PipelineRun:
        """Ask for pipeline run ``run_id`` to be cancelled; return its state (an ended run is left as it is)."""
        info = self.run_info(run_id)
        if info.done:
            return info
        with self.store.catalog.session() as s:
            s.execute(sa.update(PipelineRunRow).where(PipelineRunRow.id == info.run).values(cancel_requested=True))
        from .driver import ensure_driver

        ensure_driver(self.app, [info.run])
        return self.run_info(run_id)

    def outputs(self, run_id: int, node: str) -> dict[str, Any]:
        """The outputs node ``node`` of pipeline run ``run_id`` recorded (or reused from a cached run), blobs
        loaded. Raises :class:`NotFoundError` for an unknown run or node."""
        from .cache import outputs_of
        from .values import lazy

        state = self.run_info(run_id).nodes.get(node)
        if state is None:
            raise NotFoundError(f"pipeline run {run_id} has no node {node!r}")
        values, _ = outputs_of(self.store, state.run)
        loaded = lazy(values, self.store.url)
        return {k: loaded[k] for k in loaded} if isinstance(loaded, dict) else {}

    # --- schedules -----------------------------------------------------------------------------------------
    def schedule(
        self,
        name: str,
        cron: str,
        timezone: str = "UTC",
        parameters: dict[str, Any] | None = None,
        catchup: str = "latest",
        notify: Any = None,
        now: Any = None,
    ) -> Schedule:
        """Fire pipeline ``name`` on ``cron`` in ``timezone`` (the jobs' schedules: exactly once per tick, whoever
        else schedules); return the :class:`~nbdeploy.jobs.schedules.Schedule` (its ``job`` is the pipeline)."""
        from ..jobs.cron import CronSpec
        from ..jobs.notify import normalize_notify
        from ..jobs.schedules import Schedule, _check_catchup
        from ..jobs.tables import ScheduleRow

        spec = self.definition(name)
        params = check_parameters(spec, parameters)
        cron_spec = CronSpec(cron, timezone)
        now = now or utcnow()
        row = ScheduleRow(
            job=spec.name,
            target=KIND,
            cron=cron_spec.expr,
            timezone=cron_spec.timezone,
            parameters=params,
            catchup=_check_catchup(catchup),
            max_concurrency=1,
            retries=0,
            notify=normalize_notify(notify),
            paused=False,
            next_fire_at=cron_spec.next_after(now),
            created_at=now,
            updated_at=now,
            owner=_owner(),
        )
        with self.store.catalog.session() as s:
            s.add(row)
        return Schedule.from_row(row, self.app.schedules)


def check_parameters(spec: PipelineSpec, parameters: dict[str, Any] | None) -> dict[str, Any]:
    """``parameters`` for a run of the pipeline ``spec`` (each one of its parameters, a JSON value); raises
    :class:`InvalidInputError` naming the first that is not."""
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidInputError("pipeline parameters must be an object of name: value", "parameters")
    params = dict(parameters or {})
    unknown = sorted(set(params) - set(spec.parameters))
    if unknown:
        raise InvalidInputError(
            f"pipeline {spec.name!r} has no parameter {', '.join(map(repr, unknown))} "
            f"(its parameters: {', '.join(spec.parameters) or 'none'})",
            f"parameters.{unknown[0]}",
        )
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"pipeline parameters must be JSON values: {exc}", "parameters") from None
    return params


def validate_name_or_none(text: str) -> bool:
    """Whether ``text`` is a pipeline name rather than a file path or YAML text."""
    try:
        validate_name(text)
    except InvalidInputError:
        return False
    return not text.endswith((".yaml", ".yml"))
