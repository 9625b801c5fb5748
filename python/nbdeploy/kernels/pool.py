"""The warm kernel pool of one Dask worker process: a few started kernels per (kernelspec, environment hash), each
handed to one run and then discarded.

A run asks :meth:`KernelPool.acquire` for a kernel. When its kernelspec is pooled (setting ``kernel_pool_kernels``,
``kernel_pool_size`` > 0, a Python kernel, and the run did not opt out with ``warm=False``) it gets a ready kernel
at once — one that died while it waited in the pool is replaced, never handed out — and the pool starts a
replacement in the background. With the pool empty, the run waits for a kernel already starting, else starts its
own. The run's environment variables and working folder are applied when the kernel is claimed
(:func:`~.starter.claim_code`); after the run the kernel is killed, so nothing a run did (variables, ``os.environ``,
imported or patched modules, memory) reaches the next one.

The pool's settings come with each run (and with the dispatcher's warm-up call), so the server's settings rule
every worker. Kernels of a pool share the key ``(kernelspec, environment hash)`` (:func:`~.specs.environment_hash`):
when the worker's environment or the preloaded modules change, new kernels get a new key.
"""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import specs as _specs
from . import starter

__all__ = ["Claimed", "KernelPool", "PoolConfig", "pool", "worker_report"]

log = logging.getLogger("nbdeploy.kernels")

START_TIMEOUT = 60.0


@dataclass(frozen=True)
class PoolConfig:
    """What a worker pools: ``size`` ready kernels per kernelspec in ``kernels`` (``"*"``: every kernelspec a run
    asked for), each having imported ``preload``."""

    size: int = 1
    kernels: tuple[str, ...] = ("python3",)
    preload: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> PoolConfig:
        return cls(
            max(0, int(settings.kernel_pool_size)),
            tuple(settings.kernel_pool_kernels),
            tuple(settings.kernel_pool_preload),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PoolConfig:
        if not data:
            return cls()
        return cls(int(data.get("size", 1)), tuple(data.get("kernels") or ()), tuple(data.get("preload") or ()))

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "kernels": list(self.kernels), "preload": list(self.preload)}

    def pools(self, kernel: str) -> bool:
        """Whether kernels of ``kernel`` are pooled."""
        return self.size > 0 and (kernel in self.kernels or "*" in self.kernels)


@dataclass
class Claimed:
    """A kernel handed to one run: where it came from (``pool`` or ``started``), the Python to run in it before the
    first cell (the run's environment, for a pooled one) and how long getting it took."""

    kernel: starter.StartedKernel
    source: str
    setup: str
    seconds: float


@dataclass
class _Pool:
    """The kernels of one (kernelspec, environment hash)."""

    kernel: str
    environment: str
    spec: dict[str, Any]
    base_env: dict[str, str]
    preload: tuple[str, ...]
    ready: deque[starter.StartedKernel] = field(default_factory=deque)
    starting: int = 0
    waiting: int = 0
    claimed: int = 0
    cold: int = 0
    replaced: int = 0
    failures: int = 0
    warnings: list[str] = field(default_factory=list)


