"""Notebook documents as plain JSON: loading and checking them, the kernelspec, and the parameters cell.

Reading a notebook here never imports nbformat (whose schema validation costs ≈ 1.7 s to import); the
worker that executes a job uses papermill and nbformat as usual. :func:`load_notebook` checks what the
worker and papermill rely on, so that a notebook they would choke on is refused when it is stored, with an
:class:`~nbdeploy.exceptions.InvalidInputError` whose ``field`` names the place (``metadata.kernelspec.name``,
``cells[3].metadata.tags``, ``cells[3].source``):

- ``nbformat`` 4; ``metadata``, ``metadata.kernelspec`` and ``metadata.language_info`` objects, their
  ``name``/``language``/``display_name`` strings, the kernelspec name a kernelspec name (no path);
- cells objects of type ``code``, ``markdown`` or ``raw``, their ``metadata`` an object, ``tags`` a list of
  strings, ``source`` a string or a list of strings, a code cell's ``outputs`` a list;
- text that is Unicode (no lone surrogate such as ``"\\ud800"``), nesting JSON can hold.

Keys nbformat requires that have an obvious empty value (``metadata``, a cell's ``metadata``/``source``, a
code cell's ``outputs``/``execution_count``, ``nbformat_minor``) are filled in. Parameter inspection follows
papermill's Python translator (:mod:`.parameter_cell`) and values are checked as :mod:`.parameter_values` says.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ..exceptions import InvalidInputError, NotFoundError
from .parameter_cell import Parameter, read_parameters
from .parameter_values import (
    CheckedParameters,
    ParameterWarning,
    check_parameters,
    coerce_parameters,
    parse_assignments,
)

__all__ = [
    "KERNEL_NAME_PATTERN",
    "CheckedParameters",
    "Parameter",
    "ParameterWarning",
    "check_parameters",
    "coerce_parameters",
    "inspect_parameters",
    "kernel_name",
    "load_notebook",
    "parameters_cell",
    "parse_assignments",
]

KERNEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_KERNEL_NAME_RE = re.compile(KERNEL_NAME_PATTERN)
CELL_TYPES = ("code", "markdown", "raw")
_FIX = "save the notebook from Jupyter again, or fix that field"


def load_notebook(source: Any) -> tuple[dict[str, Any], bytes]:
    """Return ``(notebook dict, canonical bytes)`` for a path, JSON text/bytes, a dict or a NotebookNode.

    The notebook is checked (see the module docstring) and keys nbformat requires are filled in. Raises
    :class:`NotFoundError` for a missing file and :class:`InvalidInputError` (``field`` naming the offending
    field, ``notebook`` for the whole) when it cannot be read or is not a valid version-4 notebook.
    """
    raw = _read_source(source)
    if not isinstance(raw, bytes | bytearray | str | dict):
        raise InvalidInputError(
            f"cannot read a notebook from a {type(raw).__name__}: pass a path, notebook JSON or a notebook dict",
            "notebook",
        )
    try:
        # a dict (a NotebookNode is one) is deep-copied through JSON, keeping only what JSON holds
        nb = json.loads(json.dumps(raw) if isinstance(raw, dict) else raw)
    except RecursionError as exc:
        raise InvalidInputError("the notebook nests its JSON too deeply to be read", "notebook") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"the notebook is not UTF-8 text: {exc.reason} at byte {exc.start}", "notebook"
        ) from exc
    except ValueError as exc:  # JSONDecodeError; a circular dict
        raise InvalidInputError(f"the notebook is not valid JSON: {exc}", "notebook") from exc
    except TypeError as exc:
        raise InvalidInputError(f"the notebook holds a value JSON cannot: {exc}", "notebook") from exc
    _check_notebook(nb)
    try:
        data = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"
    except RecursionError as exc:
        raise InvalidInputError("the notebook nests its JSON too deeply to be stored", "notebook") from exc
    except UnicodeEncodeError as exc:
        where = _surrogate_path(nb) or "notebook"
        raise InvalidInputError(
            f"{where} holds a lone surrogate ({exc.object[exc.start : exc.end]!a}), which is not Unicode text: "
            "replace it, or save the notebook from Jupyter again",
            where,
        ) from exc
    return nb, data


def _read_source(source: Any) -> Any:
    """The bytes of a notebook file, or ``source`` itself when it is notebook JSON, a dict or anything else."""
    if not (isinstance(source, os.PathLike) or (isinstance(source, str) and not source.lstrip().startswith("{"))):
        return source
    path = Path(source).expanduser()
    try:
        if not path.is_file():
            raise NotFoundError(f"no notebook at {str(path)[:200]!r}: give the path of a saved .ipynb file")
        return path.read_bytes()
    except (OSError, ValueError) as exc:  # a name too long, a NUL in it, no permission
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InvalidInputError(
            f"cannot read a notebook at {str(path)[:200]!r}: {reason}; give the path of a saved .ipynb file or the "
            "notebook's JSON",
            "notebook",
        ) from exc


def _check_notebook(nb: Any) -> None:
    """Check ``nb`` in place (and fill in keys nbformat requires); raise :class:`InvalidInputError`."""
    if not isinstance(nb, dict) or type(nb.get("nbformat")) is not int or nb["nbformat"] != 4:
        raise InvalidInputError(
            "not a version-4 Jupyter notebook (it needs 'nbformat': 4 and a 'cells' list)", "notebook"
        )
    if not isinstance(nb.get("cells"), list):
        raise InvalidInputError("not a version-4 Jupyter notebook (it needs 'nbformat': 4 and a 'cells' list)", "cells")
    minor = nb.setdefault("nbformat_minor", 4)
    if type(minor) is not int or minor < 0:
        raise InvalidInputError(f"nbformat_minor must be a whole number, got {_json_type(minor)}", "nbformat_minor")
    meta = _object(nb, "metadata", "metadata")
    if "kernelspec" in meta:
        spec = _object(meta, "kernelspec", "metadata.kernelspec")
        for key in ("name", "language", "display_name"):
            _string(spec, key, f"metadata.kernelspec.{key}")
        name = spec.get("name")
        if name is not None and not _KERNEL_NAME_RE.fullmatch(name):
            raise InvalidInputError(
                f"metadata.kernelspec.name {name[:80]!r} is not a kernelspec name: use letters, digits, '.', '_' or "
                "'-', starting with a letter or digit (e.g. 'python3'), as `jupyter kernelspec list` shows them",
                "metadata.kernelspec.name",
            )
    if "language_info" in meta:
        info = _object(meta, "language_info", "metadata.language_info")
        _string(info, "name", "metadata.language_info.name")
    for index, cell in enumerate(nb["cells"]):
        _check_cell(cell, f"cells[{index}]")


def _check_cell(cell: Any, where: str) -> None:
    if not isinstance(cell, dict) or "cell_type" not in cell:
        raise InvalidInputError(
            f"{where} is a malformed cell (every cell needs a 'cell_type'), got {_json_type(cell)}", where
        )
    if cell["cell_type"] not in CELL_TYPES:
        raise InvalidInputError(
            f"{where}.cell_type must be 'code', 'markdown' or 'raw', got {_json_type(cell['cell_type'])}",
            f"{where}.cell_type",
        )
    meta = _object(cell, "metadata", f"{where}.metadata")
    tags = meta.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise InvalidInputError(
            f'{where}.metadata.tags must be a list of strings (e.g. ["parameters"]), got {_json_type(tags)}: {_FIX}',
            f"{where}.metadata.tags",
        )
    source = cell.setdefault("source", "")
    if not isinstance(source, str) and not (isinstance(source, list) and all(isinstance(s, str) for s in source)):
        raise InvalidInputError(
            f"{where}.source must be a string or a list of strings, got {_json_type(source)}: {_FIX}",
            f"{where}.source",
        )
    if "id" in cell and not isinstance(cell["id"], str):
        raise InvalidInputError(f"{where}.id must be a string, got {_json_type(cell['id'])}", f"{where}.id")
    if cell["cell_type"] == "code":
        if not isinstance(cell.setdefault("outputs", []), list):
            raise InvalidInputError(f"{where}.outputs must be a list: {_FIX}", f"{where}.outputs")
        count = cell.setdefault("execution_count", None)
        if count is not None and type(count) is not int:
            raise InvalidInputError(
                f"{where}.execution_count must be a whole number or null, got {_json_type(count)}",
                f"{where}.execution_count",
            )


def _object(container: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """``container[key]`` (set to ``{}`` when missing), which must be an object."""
    value = container.setdefault(key, {})
    if not isinstance(value, dict):
        raise InvalidInputError(f"{where} must be an object, got {_json_type(value)}: {_FIX}", where)
    return value


def _string(container: dict[str, Any], key: str, where: str) -> None:
    if key in container and not isinstance(container[key], str):
        raise InvalidInputError(f"{where} must be a string, got {_json_type(container[key])}: {_FIX}", where)


def _json_type(value: Any) -> str:
    """``null``, ``a number 3``, ``a string 'x'``, ``an array``, ``an object``: a JSON value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"a number {value!r}"
    if isinstance(value, str):
        return f"a string {value[:40]!r}"
    return "an array" if isinstance(value, list) else "an object"


