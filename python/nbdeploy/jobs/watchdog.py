"""The watchdog beside a running notebook: it forwards the kernel's ``nbd.log_metric`` / ``log_artifact`` lines and
the new whole lines of the run's log (``{"kind": "log", "offset", "text"}``, for followers) to the dispatcher, enforces the run's timeout, and stops the kernel (its whole process group) when the dispatcher
asks for a cancel (a Dask ``Event``) or when the task is no longer wanted (the dispatcher's client went away)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from .engine import Hooks

__all__ = ["LOG_CHUNK_BYTES", "Watchdog", "mark_stopped"]

LOG_CHUNK_BYTES = 256 * 1024  # the most log one event carries


class Watchdog(threading.Thread):
    """Forwards metric/artifact lines, enforces the timeout, stops the kernel on cancel or when orphaned."""

    def __init__(
        self, hooks: Hooks, spec: dict[str, Any], events_path: Path, worker: Any, key: Any, client: Any
    ) -> None:
        super().__init__(name=f"nbdeploy-watchdog-{spec['run_id']}", daemon=True)
        self.hooks, self.spec, self.events_path, self.worker, self.key = hooks, spec, events_path, worker, key
        self.client = client  # the worker's client (a thread of our own has no worker context to find it)
        self.done = threading.Event()
        self.offset = 0
        self.log_path = events_path.with_name("run.log")
        self.log_offset = 0
        self.records: list[dict[str, Any]] = []
        self.deadline = time.monotonic() + float(spec["timeout"]) if spec.get("timeout") else None

    def drain(self) -> None:
        """Forward the lines the kernel appended since the last call, and the log's new whole lines."""
        self._drain_log()
        try:
            with open(self.events_path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # only whole lines
        self.offset += end
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            self.records.append(record)
            self.hooks.emit(record)

    def _drain_log(self) -> None:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self.log_offset)
                data = fh.read(LOG_CHUNK_BYTES)
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # whole lines only (so every piece is whole UTF-8 too)
        if end == 0 and len(data) >= LOG_CHUNK_BYTES:
            end = len(data)  # one very long line: send it in pieces
        if end:
            text = data[:end].decode("utf-8", "replace")
            self.hooks.emit({"kind": "log", "offset": self.log_offset, "text": text})
            self.log_offset += end

    def _orphaned(self) -> bool:
        ts = self.worker.state.tasks.get(self.key) if self.worker is not None else None
        return self.worker is not None and (ts is None or ts.state not in ("executing", "long-running"))

    def _cancel_requested(self) -> bool:
        if self.client is None:
            return False
        from distributed import Event

        try:
            return bool(Event(self.spec["cancel_event"], client=self.client).is_set())
        except Exception:
            return False

    def stop(self, reason: str) -> None:
        with self.hooks.lock:
            if self.hooks.stop_reason is None:
                self.hooks.stop_reason = reason

    def run(self) -> None:
        last_cancel_check = 0.0
        while not self.done.wait(0.2):
            self.drain()
            now = time.monotonic()
            if self.hooks.stop_reason is None:
                if self.deadline is not None and now >= self.deadline:
                    self.stop("timeout")
                elif self._orphaned():
                    self.stop("orphaned")
                elif now - last_cancel_check >= 0.5:
                    last_cancel_check = now
                    if self._cancel_requested():
                        self.stop("cancel")
            if self.hooks.stop_reason is not None:
                self.hooks.kill_kernel()  # again each tick: the kernel may still be starting


def mark_stopped(output_path: Path, message: str, cell: int | None) -> None:
    """Put a red banner at the top of a partial output notebook saying why it stopped (and where)."""
    import nbformat

    try:
        nb = nbformat.read(str(output_path), as_version=4)
    except Exception:
        return
    banner = nbformat.v4.new_markdown_cell(f'<span style="color:red;font-size:1.5em">{message}</span>')
    banner.metadata["tags"] = ["nbdeploy-stopped"]
    if cell is not None and 0 <= cell < len(nb.cells):
        nb.cells[cell].metadata.setdefault("papermill", {})["status"] = "failed"
        nb.cells[cell].metadata["papermill"]["exception"] = True
    nb.cells.insert(0, banner)
    nbformat.write(nb, str(output_path))
