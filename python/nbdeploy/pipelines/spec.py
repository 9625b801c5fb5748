"""A pipeline's definition: ``NAME.pipeline.yaml`` (or a dict, or the :class:`Pipeline` builder) → a checked DAG.

The file's shape::

    name: daily
    parameters: {day: "2026-11-30"}
    nodes:
      extract: {notebook: extract.ipynb}
      clean:   {notebook: clean.ipynb, after: [extract], parameters: {limit: 10}}
      report:  {notebook: report.ipynb, after: [clean], cache: false}

A node runs a notebook (``notebook``: a path relative to the file) or a stored job (``job: NAME`` or
``NAME@VERSION``), with ``parameters`` (values, or ``{{ params.day }}`` references to the pipeline's parameters),
its upstream nodes (``after``), ``kernel``, ``resources`` (``{GPU: 1}``), ``timeout`` (seconds), ``retries`` and
``cache`` (``true``, ``false``, or the longest age of a result it may reuse: ``"30m"``, ``"1h"``, ``"2d"``).
:func:`parse` checks everything that needs no catalog (names, keys, types, references, upstreams, cycles) and
raises :class:`SpecError` naming the node and the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import InvalidInputError, SignatureError
from ..names import validate_name

__all__ = ["NodeSpec", "Pipeline", "PipelineSpec", "SpecError", "parse", "parse_yaml", "resolve", "staleness"]

NODE_KEYS = (
    "notebook",
    "job",
    "after",
    "parameters",
    "cache",
    "kernel",
    "resources",
    "timeout",
    "retries",
    "description",
)
PIPELINE_KEYS = ("name", "parameters", "nodes", "description")
_REF = re.compile(r"\{\{\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_NODES = 500


class SpecError(SignatureError):
    """A pipeline definition that cannot be used (422): ``errors`` maps ``nodes.NAME[.key]`` to the problem."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}", {where: problem})
        self.where = where


@dataclass(frozen=True)
class NodeSpec:
    """One node: what it runs, with which parameters, after which nodes, and how."""

    name: str
    notebook: str | None = None
    job: str | None = None
    job_version: int | None = None
    after: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    cache: bool | str = True
    kernel: str | None = None
    resources: dict[str, float] | None = None
    timeout: float | None = None
    retries: int = 0
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "notebook": self.notebook,
            "job": self.job,
            "job_version": self.job_version,
            "after": list(self.after),
            "parameters": dict(self.parameters),
            "cache": self.cache,
            "kernel": self.kernel,
            "resources": self.resources,
            "timeout": self.timeout,
            "retries": self.retries,
            "description": self.description,
        }


