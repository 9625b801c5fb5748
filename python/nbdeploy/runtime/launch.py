"""Launching and stopping the cluster daemon from another process (``nbdeploy cluster start``, a server, a
script or kernel that needs a cluster): the process itself is :mod:`.daemon`.

:func:`launch` starts ``python -c "...daemon import main..."`` in a session of its own and waits until it
advertises its cluster; :func:`stop_daemon` asks it to stop (through its scheduler, then by signal).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..exceptions import ClusterError, ClusterTimeoutError
from . import advert as _adv

log = logging.getLogger("nbdeploy.runtime")

if TYPE_CHECKING:
    from ..config import Settings
    from .modes import ClusterSpec

LOG_FILE = "cluster.log"
START_TIMEOUT = 120.0  # seconds for a daemon to advertise its cluster
STARTED_BY = ("cli", "server", "process")
FIRST_CLIENT_GRACE = 60.0  # an idle daemon that never had a client waits at least this long for its requester

# A short-lived intermediate process starts the daemon in its own session and exits at once, so the daemon
# is nobody's child (no zombie in a long-lived caller) and survives the terminal that started it.
_SPAWN = (
    "import subprocess, sys\n"
    "log = open(sys.argv[1], 'ab')\n"
    "p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,"
    " start_new_session=True)\n"
    "print(p.pid, flush=True)\n"
)


# The daemon runs as `python -c` rather than `-m`: Dask's worker processes then re-import no main module, which
# saves each of them importing nbdeploy before it can start. For a local cluster its very first step, before it
# imports anything of nbdeploy or Dask, starts the fork server its workers are forked from (see forkserver_env), so that
# the server's imports run alongside the daemon's own start-up; prepare_daemon then makes Dask use it.
_ENTRY = (
    "import os, sys\n"
    "if os.environ.get('NBDEPLOY_FORKSERVER_IMPORTS'):\n"
    "    import multiprocessing, multiprocessing.forkserver\n"
    "    multiprocessing.get_context('forkserver').set_forkserver_preload(['nbdeploy.runtime.forkserver'])\n"
    "    multiprocessing.forkserver.ensure_running()\n"
    "from nbdeploy.runtime.launch import prepare_daemon\n"
    "prepare_daemon()\n"
    "from nbdeploy.runtime.daemon import main\n"
    "sys.exit(main())"
)

# --- launching (the caller's side) ----------------------------------------------------------------------------


def _settings_env(settings: Settings, spec: ClusterSpec) -> dict[str, str]:
    """The environment of a daemon for ``settings``: this one, plus every setting not left at its default."""
    from ..config import _DEFAULTS, SECRET_KEYS
    from .modes import cluster_options

    env = dict(os.environ)
    for name, (variable, _) in _DEFAULTS.items():
        value = getattr(settings, name, None)
        if name in SECRET_KEYS or value is None or settings.sources.get(name, "default") == "default":
            continue
        env[variable] = json.dumps(value) if isinstance(value, dict) else str(value)
    env["NBDEPLOY_HOME"] = settings.home
    env["NBDEPLOY_CLUSTER"] = spec.setting  # explicit, so DASK_SCHEDULER_ADDRESS cannot turn it into a client
    options = cluster_options(settings)
    if options:
        env["NBDEPLOY_CLUSTER_OPTIONS"] = json.dumps(options)
    return env


def _log_since(path: Path, offset: int, lines: int = 15) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(nothing logged)"


def launch(
    settings: Settings,
    spec: ClusterSpec,
    *,
    started_by: str,
    workers: int | None = None,
    threads: int | None = None,
    memory_limit: str | int | None = None,
    timeout: float = START_TIMEOUT,
) -> _adv.Advertisement:
    """Launch a cluster daemon for ``settings`` and return the advertisement of the cluster it started.

    The caller holds :func:`~.advert.spawn_lock` and found no live cluster advertised. ``started_by`` (``cli``,
    ``server`` or ``process``) sets the daemon's lifetime (see the module docstring). Raises
    :class:`ClusterError` when the daemon exits before its cluster is up (with the end of its log; the error's
    ``retryable`` is false: launching again would fail the same way) and :class:`ClusterTimeoutError` after
    ``timeout`` seconds (the daemon is then stopped).
    """
    if started_by not in STARTED_BY:
        raise ValueError(f"started_by must be one of {STARTED_BY}")
    runtime_dir = settings.runtime_dir
    runtime_dir.mkdir(parents=True, exist_ok=True)
    log_path = runtime_dir / LOG_FILE
    try:
        offset = log_path.stat().st_size
    except OSError:
        offset = 0
    args = [sys.executable, "-c", _ENTRY, "--started-by", started_by]
    args += ["--requested-by", str(os.getpid())]
    idle = settings.cluster_idle_timeout if started_by != "cli" else 0
    args += ["--idle-timeout", str(idle)]
    for flag, value in (("--workers", workers), ("--threads", threads), ("--memory-limit", memory_limit)):
        if value is not None:
            args += [flag, str(value)]
    spawned = subprocess.run(
        [sys.executable, "-c", _SPAWN, str(log_path), *args],
        capture_output=True,
        text=True,
        env={**_settings_env(settings, spec), **forkserver_env(settings, spec)},
        timeout=60,
        check=False,
    )
    if spawned.returncode != 0 or not spawned.stdout.strip().isdigit():
        raise ClusterError(f"could not launch the cluster daemon: {spawned.stderr.strip() or spawned.stdout}")
    pid = int(spawned.stdout.strip())
    started = _adv.process_start_time(pid)
    deadline = time.monotonic() + timeout
    while True:
        advert = _adv.read_advert(runtime_dir)
        if advert is not None and advert.owner_pid == pid and advert.on_this_host:
            return advert
        if not _adv.pid_alive(pid, started):
            advert = _adv.read_advert(runtime_dir)  # lost a race to a daemon launched without the spawn lock?
            if advert is not None and _adv.is_live(advert) and spec.accepts(advert.mode, advert.target):
                return advert
            tail = _log_since(log_path, offset)
            reason = next((line[7:] for line in reversed(tail.splitlines()) if line.startswith("Error: ")), None)
            if reason:  # the daemon's own error, which says what to do
                error = ClusterError(f"the cluster daemon (pid {pid}) exited: {reason} (its log: {log_path})")
            else:
                error = ClusterError(
                    f"the cluster daemon (pid {pid}) exited before its {spec.setting!r} cluster was up. Check the "
                    f"cluster setting (NBDEPLOY_CLUSTER, NBDEPLOY_CLUSTER_OPTIONS); the end of {log_path}:\n{tail}"
                )
            error.retryable = False  # type: ignore[attr-defined]
            raise error
        if time.monotonic() > deadline:
            _signal(pid, started, signal.SIGTERM)
            raise ClusterTimeoutError(
                f"the cluster daemon (pid {pid}) had not started its cluster after {timeout:.0f}s and was stopped; "
                f"see {log_path}"
            )
        time.sleep(0.05)


# --- stopping -----------------------------------------------------------------------------------------------


def _signal(pid: int, started: float | None, sig: int) -> bool:
    if not _adv.pid_alive(pid, started):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def _wait_gone(pid: int, started: float | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _adv.pid_alive(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _wait_withdrawn(runtime_dir: Path, advert: _adv.Advertisement, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    same = _adv.same_cluster(advert)
    while True:
        current = _adv.read_advert(runtime_dir)
        if current is None or not same(current):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _ask_owner_to_stop(address: str) -> bool:
    """Ask the owner of the in-process scheduler at ``address`` to close its cluster; return whether it agreed."""
    from .connect import new_sync_client
    from .owned import STOP_OP

    try:
        with new_sync_client(address, set_as_default=False) as c:
            return c.sync(getattr(c.scheduler, STOP_OP), callback_timeout=10) == "OK"
    except Exception as exc:  # not an nbdeploy-owned scheduler, or already gone
        log.info("asking the owner of %s to stop: %s", address, exc)
        return False


def _shutdown_scheduler(address: str) -> None:
    from .connect import new_sync_client

    try:
        with new_sync_client(address, set_as_default=False) as c:
            c.shutdown()
    except Exception as exc:  # already gone: fine
        log.info("shutting down the scheduler at %s: %s", address, exc)


def stop_daemon(runtime_dir: Path, advert: _adv.Advertisement, timeout: float = 60.0) -> None:
    """Stop the cluster of ``advert`` and, when its owner is a daemon on this host, the daemon (by pid).

    The owner is asked through its scheduler to close the cluster and withdraw the advertisement; a daemon that
    does not is sent SIGTERM, then SIGKILL. An owner that cannot be asked (a cluster class whose scheduler runs
    elsewhere) has its scheduler shut down. The advertisement is removed if it still names this cluster.
    """
    same = _adv.same_cluster(advert)
    daemon = advert.on_this_host and advert.owner_kind == "daemon"
    if advert.on_this_host and not _adv.pid_alive(advert.owner_pid, advert.owner_started):
        pass  # the owner is gone: only its advertisement is left
    else:
        stopped = _ask_owner_to_stop(advert.scheduler_address) and _wait_withdrawn(runtime_dir, advert, timeout)
        if not stopped and daemon and _signal(advert.owner_pid, advert.owner_started, signal.SIGTERM):
            stopped = _wait_withdrawn(runtime_dir, advert, timeout)
        if not stopped:
            _shutdown_scheduler(advert.scheduler_address)
        if daemon and not _wait_gone(advert.owner_pid, advert.owner_started, timeout):
            _signal(advert.owner_pid, advert.owner_started, signal.SIGKILL)
            _wait_gone(advert.owner_pid, advert.owner_started, 10)
    with _adv.advert_lock(runtime_dir):
        _adv.remove_advert(runtime_dir, only_if=same)


# --- the daemon's side ----------------------------------------------------------------------------------------


#: Dask's ``distributed.nanny.pre-spawn-environ`` defaults (``distributed.yaml``): variables a library reads as it
#: loads (BLAS threads, malloc trimming), which the fork server must have before it imports anything
_PRE_SPAWN_DEFAULTS = {
    "MALLOC_TRIM_THRESHOLD_": "65536",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}
_MP_METHOD = "distributed.worker.multiprocessing-method"
_MP_METHOD_VARIABLE = "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD"
IMPORTS_VARIABLE = "NBDEPLOY_FORKSERVER_IMPORTS"  # what the fork server imports (see .forkserver); also in _ENTRY


def forkserver_imports(settings: Settings) -> list[str]:
    """What the fork server of a cluster daemon imports before forking the first worker: Dask's worker, nbdeploy's
    serving modules (what every replica, the first call of each kind and the preload plugin a server registers import)
    and the ``worker_preload_modules`` setting. (Leaving the function-serving modules, which bring SQLAlchemy, to the
    plugin shortens the fork server's imports by ≈ 0.3 s, but each worker then imports them in a thread just as its
    first model loads and answers: measured no faster, and twice the CPU.)"""
    from .warmup import SERVING_IMPORTS

    return list(dict.fromkeys(["distributed", *SERVING_IMPORTS, *(settings.worker_preload_modules or ())]))


def forkserver_env(settings: Settings, spec: ClusterSpec) -> dict[str, str]:
    """The variables that make a daemon of a ``local`` cluster fork its workers from a fork server (``{}``: spawn them).

    The daemon starts multiprocessing's fork server as its first step (``_ENTRY``), which imports
    :func:`forkserver_imports` once (``NBDEPLOY_FORKSERVER_IMPORTS``, read by :mod:`.forkserver`) alongside the
    daemon's own start-up; every worker process (and every restarted one) is then forked from it with those modules
    imported and their memory shared, instead of each starting a fresh interpreter and importing Dask, nbdeploy and the
    preloaded libraries itself (with spawn, ≈ 3 CPU-s per worker for scikit-learn and skops). Dask's
    ``pre-spawn-environ`` defaults are set for it (a variable already set wins, as with the Nanny), with the Nanny's
    ``PYTHONHASHSEED``. ``DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD=spawn`` (or ``fork``) keeps Dask's way; the
    ``cuda`` mode and cluster classes are left alone.
    """
    import multiprocessing

    if spec.kind != "local" or "forkserver" not in multiprocessing.get_all_start_methods():
        return {}
    if os.environ.get(_MP_METHOD_VARIABLE, "forkserver") != "forkserver":
        return {}
    env = {k: v for k, v in _PRE_SPAWN_DEFAULTS.items() if k not in os.environ}
    if os.environ.get("PYTHONHASHSEED") in (None, "0"):
        env["PYTHONHASHSEED"] = "6640"  # the Nanny's: the same hashing in every worker
    env[IMPORTS_VARIABLE] = ",".join(forkserver_imports(settings))
    return env


#: what the scheduler unpickles when a server starts its serving replicas and registers its worker plugin (the
#: replicas' actor classes, the plugin, the warm-up's loader): the cluster daemon imports them as it starts
SCHEDULER_IMPORTS = (
    "nbdeploy.models.serving",
    "nbdeploy.functions.worker",
    "nbdeploy.runtime.preload",
    "nbdeploy.runtime.warmup",
)


def prepare_daemon() -> None:
    """The cluster daemon's step before it imports Dask: have Dask fork its workers from the fork server ``_ENTRY``
    started (unless Dask's configuration names another multiprocessing method), and import :data:`SCHEDULER_IMPORTS`
    in a background thread meanwhile: the scheduler unpickles the replicas and worker plugins that servers submit
    (their classes live there), and importing them when the first server asks would delay its first answer by as
    much (≈ 1 s on a busy machine). Never raises."""
    import threading

    if os.environ.pop(IMPORTS_VARIABLE, None):
        try:
            _use_forkserver()
        except Exception as exc:  # an optimisation only: the workers are spawned as usual
            log.warning("could not fork the workers from a fork server (%s); they are spawned", exc)

    def scheduler_imports() -> None:
        from .preload import import_modules

        import_modules(SCHEDULER_IMPORTS)

    threading.Thread(target=scheduler_imports, name="nbdeploy-daemon-imports", daemon=True).start()


def _use_forkserver() -> None:
    from multiprocessing import forkserver

    if getattr(forkserver._forkserver, "_forkserver_pid", None) is None:
        return  # not started: spawn
    import dask.config

    if dask.config.get(_MP_METHOD, None) not in (None, "forkserver"):  # a Dask configuration file chose another
        return
    dask.config.set({_MP_METHOD: "forkserver"})
    import distributed.utils

    # the fork server is running with our preload: Dask need not import its own list here to set it again
    if hasattr(distributed.utils, "_forkserver_preload_set"):
        distributed.utils._forkserver_preload_set = True
