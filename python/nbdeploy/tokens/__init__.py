"""Scoped API tokens for ``nbdeploy serve``: ``read``, ``invoke:<glob>``, ``deploy:<glob>``, ``admin``.

A token is created once (its secret is shown then, and only its SHA-256 is stored in the catalog), may expire,
can be revoked and is listed with its last use. ``nbdeploy tokens create --scope invoke:churn-* --expires 30d``
prints it; every REST route declares the scope it needs (:func:`nbdeploy.server_extension.base.required_scope`).
The server's own token (``NBDEPLOY_TOKEN``) keeps every right.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TokenManager"]


def __getattr__(name: str) -> Any:
    if name == "TokenManager":
        from .manager import TokenManager

        return TokenManager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