def _surrogate_path(nb: dict[str, Any]) -> str | None:
    """The field of the first text in ``nb`` that is not valid Unicode (a lone surrogate)."""
    stack: list[tuple[str, Any]] = [("", nb)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return path or "notebook"
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                try:
                    key.encode("utf-8")
                except UnicodeEncodeError:
                    return path or "notebook"
                stack.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
    return None


def cell_source(cell: dict[str, Any]) -> str:
    """The source of a cell as one string (notebooks store it as a string or a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def kernel_name(nb: dict[str, Any]) -> str | None:
    """The notebook's own kernelspec name, or ``None`` when it has none."""
    spec = (nb.get("metadata") or {}).get("kernelspec") or {}
    return spec.get("name") or None


def language(nb: dict[str, Any]) -> str:
    """The notebook's language (``python`` unless its metadata says otherwise)."""
    meta = nb.get("metadata") or {}
    return str(
        (meta.get("kernelspec") or {}).get("language") or (meta.get("language_info") or {}).get("name") or "python"
    )


def parameters_cell(nb: dict[str, Any]) -> int | None:
    """Index of the first cell tagged ``parameters``, or ``None``."""
    for index, cell in enumerate(nb["cells"]):
        tags = (cell.get("metadata") or {}).get("tags") or []
        if isinstance(tags, list) and "parameters" in tags:
            return index
    return None


def inspect_parameters(nb: dict[str, Any]) -> dict[str, Parameter]:
    """Return the parameters declared in the notebook's ``parameters`` cell, in order (empty when none).

    Only Python notebooks are inspected (other languages give ``{}``, as papermill does without a translator).
    Raises :class:`InvalidInputError` (``field`` ``cells[N].source``) for a parameters cell too large or too
    deeply nested to read (see :func:`~nbdeploy.jobs.parameter_cell.read_parameters`).
    """
    index = parameters_cell(nb)
    if index is None or not language(nb).lower().startswith("python"):
        return {}
    return read_parameters(cell_source(nb["cells"][index]), f"cells[{index}].source")
