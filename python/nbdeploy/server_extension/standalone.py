"""``nbdeploy serve``: the REST API without Jupyter, token-authenticated, for production serving."""

from __future__ import annotations

import asyncio
import hmac
import importlib
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tornado import httpserver, httputil, web

from ..app import Nbdeploy, set_default
from ..config import Settings
from ..exceptions import AuthError, ForbiddenError
from ..schema import Record
from ..tokens.manager import ADMIN, Grant
from .base import NbdeployHandler, api
from .metrics import MetricsHandler
from .routes import bind_handlers, collect_handlers, collect_mounted_handlers
from .scopes import handler_scope, scope_allows

if TYPE_CHECKING:
    from ..jobs.clock import Clock

__all__ = ["StandaloneServer", "TokenAuthHandler", "exit_if_threads_stuck"]

log = logging.getLogger("nbdeploy.serve")


DASHBOARD_PREFIX = "/nbdeploy/api/cluster/dashboard/"
STOP_STEP_SECONDS = 10.0  # the most a shutdown waits on closing connections, and on the services past the grace
THREADS_EXIT_SECONDS = 3.0  # then the most it waits for threads still busy (a request stuck in a thread)
COOKIE = "nbdeploy-token"


class TokenAuthHandler(web.RequestHandler):
    """Accepts ``Authorization: token <T>`` or ``Bearer <T>`` with the server's token; 401 otherwise.

    A browser cannot send that header for the pages of the Dask dashboard (and what they load), so GET requests
    under the dashboard's proxy route may also bring the token as ``?token=`` once (which sets an HttpOnly,
    SameSite=Strict cookie scoped to that route) and as that cookie afterwards.
    """

    async def prepare(self) -> None:  # type: ignore[override]
        required = self._required_scope()
        if required == "public":
            return
        grant = await self._grant()
        if not scope_allows(grant.scopes, required):
            raise ForbiddenError(
                f"this token ({grant.name}) does not allow {self.request.method} {self.request.path}: it needs the "
                f"scope {required!r} and holds {', '.join(grant.scopes)}; `nbdeploy tokens create --scope {required}`"
            )
        self.grant = grant

    def _required_scope(self) -> str:
        """The scope the route declares (see :func:`~nbdeploy.server_extension.scopes.handler_scope`)."""
        return handler_scope(type(self), self.request.method or "GET", dict(self.path_kwargs or {}))

    async def _grant(self) -> Grant:
        """Who is asking: the server's token (every right) or an API token; 401 otherwise. A token that is not in
        the token cache is looked up in the catalog in a thread, never on the event loop."""
        expected: str = self.settings["nbdeploy_token"]
        scheme, _, given = self.request.headers.get("Authorization", "").partition(" ")
        given = given.strip()
        if scheme.lower() in ("token", "bearer") and given:
            if hmac.compare_digest(given.encode(), expected.encode()):
                return ADMIN
            grant = await self.settings["nbdeploy"].tokens.aauthenticate(given)
            if grant is None:
                raise AuthError(
                    "wrong, revoked or expired token: use the token `nbdeploy serve` printed (NBDEPLOY_TOKEN) or one "
                    "of `nbdeploy tokens create`"
                )
            return grant  # type: ignore[no-any-return]
        if self.request.method == "GET" and self.request.path.startswith(DASHBOARD_PREFIX):
            from_query = self.get_query_argument("token", None)
            browser = from_query or self.get_cookie(COOKIE)
            if browser and hmac.compare_digest(browser.encode(), expected.encode()):
                if from_query:
                    self.set_cookie(COOKIE, from_query, path=DASHBOARD_PREFIX, httponly=True, samesite="Strict")
                return ADMIN
        raise AuthError("missing credentials: send the header 'Authorization: token <NBDEPLOY_TOKEN>'")


@dataclass(frozen=True)
class Health(Record):
    """The server answers."""

    status: Literal["ok"]


class HealthHandler(NbdeployHandler):
    @api(responses={200: Health}, tags=("server",), scope="public")
    async def get(self) -> Health:
        """Liveness probe (``nbdeploy serve`` only; the one route without authentication)."""
        return Health("ok")


