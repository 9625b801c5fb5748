"""Helpers for tests that start cluster daemons: stopping process trees by pid, and finding a home's daemon."""

from __future__ import annotations

import json
from pathlib import Path

import psutil


def stop_tree(pid: int, started: float | None = None) -> None:
    """Stop process ``pid`` and its descendants (by pid): SIGTERM, then SIGKILL after a grace period.

    ``started``: the process's start time, so that a pid reused by another process is left alone.
    """
    try:
        proc = psutil.Process(pid)
        if started is not None and abs(proc.create_time() - started) > 1.0:
            return
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=20)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)


def advertised_daemon(runtime_dir: Path) -> tuple[int, float | None] | None:
    """``(pid, start time)`` of the cluster daemon advertised in ``runtime_dir`` (``<home>/runtime``), if any."""
    try:
        data = json.loads((runtime_dir / "cluster.json").read_text())
        return int(data["owner_pid"]), data.get("owner_started")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