class KernelPool:
    """The warm kernels of this worker process (see the module's docstring). Thread-safe."""

    def __init__(self) -> None:
        self.config = PoolConfig()
        self._cond = threading.Condition()
        self._pools: dict[tuple[str, str], _Pool] = {}
        self._closed = False

    # --- settings ----------------------------------------------------------------------------------------------------
    def configure(self, config: PoolConfig) -> None:
        """Adopt ``config``; kernels of kernelspecs no longer pooled, and ready kernels over the size, are discarded."""
        extra: list[starter.StartedKernel] = []
        with self._cond:
            if config == self.config:
                return
            self.config = config
            for key, p in list(self._pools.items()):
                wanted = config.pools(p.kernel) and p.preload == config.preload
                keep = config.size if wanted else 0
                while len(p.ready) > keep:
                    extra.append(p.ready.pop())
                if not wanted and not p.starting:
                    del self._pools[key]
        for k in extra:
            starter.discard(k)

    def prefill(self) -> list[str]:
        """Start filling the pools of the kernelspecs the settings name (those this worker has); return their names."""
        if not self.config.size:
            return []
        known = _specs.available()
        filled = []
        for name in self.config.kernels:
            spec = known.get(name)
            if spec is not None and spec["language"].lower() == "python":
                self._fill(self._pool_for(name, spec))
                filled.append(name)
        return filled

    # --- claiming -------------------------------------------------------------------------------------------------------
    def acquire(
        self, kernel: str, run_env: Mapping[str, str], cwd: str, *, warm: bool = True, timeout: float = START_TIMEOUT
    ) -> Claimed:
        """A started kernel of kernelspec ``kernel`` for one run, with ``run_env`` and ``cwd`` applied (at start, or
        by its ``setup`` code when it comes from the pool).

        Raises :class:`~.specs.UnknownKernelError` (listing the kernelspecs this worker has) when it has no
        ``kernel``, and what launching a kernel raises.
        """
        began = time.monotonic()
        spec = _specs.kernelspec(kernel, f"on the worker {_worker_name()}")
        pooled = (
            warm
            and not self._closed
            and self.config.pools(kernel)
            and str(spec.get("language") or "").lower() == "python"
        )
        p = self._pool_for(kernel, spec) if pooled else None
        if p is not None:
            self._fill(p)  # a kernel starting for the pool is as quick as one of our own, and keeps it full
            got = self._take(p, began + timeout)
            self._fill(p)
            if got is not None:
                setup = starter.claim_code(got.base_env, run_env, cwd)
                return Claimed(got, "pool", setup, time.monotonic() - began)
        started = starter.start(kernel, spec, run_env, cwd)
        if p is not None:
            with self._cond:
                p.cold += 1
        return Claimed(started, "started", "", time.monotonic() - began)

    def _take(self, p: _Pool, deadline: float) -> starter.StartedKernel | None:
        """A live ready kernel of ``p`` (dead ones are dropped and counted as replaced), waiting for one that is
        starting when there are more starting than waiting; ``None`` when the run had better start its own."""
        dead: list[starter.StartedKernel] = []
        try:
            with self._cond:
                while True:
                    while p.ready:
                        k = p.ready.popleft()
                        if k.alive():
                            p.claimed += 1
                            return k
                        p.replaced += 1
                        dead.append(k)
                    remaining = deadline - time.monotonic()
                    if p.starting <= p.waiting or remaining <= 0 or self._closed:
                        return None
                    p.waiting += 1
                    try:
                        self._cond.wait(min(remaining, 1.0))
                    finally:
                        p.waiting -= 1
        finally:
            for k in dead:
                log.warning("a pooled %s kernel (pid %s) died in the pool; it is replaced", k.kernel, k.pid)
                starter.discard(k)

    def discard(self, claimed: Claimed) -> None:
        """End a run's kernel (killed in the background: it never serves another run)."""
        starter.discard(claimed.kernel)

    # --- filling --------------------------------------------------------------------------------------------------------
    def _pool_for(self, kernel: str, spec: dict[str, Any]) -> _Pool:
        base_env = _specs.kernel_base_env()
        preload = self.config.preload
        environment = _specs.environment_hash(spec, base_env, preload)
        with self._cond:
            p = self._pools.get((kernel, environment))
            if p is None:
                p = self._pools[(kernel, environment)] = _Pool(kernel, environment, spec, base_env, preload)
            return p

    def _fill(self, p: _Pool) -> None:
        """Start (in the background) as many kernels as ``p`` lacks."""
        with self._cond:
            if self._closed or p.failures >= 3 or not self.config.pools(p.kernel) or p.preload != self.config.preload:
                return
            missing = self.config.size - len(p.ready) - p.starting + p.waiting
            p.starting += max(0, missing)
        for _ in range(max(0, missing)):
            threading.Thread(target=self._start_one, args=(p,), name="nbdeploy-kernel-pool", daemon=True).start()

    def _start_one(self, p: _Pool) -> None:
        kernel: starter.StartedKernel | None = None
        try:
            kernel = starter.start(p.kernel, p.spec, p.base_env, tempfile.gettempdir(), p.environment)
            warnings = starter.ready(kernel, START_TIMEOUT, p.preload)
        except Exception as exc:
            log.warning("starting a pooled %s kernel failed: %s", p.kernel, exc)
            if kernel is not None:
                starter.discard(kernel)
            with self._cond:
                p.starting -= 1
                p.failures += 1
                self._cond.notify_all()
            return
        surplus = False
        with self._cond:
            p.starting -= 1
            p.failures = 0
            for w in warnings:
                if w not in p.warnings:
                    p.warnings.append(w)
                    log.warning("pooled %s kernels: %s", p.kernel, w)
            wanted = self.config.pools(p.kernel) and p.preload == self.config.preload
            if self._closed or not wanted or len(p.ready) >= self.config.size + p.waiting:
                surplus = True
            else:
                p.ready.append(kernel)
            self._cond.notify_all()
        if surplus:
            starter.discard(kernel)

    # --- state ----------------------------------------------------------------------------------------------------------
    def state(self) -> list[dict[str, Any]]:
        """Each pool's state (dead ready kernels are dropped, counted as replaced, and refilled first)."""
        for p in list(self._pools.values()):
            dead = []
            with self._cond:
                for k in list(p.ready):
                    if not k.alive():
                        p.ready.remove(k)
                        p.replaced += 1
                        dead.append(k)
            for k in dead:
                starter.discard(k)
            if dead:
                self._fill(p)
        with self._cond:
            return [
                {
                    "kernel": p.kernel,
                    "environment": p.environment,
                    "size": self.config.size if self.config.pools(p.kernel) else 0,
                    "ready": len(p.ready),
                    "starting": p.starting,
                    "claimed": p.claimed,
                    "cold": p.cold,
                    "replaced": p.replaced,
                    "ready_pids": [k.pid for k in p.ready if k.pid is not None],
                    "preload": list(p.preload),
                    "warnings": list(p.warnings),
                }
                for p in self._pools.values()
            ]

    def close(self) -> None:
        """Discard every ready kernel (at the worker's exit)."""
        with self._cond:
            self._closed = True
            kernels = [k for p in self._pools.values() for k in p.ready]
            for p in self._pools.values():
                p.ready.clear()
            self._cond.notify_all()
        for k in kernels:
            starter.discard(k, wait=True)


