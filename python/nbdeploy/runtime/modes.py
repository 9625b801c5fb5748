"""What the ``cluster`` setting means: which cluster to run or connect to, and the registry of cluster classes.

The setting (``NBDEPLOY_CLUSTER``, ``c.Nbdeploy.cluster``) takes one of:

``local`` (default)
    an embedded :class:`distributed.LocalCluster` with worker processes, shared through the advertisement in
    ``<home>/runtime/cluster.json``. When the setting is left at its default and ``DASK_SCHEDULER_ADDRESS`` is
    set, that scheduler is used instead.
``tcp://host:port`` (any Dask address, or ``host:port``)
    an existing scheduler; nbdeploy only connects.
``cuda``
    a :class:`dask_cuda.LocalCUDACluster` (``pip install "nbdeploy[gpu]"``) whose workers declare
    ``resources={"GPU": 1}``.
``auto``
    ``cuda`` when GPUs are visible and dask-cuda is installed, else ``local``.
``module:Class`` or a registered alias (``gateway``, ``kubernetes``, ``slurm``, …)
    any Dask cluster manager class, built with the keyword arguments of the ``cluster_options`` setting
    (``NBDEPLOY_CLUSTER_OPTIONS``, a JSON object) and scaled through the Dask API (the options ``scale: n``
    or ``adapt: {minimum, maximum}``).

Classes are registered lazily as ``"module:Class"`` strings with the package that provides them, so a missing
optional package fails with its pip hint only when it is used (the pattern of fsspec's ``registry.py``).
Nothing here imports Dask.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..exceptions import ConfigError, MissingDependencyError

__all__ = [
    "CLUSTER_CLASSES",
    "ClusterSpec",
    "cluster_options",
    "dask_cuda_installed",
    "gpus_visible",
    "load_cluster_class",
    "parse_cluster_setting",
    "register_cluster_class",
]

#: alias -> "module:Class" of a cluster manager
CLUSTER_CLASSES: dict[str, str] = {
    "gateway": "dask_gateway:GatewayCluster",
    "kubernetes": "dask_kubernetes.operator:KubeCluster",
    "slurm": "dask_jobqueue:SLURMCluster",
    "pbs": "dask_jobqueue:PBSCluster",
    "sge": "dask_jobqueue:SGECluster",
    "lsf": "dask_jobqueue:LSFCluster",
    "htcondor": "dask_jobqueue:HTCondorCluster",
    "coiled": "coiled:Cluster",
}

#: top-level module -> (pip package, nbdeploy extra or None), for install hints
PACKAGE_HINTS: dict[str, tuple[str, str | None]] = {
    "dask_gateway": ("dask-gateway", None),
    "dask_kubernetes": ("dask-kubernetes", None),
    "dask_jobqueue": ("dask-jobqueue", None),
    "dask_cuda": ("dask-cuda", "gpu"),
    "dask_cloudprovider": ("dask-cloudprovider", None),
    "dask_yarn": ("dask-yarn", None),
    "coiled": ("coiled", None),
}

_ADDRESS_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "ucxx", "inproc")
_HOST_PORT = re.compile(r"(?:[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}")
_CLASS_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_DOTTED_CLASS = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\.[A-Z]\w*")


@dataclass(frozen=True)
class ClusterSpec:
    """The parsed ``cluster`` setting.

    ``kind`` is ``"local"``, ``"cuda"``, ``"address"`` (connect only) or ``"class"``; ``address`` is set for
    ``"address"``, ``target`` (``"module:Class"``) for ``"class"``; ``options`` are the keyword arguments for
    the cluster that nbdeploy starts; ``setting`` is the raw value (``"auto"`` stays visible here).
    """

    kind: str
    setting: str
    address: str | None = None
    target: str | None = None
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def managed(self) -> bool:
        """Whether nbdeploy starts (and advertises) this cluster, rather than only connecting to it."""
        return self.kind != "address"

    def accepts(self, advertised_mode: str, advertised_target: str | None) -> bool:
        """Whether a cluster advertised with this mode (and class target) serves this setting."""
        if self.setting in ("local", "auto"):
            return True  # the default: use whatever long-lived cluster this home has
        if self.kind == "class":
            return advertised_mode == "class" and advertised_target == self.target
        return advertised_mode == self.kind


def register_cluster_class(alias: str, target: str, package: str | None = None, extra: str | None = None) -> None:
    """Register ``alias`` (usable as the ``cluster`` setting) for the cluster class ``"module:Class"``.

    ``package`` (and ``extra``) give the install hint shown when the module is missing.
    Raises :class:`ConfigError` for a malformed target.
    """
    if not _CLASS_PATH.fullmatch(target):
        raise ConfigError(f"cluster class {target!r} must look like 'package.module:ClassName'")
    CLUSTER_CLASSES[alias] = target
    if package:
        PACKAGE_HINTS[target.split(":", 1)[0].split(".", 1)[0]] = (package, extra)


def cluster_options(settings: Settings) -> dict[str, Any]:
    """Return the keyword arguments for a cluster nbdeploy starts.

    Read from the ``cluster_options`` setting when the settings object has one, else from the
    ``NBDEPLOY_CLUSTER_OPTIONS`` environment variable (a JSON object). Raises :class:`ConfigError` when the
    value is not a JSON object.
    """
    value: Any = getattr(settings, "cluster_options", None)
    source = "setting cluster_options"
    if value is None:
        value = os.environ.get("NBDEPLOY_CLUSTER_OPTIONS") or None
        source = "environment NBDEPLOY_CLUSTER_OPTIONS"
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(
                f"{source} is not valid JSON ({exc}); give a JSON object such as '{{\"n_workers\": 2}}'"
            ) from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{source} must be a JSON object of keyword arguments, got {type(value).__name__}")
    return dict(value)


def parse_cluster_setting(settings: Settings) -> ClusterSpec:
    """Parse ``settings.cluster`` (and ``DASK_SCHEDULER_ADDRESS``) into a :class:`ClusterSpec`.

    ``auto`` is resolved here (``cuda`` when :func:`gpus_visible` and dask-cuda is installed, else ``local``).
    Raises :class:`ConfigError` for a value that is none of the accepted forms.
    """
    raw = (settings.cluster or "local").strip()
    if raw == "local" and settings.sources.get("cluster", "default") == "default":
        env_address = os.environ.get("DASK_SCHEDULER_ADDRESS", "").strip()
        if env_address:
            return ClusterSpec("address", env_address, address=_normalise_address(env_address))
    lowered = raw.lower()
    if lowered in ("local", "cuda", "auto"):
        options = cluster_options(settings)
        if lowered == "auto":
            kind = "cuda" if gpus_visible() and dask_cuda_installed() else "local"
            return ClusterSpec(kind, "auto", options=options)
        return ClusterSpec(lowered, lowered, options=options)
    if "://" in raw or _HOST_PORT.fullmatch(raw):
        return ClusterSpec("address", raw, address=_normalise_address(raw))
    target = CLUSTER_CLASSES.get(raw)
    if target is None:
        if _CLASS_PATH.fullmatch(raw):
            target = raw
        elif _DOTTED_CLASS.fullmatch(raw):
            module, _, name = raw.rpartition(".")
            target = f"{module}:{name}"
    if target is None:
        raise ConfigError(
            f"the cluster setting {raw!r} is not understood: use 'local', 'auto', 'cuda', a scheduler address "
            f"such as 'tcp://host:8786', a cluster class such as 'dask_gateway:GatewayCluster', or one of "
            f"{sorted(CLUSTER_CLASSES)} (NBDEPLOY_CLUSTER or c.Nbdeploy.cluster)"
        )
    return ClusterSpec("class", raw, target=target, options=cluster_options(settings))


def _normalise_address(value: str) -> str:
    if "://" not in value:
        return "tcp://" + value
    scheme = value.split("://", 1)[0].lower()
    if scheme not in _ADDRESS_SCHEMES:
        raise ConfigError(
            f"scheduler address {value!r} has the unknown protocol {scheme!r}; use one of {list(_ADDRESS_SCHEMES)}"
        )
    return value


def load_cluster_class(target: str, setting: str | None = None) -> type:
    """Import and return the class named by ``"module:Class"`` (``setting``: how the user named it).

    Raises :class:`MissingDependencyError` (with the pip hint) when its package is not installed and
    :class:`ConfigError` when the module has no such attribute.
    """
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        top = module_name.split(".", 1)[0]
        if exc.name is not None and top != exc.name.split(".", 1)[0]:
            raise  # the cluster package is there but one of its own imports failed: show that
        package, extra = PACKAGE_HINTS.get(top, (top.replace("_", "-"), None))
        raise MissingDependencyError(f"the cluster setting {setting or target!r}", package, extra) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ConfigError(f"the module {module_name!r} has no cluster class {attr!r}") from exc
    if not callable(obj):
        raise ConfigError(f"{target!r} is not a class")
    return obj


def dask_cuda_installed() -> bool:
    """Return whether ``dask_cuda`` can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("dask_cuda") is not None


@functools.lru_cache(maxsize=1)
def gpus_visible() -> int:
    """Return how many NVIDIA GPUs this process can use (0 when none or when no driver answers).

    Asks NVML (``pynvml``) when installed, else ``nvidia-smi -L``; ``CUDA_VISIBLE_DEVICES`` narrows the count.
    The answer is cached for the life of the process.
    """
    count = _nvml_count()
    if count is None:
        count = _nvidia_smi_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        entries = [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
        count = min(count, len(entries))
    return count


def _nvml_count() -> int | None:
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return None


def _nvidia_smi_count() -> int:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    if out.returncode != 0:
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
