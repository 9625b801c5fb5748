"""Servers advertise their URL in ``<home>/runtime/servers/<pid>.json`` so kernels can print working URLs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..runtime.advert import pid_alive

__all__ = ["advertise_server", "find_server", "withdraw_server"]


def _folder(runtime_dir: Path) -> Path:
    return runtime_dir / "servers"


def advertise_server(runtime_dir: Path, url: str, kind: str) -> Path:
    """Record that this process serves the API at ``url`` (``kind``: "jupyter" or "standalone")."""
    folder = _folder(runtime_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url.rstrip("/"), "kind": kind, "pid": os.getpid()}))
    tmp.replace(path)
    return path


def withdraw_server(runtime_dir: Path) -> None:
    """Remove this process's advertisement."""
    (_folder(runtime_dir) / f"{os.getpid()}.json").unlink(missing_ok=True)


def find_server(runtime_dir: Path, prefer: str | None = None) -> dict[str, Any] | None:
    """Return the newest live server advertisement (of kind ``prefer`` first), or ``None``."""
    folder = _folder(runtime_dir)
    if not folder.is_dir():
        return None
    found = []
    for path in folder.glob("*.json"):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not pid_alive(int(info.get("pid", 0))):
            path.unlink(missing_ok=True)
            continue
        found.append((info.get("kind") == prefer, path.stat().st_mtime, info))
    return max(found, key=lambda t: (t[0], t[1]))[2] if found else None
