"""Modules the Dask workers import when they start (setting ``worker_preload_modules``).

A served model's first call otherwise pays for importing its library on the worker (scikit-learn, torch, …:
often most of a cold start). Two ways to apply the setting:

- on the cluster a server uses (the embedded one, or any it connects to): the server registers
  :class:`PreloadModules`, a Dask worker plugin, which imports the modules on every worker now and on each
  worker that joins later (:func:`register_preload`);
- on an external cluster, before any server connects: start the workers with
  ``dask worker --preload nbdeploy.runtime.preload`` and ``NBDEPLOY_WORKER_PRELOAD_MODULES=sklearn,pandas`` in
  their environment (:func:`dask_setup` reads the setting there).

A module that cannot be imported is logged on the worker and skipped: preloading is an optimisation, never a
reason for a worker not to start.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Iterable
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["PreloadModules", "dask_setup", "import_modules", "register_preload"]

log = logging.getLogger("nbdeploy.runtime")
PLUGIN_NAME = "nbdeploy-preload-modules"


#: modules imported through a function of nbdeploy's that makes the same module faster ("module:function")
IMPORTERS = {"skops.io": "nbdeploy.models.skops_import:skops_io"}


def import_modules(modules: Iterable[str]) -> dict[str, str]:
    """Import each of ``modules``; return ``{module: error}`` for those that failed (logged, not raised)."""
    failed: dict[str, str] = {}
    for name in modules:
        try:
            importer = IMPORTERS.get(name)
            if importer is not None:
                module, _, function = importer.partition(":")
                getattr(importlib.import_module(module), function)()
            else:
                importlib.import_module(name)
        except Exception as exc:  # a broken optional module must not stop a worker
            failed[name] = f"{type(exc).__name__}: {exc}"
            log.warning("could not preload module %s on this worker: %s", name, exc)
    return failed


class PreloadModules(WorkerPlugin):  # type: ignore[misc]
    """A Dask worker plugin that imports ``modules`` on every worker, in a thread, so that the worker keeps
    answering the scheduler meanwhile. (Only servers and workers import this module: it brings Dask.)"""

    name = PLUGIN_NAME

    def __init__(self, modules: Iterable[str]) -> None:
        self.modules = tuple(modules)

    async def setup(self, worker: Any) -> None:
        await asyncio.to_thread(import_modules, self.modules)


async def register_preload(client: Any, modules: Iterable[str]) -> bool:
    """Register :class:`PreloadModules` for ``modules`` on the cluster of the asynchronous ``client`` (every
    worker, and those that join later); return whether there was anything to preload."""
    wanted = tuple(modules)
    if not wanted:
        return False
    await client.register_plugin(PreloadModules(wanted), name=PLUGIN_NAME)
    return True


def dask_setup(worker: Any) -> None:
    """``dask worker --preload nbdeploy.runtime.preload``: import the modules of the setting
    ``worker_preload_modules`` (``NBDEPLOY_WORKER_PRELOAD_MODULES``) as the worker starts."""
    from ..config import Settings

    import_modules(Settings.resolve(read_jupyter_config=False).worker_preload_modules)