class NotFoundHandler(NbdeployHandler):
    """Any other path: a JSON 404."""

    async def prepare(self) -> None:
        await super().prepare()  # authenticate first: unknown routes do not reveal themselves to strangers
        raise web.HTTPError(404, f"no route {self.request.path}")


class _Application(web.Application):
    """The tornado application, keeping the requests in flight (headers received, response not finished, client
    still connected) so that a shutdown waits for them, and for them only (idle keep-alive connections close at
    once)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: set[object] = set()  # the connections of the requests in flight

    @property
    def in_flight(self) -> int:
        return len(self.requests)

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        return _Counted(self, request_conn, super().start_request(server_conn, request_conn))

    def log_request(self, handler: web.RequestHandler) -> None:  # called once as each response finishes
        self.requests.discard(handler.request.connection)
        super().log_request(handler)


class _Counted(httputil.HTTPMessageDelegate):
    """A request's delegate that keeps the request in flight from its headers on, until its response finishes or
    its connection closes."""

    def __init__(
        self, app: _Application, connection: httputil.HTTPConnection, delegate: httputil.HTTPMessageDelegate
    ) -> None:
        self.app, self.connection, self.delegate = app, connection, delegate

    def headers_received(
        self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine, headers: httputil.HTTPHeaders
    ) -> Any:
        self.app.requests.add(self.connection)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.delegate.finish()

    def on_connection_close(self) -> None:
        self.app.requests.discard(self.connection)
        self.delegate.on_connection_close()


class StandaloneServer:
    """A tornado server with every nbdeploy route; start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(
        self,
        settings: Settings | None = None,
        host: str = "127.0.0.1",
        port: int = 8765,
        *,
        debug: bool = False,
        own_cluster: bool = True,
        background: bool = True,
        behind_proxy: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings or Settings.resolve()
        self.token = self.settings.ensure_token()
        self.host, self.port, self.debug = host, port, debug
        self.behind_proxy = behind_proxy  # trust X-Forwarded-For / X-Real-Ip / X-Forwarded-Proto
        self.own_cluster, self.background = own_cluster, background
        self.app = Nbdeploy(self.settings)
        self.app.clock = clock  # the jobs scheduler's clock (None: the system's)
        set_default(self.app)
        self._server: httpserver.HTTPServer | None = None
        self._application: _Application | None = None
        self._stop_warmer: Any = None

    def make_app(self) -> _Application:
        """Build the tornado application (every API route behind the token, ``/healthz`` open)."""
        routes: list[Any] = [(r"/healthz", HealthHandler)]
        routes += bind_handlers([(r"/metrics", MetricsHandler)], TokenAuthHandler)
        routes += bind_handlers([*collect_handlers(), *collect_mounted_handlers(standalone=True)], TokenAuthHandler)
        return _Application(
            routes,
            default_handler_class=bind_handlers([("", NotFoundHandler)], TokenAuthHandler)[0][1],
            nbdeploy=self.app,
            nbdeploy_token=self.token,
            nbdeploy_debug=self.debug,
            nbdeploy_extra_routes=[("/healthz", HealthHandler), ("/metrics", MetricsHandler)],
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Start the runtime and background services, then listen.

        The cluster daemon is launched first; what the server imports before it can answer (Dask's client, the
        managers, the serving pools, the handlers, request validation) is imported in a thread meanwhile, while the
        server mostly waits for the daemon, instead of after the cluster is up.
        """
        imports = asyncio.ensure_future(asyncio.to_thread(_import_quietly, startup_imports()))
        await self.app.start(own_cluster=self.own_cluster, background=self.background)
        from ..runtime.warmup import start as start_warmer

        # replicas start and load while we begin to listen (with --no-cluster, only once a cluster runs)
        self._stop_warmer = await start_warmer(self.app, start_cluster=self.own_cluster)
        self._application = self.make_app()
        self._server = httpserver.HTTPServer(
            self._application, xheaders=self.behind_proxy, max_body_size=self.settings.max_body_bytes + 1024 * 1024
        )
        self._server.listen(self.port, self.host)
        if self.port == 0:
            self.port = next(iter(self._server._sockets.values())).getsockname()[1]
        self.app.advertise(self.url, "standalone")
        await imports

    async def stop(self) -> None:
        """Stop listening; give requests in flight ``shutdown_grace`` seconds to finish, then close every connection
        (a stuck request's caller sees it closed); then stop the services. Every step is bounded."""
        grace = self.settings.shutdown_grace
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + grace
            while self.in_flight and loop.time() < deadline:
                await asyncio.sleep(0.05)
            if self.in_flight:
                log.warning("closing %d request(s) still in flight after %.1f s", self.in_flight, grace)
            try:  # closing a connection ends its request loop at once; the bound guards against the unforeseen
                await asyncio.wait_for(server.close_all_connections(), STOP_STEP_SECONDS)
            except TimeoutError:
                log.warning("connections did not close within %.0f s; stopping anyway", STOP_STEP_SECONDS)
        if self._stop_warmer is not None:
            await self._stop_warmer()
            self._stop_warmer = None
        try:
            await asyncio.wait_for(self.app.stop(), grace + STOP_STEP_SECONDS)
        except TimeoutError:
            log.warning("the services did not stop within %.0f s; exiting anyway", grace + STOP_STEP_SECONDS)

    @property
    def in_flight(self) -> int:
        """Requests received and not answered yet."""
        return self._application.in_flight if self._application is not None else 0

    def run(self, on_ready: Any = None) -> None:
        """Serve until SIGINT/SIGTERM (blocking), then stop within bounds (see :meth:`stop`) and return.

        Unlike ``asyncio.run`` it does not wait for threads still busy with a request (a catalog query, a log being
        followed); ``nbdeploy serve`` then ends the process with :func:`exit_if_threads_stuck`.
        """

        async def main() -> None:
            await self.start()
            if on_ready is not None:
                on_ready(self)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            log.info("stopping: %d request(s) in flight, %.1f s grace", self.in_flight, self.settings.shutdown_grace)
            await self.stop()

        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(main())
        finally:
            _close_loop(loop)


def startup_imports() -> list[str]:
    """The modules a server imports between the start of its cluster and its first answer, in that order."""
    from ..app import MANAGERS, Nbdeploy

    handlers = [*Nbdeploy.handler_modules(), *(m for _, m in Nbdeploy.mounted_handler_modules(standalone=True))]
    managers = [target.partition(":")[0] for target in MANAGERS.values()]
    serving = ["nbdeploy.runtime.warmup", "nbdeploy.models.serving", "nbdeploy.functions.worker"]
    return list(dict.fromkeys(["distributed", *serving, *managers, *handlers, "jsonschema"]))


def _import_jsonschema() -> None:
    """Import jsonschema without ``rfc3987_syntax``, which builds a Lark grammar as it is imported (≈ 1.5 CPU-s, more
    than all the rest of a server's start-up): jsonschema imports it only for its ``iri`` format checker, nbdeploy
    validates without format checking (``format_checker=None``), and nothing else in ``nbdeploy serve`` uses
    jsonschema. (The Jupyter extension's process, where other extensions may check formats, imports it as it is.)"""
    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        return
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # `import` raises ImportError: skipped
    try:
        importlib.import_module("jsonschema")
    finally:
        if "rfc3987_syntax" in sys.modules and sys.modules["rfc3987_syntax"] is None:
            del sys.modules["rfc3987_syntax"]


def _import_quietly(modules: list[str]) -> None:
    for name in modules:  # only ahead of time: a module that fails here fails again, with its error, where it is used
        try:
            if name == "jsonschema":
                _import_jsonschema()
                continue
            importlib.import_module(name)
        except Exception as exc:
            log.debug("could not import %s ahead of time: %s", name, exc)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """``asyncio.run``'s clean-up, bounded: cancel what still runs, and close the loop without joining the threads
    of its executor (a thread stuck in a request would keep the process alive for ever)."""
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=STOP_STEP_SECONDS))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()  # shuts its default executor down without waiting


def exit_if_threads_stuck(timeout: float = THREADS_EXIT_SECONDS) -> None:
    """Wait up to ``timeout`` seconds for the other non-daemon threads; if some are still busy (a request stuck in a
    thread), end the process now rather than hang at interpreter exit, which joins them."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [
        t.name for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon and t.is_alive()
    ]
    if stuck:
        log.warning("exiting with %d thread(s) still busy: %s", len(stuck), ", ".join(stuck))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
