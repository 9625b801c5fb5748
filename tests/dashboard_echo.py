"""A WebSocket route for a Dask scheduler's HTTP server, named in ``distributed.scheduler.http.routes`` by the
dashboard tests: it lets them check the dashboard proxy's WebSocket relay against a real scheduler, without
bokeh. It echoes every message and accepts the first subprotocol offered (as Bokeh's server does)."""

from __future__ import annotations

from typing import Any

from tornado import websocket


class Echo(websocket.WebSocketHandler):
    def initialize(self, dask_server: Any = None, extra: Any = None) -> None:
        self.server = dask_server

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return subprotocols[0] if subprotocols else None

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


routes: list[tuple] = [(r"nbdeploy-test-echo", Echo, {})]
