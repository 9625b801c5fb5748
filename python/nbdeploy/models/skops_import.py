"""Importing ``skops.io`` (the scikit-learn flavor's safe format) without its walk of every scikit-learn module.

See :func:`skops_io`; the estimators' names it records live in ``~/.cache/nbdeploy``, one file per scikit-learn and
skops version.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
from typing import Any

__all__ = ["skops_io"]

_SKOPS_LOCK = threading.Lock()
_SKLEARN_NAME = re.compile(r"^sklearn(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def _estimator_names_file() -> str | None:
    """Where the names of scikit-learn's estimators are kept for this scikit-learn and skops (``None``: either is
    missing)."""
    from .flavors import _version_of

    sklearn, skops = _version_of("scikit-learn"), _version_of("skops")
    if not sklearn or not skops:
        return None
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "nbdeploy", f"skops-estimators-{sklearn}-{skops}-py{sys.version_info[0]}.json")


def _read_estimator_names(path: str) -> list[str] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            names = json.load(fh)
    except (OSError, ValueError):
        return None
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and _SKLEARN_NAME.match(n) for n in names)
    ):
        return None
    return names


def _write_estimator_names(path: str, names: list[str]) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(names, fh)
        os.replace(tmp, path)
    except OSError:
        pass  # only a cache


def skops_io() -> Any:
    """``skops.io``, imported without walking every scikit-learn module when that can be skipped with the same result.

    Importing ``skops.io`` computes its default trusted types, among them the name of every scikit-learn estimator,
    with ``sklearn.utils.all_estimators()``: that imports every module of scikit-learn (and through
    ``sklearn.utils._testing`` pytest, and dask.array), ≈ 0.6 CPU-s of a worker's cold start beyond what a model
    needs. Those names depend only on the installed scikit-learn and skops, so a full import records them (in
    ``~/.cache/nbdeploy``, per version); later imports hand skops exactly those names instead of letting it walk the
    package, and check that skops made the same trusted names of them (else it is imported again the full way). skops'
    trusted types, and so what it refuses to load, are the same either way.
    """
    loaded = sys.modules.get("skops.io")
    if loaded is not None:
        return loaded
    with _SKOPS_LOCK:
        path = _estimator_names_file()
        names = _read_estimator_names(path) if path else None
        if names is not None:
            sio = _import_skops_with(names)
            if sio is not None:
                return sio
        import skops.io

        recorded = _trusted_estimator_names()
        if path and recorded:
            _write_estimator_names(path, recorded)
        return skops.io


def _trusted_estimator_names() -> list[str] | None:
    recorded = getattr(sys.modules.get("skops.io._trusted_types"), "SKLEARN_ESTIMATOR_TYPE_NAMES", None)
    return [str(n) for n in recorded] if isinstance(recorded, list) else None


def _import_skops_with(names: list[str]) -> Any:
    """Import ``skops.io`` with ``all_estimators`` answering the recorded ``names``; ``None`` (nothing of skops left
    imported) when skops' trusted names came out different."""
    import sklearn.utils

    walk = sklearn.utils.all_estimators
    # skops keeps get_type_name(cls) of each, i.e. f"{cls.__module__}.{cls.__name__}": classes carrying those names
    named = [(n.rsplit(".", 1)[1], type(n.rsplit(".", 1)[1], (), {"__module__": n.rsplit(".", 1)[0]})) for n in names]

    def recorded_estimators(type_filter: Any = None) -> Any:
        return list(named) if type_filter is None else walk(type_filter)

    sklearn.utils.all_estimators = recorded_estimators
    try:
        import skops.io
    finally:
        sklearn.utils.all_estimators = walk
    if _trusted_estimator_names() == names:
        return skops.io
    for module in [m for m in sys.modules if m == "skops" or m.startswith("skops.")]:
        del sys.modules[module]
    return None