_pool: KernelPool | None = None
_pool_lock = threading.Lock()
_pool_pid: int | None = None


def pool(config: PoolConfig | Mapping[str, Any] | None = None) -> KernelPool:
    """This process's pool (made on first use; its kernels are discarded at exit), configured with ``config``."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool, _pool_pid = KernelPool(), os.getpid()
            atexit.register(_pool.close)
        current = _pool
    if config is not None:
        current.configure(config if isinstance(config, PoolConfig) else PoolConfig.from_json(config))
    return current


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "(this process)"


def worker_report(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What this worker can run and its pool (``client.run`` calls it on every worker): ``{"kernelspecs": [{name,
    display_name, language, pooled}], "pool": [...]}``. With ``config``, the pool adopts it first."""
    p = pool(config)
    return {
        "kernelspecs": [
            {
                "name": name,
                "display_name": spec["display_name"],
                "language": spec["language"],
                "pooled": p.config.pools(name) and spec["language"].lower() == "python",
            }
            for name, spec in sorted(_specs.available().items())
        ],
        "pool": p.state(),
    }


def warm(config: Mapping[str, Any] | None = None) -> list[str]:
    """The dispatcher's warm-up on every worker: adopt ``config`` and fill the pools it names (in the background)."""
    return pool(config).prefill()
