"""Nothing open that should not be: the embedded cluster listens on loopback only, and its Dask dashboard is
reached through the servers' authenticated proxy (``/nbdeploy/api/cluster/dashboard/…``).

Real processes throughout: ``nbdeploy serve`` and ``jupyter server`` with the nbdeploy extension, each with the
cluster daemon it starts (scheduler, nanny, worker), on free loopback ports with tokens; all stopped by pid. The
scheduler's HTTP server also serves a WebSocket echo route (:mod:`tests.dashboard_echo`, named in Dask's
``distributed.scheduler.http.routes``), so the proxy's WebSocket relay is checked without bokeh.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

import nbdeploy.config
from nbdeploy.runtime import advert
from tests.conftest import ServerProcess
from tests.helpers import eventually, free_port, stop_process, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = {"n_workers": 1, "threads_per_worker": 1, "memory_limit": "1GiB"}
PROXY = "/nbdeploy/api/cluster/dashboard"
LOOPBACK = ("127.0.0.1", "::1")


@pytest.fixture
def cluster_env(nbd_home: Path, monkeypatch: pytest.MonkeyPatch, cluster_daemons: list[int]) -> Iterator[Path]:
    """The default local mode, a small cluster with the default dashboard setting (loopback, a free port when
    8787 is taken) and the echo route on its scheduler's HTTP server; daemons stopped by pid afterwards."""
    import dask
    import distributed  # noqa: F401  (its defaults enter the Dask config on import)

    routes = [*dask.config.get("distributed.scheduler.http.routes"), "tests.dashboard_echo"]
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.delenv("NBDEPLOY_DASHBOARD_ADDRESS", raising=False)
    monkeypatch.setenv("NBDEPLOY_CLUSTER_OPTIONS", json.dumps(OPTIONS))
    monkeypatch.setenv("DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES", json.dumps(routes))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nbdeploy.config.reset_settings()
    yield nbd_home
    nbdeploy.config.reset_settings()


@pytest.fixture
def served(cluster_env: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    """``nbdeploy serve`` (no job scheduler) on a free loopback port with a fresh token; stopped by pid. It starts
    the cluster daemon before it listens, hence the long (hang-guard) wait."""
    port = free_port()
    token = "test-token-" + secrets.token_hex(6)
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nbdeploy.cli", "serve", "--port", str(port), "--no-scheduler"],
            env=dict(os.environ, NBDEPLOY_TOKEN=token),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=600, proc=proc)
        yield ServerProcess(f"http://127.0.0.1:{port}", token, proc, log)
    finally:
        stop_process(proc, timeout=60)


