"""Checks of a run's options and the job name a notebook's file name gives, shared by jobs and schedules."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from ..exceptions import InvalidInputError
from ..names import validate_name
from .notebooks import KERNEL_NAME_PATTERN

__all__ = ["MAX_RETRIES", "name_from_path", "validate_run_options"]

MAX_RETRIES = 20


def validate_run_options(timeout: Any, retries: Any, kernel: Any) -> tuple[float | None, int, str | None]:
    """Check ``timeout`` (seconds > 0 or None), ``retries`` (0–20) and ``kernel`` (a kernelspec name or None)."""
    if timeout is not None:
        try:
            timeout = float(timeout)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"timeout must be a number of seconds, got {timeout!r}", "timeout") from exc
        if not math.isfinite(timeout) or timeout <= 0:
            raise InvalidInputError("timeout must be a positive number of seconds", "timeout")
    if isinstance(retries, bool) or not isinstance(retries, int | str):
        raise InvalidInputError(f"retries must be a whole number from 0 to {MAX_RETRIES}", "retries")
    try:
        retries = int(retries)
    except ValueError as exc:
        raise InvalidInputError(f"retries must be a whole number from 0 to {MAX_RETRIES}", "retries") from exc
    if not 0 <= retries <= MAX_RETRIES:
        raise InvalidInputError(f"retries must be from 0 to {MAX_RETRIES}, got {retries}", "retries")
    if kernel is not None and (not isinstance(kernel, str) or not re.fullmatch(KERNEL_NAME_PATTERN, kernel)):
        raise InvalidInputError(f"kernel {kernel!r} is not a kernelspec name (e.g. 'python3')", "kernel")
    return timeout, retries, kernel


def name_from_path(path: str | Path) -> str:
    """A job name from a notebook's file name: ``Daily Report.ipynb`` → ``daily-report``."""
    stem = Path(path).stem.lower()
    name = re.sub(r"[^a-z0-9._-]+", "-", stem).strip("-._")[:64]
    return validate_name(name or "job", "name")
