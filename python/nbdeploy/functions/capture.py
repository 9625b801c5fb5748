"""Packaging a handler: its source, the globals it reads pickled by value, and the packages it imports.

A package is one cloudpickle blob ``{"format", "handler", "globals", "source"}``: the handler function
pickled by value (cloudpickle carries the globals it references with it), plus any variables named with
``--capture``. Workers turn it back into a callable with :func:`load_package`.
"""

from __future__ import annotations

import ast
import builtins
import dis
import importlib.metadata
import inspect
import sys
import textwrap
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle

from ..exceptions import InvalidInputError, NotFoundError, UserCodeError
from .signature import describe
from .tracebacks import named, trace_source

__all__ = ["Package", "capture_cell", "capture_file", "capture_function", "load_package", "named"]

PACKAGE_FORMAT = 1
IGNORE_TAG = "nbdeploy-ignore"


@dataclass
class Package:
    """A handler ready to store: the function, what it captured, and what describes it."""

    handler: str
    fn: Callable[..., Any]
    source: str
    captured: dict[str, Any] = field(default_factory=dict)
    explicit: dict[str, Any] = field(default_factory=dict)
    requirements: dict[str, str] = field(default_factory=dict)
    imports: list[str] = field(default_factory=list)
    description: str = ""
    trace: tuple[str, int] = ("", 0)  # what tracebacks show: (text, line offset), see :mod:`.tracebacks`

    def to_bytes(self) -> bytes:
        """Serialise the package; raise :class:`InvalidInputError` naming a global that cannot be pickled."""
        for name, value in {**self.captured, **self.explicit}.items():
            try:
                cloudpickle.dumps(value)
            except Exception as exc:
                raise InvalidInputError(
                    f"cannot deploy {self.handler!r}: the global {name!r} (a {type(value).__name__}) cannot be "
                    f"pickled ({exc}); create it inside the function, or leave it out of --capture",
                    name,
                ) from exc
        payload = {
            "format": PACKAGE_FORMAT,
            "handler": self.fn,
            "globals": self.explicit,
            "source": self.source,
            "trace": self.trace,
        }
        try:
            return cloudpickle.dumps(payload)
        except Exception as exc:
            raise InvalidInputError(f"cannot deploy {self.handler!r}: it cannot be pickled ({exc})", "handler") from exc

    def metadata(self) -> dict[str, Any]:
        """The JSON metadata stored with the version: handler, signature, requirements, captured names…"""
        sig = describe(self.fn)
        return {
            "handler": self.handler,
            "description": self.description or sig["doc"].split("\n\n")[0],
            "signature": sig,
            "requirements": self.requirements,
            "imports": self.imports,
            "captured": {
                name: type(value).__name__ for name, value in sorted({**self.captured, **self.explicit}.items())
            },
            "python": ".".join(map(str, sys.version_info[:3])),
            "source": self.source,
        }


def load_package(data: bytes) -> Callable[..., Any]:
    """Turn a stored package back into its handler (with ``--capture`` variables in its globals)."""
    payload = cloudpickle.loads(data)
    fn = payload["handler"]
    extra = payload.get("globals") or {}
    if extra:
        fn.__globals__.update(extra)
    fn.__nbdeploy_source__ = tuple(payload.get("trace") or (payload.get("source") or "", 0))
    return fn


