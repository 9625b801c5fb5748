"""The scopes a token can hold, and the scope each REST operation needs (see :mod:`nbdeploy.tokens`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Operation

__all__ = ["SCOPE_KINDS", "handler_scope", "required_scope", "scope_allows"]

#: the scopes a token can hold: ``read``, ``invoke:<glob>``, ``deploy:<glob>``, ``admin``
SCOPE_KINDS = ("read", "invoke", "deploy", "admin")


def required_scope(op: Operation, method: str, path: dict[str, Any]) -> str:
    """The scope a request needs: the operation's declared ``scope`` (``{name}`` filled from the path), or by
    default ``read`` for GET, ``invoke:<name>`` for an operation with a ``metric`` (invoke, predict, infer),
    ``deploy:<name>`` for another write on a named route, ``admin`` for other writes."""
    name = path.get("name")
    if op.scope is not None:
        return op.scope.replace("{name}", str(name)) if "{name}" in op.scope else op.scope
    if method.upper() in ("GET", "HEAD", "OPTIONS"):
        return "read"
    if name is None:
        return "admin"
    return f"invoke:{name}" if op.metric else f"deploy:{name}"


def handler_scope(cls: type, method: str, path: dict[str, Any]) -> str:
    """The scope a request to handler class ``cls`` needs: its operation's (:func:`required_scope`); for a route
    without an ``@api`` declaration (a proxy), ``read`` for GET and ``admin`` for anything else."""
    op = getattr(getattr(cls, method.lower(), None), "operation", None)
    if op is None:
        return "read" if method.upper() in ("GET", "HEAD", "OPTIONS") else "admin"
    return required_scope(op, method, path)


def scope_allows(granted: Sequence[str], required: str) -> bool:
    """Whether a token holding the scopes ``granted`` may do what ``required`` (see :func:`required_scope`)
    names. ``admin`` allows everything; ``invoke:<glob>`` and ``deploy:<glob>`` allow their action on the names
    the glob matches (``deploy`` also allows ``invoke``: a deploying token may try what it deployed); ``read``
    allows reads. ``public`` needs nothing."""
    import fnmatch

    if required == "public":
        return True
    kind, _, name = required.partition(":")
    for scope in granted:
        if scope == "admin" or scope == required:
            return True
        gkind, _, glob = scope.partition(":")
        if not name or not glob:
            continue
        if (gkind == kind or (gkind == "deploy" and kind == "invoke")) and fnmatch.fnmatchcase(name, glob):
            return True
    return False
