"""``nbd.log_metric`` / ``nbd.log_artifact``: what a job's notebook attaches to its run.

Inside a job the kernel runs with ``NBDEPLOY_RUN_ID``, ``NBDEPLOY_RUN_ATTEMPT`` and ``NBDEPLOY_RUN_EVENTS``
(a file in the run's working folder). Each call appends one JSON line there; the executor on the Dask worker
forwards the lines to the dispatcher through Dask events while the run executes, and hands the complete list
back with the run's result. Artifact bytes go straight into the store by content hash. Nothing here talks
to the catalog, so a kernel needs neither a database driver nor a Dask client.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from ..exceptions import InvalidInputError

__all__ = ["current_run", "log_artifact", "log_metric"]

ENV_RUN_ID = "NBDEPLOY_RUN_ID"
ENV_ATTEMPT = "NBDEPLOY_RUN_ATTEMPT"
ENV_EVENTS = "NBDEPLOY_RUN_EVENTS"
ENV_STORE = "NBDEPLOY_STORE_URL"

_seq = itertools.count(1)
_lock = threading.Lock()
_warned = False


def current_run() -> dict[str, Any] | None:
    """``{"id", "attempt"}`` of the job run this process executes, or ``None`` outside a job."""
    if not os.environ.get(ENV_RUN_ID) or not os.environ.get(ENV_EVENTS):
        return None
    return {"id": int(os.environ[ENV_RUN_ID]), "attempt": int(os.environ.get(ENV_ATTEMPT) or 1)}


def _outside_run(what: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            f"nbd.{what} is not recorded: this code is not running as an nbdeploy job "
            "(run it with nbd.jobs.run or a schedule to attach metrics and artifacts to a run)",
            stacklevel=3,
        )


def _append(record: dict[str, Any]) -> None:
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    with _lock:
        fd = os.open(os.environ[ENV_EVENTS], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Record metric ``key`` = ``value`` (a finite number) on the current job run; ``step`` orders repeats.

    Outside a job run this warns once and records nothing. Raises :class:`InvalidInputError` for a
    non-numeric or non-finite value or an empty key.
    """
    if not isinstance(key, str) or not key or len(key) > 128:
        raise InvalidInputError("a metric key must be a non-empty string of at most 128 characters", "key")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metric {key!r} must be a number, got {type(value).__name__}", "value") from exc
    if not math.isfinite(number):
        raise InvalidInputError(f"metric {key!r} must be finite, got {number}", "value")
    if step is not None and not isinstance(step, int):
        raise InvalidInputError("step must be an integer", "step")
    if current_run() is None:
        _outside_run("log_metric")
        return
    _append({"kind": "metric", "seq": next(_seq), "key": key, "value": number, "step": step, "time": time.time()})


def log_artifact(path_or_bytes: str | os.PathLike | bytes, name: str | None = None) -> dict[str, Any] | None:
    """Attach a file (by path) or bytes to the current job run under ``name`` (default: the file's name).

    Returns ``{"name", "sha256", "size"}``; outside a job run warns once and returns ``None``. Raises
    :class:`InvalidInputError` when bytes come without a name, and NotFoundError for a missing file.
    """
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        if not name:
            raise InvalidInputError("log_artifact(bytes, name): give the artifact a name", "name")
        data: Any = bytes(path_or_bytes)
    elif isinstance(path_or_bytes, str | os.PathLike):
        data = Path(path_or_bytes)
        name = name or data.name
    else:
        raise InvalidInputError("log_artifact takes a file path or bytes", "path_or_bytes")
    if not isinstance(name, str) or not name or len(name) > 255 or "/" in name or name in (".", ".."):
        raise InvalidInputError(f"artifact name {name!r} must be a file name of at most 255 characters", "name")
    if current_run() is None:
        _outside_run("log_artifact")
        return None
    from ..store.artifacts import ArtifactStore

    store_url = os.environ.get(ENV_STORE)
    if not store_url:
        from ..config import get_settings

        store_url = get_settings().store_url
    blob = ArtifactStore(store_url).put_blob(data)
    record = {"kind": "artifact", "seq": next(_seq), "name": name, "sha256": blob.sha256, "size": blob.size}
    _append({**record, "time": time.time()})
    return {"name": name, "sha256": blob.sha256, "size": blob.size}