# --- what a handler reads ----------------------------------------------------------------------------
def _code_names(code: types.CodeType) -> set[str]:
    """The global names a code object (and the code nested in it) loads — not attribute names."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def referenced_globals(fn: Callable[..., Any], skip: Iterable[str] = ()) -> dict[str, Any]:
    """Return the non-module globals ``fn`` (and the functions it calls from the same namespace) reads."""
    found: dict[str, Any] = {}
    seen: set[int] = set()
    skip = set(skip)
    todo = [fn]
    while todo:
        f = todo.pop()
        if id(f) in seen or not hasattr(f, "__code__"):
            continue
        seen.add(id(f))
        for name, cell in zip(f.__code__.co_freevars, f.__closure__ or (), strict=False):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if not isinstance(value, types.ModuleType) and name not in skip:
                found[name] = value
        g = f.__globals__
        for name in _code_names(f.__code__):
            if name not in g or (hasattr(builtins, name) and g[name] is getattr(builtins, name)):
                continue
            value = g[name]
            if isinstance(value, types.ModuleType) or name.startswith("__"):
                continue
            if inspect.isfunction(value) and value.__globals__ is g:
                todo.append(value)  # a helper from the same namespace: look inside it too
                if name in skip:
                    continue
            if name not in skip:
                found[name] = value
    return found


def _top_module(obj: Any) -> str | None:
    module = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(type(obj), "__module__", None)
    if inspect.isfunction(obj) or inspect.isclass(obj):
        module = getattr(obj, "__module__", None)
    return module.split(".")[0] if module else None


def _imports_in(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def requirements_for(modules: Iterable[str]) -> dict[str, str]:
    """Map top-level module names to ``{distribution: installed version}`` (standard library left out)."""
    wanted = [m for m in modules if m and m not in sys.stdlib_module_names and m not in ("__main__", "builtins")]
    if not wanted:  # scanning the installed distributions takes seconds: only when there is something to map
        return {}
    dists = importlib.metadata.packages_distributions()
    out: dict[str, str] = {}
    for module in wanted:
        for dist in dists.get(module, []):
            try:
                out[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
    return dict(sorted(out.items()))


def parse_requirements(text: str | Iterable[str] | None) -> dict[str, str]:
    """Parse ``"pkg>=1,other==2"`` (or a list) into ``{name: specifier}``."""
    if not text:
        return {}
    items = text.split(",") if isinstance(text, str) else list(text)
    out = {}
    for item in (i.strip() for i in items):
        if not item:
            continue
        name = item
        for i, ch in enumerate(item):
            if ch in "<>=!~ [;":
                name = item[:i]
                break
        out[name.strip()] = item[len(name) :].strip()
    return out


# --- capture entry points ---------------------------------------------------------------------------
def capture_function(
    fn: Callable[..., Any],
    *,
    source: str | None = None,
    defined: Iterable[str] = (),
    capture: Iterable[str] | None = None,
    requirements: str | Iterable[str] | None = None,
    description: str | None = None,
) -> Package:
    """Package ``fn``. ``defined`` names the globals its cell defines itself (they are not "captured")."""
    if not callable(fn) or not hasattr(fn, "__code__"):
        raise InvalidInputError(f"{fn!r} is not a Python function: deploy a function defined with def", "handler")
    trace = trace_source(fn, source)
    if source is None:
        try:
            source = textwrap.dedent(inspect.getsource(fn))
        except (OSError, TypeError):
            source = ""
    captured = referenced_globals(fn, skip=defined)
    explicit: dict[str, Any] = {}
    for name in capture or ():
        if name not in fn.__globals__:
            raise NotFoundError(f"--capture names {name!r}, which is not defined in the notebook's namespace")
        explicit[name] = fn.__globals__[name]
    modules = _imports_in(source)
    modules |= {m for v in referenced_globals(fn).values() if (m := _top_module(v))}
    modules |= {
        n.split(".")[0]
        for name in _code_names(fn.__code__)
        if isinstance(mod := fn.__globals__.get(name), types.ModuleType)
        for n in [mod.__name__]
    }
    reqs = requirements_for(modules)
    reqs.update(parse_requirements(requirements))
    return Package(
        handler=fn.__name__,
        fn=fn,
        source=source,
        captured=captured,
        explicit=explicit,
        requirements=reqs,
        imports=sorted(m for m in modules if m and m not in sys.stdlib_module_names and m != "__main__"),
        description=description or "",
        trace=trace,
    )


def defined_names(source: str) -> tuple[list[str], set[str]]:
    """Return (functions defined at top level in order, every top-level name the source binds)."""
    tree = ast.parse(source)
    functions: list[str] = []
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions.append(node.name)
            bound.add(node.name)
        elif isinstance(node, ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                bound |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return functions, bound


def capture_cell(
    source: str,
    namespace: dict[str, Any],
    *,
    handler: str | None = None,
    capture: Iterable[str] | None = None,
    requirements: str | Iterable[str] | None = None,
    description: str | None = None,
) -> Package:
    """Package the handler a cell defines (``handler``, or the last function the cell defines)."""
    try:
        functions, bound = defined_names(source)
    except SyntaxError as exc:
        raise InvalidInputError(f"the cell is not valid Python: {exc}", "source") from exc
    name = handler or (functions[-1] if functions else None)
    if name is None:
        raise InvalidInputError("the cell defines no function: define one, or name it with --handler", "handler")
    if name not in namespace:
        raise NotFoundError(f"handler {name!r} is not defined: run the cell that defines it, or fix --handler")
    return capture_function(
        namespace[name],
        source=source,
        defined=bound - {name},
        capture=capture,
        requirements=requirements,
        description=description,
    )


def _notebook_source(path: Path) -> str:
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    chunks = []
    for cell in nb.cells:
        if cell.cell_type != "code" or IGNORE_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        lines = cell.source.splitlines()
        if lines and lines[0].startswith("%%"):
            if not lines[0].startswith("%%deploy"):
                continue  # another cell magic: not plain Python
            lines = lines[1:]
        chunks.append("\n".join(line for line in lines if not line.lstrip().startswith(("%", "!"))))
    return "\n\n".join(chunks)


def capture_file(
    path: str | Path,
    *,
    handler: str | None = None,
    capture: Iterable[str] | None = None,
    requirements: str | Iterable[str] | None = None,
    description: str | None = None,
) -> Package:
    """Package a handler from a ``.py`` file or a notebook (cells tagged ``nbdeploy-ignore`` left out).

    The file's code runs once, here, in a fresh namespace. ``handler`` defaults to the last function the
    file defines. Raises :class:`NotFoundError` for a missing file and :class:`UserCodeError` when its code
    fails.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no file at {str(path)!r}")
    source = _notebook_source(path) if path.suffix == ".ipynb" else path.read_text()
    namespace: dict[str, Any] = {"__name__": "__nbdeploy_main__", "__file__": str(path.resolve())}
    try:
        exec(compile(source, str(path), "exec"), namespace)
    except Exception as exc:
        import traceback

        raise UserCodeError(type(exc).__name__, f"running {path.name} failed: {exc}", traceback.format_exc()) from exc
    return capture_cell(
        source, namespace, handler=handler, capture=capture, requirements=requirements, description=description
    )
