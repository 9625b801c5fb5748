"""The kernelspecs of this machine (on a worker: the ones its runs can use), the error for a missing one, and the key
a warm kernel is pooled under: its kernelspec and a hash of the environment it starts in."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from ..exceptions import SignatureError

__all__ = [
    "PER_RUN_VARIABLES",
    "UnknownKernelError",
    "available",
    "environment_hash",
    "kernel_base_env",
    "kernelspec",
    "worker_kernel_names",
]

#: variables set for one run only: applied when a kernel is claimed, never part of the pooled kernel's environment
PER_RUN_VARIABLES = (
    "NBDEPLOY_RUN_ID",
    "NBDEPLOY_RUN_ATTEMPT",
    "NBDEPLOY_RUN_EVENTS",
    "NBDEPLOY_JOB",
    "JPY_SESSION_NAME",
    "JPY_PARENT_PID",
)
# variables that differ between worker processes of one environment and do not change what a kernel is
_VOLATILE = ("DASK_PARENT", "PWD", "OLDPWD", "_", "SHLVL", "TERM_SESSION_ID", "MPLBACKEND")


class UnknownKernelError(SignatureError):
    """A run asks for a kernelspec that no worker (or not the worker it landed on) has; the message lists those that
    exist (422)."""

    def __init__(self, name: str, known: Iterable[str], where: str = "on the workers") -> None:
        names = sorted(set(known))
        shown = ", ".join(names) if names else "none"
        super().__init__(
            f"no kernelspec named {name!r} {where}: they have {shown}. Pick one of them, or install it where the "
            "workers run (`jupyter kernelspec list` there)",
            {"kernel": f"unknown kernelspec {name!r}; known: {shown}"},
        )
        self.kernel = name
        self.known = names


def _manager() -> Any:
    from jupyter_client.kernelspec import KernelSpecManager

    return KernelSpecManager()


def available() -> dict[str, dict[str, Any]]:
    """The kernelspecs this process can start, by name: ``{"name", "display_name", "language", "argv",
    "resource_dir", "env", "metadata"}`` (read from the Jupyter data path each call, so a new install shows)."""
    found: dict[str, dict[str, Any]] = {}
    for name, entry in _manager().get_all_specs().items():
        spec = entry.get("spec") or {}
        found[name] = {
            "name": name,
            "display_name": spec.get("display_name") or name,
            "language": spec.get("language") or "",
            "argv": list(spec.get("argv") or []),
            "env": dict(spec.get("env") or {}),
            "metadata": dict(spec.get("metadata") or {}),
            "resource_dir": entry.get("resource_dir"),
        }
    return found


def kernelspec(name: str, where: str = "on this worker") -> dict[str, Any]:
    """The kernelspec ``name`` of this process (see :func:`available`); raises :class:`UnknownKernelError` listing
    those that exist."""
    specs = available()
    spec = specs.get(name) or specs.get(name.lower())
    if spec is None:
        raise UnknownKernelError(name, specs, where)
    return spec


def kernel_base_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a kernel of this process starts with: this process's, without what belongs to one run."""
    env = dict(os.environ if environ is None else environ)
    for key in PER_RUN_VARIABLES:
        env.pop(key, None)
    return env


def environment_hash(spec: Mapping[str, Any], env: Mapping[str, str], preload: Iterable[str] = ()) -> str:
    """A short hash of what a started kernel is: its kernelspec's command, environment and folder, the environment
    it was started in, the interpreter and the modules it pre-imported. Kernels of equal hashes are interchangeable."""
    stable = {k: v for k, v in env.items() if k not in _VOLATILE and k not in PER_RUN_VARIABLES}
    material = json.dumps(
        {
            "argv": list(spec.get("argv") or []),
            "spec_env": dict(spec.get("env") or {}),
            "resource_dir": spec.get("resource_dir"),
            "env": sorted(stable.items()),
            "python": sys.executable,
            "preload": list(preload),
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:12]


def worker_kernel_names() -> list[str]:
    """The names of the kernelspecs this process can start (``client.run`` asks each worker)."""
    return sorted(available())
