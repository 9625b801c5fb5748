"""``nbdeploy pipelines import FILE.pipeline``: an Elyra pipeline file as a ``.pipeline.yaml``.

Elyra's format is JSON: ``pipelines[0].nodes``, each with ``op`` (``execute-notebook-node`` for a notebook),
``app_data.label``, ``app_data.component_parameters.filename`` and ``env_vars`` (older files keep these directly in
``app_data``), and its upstream nodes as ``inputs[].links[].node_id_ref``. Notebook nodes, their dependencies and
their environment variables are imported — the variables as the node's papermill parameters (so the notebook's
parameters cell must declare them); any other kind of node (Python or R scripts, components, sub-pipelines) is
refused with its name and kind.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..exceptions import InvalidInputError
from .spec import SpecError, parse

__all__ = ["elyra_to_spec", "import_elyra"]

NOTEBOOK_OP = "execute-notebook-node"


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")[:48] or "node"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _env(params: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in params.get("env_vars") or []:
        if isinstance(item, dict):
            key, value = item.get("env_var"), item.get("value")
        else:
            key, _, value = str(item).partition("=")
        if not key:
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(key)):
            raise SpecError(where, f"environment variable {key!r} is not a parameter name")
        out[str(key)] = value
    return out


def elyra_to_spec(data: Any, name: str) -> dict[str, Any]:
    """The ``.pipeline.yaml`` mapping of an Elyra pipeline document ``data``; raises :class:`SpecError` naming a
    node that is not a notebook node, and for a document that is not an Elyra pipeline."""
    try:
        nodes = data["pipelines"][0]["nodes"]
    except (KeyError, IndexError, TypeError):
        raise SpecError("pipeline", "not an Elyra pipeline file: it has no pipelines[0].nodes") from None
    taken: set[str] = set()
    by_id: dict[str, str] = {}
    for node in nodes:
        app = node.get("app_data") or {}
        label = app.get("label") or (app.get("ui_data") or {}).get("label") or node.get("id") or "node"
        by_id[str(node.get("id"))] = _slug(str(label), taken)
    out: dict[str, Any] = {}
    for node in nodes:
        nid = str(node.get("id"))
        local = by_id[nid]
        op = node.get("op")
        if op != NOTEBOOK_OP:
            kind = op or node.get("type") or "unknown"
            raise SpecError(
                f"nodes.{local}",
                f"is an Elyra {kind!r} node: only notebook nodes ({NOTEBOOK_OP}) can be imported; "
                "turn it into a notebook or remove it",
            )
        app = node.get("app_data") or {}
        params = app.get("component_parameters") or app
        filename = params.get("filename")
        if not filename or not str(filename).endswith(".ipynb"):
            raise SpecError(f"nodes.{local}", f"has no notebook file name (got {filename!r})")
        after = []
        for port in node.get("inputs") or []:
            for link in port.get("links") or []:
                ref = str(link.get("node_id_ref"))
                if ref not in by_id:
                    raise SpecError(f"nodes.{local}.after", f"links to an unknown node id {ref!r}")
                if by_id[ref] not in after:
                    after.append(by_id[ref])
        entry: dict[str, Any] = {"notebook": str(filename)}
        if after:
            entry["after"] = after
        env = _env(params, f"nodes.{local}.env_vars")
        if env:
            entry["parameters"] = env
        out[local] = entry
    return {"name": name, "nodes": out}


def import_elyra(path: Path, name: str | None = None) -> tuple[str, str]:
    """``(.pipeline.yaml text, pipeline name)`` of the Elyra file at ``path``, checked (notebooks relative to the
    file). Raises :class:`SpecError` (422) and :class:`InvalidInputError` for a file that is not JSON."""
    import yaml

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidInputError(f"{path} is not an Elyra pipeline (JSON): {exc}", "file") from None
    stem = Path(path).name.split(".")[0]
    pname = name or re.sub(r"[^a-z0-9_-]+", "-", stem.lower()).strip("-_") or "pipeline"
    mapping = elyra_to_spec(data, pname)
    parse(mapping, Path(path).parent)
    return yaml.safe_dump(mapping, sort_keys=False), pname
