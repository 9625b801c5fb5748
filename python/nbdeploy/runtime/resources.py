"""Dask resources a task or a serving replica asks for (``{"GPU": 1}``): checking a request, and which workers of
a scheduler's ``identity`` offer it. Nothing here imports Dask."""

from __future__ import annotations

import math
import re
from typing import Any

from ..exceptions import InvalidInputError

__all__ = ["normalize_resources", "offering_workers"]


def normalize_resources(value: Any, field: str = "resources") -> dict[str, float] | None:
    """Check a Dask resources request (``{"GPU": 1}``: names to positive amounts); ``None`` or ``{}`` asks for none.

    Raises :class:`~nbdeploy.exceptions.InvalidInputError` naming ``field`` for anything else.
    """
    if value is None or value == {}:
        return None
    if not isinstance(value, dict) or len(value) > 16:
        raise InvalidInputError(f"{field} must be a mapping of resource names to amounts, e.g. {{'GPU': 1}}", field)
    out: dict[str, float] = {}
    for name, amount in value.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", name):
            raise InvalidInputError(f"{field}: {name!r} is not a resource name (e.g. GPU)", field)
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount) or amount <= 0:
            raise InvalidInputError(f"{field}.{name} must be a positive number, got {amount!r}", f"{field}.{name}")
        out[name] = float(amount)
    return out


def offering_workers(info: dict[str, Any], resources: dict[str, float] | None) -> list[str]:
    """The addresses of the workers (in a scheduler ``identity``) that offer ``resources`` (all when ``None``)."""
    workers = info.get("workers", {})
    if not resources:
        return sorted(workers)
    return sorted(
        address
        for address, w in workers.items()
        if all((w.get("resources") or {}).get(name, 0) >= amount for name, amount in resources.items())
    )
