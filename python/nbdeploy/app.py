"""The composition root: one :class:`Nbdeploy` object builds and owns the store, the runtime and one manager per
service, and :data:`SERVICES` is the one place that says what each service brings.

A service is a folder (``functions/``, ``jobs/``, ``models/`` …) plus one :class:`Service` entry below naming, as
lazy ``"module:attribute"`` strings, its managers (attributes of the object: ``app.functions``), its REST handler
modules, its CLI commands, its IPython magics, its background tasks and the names it adds to ``import nbdeploy
as nbd``. Nothing is imported until it is used, so ``nbdeploy --help`` and ``%load_ext nbdeploy`` stay cheap.

``import nbdeploy as nbd; nbd.deploy(fn)`` calls the manager of a default instance built from the process-wide
settings (:func:`default`); servers build their own instance (the Jupyter extension, ``nbdeploy serve``). Every
manager class is swappable from Jupyter config: ``c.Nbdeploy.functions_class = "mypkg.MyFunctionManager"``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from traitlets import Type
from traitlets.config import Config

from .config import NbdeployConfig, Settings, get_settings

if TYPE_CHECKING:
    from .jobs.clock import Clock

__all__ = ["SERVICES", "Nbdeploy", "Service", "default", "delegate", "load", "reset_default"]

log = logging.getLogger("nbdeploy")


@dataclass(frozen=True)
class Service:
    """What one service brings; every entry is a lazy ``"module:attribute"`` (or a module for ``handlers``).

    ``managers``: attribute of :class:`Nbdeploy` -> manager class (built with the app as its one argument).
    ``handlers``: modules exporting ``default_handlers`` (routes relative to ``/nbdeploy/api``).
    ``mounts``: another URL prefix -> modules whose ``default_handlers`` are relative to it (an API that is not
    nbdeploy's own, e.g. MLflow's tracking API under ``/nbdeploy/mlflow``), authenticated like the rest.
    ``serve_mounts``: the same, mounted by ``nbdeploy serve`` only (e.g. the Open Inference Protocol at the root,
    ``/v2/…``, where its clients look; a Jupyter server keeps it under ``/nbdeploy/api``).
    ``cli``: ``nbdeploy`` sub-command -> click command. ``magics``: IPython ``Magics`` classes.
    ``background``: ``async def start(app) -> stop`` run by servers (``stop`` an async callable or ``None``).
    ``exports``: names of ``import nbdeploy as nbd`` -> ``"manager.method"`` or ``"module:function"``.
    """

    name: str
    managers: Mapping[str, str] = field(default_factory=dict)
    handlers: tuple[str, ...] = ()
    mounts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    serve_mounts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cli: Mapping[str, str] = field(default_factory=dict)
    magics: tuple[str, ...] = ()
    background: tuple[str, ...] = ()
    exports: Mapping[str, str] = field(default_factory=dict)


SERVICES: tuple[Service, ...] = (
    Service(
        "server",
        handlers=("nbdeploy.server_extension.handlers", "nbdeploy.server_extension.metrics"),
        cli={"serve": "nbdeploy.server_extension.cli:serve", "info": "nbdeploy.server_extension.cli:info"},
    ),
    Service(
        "store",
        managers={"store": "nbdeploy.store:Store"},
        cli={"store": "nbdeploy.store.cli:store"},
    ),
    Service(
        "runtime",
        managers={"runtime": "nbdeploy.runtime.api:Runtime"},
        handlers=("nbdeploy.server_extension.cluster_handlers", "nbdeploy.server_extension.dashboard"),
        cli={"cluster": "nbdeploy.runtime.cli:cluster"},
        magics=("nbdeploy.runtime.magics:ClusterMagics",),
    ),
    Service(
        "functions",
        managers={"functions": "nbdeploy.functions.manager:FunctionManager"},
        handlers=("nbdeploy.functions.handlers",),
        cli={"functions": "nbdeploy.functions.cli:functions", "deploy": "nbdeploy.functions.cli:deploy"},
        magics=("nbdeploy.functions.magics:DeployMagics",),
        exports={"deploy": "functions.deploy", "invoke": "functions.invoke"},
    ),
    Service(
        "jobs",
        managers={
            "jobs": "nbdeploy.jobs.manager:JobManager",
            "schedules": "nbdeploy.jobs.schedules:ScheduleManager",
            "runs": "nbdeploy.jobs.runs:RunManager",
        },
        handlers=("nbdeploy.jobs.handlers", "nbdeploy.jobs.run_handlers", "nbdeploy.jobs.notebook_handlers"),
        cli={
            "jobs": "nbdeploy.jobs.cli:jobs",
            "schedules": "nbdeploy.jobs.cli:schedules",
            "runs": "nbdeploy.jobs.cli:runs",
            "scheduler": "nbdeploy.jobs.cli:scheduler",
        },
        magics=("nbdeploy.jobs.magics:JobMagics",),
        background=("nbdeploy.jobs.service:start",),
        exports={
            "log_metric": "nbdeploy.jobs.tracking:log_metric",
            "log_artifact": "nbdeploy.jobs.tracking:log_artifact",
        },
    ),
    Service(
        "pipelines",
        managers={"pipelines": "nbdeploy.pipelines.manager:PipelineManager"},
        handlers=("nbdeploy.pipelines.handlers",),
        cli={"pipelines": "nbdeploy.pipelines.cli:pipelines"},
        magics=("nbdeploy.pipelines.magics:PipelineMagics",),
        background=("nbdeploy.pipelines.driver:start",),
        exports={"output": "nbdeploy.pipelines.values:output"},
    ),
    Service(
        "kernels",
        managers={"kernels": "nbdeploy.kernels.manager:KernelService"},
        handlers=("nbdeploy.kernels.handlers",),
        cli={"kernels": "nbdeploy.kernels.cli:kernels"},
    ),
    Service(
        "models",
        managers={"models": "nbdeploy.models.manager:ModelManager"},
        handlers=("nbdeploy.models.handlers",),
        cli={"models": "nbdeploy.models.cli:models"},
        magics=("nbdeploy.models.magics:ModelMagics",),
    ),
    Service(
        "datasets",
        managers={"datasets": "nbdeploy.datasets.manager:DatasetManager"},
        handlers=("nbdeploy.datasets.handlers",),
        cli={"datasets": "nbdeploy.datasets.cli:datasets"},
        magics=("nbdeploy.datasets.magics:DatasetMagics",),
    ),
    Service(
        "tracking",
        managers={"tracking": "nbdeploy.tracking.manager:TrackingManager"},
        handlers=("nbdeploy.tracking.handlers",),
        mounts={"/nbdeploy/mlflow": ("nbdeploy.tracking.mlflow_api", "nbdeploy.tracking.mlflow_artifacts")},
        cli={"tracking": "nbdeploy.tracking.cli:tracking"},
    ),
    Service(
        "oip",
        handlers=("nbdeploy.oip.handlers",),
        serve_mounts={"": ("nbdeploy.oip.handlers",)},
    ),
    Service(
        "tokens",
        managers={"tokens": "nbdeploy.tokens.manager:TokenManager"},
        handlers=("nbdeploy.tokens.handlers",),
        cli={"tokens": "nbdeploy.tokens.cli:tokens"},
    ),
)


def load(target: str) -> Any:
    """Import ``"module:attribute"`` (or a module) and return it."""
    module, _, attr = target.partition(":")
    value: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        value = getattr(value, part)
    return value


MANAGERS: dict[str, str] = {attr: target for s in SERVICES for attr, target in s.managers.items()}
EXPORTS: dict[str, str] = {name: target for s in SERVICES for name, target in s.exports.items()}


def _manager_traits() -> dict[str, Any]:
    """``<attr>_class`` Type traits (``c.Nbdeploy.functions_class = …``), one per declared manager; unset, the
    declared class is used (imported on first use, not when the app is built)."""
    return {
        f"{attr}_class": Type(
            None,
            klass=object,
            allow_none=True,
            help=f"The class of app.{attr}, built with the app as its one argument (default {target}).",
        ).tag(config=True)
        for attr, target in MANAGERS.items()
    }


class Nbdeploy(NbdeployConfig):
    """nbdeploy's one API object: ``app.functions``, ``app.jobs``, ``app.schedules``, ``app.runs``, ``app.models``,
    ``app.store`` and ``app.runtime``, each built on first use from :attr:`settings`.

    ``Nbdeploy()`` resolves the settings (argument > ``NBDEPLOY_*`` > Jupyter config > default); pass a
    :class:`~nbdeploy.config.Settings` or keyword settings (``Nbdeploy(store_url=…)``) to choose. Servers call
    :meth:`start` / :meth:`stop`; :meth:`close` releases what the managers hold (pools, threads).
    """

    locals().update(_manager_traits())

    def __init__(self, settings: Settings | None = None, *, config: Config | None = None, **explicit: Any) -> None:
        super().__init__(config=config)
        if settings is not None and explicit:
            raise TypeError("give a Settings object or keyword settings, not both")
        self.settings: Settings = settings or Settings.resolve(config, **explicit)
        self._built: dict[str, Any] = {}
        self._build_lock = threading.RLock()
        self._stops: list[Callable[[], Awaitable[None] | None]] = []
        self.url: str | None = None
        self.clock: Clock | None = None  # the scheduler's clock in a server (None: the system's; tests drive it)

    def __getattr__(self, name: str) -> Any:
        target = MANAGERS.get(name)
        if target is None or name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        built = self.__dict__.get("_built")
        if built is None:  # during traitlets' own set-up
            raise AttributeError(name)
        if name in built:
            return built[name]
        with self._build_lock:
            if name not in built:
                cls = getattr(self, f"{name}_class") or load(target)
                built[name] = cls.from_app(self) if hasattr(cls, "from_app") else cls(self)
            return built[name]

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(MANAGERS))

    # --- what the services declare ----------------------------------------------------------------------------
    @staticmethod
    def handler_modules() -> list[str]:
        """Every REST handler module of every service, in declaration order."""
        return [m for s in SERVICES for m in s.handlers]

    @staticmethod
    def mounted_handler_modules(standalone: bool = False) -> list[tuple[str, str]]:
        """``(prefix, module)`` of every handler module mounted under a prefix of its own, in declaration order
        (with ``standalone``, also those only ``nbdeploy serve`` mounts)."""
        found = [(prefix, m) for s in SERVICES for prefix, modules in s.mounts.items() for m in modules]
        if standalone:
            found += [(prefix, m) for s in SERVICES for prefix, modules in s.serve_mounts.items() for m in modules]
        return found

    @staticmethod
    def magic_classes() -> list[str]:
        """Every IPython magics class (``"module:Class"``) of every service."""
        return [m for s in SERVICES for m in s.magics]

    @staticmethod
    def cli_commands() -> dict[str, str]:
        """``nbdeploy`` sub-command -> ``"module:attribute"`` of its click command."""
        return {name: target for s in SERVICES for name, target in s.cli.items()}

    # --- servers ------------------------------------------------------------------------------------------------
    async def start(self, *, own_cluster: bool = True, background: bool = True) -> None:
        """For servers: connect to (or start and advertise) the cluster, then start every background task."""
        if own_cluster:
            await self.runtime.ensure_cluster_async()
        if background:
            for s in SERVICES:
                for entry in s.background:
                    stop = await load(entry)(self)
                    if stop is not None:
                        self._stops.append(stop)

    def advertise(self, url: str, kind: str) -> None:
        """Record the URL this server answers on, for kernels to show (see :mod:`.server_extension.adverts`)."""
        from .server_extension.adverts import advertise_server

        self.url = url
        advertise_server(self.settings.runtime_dir, url, kind)

    async def stop(self) -> None:
        """For servers: stop the background tasks (newest first), close the managers, withdraw the advert, then
        release the runtime (clients, and the cluster this process owns)."""
        while self._stops:
            stop = self._stops.pop()
            try:
                result = stop()
                if inspect.isawaitable(result):
                    await result
            except Exception:  # keep stopping the rest
                log.exception("stopping a background task failed")
        await self.aclose()
        if self.url is not None:
            from .server_extension.adverts import withdraw_server

            withdraw_server(self.settings.runtime_dir)
            self.url = None
        await self.runtime.shutdown_async()

    def _built_managers(self) -> Iterator[Any]:
        with self._build_lock:
            return iter(list(self._built.values()))

    async def aclose(self) -> None:
        """Close what the managers built so far hold (serving pools of the running loop, monitors)."""
        for manager in self._built_managers():
            close = getattr(manager, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.exception("closing %s failed", type(manager).__name__)

    def close(self) -> None:
        """Close every manager built so far (pools, background loops of the synchronous API, connections)."""
        for manager in self._built_managers():
            close = getattr(manager, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("closing %s failed", type(manager).__name__)
        with self._build_lock:
            self._built.clear()

    def __enter__(self) -> Nbdeploy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Nbdeploy home={self.settings.home!r} store={self.settings.store_url!r}>"


# --- the default instance of this process --------------------------------------------------------------------
_default: Nbdeploy | None = None
_default_lock = threading.Lock()


def default() -> Nbdeploy:
    """The process's default :class:`Nbdeploy`, built from the process-wide settings (rebuilt, and the old one
    closed, when the settings were reset since)."""
    global _default
    settings = get_settings()
    app = _default
    if app is not None and app.settings is settings:
        return app
    with _default_lock:
        if _default is not None and _default.settings is not settings:
            old, _default = _default, None
            old.close()
        if _default is None:
            _default = Nbdeploy(settings)
        return _default


def set_default(app: Nbdeploy) -> None:
    """Make ``app`` this process's default instance (servers do, so that ``nbd.*`` in them uses theirs)."""
    global _default
    from .config import set_settings

    with _default_lock:
        set_settings(app.settings)
        _default = app


