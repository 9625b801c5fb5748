"""Starting, readying, handing over and discarding one kernel on a worker.

Every kernel a worker starts — pooled or for one run — talks to it over IPC: its sockets are files in a folder only
this user can enter (``0700``), so no other local user can reach it, and IPython prints no "running over TCP without
encryption" warning. Messages are signed with the connection's key as usual.

- :func:`start` launches a kernel (a ``jupyter_client`` :class:`~jupyter_client.KernelManager`) in that folder.
- :func:`ready` waits until a kernel answers and runs what the pool preloads (the pool's thread, blocking).
- :func:`claim_code` is what a claimed kernel runs before the run's first cell: the run's environment variables
  and working folder (a pooled kernel was started before the run was known).
- :func:`connect` is what the notebook client does with a started kernel (in the run's event loop): a client whose
  channels are proven connected by one round trip, without ``wait_for_ready``'s fixed 0.2 s of flushing.
- :func:`discard` kills a kernel after its one run (no state is ever handed on).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from queue import Empty
from typing import Any

__all__ = [
    "KernelDied",
    "StartedKernel",
    "claim_code",
    "connect",
    "discard",
    "preload_code",
    "private_folder",
    "ready",
    "start",
]

log = logging.getLogger("nbdeploy.kernels")

HISTORY_IN_MEMORY = "--HistoryManager.hist_file=:memory:"  # as nbclient does: no history database per kernel


class KernelDied(RuntimeError):
    """A kernel exited before it answered (or while it was being readied)."""


@dataclass
class StartedKernel:
    """A started kernel: its manager, kernelspec, the environment it was started with and when."""

    km: Any
    kernel: str
    language: str
    environment: str
    base_env: dict[str, str]
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int | None:
        return getattr(getattr(self.km, "provisioner", None), "pid", None)

    @property
    def pgid(self) -> int | None:
        return getattr(getattr(self.km, "provisioner", None), "pgid", None)

    def alive(self) -> bool:
        """Whether the kernel's process still runs (no kernel round trip: a ``waitpid``)."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is not None:
            return process.poll() is None
        try:
            return bool(self.km.is_alive())
        except Exception:
            return False

    @property
    def python(self) -> bool:
        """Whether the kernel speaks Python (the pool only pools those: claiming one runs Python code in it)."""
        return self.language.lower() == "python"


# --- the folder and the zmq context of this process ----------------------------------------------------------------
_folder: str | None = None
_context: Any = None
_lock = threading.Lock()


def private_folder() -> str:
    """This process's folder for kernel connection files and IPC sockets (``0700``, removed at exit)."""
    global _folder
    with _lock:
        if _folder is None or not os.path.isdir(_folder):
            _folder = tempfile.mkdtemp(prefix="nbd-k-", dir="/tmp" if os.path.isdir("/tmp") else None)
            os.chmod(_folder, 0o700)
            import atexit

            atexit.register(shutil.rmtree, _folder, True)
        return _folder


def _zmq_context() -> Any:
    global _context
    with _lock:
        if _context is None:
            import zmq

            _context = zmq.Context()
        return _context


# --- starting -------------------------------------------------------------------------------------------------------
def start(
    kernel: str,
    spec: Mapping[str, Any],
    env: Mapping[str, str],
    cwd: str,
    environment: str = "",
    base_env: Mapping[str, str] | None = None,
) -> StartedKernel:
    """Launch a kernel of kernelspec ``kernel`` with ``env`` in ``cwd``, over IPC in :func:`private_folder`; return it
    once its process runs (not yet answering: see :func:`ready` and :func:`connect`). Raises what ``jupyter_client``
    raises when the kernel cannot be launched."""
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.manager import KernelManager

    kernel_id = uuid.uuid4().hex[:12]
    km = KernelManager(
        kernel_name=kernel,
        transport="ipc",
        connection_file=os.path.join(private_folder(), f"k-{kernel_id}.json"),
        context=_zmq_context(),
    )
    km.kernel_id = kernel_id
    km.client_factory = AsyncKernelClient  # what the notebook client (nbclient, asyncio) connects with
    language = str(spec.get("language") or "")
    extra = [HISTORY_IN_MEMORY] if language.lower() == "python" else []
    km.start_kernel(extra_arguments=extra, env=dict(env), cwd=cwd)
    return StartedKernel(km, kernel, language, environment, dict(base_env if base_env is not None else env))


def preload_code(modules: Iterable[str]) -> str:
    """Python that imports ``modules`` without binding a name in the user's namespace."""
    names = [m for m in modules if m]
    return f"(lambda names: [__import__(n) for n in names])({names!r})" if names else ""