@dataclass(frozen=True)
class PipelineSpec:
    """A checked pipeline: its name, parameters and nodes in a topological order (upstreams first)."""

    name: str
    parameters: dict[str, Any]
    nodes: dict[str, NodeSpec]
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": dict(self.parameters),
            "nodes": {n: node.to_json() for n, node in self.nodes.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PipelineSpec:
        """Rebuild a stored spec (see :meth:`to_json`); no checks beyond its shape."""
        nodes = {}
        for name, n in data["nodes"].items():
            nodes[name] = NodeSpec(
                name=name,
                notebook=n.get("notebook"),
                job=n.get("job"),
                job_version=n.get("job_version"),
                after=tuple(n.get("after") or ()),
                parameters=dict(n.get("parameters") or {}),
                cache=n.get("cache", True),
                kernel=n.get("kernel"),
                resources=n.get("resources"),
                timeout=n.get("timeout"),
                retries=int(n.get("retries") or 0),
                description=n.get("description") or "",
            )
        return cls(data["name"], dict(data.get("parameters") or {}), nodes, data.get("description") or "")

    def descendants(self, names: set[str]) -> set[str]:
        """``names`` and every node downstream of them."""
        found = set(names)
        for name, node in self.nodes.items():  # topological order: upstreams were seen first
            if any(u in found for u in node.after):
                found.add(name)
        return found

    def with_nodes(self, nodes: dict[str, NodeSpec]) -> PipelineSpec:
        return PipelineSpec(self.name, self.parameters, nodes, self.description)


def staleness(cache: bool | str) -> float | None:
    """Seconds a cached result may be old for ``cache`` (``None``: any age; ``0``: never reuse)."""
    if cache is True:
        return None
    if cache is False:
        return 0.0
    match = _DURATION.match(str(cache))
    if match is None:
        raise InvalidInputError(f"cache must be true, false or an age like '1h', got {cache!r}", "cache")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _check_json(value: Any, where: str, depth: int = 0) -> None:
    if depth > 32:
        raise SpecError(where, "nests too deeply")
    if value is None or isinstance(value, bool | int | float | str):
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_json(v, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise SpecError(where, f"keys must be strings, got {k!r}")
            _check_json(v, f"{where}.{k}", depth + 1)
        return
    raise SpecError(where, f"must be JSON (a string, number, boolean, list or mapping), got {type(value).__name__}")


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(where, f"must be a mapping of parameter names to values, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str) or not _IDENT.fullmatch(key):
            raise SpecError(where, f"parameter name {key!r} is not a Python identifier")
    _check_json(value, where)
    return dict(value)


def _node(name: Any, raw: Any, base: Path | None, root: Path | None = None) -> NodeSpec:
    where = f"nodes.{name}"
    try:
        validate_name(name, "node name")
    except InvalidInputError as exc:
        raise SpecError(where, str(exc)) from None
    if isinstance(raw, str):  # shorthand: `extract: extract.ipynb`
        raw = {"notebook": raw}
    if not isinstance(raw, dict):
        raise SpecError(where, "must be a mapping with a notebook (or job) and options")
    unknown = sorted(set(raw) - set(NODE_KEYS))
    if unknown:
        raise SpecError(where, f"unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(NODE_KEYS)}")
    notebook, job = raw.get("notebook"), raw.get("job")
    if (notebook is None) == (job is None):
        raise SpecError(where, "give either `notebook: PATH` or `job: NAME`")
    job_version = None
    if notebook is not None:
        if not isinstance(notebook, str) or not notebook.strip():
            raise SpecError(f"{where}.notebook", "must be a path to a .ipynb file")
        if base is not None:
            try:
                path = Path(notebook) if Path(notebook).is_absolute() else base / notebook
                if root is not None and not path.resolve().is_relative_to(root.resolve()):
                    raise SpecError(f"{where}.notebook", f"{notebook[:200]!r} is outside the server's root folder")
                found = path.is_file()
            except (OSError, ValueError) as exc:  # a name too long, a NUL in it
                raise SpecError(f"{where}.notebook", f"cannot read {notebook[:200]!r}: {exc}") from None
            if not found:
                raise SpecError(
                    f"{where}.notebook", f"no notebook at {notebook[:200]!r} (paths are relative to the file)"
                )
    else:
        if not isinstance(job, str):
            raise SpecError(f"{where}.job", "must be a stored job's name, e.g. 'report' or 'report@3'")
        jname, _, ver = job.partition("@")
        try:
            validate_name(jname, "job")
        except InvalidInputError as exc:
            raise SpecError(f"{where}.job", str(exc)) from None
        if ver:
            if not ver.isdigit():
                raise SpecError(f"{where}.job", f"version {ver!r} must be a number")
            job_version = int(ver)
        job = jname
    after = raw.get("after") or []
    if isinstance(after, str):
        after = [after]
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise SpecError(f"{where}.after", "must be a list of node names")
    if len(set(after)) != len(after):
        raise SpecError(f"{where}.after", "names an upstream node twice")
    cache = raw.get("cache", True)
    if not isinstance(cache, bool):
        try:
            staleness(cache)
        except InvalidInputError as exc:
            raise SpecError(f"{where}.cache", str(exc)) from None
        cache = str(cache).strip()
    kernel = raw.get("kernel")
    if kernel is not None and (
        not isinstance(kernel, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", kernel)
    ):
        raise SpecError(f"{where}.kernel", f"{kernel!r} is not a kernelspec name")
    timeout = raw.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
        raise SpecError(f"{where}.timeout", f"must be a positive number of seconds, got {timeout!r}")
    retries = raw.get("retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise SpecError(f"{where}.retries", f"must be a whole number from 0 to 10, got {retries!r}")
    resources = raw.get("resources")
    if resources is not None:
        if not isinstance(resources, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v > 0
            for k, v in resources.items()
        ):
            raise SpecError(f"{where}.resources", "must map resource names to positive amounts, e.g. {GPU: 1}")
        resources = {k: float(v) for k, v in resources.items()}
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise SpecError(f"{where}.description", "must be text")
    return NodeSpec(
        name=name,
        notebook=notebook,
        job=job,
        job_version=job_version,
        after=tuple(after),
        parameters=_parameters(raw.get("parameters"), f"{where}.parameters"),
        cache=cache,
        kernel=kernel,
        resources=resources,
        timeout=float(timeout) if timeout is not None else None,
        retries=retries,
        description=description,
    )


def _references(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_REF.findall(value))
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(_references(v) for v in value.values())) if value else set()
    return set()


def _order(nodes: dict[str, NodeSpec]) -> list[str]:
    """Node names upstreams first (Kahn's algorithm, ties in file order); raises :class:`SpecError` on a cycle."""
    for node in nodes.values():
        for upstream in node.after:
            if upstream not in nodes:
                known = ", ".join(nodes)
                raise SpecError(f"nodes.{node.name}.after", f"unknown upstream node {upstream!r} (nodes: {known})")
            if upstream == node.name:
                raise SpecError(f"nodes.{node.name}.after", "a node cannot run after itself")
    remaining = {n: set(node.after) for n, node in nodes.items()}
    order: list[str] = []
    while remaining:
        ready = [n for n, ups in remaining.items() if not ups]
        if not ready:
            cycle = _find_cycle({n: nodes[n].after for n in remaining})
            raise SpecError(f"nodes.{cycle[0]}.after", f"cycle: {' -> '.join(cycle)}")
        for n in ready:
            order.append(n)
            del remaining[n]
        for ups in remaining.values():
            ups.difference_update(ready)
    return order


def _find_cycle(graph: dict[str, tuple[str, ...]]) -> list[str]:
    start = next(iter(graph))
    path: list[str] = [start]
    seen = {start: 0}
    node = start
    while True:
        node = next(u for u in graph[node] if u in graph)
        if node in seen:
            cycle = [*path[seen[node] :], node]
            return list(reversed(cycle))
        seen[node] = len(path)
        path.append(node)


def parse(
    data: Any, base: str | Path | None = None, name: str | None = None, root: str | Path | None = None
) -> PipelineSpec:
    """Check a pipeline definition (the YAML's mapping) and return it with its nodes in topological order.

    ``base``: the folder notebook paths are relative to (checked to exist when given); ``root``: the folder no
    notebook may be outside of; ``name`` overrides (or supplies) the pipeline's name. Raises :class:`SpecError` (422) naming the node and the problem.
    """
    if not isinstance(data, dict):
        raise SpecError("pipeline", "must be a mapping with `name`, `parameters` and `nodes`")
    unknown = sorted(set(data) - set(PIPELINE_KEYS))
    if unknown:
        raise SpecError(
            "pipeline", f"unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(PIPELINE_KEYS)}"
        )
    pname = name or data.get("name")
    try:
        pname = validate_name(pname, "pipeline name")
    except InvalidInputError as exc:
        raise SpecError("name", str(exc)) from None
    parameters = _parameters(data.get("parameters"), "parameters")
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        raise SpecError("nodes", "a pipeline needs at least one node: `nodes: {extract: {notebook: extract.ipynb}}`")
    if len(raw_nodes) > MAX_NODES:
        raise SpecError("nodes", f"at most {MAX_NODES} nodes")
    folder = Path(base) if base is not None else None
    rootp = Path(root) if root is not None else None
    nodes = {str(n): _node(n, raw, folder, rootp) for n, raw in raw_nodes.items()}
    for node in nodes.values():
        missing = _references(node.parameters) - set(parameters)
        if missing:
            raise SpecError(
                f"nodes.{node.name}.parameters",
                f"refers to unknown pipeline parameter(s) {', '.join(sorted(missing))}",
            )
        if "upstream" in node.parameters:
            raise SpecError(f"nodes.{node.name}.parameters", "'upstream' is given by the pipeline; do not set it")
    order = _order(nodes)
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise SpecError("description", "must be text")
    return PipelineSpec(pname, parameters, {n: nodes[n] for n in order}, description)


def parse_yaml(
    text: str, base: str | Path | None = None, name: str | None = None, root: str | Path | None = None
) -> PipelineSpec:
    """:func:`parse` of a ``.pipeline.yaml`` text; raises :class:`SpecError` for YAML that does not load."""
    import yaml

    if not isinstance(text, str):
        raise SpecError("yaml", "must be text")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError("yaml", f"is not valid YAML: {exc}") from None
    return parse(data, base, name, root)


def resolve(value: Any, params: dict[str, Any]) -> Any:
    """``value`` with ``{{ params.x }}`` references replaced: a string that is only a reference takes the
    parameter's value (its type kept), references inside a longer string are formatted into it."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value.strip())
        if whole:
            return params[whole.group(1)]
        return _REF.sub(lambda m: str(params[m.group(1)]), value)
    if isinstance(value, list):
        return [resolve(v, params) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, params) for k, v in value.items()}
    return value


class Pipeline:
    """A builder: ``Pipeline("daily", day="2026-11-30").node("extract", "extract.ipynb").node("clean",
    "clean.ipynb", after=["extract"], parameters={"limit": 10})``; ``nbd.pipelines.put(builder)`` stores it."""

    def __init__(self, name: str, description: str = "", **parameters: Any) -> None:
        self.name, self.description, self.parameters = name, description, dict(parameters)
        self.nodes: dict[str, dict[str, Any]] = {}

    def node(
        self,
        name: str,
        notebook: str | Path | None = None,
        *,
        job: str | None = None,
        after: list[str] | tuple[str, ...] = (),
        parameters: dict[str, Any] | None = None,
        **options: Any,
    ) -> Pipeline:
        """Add node ``name`` (a notebook path or a stored ``job``); ``options``: cache, kernel, resources, timeout,
        retries. Returns the builder."""
        entry: dict[str, Any] = {"after": list(after), **options}
        if notebook is not None:
            entry["notebook"] = str(notebook)
        if job is not None:
            entry["job"] = job
        if parameters:
            entry["parameters"] = dict(parameters)
        self.nodes[name] = entry
        return self

    def to_dict(self) -> dict[str, Any]:
        """The same mapping a ``.pipeline.yaml`` file holds."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters, "nodes": self.nodes}
