"""Running tasks on the cluster with nbdeploy's errors: a lost worker or scheduler is a :class:`ClusterError`.

``run(fn, *args, **kwargs)`` submits one call and waits for its result; ``run_map(fn, items)`` does the same for
many. Both submit with ``pure=False`` (user functions are not assumed pure: calling twice runs twice). A task
that needs a GPU passes ``resources=gpu_resources()``; asking for a resource no worker offers fails at once
instead of waiting forever. The user's own exceptions are re-raised as they are, with their remote traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..exceptions import ClusterError, ClusterTimeoutError
from .cluster import async_client, client
from .resources import normalize_resources, offering_workers

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = [
    "check_resources",
    "cluster_errors",
    "gpu_resources",
    "no_worker_offers",
    "normalize_resources",
    "offering_workers",
    "result",
    "result_async",
    "run",
    "run_async",
    "run_map",
    "submit",
]

RESOURCE_CHECK_TTL = 5.0  # seconds a positive "some worker offers these resources" answer is trusted
_resources_seen: dict[tuple[str, frozenset[tuple[str, float]]], float] = {}


def no_worker_offers(address: str, resources: dict[str, float]) -> ClusterError:
    """The error for a task or replica that asks for ``resources`` no worker of the cluster offers."""
    return _no_resources(address, resources)


def gpu_resources(n: int = 1) -> dict[str, float]:
    """Return ``{"GPU": n}``: pass it as ``resources=`` so that a task runs on a worker with ``n`` free GPUs."""
    if n <= 0:
        raise ValueError("a task asks for at least one GPU")
    return {"GPU": n}


@contextlib.contextmanager
def cluster_errors(what: str = "the task", futures: Iterable[Future] = ()) -> Iterator[None]:
    """Translate Dask's failures inside the block into :class:`ClusterError` with what to do.

    A worker that died under the task (``KilledWorker``), a scheduler connection that was lost, a task
    cancelled because of it. Other exceptions pass through untouched, and so does a connection error that one
    of ``futures`` raised itself (the user's code failing to connect somewhere).
    """
    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    try:
        yield
    except KilledWorker as exc:
        last = getattr(getattr(exc, "last_worker", None), "address", "a worker")
        tries = getattr(exc, "allowed_failures", 0) + 1
        raise ClusterError(
            f"{what} killed the Dask worker running it, {tries} time(s), the last on {last}: it most often ran "
            "out of memory or crashed the process. Check the worker logs (dashboard, `nbdeploy cluster status`), "
            "give workers more memory (`nbdeploy cluster start --memory-limit …`) or make the task smaller"
        ) from exc
    except FutureCancelledError as exc:
        reason = getattr(exc, "reason", "")
        if reason in ("scheduler-connection-lost", "scheduler-restart"):
            raise ClusterError(
                f"{what} was lost: the connection to the Dask scheduler broke ({reason}); run it again once "
                "`nbdeploy cluster status` answers"
            ) from exc
        raise
    except (CommClosedError, ConnectionError) as exc:
        if any(f.status == "error" for f in futures):
            raise
        raise ClusterError(
            f"lost the connection to the Dask scheduler while waiting for {what} ({exc}); check the cluster with "
            "`nbdeploy cluster status`"
        ) from exc


def _timed_out(what: str, timeout: float | None) -> ClusterTimeoutError:
    return ClusterTimeoutError(f"{what} did not finish within {timeout}s")


def result(futures: Future | list[Future], timeout: float | None = None) -> Any:
    """Wait for one future (or a list) and return its result (or the list of results).

    Raises :class:`ClusterTimeoutError` when not done within ``timeout`` seconds (the futures keep running;
    cancel them if they should not), :class:`ClusterError` for a lost worker or scheduler, and the task's own
    exception when it raised.
    """
    from distributed import Future, wait

    single = isinstance(futures, Future)
    items: list[Future] = [futures] if single else list(futures)  # type: ignore[list-item, arg-type]
    if not items:
        return []
    what = f"the task {items[0].key!r}" if single else f"{len(items)} tasks"
    try:
        with cluster_errors(what, items):
            if single:
                return items[0].result(timeout=timeout)
            if timeout is not None:
                wait(items, timeout=timeout)
            return items[0].client.gather(items)
    except TimeoutError as exc:
        if isinstance(exc, ClusterError) or any(f.status == "error" for f in items):
            raise  # our own translation, or the user's TimeoutError raised inside the task
        raise _timed_out(what, timeout) from exc


async def result_async(futures: Future | list[Future], timeout: float | None = None) -> Any:
    """:func:`result` for futures of an asynchronous client; raises the same."""
    from distributed import Future

    single = isinstance(futures, Future)
    items: list[Future] = [futures] if single else list(futures)  # type: ignore[list-item, arg-type]
    if not items:
        return []
    what = f"the task {items[0].key!r}" if single else f"{len(items)} tasks"
    awaitable = items[0] if single else items[0].client.gather(items)
    try:
        with cluster_errors(what, items):
            return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError as exc:
        if isinstance(exc, ClusterError) or any(f.status == "error" for f in items):
            raise
        raise _timed_out(what, timeout) from exc


def _call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return fn(*args, **kwargs)


def _task_key(fn: Callable[..., Any]) -> str:
    from dask.utils import funcname

    return f"{funcname(fn)}-{uuid.uuid4().hex}"


def _offers(info: dict[str, Any], resources: dict[str, float]) -> bool:
    for w in info.get("workers", {}).values():
        have = w.get("resources") or {}
        if all(have.get(name, 0) >= amount for name, amount in resources.items()):
            return True
    return False


def _no_resources(address: str, resources: dict[str, float]) -> ClusterError:
    hint = (
        'run a GPU cluster (NBDEPLOY_CLUSTER=cuda or auto, `pip install "nbdeploy[gpu]"`) or start workers with '
        "`dask worker --resources GPU=1`"
        if "GPU" in resources
        else "start workers with `dask worker --resources NAME=AMOUNT`"
    )
    return ClusterError(
        f"no worker of the cluster at {address} offers the resources {resources}, so the task would wait "
        f"forever: {hint}"
    )


def _resource_key(c: Client, resources: dict[str, float]) -> tuple[str, frozenset[tuple[str, float]]]:
    return (str(c.scheduler.address), frozenset(resources.items()))


def check_resources(c: Client, resources: dict[str, float] | None) -> None:
    """Raise :class:`ClusterError` unless some worker of ``c``'s cluster offers ``resources`` (cached briefly)."""
    _check_resources(c, resources)


def _check_resources(c: Client, resources: dict[str, float] | None) -> None:
    if not resources:
        return
    key = _resource_key(c, resources)
    if _resources_seen.get(key, 0.0) > time.monotonic():
        return
    with cluster_errors("the resource check"):
        info = c.sync(c.scheduler.identity, n_workers=-1)
    if not _offers(info, resources):
        raise _no_resources(key[0], resources)
    _resources_seen[key] = time.monotonic() + RESOURCE_CHECK_TTL


async def _check_resources_async(c: Client, resources: dict[str, float] | None) -> None:
    if not resources:
        return
    key = _resource_key(c, resources)
    if _resources_seen.get(key, 0.0) > time.monotonic():
        return
    with cluster_errors("the resource check"):
        info = await c.scheduler.identity(n_workers=-1)
    if not _offers(info, resources):
        raise _no_resources(key[0], resources)
    _resources_seen[key] = time.monotonic() + RESOURCE_CHECK_TTL


def submit(
    fn: Callable[..., Any],
    *args: Any,
    resources: dict[str, float] | None = None,
    retries: int | None = None,
    **kwargs: Any,
) -> Future:
    """Submit ``fn(*args, **kwargs)`` to the cluster (never deduplicated) and return its future.

    Every keyword argument other than ``resources`` and ``retries`` goes to ``fn``. Raises
    :class:`ClusterError` when no worker offers ``resources`` or the cluster cannot be reached.
    """
    c = client()
    _check_resources(c, resources)
    return c.submit(_call, fn, args, kwargs, key=_task_key(fn), pure=False, resources=resources, retries=retries)


def run(
    fn: Callable[..., Any],
    *args: Any,
    timeout: float | None = None,
    resources: dict[str, float] | None = None,
    retries: int | None = None,
    **kwargs: Any,
) -> Any:
    """Run ``fn(*args, **kwargs)`` on the cluster and return its result.

    On timeout the task is cancelled and :class:`ClusterTimeoutError` raised; a worker or scheduler lost under
    it raises :class:`ClusterError`; the task's own exception is re-raised as it is.
    """
    future = submit(fn, *args, resources=resources, retries=retries, **kwargs)
    try:
        return result(future, timeout)
    except ClusterTimeoutError:
        future.cancel()
        raise


def run_map(
    fn: Callable[..., Any],
    *iterables: Iterable[Any],
    timeout: float | None = None,
    resources: dict[str, float] | None = None,
    retries: int | None = None,
) -> list[Any]:
    """Run ``fn`` over the items of ``iterables`` (as :func:`map` does) on the cluster; return the results.

    Raises as :func:`run` does (on timeout the unfinished tasks are cancelled).
    """
    c = client()
    _check_resources(c, resources)
    futures = c.map(fn, *iterables, pure=False, resources=resources, retries=retries)  # type: ignore[arg-type]
    try:
        return result(futures, timeout)
    except ClusterTimeoutError:
        c.cancel(futures)
        raise


async def run_async(
    fn: Callable[..., Any],
    *args: Any,
    timeout: float | None = None,
    resources: dict[str, float] | None = None,
    retries: int | None = None,
    **kwargs: Any,
) -> Any:
    """:func:`run` for coroutines, over the loop's asynchronous client; raises the same."""
    c = await async_client()
    await _check_resources_async(c, resources)
    future = c.submit(_call, fn, args, kwargs, key=_task_key(fn), pure=False, resources=resources, retries=retries)
    try:
        return await result_async(future, timeout)
    except ClusterTimeoutError:
        await future.cancel()
        raise
