"""``GET /nbdeploy/api/cluster/dashboard/<path>``: the cluster's Dask dashboard, behind the server's authentication.

The embedded cluster's dashboard listens on loopback only (see :mod:`nbdeploy.runtime.owned`), without
authentication of its own. This route proxies it — its pages, and the WebSocket connections its Bokeh pages open
— behind the authentication of every other route: Jupyter's in the extension, the token in ``nbdeploy serve``.
The cluster status carries the proxied address as ``dashboard_url``.

Only the dashboard the runtime knows is proxied: the host and port of the cluster advertisement's
``dashboard_link`` (or, for a scheduler address, the dashboard port that scheduler reports). A request picks the
path and query only, never the host. The caller's credentials (``Authorization``, cookies) are not passed on, and
redirects of the dashboard are rewritten into the proxied path. The approach follows jupyter-server-proxy's
handlers: one handler for HTTP and WebSocket requests alike (tornado's ``WebSocketHandler`` as a mixin, whose
``get`` upgrades only requests that ask to).
"""

from __future__ import annotations

import logging
import sys
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tornado import httpclient, websocket

from ..exceptions import ClusterError, NotFoundError
from .base import API_PREFIX, NbdeployHandler

__all__ = ["DashboardProxyHandler", "default_handlers"]

log = logging.getLogger("nbdeploy.server")

ROUTE = "/cluster/dashboard"
REQUEST_HEADERS = ("Accept", "Accept-Language", "If-Modified-Since", "If-None-Match", "User-Agent")
RESPONSE_HEADERS = ("Cache-Control", "Content-Disposition", "Content-Type", "ETag", "Expires", "Last-Modified")
CONNECT_TIMEOUT = 10.0
REQUEST_TIMEOUT = 60.0


def _upstream_base(link: str) -> tuple[str, str, str]:
    """``(scheme, host:port, path prefix)`` of the dashboard whose link (``…/status``) is ``link``."""
    parts = urlsplit(link)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClusterError(f"the cluster's dashboard link {link!r} is not an http(s) URL")
    prefix = parts.path[: -len("/status")] if parts.path.endswith("/status") else parts.path
    return parts.scheme, parts.netloc, prefix.rstrip("/")


def _is_jupyter_api_handler(handler: object) -> bool:
    module = sys.modules.get("jupyter_server.base.handlers")
    return module is not None and isinstance(handler, module.APIHandler)


