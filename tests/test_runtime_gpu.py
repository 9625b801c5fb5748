"""GPU: a real LocalCUDACluster running a task that asks for ``resources={"GPU": 1}``.

Runs where ``nvidia-smi`` answers and dask-cuda is installed (``pip install "nbdeploy[gpu]"``); skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbdeploy.config
from nbdeploy import runtime
from nbdeploy.runtime import advert, modes


def _nvidia_smi_works() -> bool:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        return subprocess.run([exe, "-L"], capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not _nvidia_smi_works(), reason="needs an NVIDIA GPU (nvidia-smi does not answer here)"),
]


@pytest.fixture
def cuda_env(nbd_home: Path, monkeypatch: pytest.MonkeyPatch, cluster_daemons: list[int]) -> Iterator[Path]:
    """The cuda mode with one worker (the cluster runs in a daemon, stopped by pid afterwards)."""
    pytest.importorskip("dask_cuda", reason='needs dask-cuda: pip install "nbdeploy[gpu]"')
    monkeypatch.setenv("NBDEPLOY_CLUSTER", "cuda")
    monkeypatch.setenv("NBDEPLOY_CLUSTER_OPTIONS", json.dumps({"n_workers": 1}))
    monkeypatch.setenv("NBDEPLOY_DASHBOARD_ADDRESS", "127.0.0.1:0")
    nbdeploy.config.reset_settings()
    modes.gpus_visible.cache_clear()
    yield nbd_home / "runtime"
    runtime.shutdown()
    nbdeploy.config.reset_settings()


def _visible_devices() -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "")


def test_a_cuda_cluster_runs_a_task_that_asks_for_a_gpu(cuda_env: Path) -> None:
    address = runtime.ensure_cluster()
    ad = advert.read_advert(cuda_env)
    assert ad is not None
    assert (ad.scheduler_address, ad.mode, ad.owner_kind) == (address, "cuda", "daemon")

    info = runtime.status()
    assert info["mode"] == "cuda"
    assert [w["gpus"] for w in info["workers"]] == [1]

    devices = runtime.run(_visible_devices, resources=runtime.gpu_resources(1), timeout=120)
    assert devices  # dask-cuda pins each worker to its GPU(s)


def test_auto_picks_cuda_where_gpus_and_dask_cuda_are_present(cuda_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBDEPLOY_CLUSTER", "auto")
    nbdeploy.config.reset_settings()
    spec = modes.parse_cluster_setting(nbdeploy.config.get_settings())
    assert (spec.kind, spec.setting) == ("cuda", "auto")
