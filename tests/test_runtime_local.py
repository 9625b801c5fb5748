"""The advertised local cluster: shared between real processes, stale advertisements replaced, the CLI.

Every cluster here has one single-threaded worker process; every process a test starts is stopped by pid.
"""

from __future__ import annotations

import asyncio
import json
import operator
import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import nbdeploy.config
from nbdeploy import runtime
from nbdeploy.runtime import advert
from tests.helpers import free_port

NBDEPLOY = Path(sys.executable).with_name("nbdeploy")
OPTIONS = {"n_workers": 1, "threads_per_worker": 1, "memory_limit": "1GiB", "dashboard_address": ":0"}

# a server-like owner: starts (or joins) the cluster, reports, and shuts down when its stdin closes
OWNER = """
import json, os, sys
from nbdeploy import runtime
address = runtime.ensure_cluster()
print(json.dumps({"address": address, "pid": os.getpid()}), flush=True)
sys.stdin.read()
runtime.shutdown()
"""

# a kernel-like process: asks for a client (starting a cluster only when none is advertised)
KERNEL = """
import json, os, sys
from nbdeploy import runtime
c = runtime.client()
owned = [a.owner_pid for a in runtime.cluster.owned_clusters()]
print(json.dumps({"address": c.scheduler.address, "owner": bool(owned), "pid": os.getpid()}), flush=True)
sys.stdin.read()
runtime.shutdown()
"""

STATUS = """
import json
from nbdeploy import runtime
print(json.dumps({"status": runtime.status(), "owned": len(runtime.cluster.owned_clusters())}), flush=True)
runtime.shutdown()
"""


def stop_tree(pid: int) -> None:
    """Stop process ``pid`` and its descendants (by pid): SIGTERM, then SIGKILL after a grace period."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=20)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)


@pytest.fixture
def local_env(nbd_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A tmp home with the default local mode and small clusters; this process's runtime shut down after."""
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.setenv("NBDEPLOY_CLUSTER_OPTIONS", json.dumps(OPTIONS))
    nbdeploy.config.reset_settings()
    yield nbd_home / "runtime"
    runtime.shutdown()
    nbdeploy.config.reset_settings()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen]]:
    """Start ``python -c CODE`` with this environment; every one is stopped (with its children) afterwards."""
    procs: list[subprocess.Popen] = []

    def start(code: str) -> subprocess.Popen:
        log = open(tmp_path / f"proc-{len(procs)}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=dict(os.environ),
        )
        log.close()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            stop_tree(proc.pid)
        proc.wait(10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def daemons() -> Iterator[list[int]]:
    """Pids of `nbdeploy cluster start` background processes, stopped afterwards if still running."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        stop_tree(pid)


def read_json_line(proc: subprocess.Popen, timeout: float = 120.0) -> dict[str, Any]:
    """The next line ``proc`` prints, parsed as JSON (fails instead of hanging)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"process {proc.pid} printed nothing within {timeout}s")
            if sel.select(left):
                chunk = os.read(fd, 65536)
                if not chunk:
                    pytest.fail(f"process {proc.pid} exited ({proc.wait(10)}) without printing a line")
                buf += chunk
    return json.loads(buf.split(b"\n", 1)[0])


def finish(proc: subprocess.Popen) -> int:
    """Close ``proc``'s stdin (our owners shut down then) and return its exit status."""
    assert proc.stdin is not None
    proc.stdin.close()
    return proc.wait(60)


def nbdeploy_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(NBDEPLOY), *args], capture_output=True, text=True, timeout=180, env=dict(os.environ))


def stale_advert(owner_pid: int, address: str) -> advert.Advertisement:
    return advert.Advertisement(
        scheduler_address=address,
        dashboard_link=None,
        owner_pid=owner_pid,
        owner_started=advert.process_start_time(owner_pid),
        host=socket.gethostname(),
        started_at="2026-01-01T00:00:00+00:00",
        mode="local",
        owner_kind="server",
    )


# --- sharing ----------------------------------------------------------------------------------------


