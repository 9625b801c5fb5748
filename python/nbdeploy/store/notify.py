"""Catalog change notifications on PostgreSQL: ``LISTEN/NOTIFY``, so that caches ask the catalog only after a change.

The migration ``0006_serving`` installs statement triggers on ``artifact_versions``, ``aliases`` and
``api_tokens`` that ``NOTIFY nbdeploy_catalog`` on every change, whoever makes it. :class:`ChangeListener` holds
one connection per process that listens on that channel in a daemon thread and counts notifications:
:meth:`ChangeListener.token` is the count, which changes whenever another server (or this one) changed a
version, an alias or a token. While the listener is not connected the token is ``None`` and callers query
every time, so a lost connection never serves stale answers; on reconnecting the count moves on (what was
missed meanwhile is treated as a change).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

__all__ = ["CHANNEL", "ChangeListener"]

CHANNEL = "nbdeploy_catalog"
RECONNECT_SECONDS = 1.0
log = logging.getLogger("nbdeploy.store")


class ChangeListener:
    """Counts ``NOTIFY nbdeploy_catalog`` on the PostgreSQL database at ``conninfo`` (a libpq URI)."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._count = 0
        self._listening = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._conn: Any = None
        self._thread = threading.Thread(target=self._run, name="nbdeploy-catalog-listen", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)  # the first token is worth having: wait (briefly) until we listen

    def token(self) -> int | None:
        """The number of changes seen so far, or ``None`` while not listening (then callers must query)."""
        with self._lock:
            return self._count if self._listening else None

    def bump(self) -> None:
        """Count a change this process made (its own notification arrives a moment later)."""
        with self._lock:
            self._count += 1

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    self._conn = conn
                    conn.execute(f"LISTEN {CHANNEL}")
                    with self._lock:
                        self._count += 1  # whatever happened while we were not listening
                        self._listening = True
                    self._ready.set()
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            with self._lock:
                                self._count += 1
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning("catalog change notifications interrupted (%s); retrying", exc)
            finally:
                with self._lock:
                    self._listening = False
                self._conn = None
                self._ready.set()
            self._stop.wait(RECONNECT_SECONDS)

    def close(self) -> None:
        """Stop listening (the thread ends within a second)."""
        self._stop.set()
        self._thread.join(timeout=5)
