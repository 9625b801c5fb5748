"""The cluster setting, the class registry, GPU detection, advertisements and cheap imports (no cluster)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nbdeploy.config
from nbdeploy import runtime
from nbdeploy.exceptions import ConfigError, MissingDependencyError
from nbdeploy.runtime import advert, modes
from tests.helpers import free_port


def _spec(monkeypatch: pytest.MonkeyPatch, cluster: str | None = None) -> modes.ClusterSpec:
    if cluster is not None:
        monkeypatch.setenv("NBDEPLOY_CLUSTER", cluster)
    nbdeploy.config.reset_settings()
    return modes.parse_cluster_setting(nbdeploy.config.get_settings())


def test_importing_the_runtime_and_its_cli_does_not_import_dask() -> None:
    code = (
        "import sys, nbdeploy, nbdeploy.runtime, nbdeploy.runtime.cli, nbdeploy.cli\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_are_exported() -> None:
    for name in runtime.__all__:
        assert getattr(runtime, name) is not None
    for name in ("client", "async_client", "status", "ensure_cluster", "ensure_cluster_async", "shutdown"):
        assert name in runtime.__all__
    for name in ("shutdown_async", "start_cluster", "stop_cluster", "load_artifact", "cache_stats", "clear_cache"):
        assert name in runtime.__all__
    assert runtime.gpu_resources() == {"GPU": 1}
    assert runtime.gpu_resources(2) == {"GPU": 2}
    with pytest.raises(ValueError):
        runtime.gpu_resources(0)


def test_default_setting_is_an_embedded_local_cluster(nbd_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    spec = _spec(monkeypatch)
    assert (spec.kind, spec.setting, spec.managed) == ("local", "local", True)


def test_dask_scheduler_address_is_honoured_only_when_the_setting_is_default(
    nbd_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "10.1.2.3:8786")
    spec = _spec(monkeypatch)
    assert (spec.kind, spec.address, spec.managed) == ("address", "tcp://10.1.2.3:8786", False)
    spec = _spec(monkeypatch, "local")  # set explicitly: the user asked for the embedded cluster
    assert spec.kind == "local"


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("tcp://127.0.0.1:8786", "tcp://127.0.0.1:8786"),
        ("scheduler.example.org:8786", "tcp://scheduler.example.org:8786"),
        ("tls://10.0.0.1:8786", "tls://10.0.0.1:8786"),
        ("[::1]:8786", "tcp://[::1]:8786"),
    ],
)
def test_scheduler_addresses_are_connect_only(
    nbd_home: Path, monkeypatch: pytest.MonkeyPatch, value: str, address: str
) -> None:
    spec = _spec(monkeypatch, value)
    assert (spec.kind, spec.address, spec.managed) == ("address", address, False)


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("dask_gateway:GatewayCluster", "dask_gateway:GatewayCluster"),
        ("dask_kubernetes.operator.KubeCluster", "dask_kubernetes.operator:KubeCluster"),
        ("gateway", "dask_gateway:GatewayCluster"),
        ("slurm", "dask_jobqueue:SLURMCluster"),
    ],
)
def test_cluster_classes_by_path_or_alias(
    nbd_home: Path, monkeypatch: pytest.MonkeyPatch, value: str, target: str
) -> None:
    monkeypatch.setenv("NBDEPLOY_CLUSTER_OPTIONS", '{"n_workers": 3}')
    spec = _spec(monkeypatch, value)
    assert (spec.kind, spec.target, spec.options) == ("class", target, {"n_workers": 3})


@pytest.mark.parametrize("value", ["nonsense here", "ftp://host:21", "12345"])
def test_a_setting_of_no_known_form_is_a_config_error(
    nbd_home: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    with pytest.raises(ConfigError, match=r"NBDEPLOY_CLUSTER|protocol"):
        _spec(monkeypatch, value)


def test_malformed_cluster_options_are_a_config_error(nbd_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBDEPLOY_CLUSTER_OPTIONS", "{n_workers: 2")
    with pytest.raises(ConfigError, match=r"NBDEPLOY_CLUSTER_OPTIONS\) is not valid JSON"):
        _spec(monkeypatch, "local")
    monkeypatch.setenv("NBDEPLOY_CLUSTER_OPTIONS", "[1, 2]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        _spec(monkeypatch, "local")


def test_a_missing_cluster_package_fails_with_its_pip_hint(nbd_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modes.register_cluster_class("nbd-test-missing", "nbd_no_such_pkg.deploy:FancyCluster", "nbd-no-such-pkg")
    try:
        spec = _spec(monkeypatch, "nbd-test-missing")
        assert spec.target == "nbd_no_such_pkg.deploy:FancyCluster"
        with pytest.raises(MissingDependencyError, match="pip install nbd-no-such-pkg"):
            runtime.ensure_cluster()
    finally:
        modes.CLUSTER_CLASSES.pop("nbd-test-missing")
    assert not (nbd_home / "runtime" / "cluster.json").exists()


def test_a_class_the_module_lacks_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no cluster class 'NoSuchCluster'"):
        modes.load_cluster_class("distributed:NoSuchCluster")
    assert modes.load_cluster_class("distributed:LocalCluster").__name__ == "LocalCluster"


@pytest.mark.skipif(importlib.util.find_spec("dask_cuda") is not None, reason="dask-cuda is installed here")
def test_cuda_without_dask_cuda_names_the_gpu_extra(nbd_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _spec(monkeypatch, "cuda")
    with pytest.raises(MissingDependencyError, match=r'pip install "nbdeploy\[gpu\]"'):
        runtime.ensure_cluster()


@pytest.mark.skipif(importlib.util.find_spec("pynvml") is not None, reason="NVML answers before nvidia-smi")
def test_gpus_are_counted_by_nvidia_smi_and_narrowed_by_cuda_visible_devices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin" / "nvidia-smi"  # the driver's CLI is the boundary here, not what is tested
    fake.parent.mkdir()
    fake.write_text(
        textwrap.dedent(
            """\
            #!/bin/sh
            echo "GPU 0: NVIDIA H100 (UUID: GPU-aaaa)"
            echo "GPU 1: NVIDIA H100 (UUID: GPU-bbbb)"
            """
        )
    )
    fake.chmod(0o755)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    counts = {}
    for label, path, visible in [
        ("two", str(fake.parent), None),
        ("narrowed", str(fake.parent), "1"),
        ("hidden", str(fake.parent), ""),
        ("no driver", str(tmp_path / "empty"), None),
    ]:
        monkeypatch.setenv("PATH", path)
        if visible is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        modes.gpus_visible.cache_clear()
        counts[label] = modes.gpus_visible()
    modes.gpus_visible.cache_clear()
    assert counts == {"two": 2, "narrowed": 1, "hidden": 0, "no driver": 0}


def test_auto_is_cuda_only_with_gpus_and_dask_cuda(
    nbd_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-driver-here"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    modes.gpus_visible.cache_clear()
    try:
        if importlib.util.find_spec("pynvml") is None:
            assert _spec(monkeypatch, "auto").kind == "local"
        expected = "cuda" if modes.gpus_visible() and importlib.util.find_spec("dask_cuda") else "local"
        spec = _spec(monkeypatch, "auto")
        assert (spec.kind, spec.setting) == (expected, "auto")
    finally:
        modes.gpus_visible.cache_clear()


def test_advertisement_round_trip_and_liveness(tmp_path: Path) -> None:
    mine = advert.Advertisement.for_this_process("tcp://127.0.0.1:1", None, "local", "server", None)
    advert.write_advert(tmp_path, mine)
    assert advert.read_advert(tmp_path) == mine
    assert mine.owned_by_this_process

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    port = free_port()  # nothing listens there
    stale = advert.Advertisement.for_this_process(f"tcp://127.0.0.1:{port}", None, "local", "server", None)
    gone_owner = advert.Advertisement(**{**stale.to_json(), "owner_pid": dead.pid, "owner_started": None})
    assert not advert.pid_alive(dead.pid)
    assert not advert.is_live(gone_owner)
    assert not advert.is_live(stale)  # owner (this process) alive, scheduler unreachable
    reused_pid = advert.Advertisement(**{**stale.to_json(), "owner_started": 1.0})
    assert not advert.pid_alive(os.getpid(), reused_pid.owner_started)

    assert not advert.remove_advert(tmp_path, only_if=lambda a: a.owner_pid == dead.pid)
    assert advert.remove_advert(tmp_path, only_if=lambda a: a.owner_pid == os.getpid())
    assert advert.read_advert(tmp_path) is None
    (tmp_path / "cluster.json").write_text("{not json")
    assert advert.read_advert(tmp_path) is None
