"""Warm-up in the Jupyter extension (pytest-jupyter): once the server is up, the extension starts the serving
replicas and loads the newest versions in the background, as `nbdeploy serve` does; with ``start_cluster`` off (the
cluster starts lazily) it never starts a cluster to warm it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import nbdeploy as nbd


def quadruple(x: int) -> int:
    return 4 * x


@pytest.fixture
def jp_server_config(request):
    lazy = getattr(request, "param", None) == "lazy"
    request.getfixturevalue("cluster_daemons" if lazy else "nbd_env")
    if lazy:  # the embedded cluster of this home is started by the first call that needs it, not at start
        request.getfixturevalue("monkeypatch").setenv("NBDEPLOY_CLUSTER", "local")
        nbd.config.reset_settings()
    return {
        "ServerApp": {"jpserver_extensions": {"nbdeploy": True}},
        "NbdeployExtension": {"background_services": False, "start_cluster": not lazy},
    }


async def started_extension(jp_serverapp) -> tuple[nbd.Nbdeploy, Any]:
    """Start the extensions as Jupyter does once its server listens; return the extension's app and its warmer."""
    await jp_serverapp.extension_manager.start_all_extensions()
    extension = jp_serverapp.extension_manager.extension_apps["nbdeploy"]
    (ext,) = extension if isinstance(extension, set) else (extension,)
    assert ext._stop_warmer is not None, "the extension started no warm-up"
    return ext.nbd, ext._stop_warmer.__self__


async def eventually(check, seconds: float = 120.0) -> bool:
    """Poll ``check()`` on the server's loop (a hang guard, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if check():
            return True
        await asyncio.sleep(0.1)
    return bool(check())


async def test_the_extension_starts_its_replicas_and_loads_the_newest_versions(jp_serverapp, jp_fetch) -> None:
    with nbd.Nbdeploy() as other:  # a deploy made elsewhere before the extension starts
        deployed = other.functions.deploy(quadruple)
    app, warmer = await started_extension(jp_serverapp)
    assert await eventually(lambda: deployed.version.sha256 in warmer.warmed)
    pools = list(app.functions._pools.values())
    assert pools and all(len(p.replicas) == 2 for p in pools)  # a replica on each worker, before any request
    resp = await jp_fetch("nbdeploy", "api", "functions", "quadruple", "invoke", method="POST", body='{"x": 2}')
    assert json.loads(resp.body)["result"] == 8


@pytest.mark.parametrize("jp_server_config", ["lazy"], indirect=True)
async def test_the_extension_never_starts_a_lazy_cluster_to_warm_it(jp_serverapp, nbd_home) -> None:
    with nbd.Nbdeploy() as other:
        other.functions.deploy(quadruple)
    app, warmer = await started_extension(jp_serverapp)
    await asyncio.wait_for(warmer.ready.wait(), 120)  # its first pass found no cluster, and started none
    await asyncio.sleep(0.5)
    assert not (nbd_home / "runtime" / "cluster.json").exists()
    assert not warmer.warmed and not list(app.functions._pools.values())
