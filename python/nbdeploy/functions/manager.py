"""The functions service: deploy handlers as immutable versions, serve and invoke them on the cluster.

No tornado here: the REST handlers, the CLI and the magics all call :class:`FunctionManager`.
"""

from __future__ import annotations

import asyncio
import builtins
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._sync import SyncBridge
from ..exceptions import ClusterError, InvalidInputError, NotFoundError, UserCodeError
from ..forms import schema_fields
from ..monitor import ServingStats
from ..names import validate_name
from ..runtime.messages import FunctionCall, Outcome
from ..runtime.pool_cache import PoolCache
from ..store import Store, Version, VersionCache
from .capture import Package, capture_cell, capture_file, capture_function
from .records import Deployment, FunctionInfo, FunctionList, FunctionSummary, FunctionVersion, InvokeResult
from .signature import validate_arguments

if TYPE_CHECKING:
    from ..app import Nbdeploy

__all__ = ["FunctionManager"]

KIND = "function"
DEFAULT_TIMEOUT = 60.0


class FunctionManager(SyncBridge, ServingStats):
    """Deploy, list, resolve and invoke the functions of ``app`` (``app.functions``); their serving statistics."""

    stats_kind = "function"  # calls served over HTTP are recorded by the handlers (server_extension.metrics.record)

    def __init__(self, app: Nbdeploy) -> None:
        self.app = app
        self._pools = PoolCache()
        self._resolved = VersionCache()  # what requests resolve, valid while the catalog is unchanged

    @property
    def store(self) -> Store:
        return self.app.store

    # --- deploying --------------------------------------------------------------------------------
    def deploy(
        self,
        fn: Callable[..., Any] | None = None,
        name: str | None = None,
        *,
        capture: Iterable[str] | None = None,
        requirements: str | Iterable[str] | None = None,
        description: str | None = None,
        timeout: float | None = None,
        resources: dict[str, float] | None = None,
    ) -> Any:
        """Deploy ``fn`` as the next version of ``name`` (default: the function's name) and return the
        :class:`Deployment`. Without ``fn`` it returns a decorator that deploys and returns the function.

        ``timeout``: seconds a call may take (default 60). ``resources``: Dask resources its replicas need, e.g.
        ``{"GPU": 1}`` (served only by workers that offer them; a clear error when none does).
        """
        if fn is None:

            def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
                self.deploy(
                    f,
                    name,
                    capture=capture,
                    requirements=requirements,
                    description=description,
                    timeout=timeout,
                    resources=resources,
                )
                return f

            return decorator
        package = capture_function(fn, capture=capture, requirements=requirements, description=description)
        name = name or fn.__name__.replace("_", "-").lower()
        return self.deploy_package(package, name, timeout=timeout, resources=resources)

    def deploy_cell(
        self, source: str, namespace: dict[str, Any], name: str, *, handler: str | None = None, **options: Any
    ) -> Deployment:
        """Deploy the handler a notebook cell defines (it must have run in ``namespace`` already)."""
        validate_name(name)
        timeout, resources = options.pop("timeout", None), options.pop("resources", None)
        package = capture_cell(source, namespace, handler=handler, **options)
        return self.deploy_package(package, name, timeout=timeout, resources=resources)

    def deploy_file(
        self, path: str | Path, name: str | None = None, *, handler: str | None = None, **options: Any
    ) -> Deployment:
        """Deploy a handler from a ``.py`` file or a notebook (see :func:`capture_file`)."""
        if name is not None:
            validate_name(name)
        timeout, resources = options.pop("timeout", None), options.pop("resources", None)
        package = capture_file(path, handler=handler, **options)
        name = name or package.handler.replace("_", "-").lower()
        return self.deploy_package(package, name, timeout=timeout, resources=resources)

    def deploy_package(
        self,
        package: Package,
        name: str,
        *,
        timeout: float | None = None,
        resources: dict[str, float] | None = None,
    ) -> Deployment:
        """Store a captured package as a new immutable version; nothing is stored if it cannot be pickled or an
        option is malformed (:class:`InvalidInputError`)."""
        from ..runtime.resources import normalize_resources

        validate_name(name)
        resources = normalize_resources(resources)
        data = package.to_bytes()  # raises before anything is written
        metadata = package.metadata()
        metadata["timeout"] = float(timeout) if timeout else DEFAULT_TIMEOUT
        if resources:
            metadata["resources"] = resources
        version = self.store.put(KIND, name, data, metadata)
        from ..runtime.warmup import preload_version

        preload_version(self.app, KIND, version.sha256)  # the first call finds it loaded on the workers
        notes = tuple(self._check_workers(package.imports))
        for note in notes:
            warnings.warn(note, stacklevel=3)
        return Deployment(version, f"/nbdeploy/api/functions/{name}/invoke", notes)

    def _check_workers(self, modules: builtins.list[str]) -> builtins.list[str]:
        """Warn about imported packages the cluster's workers lack (only when a cluster is already up)."""
        if not modules:
            return []
        try:
            return self._run(self._acheck_workers(modules), timeout=10)
        except Exception:  # no cluster running: a deploy needs none, so there is nothing to check
            return []

    async def _acheck_workers(self, modules: builtins.list[str]) -> builtins.list[str]:
        from .worker import missing_modules

        client = await self.app.runtime.async_client(start=False)  # a deploy never starts a cluster
        per_worker = await client.run(missing_modules, modules)
        lacking = sorted({m for missing in per_worker.values() for m in missing})
        if not lacking:
            return []
        return [
            f"the cluster's workers cannot import {', '.join(lacking)}: install it on the workers before calling "
            "this function"
        ]

    # --- reading ----------------------------------------------------------------------------------
    def list(self) -> FunctionList:
        """Every deployed function's newest version, by name."""
        return FunctionList([FunctionSummary.of(v) for v in self.store.list(KIND)])

    def get(self, name: str) -> FunctionInfo:
        """The function with its signature, requirements, captured globals, source and every version.

        Raises :class:`NotFoundError` for an unknown name and :class:`InvalidNameError` for a malformed one.
        """
        latest = self.store.get(KIND, name)
        versions = self.store.versions(KIND, name)
        meta = latest.metadata
        summary = FunctionSummary.of(latest)
        return FunctionInfo(
            name=latest.name,
            latest_version=latest.version,
            created_at=latest.created_at,
            owner=latest.owner,
            description=summary.description,
            handler=summary.handler,
            path=summary.path,
            signature=meta.get("signature", {}),
            form=schema_fields(meta.get("signature", {}).get("request", {})),
            requirements=meta.get("requirements", {}),
            captured=meta.get("captured", {}),
            timeout=float(meta.get("timeout", DEFAULT_TIMEOUT)),
            source=meta.get("source", ""),
            aliases=self.store.catalog.aliases(KIND, name),
            versions=[FunctionVersion(v.version, v.created_at, v.sha256, v.size, v.aliases) for v in versions],
        )

    def list_signatures(self) -> builtins.list[dict[str, Any]]:
        """Return ``{"name", "description", "signature"}`` of every function's newest version (for OpenAPI)."""
        return [
            {"name": v.name, "description": v.metadata.get("description", ""), "signature": v.metadata.get("signature")}
            for v in self.store.list(KIND)
        ]

    def versions(self, name: str) -> builtins.list[Version]:
        """Return every version of ``name``, oldest first."""
        found = self.store.versions(KIND, name)
        if not found:
            raise NotFoundError(f"no function named {name!r}: `nbdeploy functions list` shows the deployed ones")
        return found

    def delete(self, name: str) -> int:
        """Delete every version of ``name`` (it stops being served at once); return how many there were."""
        return self.store.delete(KIND, name)

    def stats(self, name: str) -> dict[str, Any]:
        """Serving statistics of ``name`` merged over every server that served it (this process included): the
        calls over HTTP (REST invoke, Open Inference Protocol) with ``requests``, ``errors``, ``statuses``,
        ``latency_ms`` (mean/p50/p99/max), the latency ``histogram`` over every call and ``latencies`` ([time, ms,
        status] of the latest calls). Raises :class:`NotFoundError` for a function never deployed."""
        self.versions(name)
        return self.merged_stats(name)

    def plot(self, name: str) -> Any:
        """A matplotlib figure of the function's serving latency (histogram, over time) and request rate."""
        from ..plots import function_figure

        return function_figure(name, self.stats(name))

    def resolve(self, name: str, version: int | str | None = None) -> Version:
        """Return the version to run: the newest, a number, or an alias. Raises :class:`NotFoundError`.

        Answers are cached only while the catalog reports no commit since (:class:`VersionCache`), so a
        deploy or a delete is seen by the very next request.
        """
        ref = None if version in (None, "latest") else version
        if isinstance(ref, str) and ref.isdigit():
            ref = int(ref)
        try:
            return self._resolved.get(self.store, KIND, name, ref)
        except NotFoundError as exc:
            if ref is None:
                raise NotFoundError(
                    f"no function named {name!r}: `nbdeploy functions list` shows the deployed ones"
                ) from exc
            raise

    # --- invoking ---------------------------------------------------------------------------------
    async def _pool(self, resources: dict[str, float] | None = None) -> Any:
        from ..runtime.pool import ActorPool
        from .worker import FunctionActor

        client = await self.app.runtime.async_client()
        store_url = self.store.url
        key = (id(client), store_url, tuple(sorted((resources or {}).items())))
        return await self._pools.get(
            key,
            lambda: ActorPool.connect(client.scheduler.address, FunctionActor, (store_url,), resources=resources),
        )

    async def ainvoke(
        self, name: str, arguments: dict[str, Any], version: int | str | None = None, *, as_json: bool = False
    ) -> InvokeResult:
        """Validate ``arguments`` against the signature and run the version on a serving replica.

        Raises :class:`SignatureError` (422) for bad arguments, :class:`UserCodeError` when the function
        raises, :class:`ClusterTimeoutError` past its timeout and :class:`ClusterError` when the cluster fails.
        """
        started = time.perf_counter()
        target = self.resolve(name, version)
        meta = target.metadata
        validate_arguments(meta.get("signature", {}).get("request", {}), arguments)
        pool = await self._pool(meta.get("resources"))
        timeout = meta.get("timeout", DEFAULT_TIMEOUT)
        call = FunctionCall(target.sha256, f"{target.name} v{target.version}", arguments, as_json, timeout)
        outcome: Outcome = await pool.call(call, timeout=timeout)
        if outcome.ok:
            elapsed = (time.perf_counter() - started) * 1000
            if as_json:
                return InvokeResult(None, target.version, elapsed, result_json=outcome.value)
            return InvokeResult(outcome.value, target.version, elapsed)
        if outcome.status == "error":
            raise UserCodeError(outcome.error_type, outcome.message, outcome.traceback)
        if outcome.status == "invalid":
            raise InvalidInputError(outcome.message, "arguments")
        raise ClusterError(f"a worker could not load {name} v{target.version}: {outcome.message}")

    def invoke(self, name: str, /, *, version: int | str | None = None, **kwargs: Any) -> Any:
        """Call a deployed function and return its result (the same path the HTTP API takes)."""
        return self._run(self.ainvoke(name, kwargs, version)).result

    def submit(self, name: str, /, *, version: int | str | None = None, **kwargs: Any) -> Any:
        """Run a call as a plain Dask task (for long or batch calls) and return its ``distributed.Future``."""
        from .worker import run_task

        target = self.resolve(name, version)
        validate_arguments(target.metadata.get("signature", {}).get("request", {}), kwargs)
        from ..runtime.tasks import check_resources

        call = FunctionCall(target.sha256, f"{target.name} v{target.version}", kwargs)
        resources = target.metadata.get("resources")
        client = self.app.runtime.client()
        check_resources(client, resources)
        return client.submit(run_task, self.store.url, call, pure=False, resources=resources)

    async def aclose(self) -> None:
        """Close the serving pools of the running event loop's clients; write the statistics out one last time."""
        await self._pools.aclose()
        if self._monitor is not None:
            await asyncio.to_thread(self.close_monitor)

    def close(self) -> None:
        """Close the serving pools and stop the background loop used by the synchronous API."""
        self._stop_loop(self.aclose)
        self._pools = PoolCache()
        self.close_monitor()