def raw_get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """GET ``url`` without following redirects: ``(status, headers, body)``."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def listening(pids: set[int]) -> list[tuple[int, str, str, int]]:
    """``(pid, process name, ip, port)`` of every listening inet socket of ``pids``."""
    found = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.append((pid, proc.name(), conn.laddr.ip, conn.laddr.port))
        except psutil.NoSuchProcess:
            pass
    return found


def tree(pid: int) -> set[int]:
    """``pid`` and its descendants."""
    try:
        return {pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


def daemon_of(home: Path) -> advert.Advertisement:
    found = eventually(lambda: advert.read_advert(home / "runtime"), 600, f"a cluster advertised in {home}")
    assert found.owner_kind == "daemon"
    return found


# --- the proxy ----------------------------------------------------------------------------------------


def test_the_dashboard_is_reached_through_the_token_protected_proxy_and_listens_on_loopback(
    served: ServerProcess, cluster_env: Path
) -> None:
    status, info = served.request("GET", "/nbdeploy/api/cluster")
    assert status == 200, info
    assert isinstance(info, dict)
    assert info["dashboard_url"] == f"{PROXY}/status"
    dashboard = urlsplit(info["dashboard_link"])
    assert dashboard.hostname == "127.0.0.1"

    code, page = served.request("GET", f"{PROXY}/status")
    assert code == 200
    assert "dask" in str(page).lower()
    # the cluster is the server's own: an admin scales it through the API (answered once the workers are there)
    assert served.request("POST", "/nbdeploy/api/cluster/scale", {"workers": 2}, token=None)[0] == 401
    assert served.request("POST", "/nbdeploy/api/cluster/scale", {"workers": -1})[0] == 400
    code, grown = served.request("POST", "/nbdeploy/api/cluster/scale", {"workers": 2})
    assert code == 200 and isinstance(grown, dict), grown
    assert len(grown["workers"]) == 2 and grown["dashboard_url"] == f"{PROXY}/status"
    code, page = served.request("GET", f"{PROXY}/info/main/workers.html")
    assert code == 200
    assert all(w["address"] in str(page) for w in grown["workers"])

    for path in (f"{PROXY}/status", f"{PROXY}/info/main/workers.html"):
        assert served.request("GET", path, token=None)[0] == 401
        assert served.request("GET", path, token="not-the-token")[0] == 401

    # the dashboard's own redirect stays inside the proxy
    code, headers, _ = raw_get(served.url + f"{PROXY}/", {"Authorization": f"token {served.token}"})
    assert (code, headers["Location"]) == (302, "status")

    # and the dashboard itself listens on loopback only
    daemon = daemon_of(cluster_env)
    assert (info["owner_pid"], daemon.started_by) == (daemon.owner_pid, "server")
    assert daemon.dashboard_address == f"http://127.0.0.1:{dashboard.port}"  # what the proxy connects to
    sockets = [s for s in listening({daemon.owner_pid}) if s[3] == dashboard.port]
    assert [s[2] for s in sockets] == ["127.0.0.1"]


async def _websocket_round_trip(url: str, token: str) -> tuple[str | None, Any, Any, int]:
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(
        HTTPRequest(url, headers={"Authorization": f"token {token}"}), subprotocols=["bokeh", "a-session-token"]
    )
    try:
        await conn.write_message("hello dashboard")
        text = await conn.read_message()
        await conn.write_message(b"\x00\x01binary", binary=True)
        data = await conn.read_message()
        subprotocol = conn.selected_subprotocol
    finally:
        conn.close()
    try:
        await websocket_connect(url)
        denied = 0
    except HTTPClientError as err:
        denied = err.code
    return subprotocol, text, data, denied


def test_dashboard_websockets_are_relayed_behind_the_token(served: ServerProcess) -> None:
    url = served.url.replace("http://", "ws://") + f"{PROXY}/nbdeploy-test-echo"
    subprotocol, text, data, denied = asyncio.run(_websocket_round_trip(url, served.token))
    assert (subprotocol, text, data) == ("bokeh", "hello dashboard", b"\x00\x01binary")
    assert denied == 401


# --- every listening socket ---------------------------------------------------------------------------


@pytest.fixture
def jupyter_server(
    cluster_env: Path, tmp_path: Path, cluster_daemons: list[int]
) -> Iterator[tuple[str, str, int, advert.Advertisement]]:
    """``jupyter server`` with the nbdeploy extension (and its own nbdeploy home, so it starts its own cluster
    daemon) on a free loopback port with a token: ``(url, token, pid, its daemon's advertisement)``. Stopped by
    pid, its daemon too."""
    base = tmp_path / "jupyter"
    root, home, runtime_dir = base / "root", base / "nbdeploy-home", base / "runtime"
    root.mkdir(parents=True)
    token = secrets.token_hex(16)
    env = dict(os.environ, NBDEPLOY_HOME=str(home), JUPYTER_RUNTIME_DIR=str(runtime_dir))
    command = [
        *(sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root", "--ServerApp.port=0"),
        *("--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"),
        "--NbdeployExtension.background_services=False",
    ]
    with open(base / "jupyter.log", "wb") as log:
        proc = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        info = eventually(lambda: _server_info(runtime_dir, proc), 600, "jupyter server writing its server file")
        url = info["url"]
        wait_for_http(f"{url}api/status?token={token}", timeout=600, proc=proc)
        daemon = daemon_of(home)
        cluster_daemons.append(daemon.owner_pid)
        yield url, token, proc.pid, daemon
    finally:
        stop_process(proc, timeout=60)


def _server_info(runtime_dir: Path, proc: subprocess.Popen) -> dict[str, Any] | None:
    if proc.poll() is not None:
        raise RuntimeError(f"jupyter server exited with {proc.returncode}")
    for path in runtime_dir.glob("jpserver-*.json"):
        try:
            return json.loads(path.read_text())
        except ValueError:
            pass  # being written
    time.sleep(0.1)
    return None


def test_no_process_of_the_servers_or_their_clusters_listens_beyond_loopback(
    served: ServerProcess, cluster_env: Path, jupyter_server: tuple[str, str, int, advert.Advertisement]
) -> None:
    url, token, jupyter_pid, jupyter_daemon = jupyter_server
    serve_daemon = daemon_of(cluster_env)
    assert jupyter_daemon.owner_pid != serve_daemon.owner_pid
    assert (jupyter_daemon.started_by, jupyter_daemon.requested_by) == ("server", jupyter_pid)
    processes = tree(served.proc.pid) | tree(serve_daemon.owner_pid) | tree(jupyter_pid)
    processes |= tree(jupyter_daemon.owner_pid)
    sockets = listening(processes)

    ports = {port for *_, port in sockets}
    expected = [served.url, url, serve_daemon.scheduler_address, jupyter_daemon.scheduler_address]
    expected += [serve_daemon.dashboard_link or "", jupyter_daemon.dashboard_link or ""]
    for address in expected:  # the servers, both schedulers, both dashboards …
        assert urlsplit(address.replace("tcp://", "http://")).port in ports, (address, sockets)
    assert len(sockets) >= 10  # … and each cluster's nanny and worker (comm and HTTP)
    wide = [s for s in sockets if s[2] not in LOOPBACK]
    assert not wide, f"listening beyond loopback: {wide}"

    # the Jupyter server proxies its cluster's dashboard too, behind Jupyter's authentication, as a page
    request = urllib.request.Request(f"{url}nbdeploy/api/cluster/dashboard/info/main/workers.html")
    request.add_header("Authorization", f"token {token}")
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" not in response.headers.get("Content-Security-Policy", "")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{url}nbdeploy/api/cluster/dashboard/status", timeout=120)
    assert err.value.code == 403
