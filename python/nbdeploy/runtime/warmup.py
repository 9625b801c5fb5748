"""Faster first answers: versions are loaded on the workers before their first request.

Two halves:

- :func:`preload_version` runs in the deploying process (``nbd.deploy``, ``nbd.models.put``, the CLI): when a
  cluster is already running it loads the new version into every worker's artifact cache
  (:mod:`.cache`) before the deploy returns, so the serving replicas on those workers — whichever server
  started them — find it loaded. It never starts a cluster and never fails a deploy.
- :class:`ServingWarmer` runs in each server (``nbdeploy serve`` and the Jupyter extension, in the background once
  the server is up): at start it registers the preload plugin (:mod:`.preload`: nbdeploy's serving modules and
  the ``worker_preload_modules`` setting, in the background), starts the
  serving replicas of functions and models and loads the newest version of each; then, whenever the catalog
  reports a change (SQLite's ``data_version``, PostgreSQL's ``NOTIFY``), it loads the newest versions it has not
  warmed yet on its replicas. A deploy made through any process is thus answered by every server without a cold
  first call. A server that starts its cluster lazily (``nbdeploy serve --no-cluster``, the extension's
  ``start_cluster = False``) never starts one to warm it: its warmer waits until a cluster runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import Nbdeploy

__all__ = ["ServingWarmer", "load_here", "preload_version", "serving_imports", "start"]

log = logging.getLogger("nbdeploy.runtime")
PRELOAD_SECONDS = 20.0  # a deploy waits at most this long for the workers to load its version
POLL_SECONDS = 0.5  # how often a server checks the catalog's change token
MAX_WARM = 200  # versions warmed at start (the newest first)
LAZY_POLL_SECONDS = 2.0  # how often a server that starts its cluster lazily looks for one to warm


SERVING_MODULES = {
    # what a worker imports on the first call of each kind (beyond the version's own libraries)
    "function": ("nbdeploy.functions.capture", "nbdeploy.datasets.lineage_log", "nbdeploy.runtime.encoding"),
    "model": ("nbdeploy.models.flavors", "nbdeploy.models.signature", "nbdeploy.models.serving"),
}


#: what a server's start-up makes every worker import (and each worker that joins later): the serving modules of
#: both kinds, so that neither the first deploy's preload nor the first call pays for importing them there
SERVING_IMPORTS = tuple(dict.fromkeys(m for kind in ("function", "model") for m in SERVING_MODULES[kind]))


def serving_imports(kind: str) -> None:
    """Import the modules a worker needs to serve a call of ``kind`` (``function`` or ``model``), so that the first
    call does not pay for them."""
    from .preload import import_modules

    import_modules(SERVING_MODULES.get(kind, ()))


async def load_here(store_url: str, sha256: str, kind: str) -> bool:
    """On a worker: load version ``sha256`` (a ``function`` or ``model``) into this worker's artifact cache, in a
    thread; return whether it loaded."""
    from .cache import load_artifact

    loader: Callable[[bytes], Any]
    if kind == "model":
        from ..models.flavors import loads_model

        loader = loads_model
    else:
        from ..functions.capture import load_package

        loader = load_package

    def load() -> None:
        serving_imports(kind)
        load_artifact(store_url, sha256, loader)

    try:
        await asyncio.to_thread(load)
        return True
    except Exception as exc:
        log.warning("could not preload %s %s: %s", kind, sha256[:12], exc)
        return False


def preload_version(app: Nbdeploy, kind: str, sha256: str, timeout: float = PRELOAD_SECONDS) -> int:
    """Load version ``sha256`` of ``kind`` on every worker of the running cluster before returning; return on how
    many workers it loaded (0 when no cluster runs: nothing is started for it). Never raises."""
    from .cluster import sync_client

    try:
        client = sync_client(app.settings, start=False)
    except Exception:
        return 0
    executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="nbdeploy-preload")
    try:
        done = executor.submit(client.run, load_here, app.store.url, sha256, kind, on_error="return")
        answers = done.result(timeout=timeout)
    except Exception as exc:
        log.info("could not preload %s %s on the workers: %s", kind, sha256[:12], exc)
        return 0
    finally:
        executor.shutdown(wait=False)
    return sum(1 for ok in answers.values() if ok is True)


class ServingWarmer:
    """A server's background task: start serving replicas, keep the newest versions loaded on them."""

    def __init__(self, app: Nbdeploy, poll: float = POLL_SECONDS, *, start_cluster: bool = True) -> None:
        self.app = app
        self.poll = poll
        self.start_cluster = start_cluster  # False: only warm a cluster that runs, never start one for it
        self.warmed: set[str] = set()  # sha256 of the versions loaded on this server's replicas
        self.ready = asyncio.Event()  # set once the first pass is done
        self._task: asyncio.Task[None] | None = None
        self._preload: asyncio.Future[bool] | None = None  # registering the worker preload plugin

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._preload is not None:
            self._preload.cancel()
            self._preload = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None

    async def _cluster(self) -> Any:
        """The cluster's client; ``None`` while no cluster runs and this server starts its cluster lazily."""
        from ..exceptions import ClusterError

        try:
            return await self.app.runtime.async_client(start=self.start_cluster)
        except ClusterError:
            if self.start_cluster:
                raise
            return None

    async def _start_replicas(self) -> bool:
        """Register the preload plugin and start the default pools' replicas; return whether a cluster runs."""
        client = await self._cluster()
        if client is None:
            return False
        if self._preload is None or self._preload.done():
            from .preload import register_preload

            # nbdeploy's own serving modules (every first call would import them), then the setting's: in the
            # background, so that loading the newest versions does not wait until every worker imported every
            # module (a version's load imports what it needs itself)
            modules = [*SERVING_IMPORTS, *(self.app.settings.worker_preload_modules or ())]
            self._preload = asyncio.ensure_future(register_preload(client, modules))
            self._preload.add_done_callback(_preload_done)
        # the default pools' replicas start now, not on the first call (a fresh server answers at once)
        pools = await asyncio.gather(self.app.functions._pool(None), self.app.models._pool({}))
        await asyncio.gather(*[pool.start_replicas() for pool in pools])
        return True

    async def _run(self) -> None:
        started = False
        try:
            started = await self._start_replicas()
        except Exception as exc:
            log.warning("serving warm-up: no cluster to warm (%s)", exc)
        token: object = object()
        while True:
            try:
                if not self.start_cluster and (not started or await self._cluster() is None):
                    started = await self._start_replicas()  # a lazily started cluster: warm only one that runs
                    if not started:
                        self.ready.set()
                        await asyncio.sleep(max(self.poll, LAZY_POLL_SECONDS))
                        continue
                current = await asyncio.to_thread(self.app.store.catalog.change_token)
                if current is None or current != token:
                    token = current
                    await self.warm_newest()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the catalog or the cluster may be briefly away: try again
                log.warning("serving warm-up failed: %s", exc)
            self.ready.set()
            await asyncio.sleep(self.poll if token is not None else max(self.poll, 5.0))

    async def warm_newest(self) -> int:
        """Load the newest version of every function and model not warmed yet on this server's replicas
        (starting them); return how many versions were warmed."""
        store = self.app.store
        functions, models = await asyncio.gather(
            asyncio.to_thread(store.list, "function"), asyncio.to_thread(store.list, "model")
        )
        todo = [("function", v) for v in functions] + [("model", v) for v in models]
        todo = [(k, v) for k, v in todo if v.sha256 not in self.warmed]
        todo.sort(key=lambda kv: kv[1].created_at, reverse=True)
        jobs = [self._warm(kind, v) for kind, v in todo[:MAX_WARM]]
        results = await asyncio.gather(*jobs) if jobs else []
        return sum(results)

    async def _warm(self, kind: str, version: Any) -> bool:
        meta = version.metadata
        if kind == "model":
            pool = await self.app.models._pool(meta.get("serving") or {})
        else:
            pool = await self.app.functions._pool(meta.get("resources"))
        loaded = await pool.warm("load", version.sha256)
        if loaded:
            self.warmed.add(version.sha256)
        return loaded > 0


def _preload_done(task: asyncio.Future[bool]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("serving warm-up: could not preload modules on the workers: %s", task.exception())


async def start(app: Nbdeploy, *, start_cluster: bool = True) -> Callable[[], Awaitable[None]]:
    """Start a :class:`ServingWarmer` for ``app`` (a server) in the background; return its ``stop``.
    ``start_cluster=False``: the server starts its cluster lazily, and warming never starts one."""
    warmer = ServingWarmer(app, start_cluster=start_cluster)
    warmer.start()
    return warmer.stop