def reset_default() -> None:
    """Close and forget the default instance (the next use builds a new one)."""
    global _default
    with _default_lock:
        old, _default = _default, None
    if old is not None:
        old.close()


def delegate(package: str, manager: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a service package: a name the package does not define (and that is not one
    of its modules) is looked up on the default instance's ``manager`` (``nbd.jobs.put`` is
    ``default().jobs.put``: the same method, no copy of its signature)."""
    import importlib.util

    def getattr_(name: str) -> Any:
        if name.startswith("_") or importlib.util.find_spec(f"{package}.{name}") is not None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if not hasattr(load(MANAGERS[manager]), name):
            # not one of the manager's (what __dir__ lists): said without building the default instance, which opens
            # the catalog; module walkers ask for any name (pickle.whichmodule, as skops.io's import runs it: every
            # worker opened the catalog)
            raise AttributeError(f"nbd.{manager} has no attribute {name!r}")
        target = default().__getattr__(manager)
        try:
            return getattr(target, name)
        except AttributeError:
            raise AttributeError(f"nbd.{manager} has no attribute {name!r}") from None

    def dir_() -> list[str]:
        cls = load(MANAGERS[manager])
        return sorted(n for n in dir(cls) if not n.startswith("_"))

    return getattr_, dir_


def export(name: str) -> Any:
    """The value of ``nbd.<name>`` for a name a service exports (``None`` when no service does)."""
    target = EXPORTS.get(name)
    if target is None:
        return None
    if ":" in target:
        return load(target)
    manager, _, method = target.partition(".")
    cls = load(MANAGERS[manager])
    unbound = getattr(cls, method)

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(default().__getattr__(manager), method)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = unbound.__doc__
    call.__wrapped__ = unbound  # type: ignore[attr-defined]
    signature = inspect.signature(unbound)
    call.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])  # type: ignore[attr-defined]
    return call