class DashboardProxyHandler(NbdeployHandler, websocket.WebSocketHandler):
    """``GET /cluster/dashboard/{path}``: the Dask dashboard's page or WebSocket at ``path`` (502 when the
    dashboard does not answer, 404 when the cluster has none)."""

    _proxied_type: str | None = None
    _upstream: websocket.WebSocketClientConnection | None = None
    _ws_url: str | None = None
    _subprotocols: list[str] | None = None

    # --- where to ------------------------------------------------------------------------------------------
    async def _base(self) -> tuple[str, str, str]:
        link = await self.nbd.runtime.dashboard_link_async()
        if not link:
            raise NotFoundError(
                "the cluster has no dashboard: Dask serves it only where the scheduler was started with one "
                "(setting dashboard_address)"
            )
        return _upstream_base(link)

    def _raw_path(self) -> tuple[str, str]:
        """``(the client's proxy prefix, the dashboard path)`` from the request's still-encoded path."""
        marker = API_PREFIX + ROUTE + "/"
        raw = self.request.path
        at = raw.find(marker)
        if at < 0:  # not reachable through the route; be strict all the same
            raise NotFoundError(f"no route {raw}")
        return raw[: at + len(marker) - 1], raw[at + len(marker) :]

    def _url(self, scheme: str, netloc: str, prefix: str, path: str) -> str:
        url = f"{scheme}://{netloc}{prefix}/{path}"
        query = [(k, v) for k, v in parse_qsl(self.request.query, keep_blank_values=True) if k != "token"]
        if query:  # the server's own credentials stay here
            url += "?" + urlencode(query)
        if urlsplit(url).netloc != netloc:  # defensive: the request chooses the path, never the host
            raise NotFoundError("no such dashboard page")
        return url

    # --- HTTP and the upgrade --------------------------------------------------------------------------------
    async def get(self, path: str = "") -> None:
        scheme, netloc, prefix = await self._base()
        client_prefix, raw = self._raw_path()
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            self._ws_url = self._url("wss" if scheme == "https" else "ws", netloc, prefix, raw)
            await websocket.WebSocketHandler.get(self, path)
            return
        url = self._url(scheme, netloc, prefix, raw)
        headers = {name: self.request.headers[name] for name in REQUEST_HEADERS if name in self.request.headers}
        request = httpclient.HTTPRequest(
            url,
            headers=headers,
            follow_redirects=False,
            connect_timeout=CONNECT_TIMEOUT,
            request_timeout=REQUEST_TIMEOUT,
        )
        try:
            response = await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
        except Exception as exc:  # DNS, refused connection, …
            raise ClusterError(f"the cluster's dashboard at {netloc} did not answer: {exc}") from exc
        if response.code == 599:
            raise ClusterError(f"the cluster's dashboard at {netloc} did not answer: {response.error}")
        self.set_status(response.code, response.reason)
        for name in RESPONSE_HEADERS:
            if name in response.headers:
                self.set_header(name, response.headers[name])
        location = response.headers.get("Location")
        if location:
            self.set_header("Location", self._rewrite_location(location, scheme, netloc, prefix, client_prefix))
        self._proxied_type = response.headers.get("Content-Type") or "application/octet-stream"
        body = response.body if response.code not in (204, 304) else b""
        self.finish(body or None)

    @staticmethod
    def _rewrite_location(location: str, scheme: str, netloc: str, prefix: str, client_prefix: str) -> str:
        parts = urlsplit(location)
        if parts.netloc and (parts.netloc != netloc or parts.scheme != scheme):
            return location  # somewhere else: not ours to rewrite
        if not parts.path.startswith("/"):
            return location  # relative: resolves under the proxied path already
        path = parts.path[len(prefix) :] if prefix and parts.path.startswith(prefix + "/") else parts.path
        return client_prefix + path + (f"?{parts.query}" if parts.query else "")

    def finish(self, chunk: Any = None, **kwargs: Any) -> Any:
        # Jupyter's APIHandler stamps "application/json" on every response unless told otherwise
        if self._proxied_type is not None and _is_jupyter_api_handler(self):
            kwargs.setdefault("set_content_type", self._proxied_type)
        return super().finish(chunk, **kwargs)

    @property
    def content_security_policy(self) -> str:
        # the dashboard's pages need their scripts and styles: Jupyter's policy for pages, not its API one
        # ("default-src 'none'"); only used where the server is Jupyter
        for klass in type(self).__mro__:
            if klass.__name__ == "JupyterHandler" and "content_security_policy" in vars(klass):
                return str(vars(klass)["content_security_policy"].fget(self))
        return "frame-ancestors 'self'"

    def check_origin(self, origin: str = "") -> bool:
        """Jupyter's origin check where the server is Jupyter (its ``allow_origin`` settings), else tornado's."""
        jupyter_check = getattr(super(websocket.WebSocketHandler, self), "check_origin", None)
        if jupyter_check is not None:
            return bool(jupyter_check(origin))
        return websocket.WebSocketHandler.check_origin(self, origin)

    # --- WebSocket relay --------------------------------------------------------------------------------------
    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        # Bokeh sends its session token as a subprotocol: pass them all on, accept the first
        self._subprotocols = list(subprotocols)
        return subprotocols[0] if subprotocols else None

    async def open(self, *args: Any, **kwargs: Any) -> None:
        assert self._ws_url is not None
        request = httpclient.HTTPRequest(self._ws_url, connect_timeout=CONNECT_TIMEOUT)
        try:
            self._upstream = await websocket.websocket_connect(
                request, on_message_callback=self._from_upstream, subprotocols=self._subprotocols or None
            )
        except Exception as exc:
            log.info("the dashboard refused the WebSocket %s: %s", self._ws_url, exc)
            self.close(1011, "the cluster's dashboard did not accept the connection")

    def _from_upstream(self, message: str | bytes | None) -> None:
        if message is None:  # the dashboard closed its side
            self._upstream = None
            self.close()
            return
        try:
            self.write_message(message, binary=isinstance(message, bytes))
        except websocket.WebSocketClosedError:
            self.on_close()

    async def on_message(self, message: str | bytes) -> None:
        upstream = self._upstream
        if upstream is not None:
            try:
                await upstream.write_message(message, binary=isinstance(message, bytes))
            except websocket.WebSocketClosedError:
                self.close()

    def on_close(self) -> None:
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            upstream.close()


default_handlers = [(ROUTE + r"/(?P<path>.*)", DashboardProxyHandler)]