def test_two_processes_share_one_advertised_cluster(local_env: Path, spawn: Callable[[str], subprocess.Popen]) -> None:
    owner = spawn(OWNER)
    started = read_json_line(owner)
    ad = advert.read_advert(local_env)
    assert ad is not None
    assert (ad.scheduler_address, ad.owner_pid, ad.owner_kind) == (started["address"], owner.pid, "server")

    # this process (a kernel, the CLI, …) connects to it instead of starting its own
    c = runtime.client()
    assert c.scheduler.address == started["address"]
    assert set(c.run(os.getppid).values()) == {owner.pid}  # the worker is the owner's child process
    assert runtime.cluster.owned_clusters() == []

    # and so does a third process
    other = spawn(STATUS)
    report = read_json_line(other)
    assert other.wait(60) == 0
    assert report["owned"] == 0
    assert report["status"]["scheduler_address"] == started["address"]
    assert report["status"]["owner_pid"] == owner.pid
    assert [w["nthreads"] for w in report["status"]["workers"]] == [1]

    # the owner withdraws the advertisement when it shuts down
    assert finish(owner) == 0
    assert advert.read_advert(local_env) is None


def test_processes_starting_at_once_end_up_sharing_one_cluster(
    local_env: Path, spawn: Callable[[str], subprocess.Popen]
) -> None:
    first, second = spawn(KERNEL), spawn(KERNEL)
    a, b = read_json_line(first), read_json_line(second)
    assert a["address"] == b["address"]
    assert sorted([a["owner"], b["owner"]]) == [False, True]
    owner, guest = (first, second) if a["owner"] else (second, first)
    ad = advert.read_advert(local_env)
    assert ad is not None
    assert (ad.owner_pid, ad.owner_kind) == (owner.pid, "process")
    assert finish(guest) == 0
    assert finish(owner) == 0
    assert advert.read_advert(local_env) is None


# --- stale advertisements ---------------------------------------------------------------------------


