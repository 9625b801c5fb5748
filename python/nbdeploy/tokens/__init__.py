"""Scoped API tokens for ``nbdeploy serve``: ``read``, ``invoke:<glob>``, ``deploy:<glob>``, ``admin``.

A token is created once (its secret is shown then, and only its SHA-256 is stored in the catalog), may expire,
can be revoked and is listed with its last use. ``nbdeploy tokens create --scope invoke:churn-* --expires 30d``
prints it; every REST route declares the scope it needs (:func:`nbdeploy.server_extension.scopes.required_scope`).
The server's own token (``NBDEPLOY_TOKEN``) keeps every right.
"""

from __future__ import annotations

from typing import Any

from ..app import delegate

__all__ = ["TokenManager"]

_manager_attribute, __dir__ = delegate(__name__, "tokens")


def __getattr__(name: str) -> Any:
    """``TokenManager``, or the default app's token manager's ``name`` (``nbd.tokens.create([...])``)."""
    if name == "TokenManager":
        from .manager import TokenManager

        return TokenManager
    return _manager_attribute(name)
