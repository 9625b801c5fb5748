"""Runs that cannot be dispatched: a dispatcher without a Dask cluster, and how its handed runs end.

A dispatcher started by the API for the runs of one caller (an *ephemeral* one) that gets no Dask client fails
the runs it was handed instead of leaving them queued — so ``run.wait()`` returns a failed run whose error says
what to do, never hangs: at once when the cluster cannot start at all (a missing package, a bad setting, a
daemon that died starting it), else after the ``dispatch_timeout`` setting (default 60 s) of failed attempts.
A server's dispatcher keeps its runs queued until its cluster is back.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..exceptions import ClusterError, NbdeployError
from ..store import Store
from .tables import RunRow

__all__ = ["ClusterWait", "fail_queued"]


def _permanent(exc: BaseException) -> bool:
    """Whether trying again cannot help: a bad setting or missing package, or a daemon that could not start."""
    if getattr(exc, "retryable", True) is False:
        return True
    return isinstance(exc, NbdeployError) and not isinstance(exc, ClusterError)


class ClusterWait:
    """How long a dispatcher has been without a Dask client, and the error that says why."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.since: float | None = None
        self.error: BaseException | None = None

    def failed(self, exc: BaseException) -> None:
        """Record a failed attempt to get a client."""
        if self.since is None:
            self.since = time.monotonic()
        self.error = exc

    def connected(self) -> None:
        """A client was had: forget the failures."""
        self.since, self.error = None, None

    def given_up(self) -> bool:
        """Whether the runs waiting for a cluster should fail now."""
        if self.since is None or self.error is None:
            return False
        return _permanent(self.error) or time.monotonic() - self.since >= self.timeout

    def outcome(self) -> tuple[str, str]:
        """``(error_type, error_message)`` for the runs that could not be dispatched."""
        exc = self.error
        name = type(exc).__name__ if exc is not None else "ClusterError"
        detail = f"{name}: {exc}" if exc is not None else "no Dask cluster"
        detail = detail if detail.endswith(".") else detail + "."
        if exc is not None and _permanent(exc):
            return name, f"the run was never started, as the Dask cluster could not start: {detail} Then run it again."
        return name, (
            f"the run was never started: no Dask cluster answered within {self.timeout:.0f}s: {detail} Then run it "
            "again (`nbdeploy cluster status` shows the cluster)."
        )


def fail_queued(store: Store, run_ids: Iterable[int], error_type: str, message: str, now: datetime) -> list[Any]:
    """Fail the runs of ``run_ids`` that are still queued (and not being cancelled), as never started; return their
    rows. Each gets an entry in its ``history``; retries are not spent (no attempt ran)."""
    failed: list[Any] = []
    ids = sorted({int(i) for i in run_ids})
    if not ids:
        return failed
    with store.catalog.session() as s:
        rows = s.scalars(sa.select(RunRow).where(RunRow.id.in_(ids)).with_for_update()).all()
        for row in rows:
            if row.status != "queued" or row.cancel_requested:
                continue
            row.history = [
                *(row.history or []),
                {
                    "attempt": row.attempt,
                    "status": "failed",
                    "started_at": None,
                    "finished_at": now.isoformat(),
                    "worker": None,
                    "error_type": error_type,
                    "error_message": message,
                    "error_cell": None,
                    "output_sha256": None,
                },
            ]
            row.status, row.finished_at = "failed", now
            row.error_type, row.error_message = error_type, message
            row.lease_owner, row.lease_until = None, None
            failed.append(row)
    return failed
