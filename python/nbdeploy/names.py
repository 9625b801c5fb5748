"""Validation of the names users give to functions, jobs, models and aliases."""

from __future__ import annotations

import re

from .exceptions import InvalidNameError

# 1-64 lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, never two dots in a row (no
# '..'-like segments); written without look-arounds so that every JSON-schema and test-data tool reads it.
NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]|\.[a-z0-9_-])*\.?$"
NAME_MAX = 64
_NAME_RE = re.compile(NAME_PATTERN)
KINDS = ("function", "job", "model", "dataset", "artifact", "pipeline")


def validate_name(name: object, what: str = "name") -> str:
    """Return ``name`` unchanged if it is a valid nbdeploy name; raise :class:`InvalidNameError` otherwise.

    A valid name is 1–64 characters of lower-case letters, digits, ``.``, ``_`` and ``-``, starting with a
    letter or digit, and never ``.``/``..``-like path segments.
    """
    if not isinstance(name, str) or len(name) > NAME_MAX or not _NAME_RE.fullmatch(name):
        shown = repr(name) if not isinstance(name, str) or len(name) <= 80 else repr(name[:80]) + "…"
        raise InvalidNameError(
            f"invalid {what} {shown}: use 1-64 lower-case letters, digits, '.', '_' or '-', starting with a "
            "letter or digit and without '..', e.g. 'churn-model'",
            field=what,
        )
    return name


def validate_kind(kind: object) -> str:
    """Return ``kind`` if it is one of :data:`KINDS`; raise :class:`InvalidNameError` otherwise."""
    if kind not in KINDS:
        raise InvalidNameError(f"invalid kind {kind!r}: use one of {', '.join(KINDS)}", field="kind")
    return kind  # type: ignore[return-value]
