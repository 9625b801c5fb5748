"""Notebook documents as plain JSON: loading, the kernelspec, and the parameters cell.

Reading a notebook here never imports nbformat (whose schema validation costs ≈ 1.7 s to import); the
worker that executes a job uses papermill and nbformat as usual. Parameter inspection follows papermill's
Python translator (``name: type = default  # help`` lines of the cell tagged ``parameters``), and also infers
the type of an un-annotated literal default.
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import InvalidInputError, NotFoundError

__all__ = ["Parameter", "coerce_parameters", "inspect_parameters", "kernel_name", "load_notebook", "parameters_cell"]

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict", tuple: "tuple"}


@dataclass(frozen=True)
class Parameter:
    """A parameter of a job: its name, inferred type name (``"None"`` when unknown), default source, help."""

    name: str
    inferred_type_name: str
    default: str
    help: str

    def to_json(self) -> dict[str, str]:
        """A JSON-ready dict (the same keys as papermill's ``inspect_notebook``)."""
        return {
            "name": self.name,
            "inferred_type_name": self.inferred_type_name,
            "default": self.default,
            "help": self.help,
        }


def load_notebook(source: Any) -> tuple[dict[str, Any], bytes]:
    """Return ``(notebook dict, canonical bytes)`` for a path, JSON text/bytes, a dict or a NotebookNode.

    Raises :class:`NotFoundError` for a missing file and :class:`InvalidInputError` when it is not a
    version-4 notebook.
    """
    if isinstance(source, os.PathLike) or (isinstance(source, str) and not source.lstrip().startswith("{")):
        path = Path(source).expanduser()
        if not path.is_file():
            raise NotFoundError(f"no notebook at {str(path)!r}: give the path of a saved .ipynb file")
        raw: Any = path.read_bytes()
    else:
        raw = source
    if isinstance(raw, bytes | bytearray | str):
        try:
            nb = json.loads(raw)
        except ValueError as exc:
            raise InvalidInputError(f"the notebook is not valid JSON: {exc}", "notebook") from exc
    elif isinstance(raw, dict):
        nb = json.loads(json.dumps(raw))  # a deep, JSON-only copy (a NotebookNode is a dict)
    else:
        raise InvalidInputError(
            f"cannot read a notebook from a {type(raw).__name__}: pass a path, notebook JSON or a notebook dict",
            "notebook",
        )
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) or nb.get("nbformat") != 4:
        raise InvalidInputError(
            "not a version-4 Jupyter notebook (it needs 'nbformat': 4 and a 'cells' list)", "notebook"
        )
    for cell in nb["cells"]:
        if not isinstance(cell, dict) or "cell_type" not in cell:
            raise InvalidInputError("the notebook has a malformed cell (every cell needs a 'cell_type')", "notebook")
    return nb, json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"


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
        if "parameters" in ((cell.get("metadata") or {}).get("tags") or []):
            return index
    return None


def inspect_parameters(nb: dict[str, Any]) -> dict[str, Parameter]:
    """Return the parameters declared in the notebook's ``parameters`` cell, in order (empty when none).

    Only Python notebooks are inspected (other languages give ``{}``, as papermill does without a translator).
    """
    index = parameters_cell(nb)
    if index is None or not language(nb).lower().startswith("python"):
        return {}
    source = cell_source(nb["cells"][index])
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    lines = source.splitlines()
    params: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, annotation, value = node.target.id, ast.get_source_segment(source, node.annotation), node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, annotation, value = node.targets[0].id, None, node.value
        else:
            continue
        default = ast.get_source_segment(source, value) if value is not None else "None"
        type_name = annotation or _literal_type(value)
        line = lines[node.end_lineno - 1] if node.end_lineno else ""
        comment = line.split("#", 1)[1].strip() if "#" in line[node.end_col_offset or 0 :] else ""
        params[name] = Parameter(name, type_name or "None", default or "None", comment)
    return params


def _literal_type(value: ast.expr | None) -> str | None:
    if value is None:
        return None
    try:
        literal = ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError):
        return None
    if literal is None:
        return None
    return _TYPE_NAMES.get(type(literal))


def _parse_scalar(text: str) -> Any:
    """Papermill's ``-p`` rule for an untyped value: True/False/None, an int, a float, else the string."""
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    if text in ("None", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _coerce(name: str, value: Any, type_name: str) -> Any:
    if not isinstance(value, str):
        if type_name == "float" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    base = type_name.split("[", 1)[0].strip().lower()
    try:
        if base == "str":
            return value
        if base == "int":
            return int(value)
        if base == "float":
            return float(value)
        if base == "bool":
            if value.lower() in ("true", "1", "yes"):
                return True
            if value.lower() in ("false", "0", "no"):
                return False
            raise ValueError(value)
        if base in ("list", "dict", "tuple"):
            parsed = json.loads(value)
            return tuple(parsed) if base == "tuple" else parsed
    except ValueError as exc:
        raise InvalidInputError(f"parameter {name!r} must be a {base}, got {value!r}", f"parameters.{name}") from exc
    return _parse_scalar(value)


def coerce_parameters(values: dict[str, Any] | None, declared: dict[str, Parameter], job: str) -> dict[str, Any]:
    """Check ``values`` against the declared parameters and convert strings to the declared types.

    Strings (from the CLI, magics or a query string) become ints, floats, bools, lists or dicts when the
    parameter is declared that way; values of other types pass through. Raises :class:`InvalidInputError`
    for an undeclared name (when the notebook declares parameters) or a string that does not convert.
    """
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InvalidInputError("parameters must be a mapping of name to value", "parameters")
    out: dict[str, Any] = {}
    for name, value in values.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidInputError(f"parameter name {name!r} is not a Python identifier", "parameters")
        if declared and name not in declared:
            raise InvalidInputError(
                f"job {job!r} has no parameter {name!r}; its parameters are {', '.join(declared)}",
                f"parameters.{name}",
            )
        param = declared.get(name)
        out[name] = _coerce(name, value, param.inferred_type_name) if param else value
        try:
            json.dumps(out[name])
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"parameter {name!r} must be a JSON value (number, string, bool, list, dict), got a "
                f"{type(out[name]).__name__}",
                f"parameters.{name}",
            ) from exc
    return out


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Parse ``["k=v", …]`` (from ``-p k=v`` options) into ``{k: v}``; raise :class:`InvalidInputError`."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"parameter {item!r} is not of the form name=value", "parameters")
        out[key.strip()] = value
    return out
