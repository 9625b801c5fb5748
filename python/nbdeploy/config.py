"""One settings object for every nbdeploy process.

Each setting is resolved, first match wins, from:

1. an explicit argument (``Settings(store_url=...)``, a CLI flag, the server extension's own traits);
2. an ``NBDEPLOY_*`` environment variable (``NBDEPLOY_HOME``, ``NBDEPLOY_STORE_URL``, …);
3. Jupyter config: ``c.Nbdeploy.store_url = ...`` in ``jupyter_server_config.py``/``.json`` or
   ``nbdeploy_config.py``/``.json`` anywhere on ``jupyter --paths``' config path;
4. the default, which makes a fresh machine work with nothing running.

``Settings.sources`` records where each value came from, which ``nbdeploy info`` prints.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitlets import Dict, Float, Integer, List, Unicode
from traitlets.config import Config, Configurable

from .exceptions import ConfigError

__all__ = ["NameList", "NbdeployConfig", "Settings", "get_settings", "reset_settings"]

SECRET_KEYS = ("token",)


class NbdeployConfig(Configurable):
    """The ``c.Nbdeploy`` section of Jupyter config (every trait here is a setting)."""

    # the config section is named after the class; expose it as "Nbdeploy"
    home = Unicode(None, allow_none=True, help="Folder for nbdeploy's local state (default ~/.nbdeploy).").tag(
        config=True
    )
    store_url = Unicode(None, allow_none=True, help="fsspec URL of the artifact store.").tag(config=True)
    catalog_url = Unicode(None, allow_none=True, help="SQLAlchemy URL of the catalog.").tag(config=True)
    cluster = Unicode(
        None, allow_none=True, help="'local', 'auto', 'cuda', a scheduler address or 'module:Class'."
    ).tag(config=True)
    cluster_options = Dict(
        None, allow_none=True, help="Keyword arguments for the cluster nbdeploy starts (e.g. n_workers)."
    ).tag(config=True)
    token = Unicode(None, allow_none=True, help="Token for `nbdeploy serve`.").tag(config=True)
    max_body_bytes = Integer(None, allow_none=True, help="Largest request body the REST API accepts.").tag(config=True)
    cache_bytes = Integer(None, allow_none=True, help="Size of each worker's artifact cache in bytes.").tag(config=True)
    connect_timeout = Float(
        None, allow_none=True, help="Seconds to wait for a Dask scheduler to accept a client (default 10)."
    ).tag(config=True)
    lease_ttl = Float(
        None, allow_none=True, help="Seconds a job dispatcher's lease on a run lasts without renewal (default 30)."
    ).tag(config=True)
    model_max_batch_size = Integer(
        None, allow_none=True, help="Most requests a served model predicts in one batch (default 64)."
    ).tag(config=True)
    model_max_wait_ms = Float(
        None, allow_none=True, help="Milliseconds a model batch may wait for more requests while busy (default 2)."
    ).tag(config=True)
    model_stats_seconds = Float(
        None, allow_none=True, help="How often a process writes its model serving statistics out (default 5)."
    ).tag(config=True)
    cluster_max_workers = Integer(
        None,
        allow_none=True,
        help="The most workers `nbdeploy cluster scale` / nbd.cluster.scale(n) asks for (default: four per CPU, at "
        "least 8).",
    ).tag(config=True)
    cluster_idle_timeout = Float(
        None,
        allow_none=True,
        help="Seconds an embedded cluster started for a script or kernel lives on without clients (default 600; "
        "0 keeps it until `nbdeploy cluster stop`).",
    ).tag(config=True)
    dashboard_address = Unicode(
        None,
        allow_none=True,
        help="host:port of the embedded cluster's Dask dashboard (default 127.0.0.1:8787, or a free loopback port "
        "when that is taken); '0.0.0.0:8787' makes it public, without authentication.",
    ).tag(config=True)
    dispatch_timeout = Float(
        None,
        allow_none=True,
        help="Seconds a job run waits for a Dask cluster in a dispatcher started by the API before it is failed "
        "(default 60).",
    ).tag(config=True)
    kernel_pool_size = Integer(
        None,
        allow_none=True,
        help="Started kernels each Dask worker keeps ready per pooled kernelspec, for job runs (default 1; 0 turns "
        "the warm kernel pool off).",
    ).tag(config=True)
    kernel_pool_kernels = List(
        Unicode(),
        None,
        allow_none=True,
        help="The kernelspecs the workers keep warm kernels of (default ['python3']; '*' pools every kernelspec a "
        "run asks for, from its first run on).",
    ).tag(config=True)
    kernel_pool_preload = List(
        Unicode(),
        None,
        allow_none=True,
        help="Modules a pooled kernel imports before it is handed to a run (default none), e.g. ['pandas'].",
    ).tag(config=True)
    shutdown_grace = Float(
        None,
        allow_none=True,
        help="Seconds `nbdeploy serve` gives requests in flight on SIGTERM/SIGINT before it closes their connections "
        "and exits (default 5).",
    ).tag(config=True)
    worker_preload_modules = List(
        Unicode(),
        None,
        allow_none=True,
        help="Modules every Dask worker imports when it starts (default none), e.g. ['sklearn', 'pandas'], so that "
        "a served model's or function's first call does not pay for them; applied by a worker plugin on the "
        "cluster the server uses (external clusters: `dask worker --preload nbdeploy.runtime.preload`).",
    ).tag(config=True)


NbdeployConfig.__name__ = "Nbdeploy"  # so that `c.Nbdeploy.<setting>` configures it

# name -> (environment variable, default factory taking the partially resolved values)
_DEFAULTS: dict[str, tuple[str, Any]] = {
    "home": ("NBDEPLOY_HOME", lambda v: str(Path("~/.nbdeploy").expanduser())),
    "store_url": ("NBDEPLOY_STORE_URL", lambda v: "file://" + str(Path(v["home"]) / "store")),
    "catalog_url": ("NBDEPLOY_CATALOG_URL", lambda v: "sqlite:///" + str(Path(v["home"]) / "catalog.db")),
    "cluster": ("NBDEPLOY_CLUSTER", lambda v: "local"),
    "cluster_options": ("NBDEPLOY_CLUSTER_OPTIONS", lambda v: None),
    "token": ("NBDEPLOY_TOKEN", lambda v: None),
    "max_body_bytes": ("NBDEPLOY_MAX_BODY_BYTES", lambda v: 10 * 1024 * 1024),
    "cache_bytes": ("NBDEPLOY_CACHE_BYTES", lambda v: 2 * 1024**3),
    "connect_timeout": ("NBDEPLOY_CONNECT_TIMEOUT", lambda v: 10.0),
    "lease_ttl": ("NBDEPLOY_LEASE_TTL", lambda v: 30.0),  # generous: a busy machine can stall renewals
    "model_max_batch_size": ("NBDEPLOY_MODEL_MAX_BATCH_SIZE", lambda v: 64),
    "model_max_wait_ms": ("NBDEPLOY_MODEL_MAX_WAIT_MS", lambda v: 2.0),
    "model_stats_seconds": ("NBDEPLOY_MODEL_STATS_SECONDS", lambda v: 5.0),
    "cluster_idle_timeout": ("NBDEPLOY_CLUSTER_IDLE_TIMEOUT", lambda v: 600.0),
    "cluster_max_workers": ("NBDEPLOY_CLUSTER_MAX_WORKERS", lambda v: max(8, 4 * (os.cpu_count() or 1))),
    "dashboard_address": ("NBDEPLOY_DASHBOARD_ADDRESS", lambda v: "127.0.0.1:8787"),
    "dispatch_timeout": ("NBDEPLOY_DISPATCH_TIMEOUT", lambda v: 60.0),
    "kernel_pool_size": ("NBDEPLOY_KERNEL_POOL_SIZE", lambda v: 1),
    "kernel_pool_kernels": ("NBDEPLOY_KERNEL_POOL_KERNELS", lambda v: "python3"),
    "kernel_pool_preload": ("NBDEPLOY_KERNEL_POOL_PRELOAD", lambda v: ""),
    "worker_preload_modules": ("NBDEPLOY_WORKER_PRELOAD_MODULES", lambda v: ""),
    "shutdown_grace": ("NBDEPLOY_SHUTDOWN_GRACE", lambda v: 5.0),
}
_INT_SETTINGS = ("max_body_bytes", "cache_bytes", "model_max_batch_size", "kernel_pool_size", "cluster_max_workers")
_FLOAT_SETTINGS = (
    "connect_timeout",
    "lease_ttl",
    "model_max_wait_ms",
    "model_stats_seconds",
    "cluster_idle_timeout",
    "dispatch_timeout",
    "shutdown_grace",
)
_JSON_SETTINGS = ("cluster_options",)
_LIST_SETTINGS = ("kernel_pool_kernels", "kernel_pool_preload", "worker_preload_modules")
_LIST_ITEM = re.compile(r"^[A-Za-z0-9*][A-Za-z0-9._*-]{0,127}$")


class NameList(tuple[str, ...]):
    """A setting that is a list of names (kernelspecs, modules): given as a list or ``"a,b"``; shown as ``a,b``
    (so that it passes through an environment variable as it is)."""

    __slots__ = ()

    def __str__(self) -> str:
        return ",".join(self)


def _name_list(name: str, value: Any, source: str) -> NameList:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ConfigError(f"setting {name} ({source}) is not a valid JSON list: {exc}") from exc
        else:
            value = [v for v in (part.strip() for part in text.split(",")) if v]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"setting {name} ({source}) must be a list of names, e.g. 'python3,nbdeploy'")
    bad = [v for v in value if not _LIST_ITEM.match(v)]
    if bad:
        raise ConfigError(f"setting {name} ({source}) has names that are not valid: {bad}")
    return NameList(dict.fromkeys(value))


def _load_jupyter_config() -> Config:
    """Read ``c.Nbdeploy`` settings from the Jupyter config path (server and nbdeploy config files)."""
    from traitlets.config.loader import ConfigFileNotFound, JSONFileConfigLoader, PyFileConfigLoader

    try:
        from jupyter_core.paths import jupyter_config_path
    except ImportError:  # pragma: no cover - jupyter_core is a dependency of jupyter-server
        return Config()
    merged = Config()
    # jupyter_config_path() lists the most important folder first; merge in reverse so it wins.
    for folder in reversed(jupyter_config_path()):
        for base in ("jupyter_server_config", "nbdeploy_config"):
            for loader_cls, ext in ((JSONFileConfigLoader, ".json"), (PyFileConfigLoader, ".py")):
                if not os.path.isfile(os.path.join(folder, base + ext)):
                    continue
                try:
                    merged.merge(loader_cls(base + ext, path=folder).load_config())
                except ConfigFileNotFound:
                    continue
                except Exception as exc:  # a broken config file is the user's to fix; say which
                    raise ConfigError(f"could not read {os.path.join(folder, base + ext)}: {exc}") from exc
    return merged


def _json_object(name: str, value: Any, source: str) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return dict(value) if value is not None else None
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ConfigError(f"setting {name} ({source}) is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ConfigError(f"setting {name} ({source}) must be a JSON object, e.g. '{{\"n_workers\": 2}}'")
    return parsed


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with :meth:`Settings.resolve` (or :func:`get_settings`)."""

    home: str
    store_url: str
    catalog_url: str
    cluster: str
    cluster_options: dict[str, Any] | None
    token: str | None
    max_body_bytes: int
    cache_bytes: int
    connect_timeout: float = 10.0
    lease_ttl: float = 30.0
    model_max_batch_size: int = 64
    model_max_wait_ms: float = 2.0
    model_stats_seconds: float = 5.0
    cluster_idle_timeout: float = 600.0
    cluster_max_workers: int = 8
    dashboard_address: str = "127.0.0.1:8787"
    dispatch_timeout: float = 60.0
    kernel_pool_size: int = 1
    kernel_pool_kernels: NameList = field(default_factory=lambda: NameList(("python3",)))
    kernel_pool_preload: NameList = field(default_factory=NameList)
    worker_preload_modules: NameList = field(default_factory=NameList)
    shutdown_grace: float = 5.0
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def resolve(cls, config: Config | None = None, *, read_jupyter_config: bool = True, **explicit: Any) -> Settings:
        """Resolve every setting: explicit argument > ``NBDEPLOY_*`` > Jupyter config > default.

        ``config`` is a traitlets ``Config`` already loaded (the Jupyter server passes its own); when it is
        ``None`` and ``read_jupyter_config`` is true, the config files on the Jupyter path are read.
        Raises :class:`ConfigError` for an unknown or malformed setting.
        """
        unknown = set(explicit) - set(_DEFAULTS)
        if unknown:
            raise ConfigError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(_DEFAULTS)}")
        if config is None:
            config = _load_jupyter_config() if read_jupyter_config else Config()
        section = config.get("Nbdeploy", {}) if config else {}
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name, (env, default) in _DEFAULTS.items():
            if explicit.get(name) is not None:
                values[name], sources[name] = explicit[name], "argument"
            elif os.environ.get(env):
                values[name], sources[name] = os.environ[env], f"environment {env}"
            elif name in section and section[name] is not None:
                values[name], sources[name] = section[name], "jupyter config c.Nbdeploy." + name
            else:
                values[name], sources[name] = default(values), "default"
            if name in _INT_SETTINGS:
                try:
                    values[name] = int(values[name])
                except (TypeError, ValueError) as exc:
                    raise ConfigError(
                        f"setting {name} ({sources[name]}) must be an integer, got {values[name]!r}"
                    ) from exc
                if name == "cluster_max_workers" and values[name] < 1:
                    raise ConfigError(f"setting {name} ({sources[name]}) must be at least 1, got {values[name]}")
                if name == "kernel_pool_size" and values[name] < 0:
                    raise ConfigError(f"setting {name} ({sources[name]}) must not be negative, got {values[name]}")
            elif name in _FLOAT_SETTINGS:
                try:
                    values[name] = float(values[name])
                except (TypeError, ValueError) as exc:
                    raise ConfigError(
                        f"setting {name} ({sources[name]}) must be a number, got {values[name]!r}"
                    ) from exc
                if values[name] < 0:
                    raise ConfigError(f"setting {name} ({sources[name]}) must not be negative, got {values[name]}")
            elif name in _JSON_SETTINGS:
                values[name] = _json_object(name, values[name], sources[name])
            elif name in _LIST_SETTINGS:
                values[name] = _name_list(name, values[name], sources[name])
            elif values[name] is not None:
                values[name] = str(values[name])
        values["home"] = str(Path(values["home"]).expanduser())
        return cls(**values, sources=sources)

    @property
    def runtime_dir(self) -> Path:
        """``<home>/runtime``: where a long-lived cluster and servers advertise themselves."""
        return Path(self.home) / "runtime"

    def ensure_token(self) -> str:
        """Return the configured token, or a new random one when none is set."""
        return self.token or secrets.token_urlsafe(24)

    def describe(self) -> list[tuple[str, str, str]]:
        """Return ``(setting, value, source)`` rows for display, with secrets masked."""
        rows = []
        for name in _DEFAULTS:
            value = getattr(self, name)
            if name in SECRET_KEYS and value:
                shown = value[:2] + "…" + "*" * 6
            elif value is None:
                shown = "(not set)"
            elif isinstance(value, dict):
                shown = json.dumps(value)
            else:
                shown = str(value)
            rows.append((name, shown, self.sources.get(name, "")))
        return rows


_current: Settings | None = None


def get_settings() -> Settings:
    """Return the process-wide settings, resolving them on first use."""
    global _current
    if _current is None:
        _current = Settings.resolve()
    return _current


def set_settings(settings: Settings) -> None:
    """Make ``settings`` the process-wide settings (the default :class:`~nbdeploy.app.Nbdeploy` follows them)."""
    global _current
    _current = settings


def reset_settings() -> None:
    """Forget the cached settings; the next use resolves them again (and the default app is rebuilt)."""
    global _current
    _current = None