def ready(kernel: StartedKernel, timeout: float = 60.0, preload: Iterable[str] = ()) -> list[str]:
    """Block until ``kernel`` answers (a blocking client of its own, closed after), then import ``preload`` in it.

    Returns the warnings (a module that failed to import: the kernel stays usable). Raises :class:`KernelDied` when
    the kernel exits first and :class:`TimeoutError` when it does not answer within ``timeout`` seconds.
    """
    from jupyter_client.blocking import BlockingKernelClient

    km = kernel.km
    kc = BlockingKernelClient(parent=km, context=_zmq_context(), **km.get_connection_info(session=True))
    warnings: list[str] = []
    try:
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=timeout)
        except RuntimeError as exc:
            if not kernel.alive():
                raise KernelDied(f"the {kernel.kernel} kernel exited while starting") from exc
            raise TimeoutError(f"the {kernel.kernel} kernel did not answer within {timeout:.0f}s") from exc
        code = preload_code(preload) if kernel.python else ""
        if code:
            msg_id = kc.execute(code, silent=True, store_history=False, allow_stdin=False)
            reply = _blocking_reply(kc, msg_id, timeout)
            content = reply.get("content", {})
            if content.get("status") != "ok":
                warnings.append(f"preloading {list(preload)} failed: {content.get('ename')}: {content.get('evalue')}")
    finally:
        kc.stop_channels()
    return warnings


def _blocking_reply(kc: Any, msg_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the kernel did not finish preloading in time")
        try:
            msg = kc.get_shell_msg(timeout=min(1.0, remaining))
        except Empty:
            continue
        if msg.get("parent_header", {}).get("msg_id") == msg_id:
            return dict(msg)


# --- claiming ---------------------------------------------------------------------------------------------------------
def claim_code(base_env: Mapping[str, str], run_env: Mapping[str, str], cwd: str) -> str:
    """Python that turns a pooled kernel started with ``base_env`` into one of the run: the variables that differ
    set, those the run has not removed, and ``cwd`` its working folder (nothing is bound in the user's namespace)."""
    changed = {k: v for k, v in run_env.items() if base_env.get(k) != v}
    removed = sorted(set(base_env) - set(run_env))
    return (
        f"(lambda os: (os.environ.update({changed!r}), [os.environ.pop(k, None) for k in {removed!r}], "
        f"os.chdir({cwd!r})))(__import__('os'))"
    )


async def connect(kc: Any, kernel: StartedKernel, timeout: float, setup: str = "") -> None:
    """Prove ``kc``'s channels connected to ``kernel`` (a ``kernel_info`` answered on the shell channel and a message
    seen on IOPub, so no output of the first cell can be missed), then run ``setup`` in it. Raises
    :class:`KernelDied`, :class:`TimeoutError`, or :class:`RuntimeError` when ``setup`` fails."""
    deadline = time.monotonic() + timeout
    while True:
        if not kernel.alive():
            raise KernelDied(f"the {kernel.kernel} kernel (pid {kernel.pid}) exited before it answered")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {kernel.kernel} kernel did not answer within {timeout:.0f}s")
        msg_id = kc.kernel_info()
        if await _reply(kc, msg_id, min(1.0, max(0.05, deadline - time.monotonic()))) is None:
            continue
        if await _iopub_seen(kc, 0.1):
            break
    if setup:
        msg_id = kc.execute(setup, silent=True, store_history=False, allow_stdin=False)
        reply = await _reply(kc, msg_id, max(1.0, deadline - time.monotonic()))
        if reply is None:
            raise TimeoutError(f"the {kernel.kernel} kernel did not take the run's environment in time")
        content = reply.get("content", {})
        if content.get("status") != "ok":
            raise RuntimeError(
                f"the {kernel.kernel} kernel could not take the run's environment: "
                f"{content.get('ename')}: {content.get('evalue')}"
            )


async def _reply(kc: Any, msg_id: str, timeout: float) -> dict[str, Any] | None:
    end = time.monotonic() + timeout
    while (remaining := end - time.monotonic()) > 0:
        try:
            msg = await kc.shell_channel.get_msg(timeout=remaining)
        except (TimeoutError, Empty):
            return None
        if msg.get("parent_header", {}).get("msg_id") == msg_id:
            return dict(msg)
    return None


async def _iopub_seen(kc: Any, timeout: float) -> bool:
    try:
        await kc.iopub_channel.get_msg(timeout=timeout)
    except (TimeoutError, Empty):
        return False
    return True


# --- discarding -------------------------------------------------------------------------------------------------------
def discard(kernel: StartedKernel, *, wait: bool = False) -> None:
    """Kill ``kernel`` (its whole process group) and remove its files; in a thread of its own unless ``wait``."""

    def stop() -> None:
        try:
            kernel.km.shutdown_kernel(now=True)
        except Exception as exc:  # already gone, or its files already removed
            log.debug("discarding the %s kernel (pid %s): %s", kernel.kernel, kernel.pid, exc)
        finally:
            _kill_group(kernel)

    if wait:
        stop()
    else:
        threading.Thread(target=stop, name="nbdeploy-kernel-discard", daemon=True).start()


def _kill_group(kernel: StartedKernel) -> None:
    """Whatever the kernel started (its process group) goes with it."""
    import signal

    pgid = kernel.pgid
    if pgid and pgid != os.getpgid(0):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
