"""Following a run's log while it executes: the pieces its worker streamed (``run_log_chunks``, written by the
dispatcher from the worker's ``log`` events), then, once the run ended, the rest of its stored log blob, so that a
follower receives exactly the text the finished run keeps, in order, and stops when the run ends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..exceptions import NotFoundError
from .tables import TERMINAL_STATES, RunLogRow, RunRow

if TYPE_CHECKING:
    from .runs import RunManager

__all__ = ["follow_log"]


def follow_log(manager: RunManager, run_id: int, poll: float = 0.2, timeout: float | None = None) -> Iterator[str]:
    """Yield run ``run_id``'s log as it grows (whole lines), ending when the run ends (or after ``timeout`` seconds,
    if given). Raises :class:`NotFoundError` for an unknown run."""
    deadline = None if timeout is None else time.monotonic() + timeout
    attempt: int | None = None
    sent = 0  # bytes of the current attempt's log already yielded
    while True:
        with manager.catalog.session() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise NotFoundError(f"no run with id {run_id}")
            status, current, log_sha256 = row.status, row.attempt, row.log_sha256
            if attempt is not None and current != attempt:
                sent = 0  # a retry: its log starts over
            attempt = current
            pieces = s.execute(
                sa.select(RunLogRow.offset, RunLogRow.text)
                .where(RunLogRow.run_id == run_id, RunLogRow.attempt == current, RunLogRow.offset >= sent)
                .order_by(RunLogRow.offset, RunLogRow.id)
            ).all()
        for offset, text in pieces:
            if offset != sent:
                break  # a gap (a piece not written yet): wait for it, or for the blob
            yield text
            sent += len(text.encode("utf-8"))
        if status in TERMINAL_STATES:
            if log_sha256 is not None:
                rest = manager.store.artifacts.read_blob(log_sha256)[sent:]
                if rest:
                    yield rest.decode("utf-8", "replace")
            return
        if deadline is not None and time.monotonic() > deadline:
            return
        time.sleep(poll)
