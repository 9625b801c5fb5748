"""Tracebacks that show the user's own lines, whatever cloudpickle does to file names.

cloudpickle pickles a handler by value and (from 3.1.3) names its code ``<dynamic-code>``, so a worker's
traceback would point at nothing. A package therefore carries the text its code was compiled from; on the worker
:func:`named` gives every code object of the handler (and of the helpers it brought along) a file name that says
what it is — ``<nbdeploy greet v3>`` — and registers that text with :mod:`linecache` under it, so tracebacks show
the failing line of the user's cell or file.
"""

from __future__ import annotations

import inspect
import linecache
import textwrap
import threading
import types
from collections.abc import Callable
from typing import Any

__all__ = ["named", "trace_source"]

DYNAMIC = "<dynamic-code>"  # what cloudpickle names the code it rebuilds
_lock = threading.Lock()


def trace_source(fn: Callable[..., Any], source: str | None) -> tuple[str, int]:
    """``(text, offset)`` to show in ``fn``'s tracebacks: line ``n`` of its code is line ``n - offset`` of text.

    The whole file or notebook cell ``fn`` was compiled from when Python still knows it (offset 0: helpers from
    the same file show right too); else ``source`` (the function's own source, starting at its first line).
    """
    code = fn.__code__
    lines = linecache.getlines(code.co_filename)
    if lines and len(lines) >= code.co_firstlineno:
        return "".join(lines), 0
    text = source if source is not None else _own_source(fn)
    return text, code.co_firstlineno - 1 if source is None or not _defines(text, fn) else 0


def _own_source(fn: Callable[..., Any]) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return ""


def _defines(text: str, fn: Callable[..., Any]) -> bool:
    """Whether ``text`` is what ``fn`` was compiled from (its first line there is the function's own)."""
    lines = text.splitlines()
    first = fn.__code__.co_firstlineno
    return first <= len(lines) and fn.__name__ in lines[first - 1]


def _relabel(code: types.CodeType, filename: str, offset: int) -> types.CodeType:
    consts = tuple(_relabel(c, filename, offset) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_firstlineno=max(1, code.co_firstlineno - offset), co_consts=consts)


def _dynamic_functions(fn: Callable[..., Any]) -> list[types.FunctionType]:
    """``fn`` and the functions rebuilt by value with it (helpers in its globals and closure)."""
    found: list[types.FunctionType] = []
    todo: list[Any] = [fn]
    seen: set[int] = set()
    while todo:
        f = todo.pop()
        if id(f) in seen or not isinstance(f, types.FunctionType) or f.__code__.co_filename != DYNAMIC:
            continue
        seen.add(id(f))
        found.append(f)
        names = {i.argval for i in _instructions(f.__code__) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
        todo += [f.__globals__[n] for n in names if n in f.__globals__]
        todo += [c.cell_contents for c in f.__closure__ or () if _filled(c)]
    return found


def _instructions(code: types.CodeType) -> list[Any]:
    import dis

    out = list(dis.get_instructions(code))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out += _instructions(const)
    return out


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def named(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
    """Name ``fn``'s code ``<nbdeploy {label}>`` and register the source it carries under that name (once per
    loaded function; cheap afterwards). Returns ``fn``."""
    if getattr(fn, "__nbdeploy_label__", None) is not None:
        return fn
    with _lock:
        if getattr(fn, "__nbdeploy_label__", None) is not None:
            return fn
        text, offset = getattr(fn, "__nbdeploy_source__", (None, 0))
        filename = f"<nbdeploy {label}>"
        if text:
            lines = text.splitlines(keepends=True)
            linecache.cache[filename] = (len(text), None, lines, filename)
            for f in _dynamic_functions(fn):
                f.__code__ = _relabel(f.__code__, filename, offset)
        fn.__nbdeploy_label__ = label  # type: ignore[attr-defined]
    return fn