def test_an_advertisement_of_a_dead_process_is_replaced(local_env: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = stale_advert(dead.pid, f"tcp://127.0.0.1:{free_port()}")
    advert.write_advert(local_env, stale)

    address = runtime.ensure_cluster()
    assert address != stale.scheduler_address
    ad = advert.read_advert(local_env)
    assert ad is not None
    assert (ad.scheduler_address, ad.owner_pid, ad.owner_kind) == (address, os.getpid(), "server")
    assert runtime.run(operator.add, 1, 2) == 3

    runtime.shutdown()
    assert advert.read_advert(local_env) is None


def test_an_unreachable_scheduler_is_replaced_even_while_its_owner_lives(
    local_env: Path, spawn: Callable[[str], subprocess.Popen]
) -> None:
    owner = spawn("import sys; sys.stdin.read()")
    stale = stale_advert(owner.pid, f"tcp://127.0.0.1:{free_port()}")
    advert.write_advert(local_env, stale)

    c = runtime.client()
    assert c.scheduler.address != stale.scheduler_address
    ad = advert.read_advert(local_env)
    assert ad is not None
    assert (ad.owner_pid, ad.owner_kind) == (os.getpid(), "process")
    assert owner.poll() is None  # nobody else's process is touched


def test_a_listener_that_is_no_scheduler_is_replaced_without_hanging(
    local_env: Path, spawn: Callable[[str], subprocess.Popen], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBDEPLOY_CONNECT_TIMEOUT", "1")
    nbdeploy.config.reset_settings()
    owner = spawn("import sys; sys.stdin.read()")
    with socket.socket() as listener:  # accepts TCP connections (backlog) but never speaks Dask
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        advert.write_advert(local_env, stale_advert(owner.pid, f"tcp://127.0.0.1:{port}"))
        assert advert.is_live(advert.read_advert(local_env))  # type: ignore[arg-type]

        c = runtime.client()
    assert c.scheduler.address != f"tcp://127.0.0.1:{port}"
    ad = advert.read_advert(local_env)
    assert ad is not None
    assert ad.owner_pid == os.getpid()


# --- servers, class mode, stop ----------------------------------------------------------------------


def test_a_server_app_owns_the_cluster_and_withdraws_it_on_stop(local_env: Path) -> None:
    async def serve() -> tuple[advert.Advertisement | None, Any, dict[str, Any]]:
        ctx = nbdeploy.Nbdeploy(nbdeploy.config.Settings.resolve())
        await ctx.start(own_cluster=True, background=False)
        try:
            ad = advert.read_advert(local_env)
            product = await runtime.run_async(operator.mul, 6, 7)
            info = await runtime.status_async()
        finally:
            await ctx.stop()
        return ad, product, info

    ad, product, info = asyncio.run(serve())
    assert ad is not None
    assert (ad.owner_pid, ad.owner_kind, ad.mode) == (os.getpid(), "server", "local")
    assert product == 42
    assert (info["mode"], info["owner_pid"], info["scheduler_address"]) == ("local", os.getpid(), ad.scheduler_address)
    assert len(info["workers"]) == 1
    assert advert.read_advert(local_env) is None
    assert runtime.cluster.owned_clusters() == []


def test_a_cluster_class_is_started_and_scaled_through_the_dask_api(
    local_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBDEPLOY_CLUSTER", "distributed:LocalCluster")
    monkeypatch.setenv("NBDEPLOY_CLUSTER_OPTIONS", json.dumps({**OPTIONS, "n_workers": 0, "scale": 1}))
    nbdeploy.config.reset_settings()
    address = runtime.ensure_cluster()
    runtime.client().wait_for_workers(1, timeout=120)
    info = runtime.status()
    assert (info["mode"], info["setting"], info["scheduler_address"]) == ("class", "distributed:LocalCluster", address)
    assert len(info["workers"]) == 1
    ad = advert.read_advert(local_env)
    assert ad is not None
    assert (ad.mode, ad.target) == ("class", "distributed:LocalCluster")
    runtime.shutdown()
    assert advert.read_advert(local_env) is None


def test_stopping_a_server_owned_cluster_stops_the_cluster_not_the_server(
    local_env: Path, spawn: Callable[[str], subprocess.Popen]
) -> None:
    owner = spawn(OWNER)
    started = read_json_line(owner)
    stopped = runtime.stop_cluster()
    assert stopped is not None
    assert (stopped["owner_pid"], stopped["scheduler_address"]) == (owner.pid, started["address"])
    assert advert.read_advert(local_env) is None
    deadline = time.monotonic() + 60
    while advert.probe_address(started["address"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not advert.probe_address(started["address"])
    assert owner.poll() is None  # the server process lives on
    assert finish(owner) == 0
    assert runtime.stop_cluster() is None


def test_cluster_start_status_and_stop_on_the_command_line(local_env: Path, daemons: list[int]) -> None:
    started = nbdeploy_cli("cluster", "start", "--workers", "1", "--threads", "1", "--json")
    assert started.returncode == 0, started.stderr
    ad = json.loads(started.stdout)
    daemons.append(ad["owner_pid"])
    assert ad["owner_kind"] == "daemon"
    assert advert.pid_alive(ad["owner_pid"])

    shown = nbdeploy_cli("cluster", "status", "--json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["scheduler_address"] == ad["scheduler_address"]
    assert [(w["nthreads"], w["memory_limit"]) for w in info["workers"]] == [(1, 1024**3)]
    table = nbdeploy_cli("cluster", "status")
    assert ad["scheduler_address"] in table.stdout
    assert "THREADS" in table.stdout

    assert runtime.client().scheduler.address == ad["scheduler_address"]  # a kernel joins it
    again = nbdeploy_cli("cluster", "start")
    assert again.returncode == 1
    assert "already running" in again.stderr

    stopped = nbdeploy_cli("cluster", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped the cluster at {ad['scheduler_address']}" in stopped.stdout
    assert not advert.pid_alive(ad["owner_pid"], ad["owner_started"])
    assert advert.read_advert(local_env) is None

    none = nbdeploy_cli("cluster", "status")
    assert none.returncode == 1
    assert "no cluster is running" in none.stderr
    assert "no cluster was running" in nbdeploy_cli("cluster", "stop").stdout


def test_start_and_stop_refuse_a_scheduler_address(nbd_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBDEPLOY_CLUSTER", "tcp://127.0.0.1:8786")
    nbdeploy.config.reset_settings()
    with pytest.raises(nbdeploy.ConfigError, match="existing scheduler"):
        runtime.start_cluster()
    with pytest.raises(nbdeploy.ConfigError, match="existing scheduler"):
        runtime.stop_cluster()


def test_an_owner_whose_scheduler_was_shut_down_from_outside_starts_a_new_cluster(local_env: Path) -> None:
    from distributed import Client

    first = runtime.ensure_cluster()
    workers = list(runtime.client().run(os.getpid).values())
    with Client(first, set_as_default=False) as other:
        other.shutdown()  # not through nbdeploy
    deadline = time.monotonic() + 60
    while advert.probe_address(first) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert runtime.run(operator.sub, 5, 3) == 2  # the dead cluster is noticed, closed and replaced
    second = runtime.cluster.current_target()
    assert second is not None
    assert second.address != first
    ad = advert.read_advert(local_env)
    assert ad is not None
    assert (ad.scheduler_address, ad.owner_pid) == (second.address, os.getpid())
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in workers)
