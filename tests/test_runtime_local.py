"""The advertised local cluster: run by a cluster daemon, shared between real processes, stale advertisements
replaced, a server's daemon stopped with the server, an idle one exiting by itself, the CLI.

Every cluster here has one single-threaded worker process; every process a test starts (the daemons too) is
stopped by pid.
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
from tests.daemons import alive, stop_tree
from tests.helpers import eventually, free_port

NBDEPLOY = Path(sys.executable).with_name("nbdeploy")
OPTIONS = {"n_workers": 1, "threads_per_worker": 1, "memory_limit": "1GiB"}

# a server-like owner: starts (or joins) the cluster, reports, and shuts down when its stdin closes
OWNER = """
import json, os, sys
from nbdeploy import runtime
address = runtime.ensure_cluster()
print(json.dumps({"address": address, "pid": os.getpid()}), flush=True)
sys.stdin.read()
runtime.shutdown()
"""

# a kernel-like process: asks for a client (launching a daemon only when no cluster is advertised)
KERNEL = """
import json, os, sys
from nbdeploy import runtime
c = runtime.client()
launched = [a.owner_pid for a in runtime.cluster.launched_daemons()]
print(json.dumps({"address": c.scheduler.address, "launched": launched, "pid": os.getpid()}), flush=True)
sys.stdin.read()
runtime.shutdown()
"""

STATUS = """
import json
from nbdeploy import runtime
print(json.dumps({"status": runtime.status(), "owned": len(runtime.cluster.owned_clusters())}), flush=True)
runtime.shutdown()
"""


@pytest.fixture
def local_env(nbd_home: Path, monkeypatch: pytest.MonkeyPatch, cluster_daemons: list[int]) -> Iterator[Path]:
    """A tmp home with the default local mode and small clusters (dashboards on free loopback ports); this
    process's runtime shut down after, and every daemon left stopped by pid (``cluster_daemons``)."""
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.setenv("NBDEPLOY_CLUSTER_OPTIONS", json.dumps(OPTIONS))
    monkeypatch.setenv("NBDEPLOY_DASHBOARD_ADDRESS", "127.0.0.1:0")
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


def daemon_children(pid: int) -> set[int]:
    return {p.pid for p in psutil.Process(pid).children(recursive=True)}


def test_two_processes_share_one_advertised_cluster_run_by_a_daemon(
    local_env: Path, spawn: Callable[[str], subprocess.Popen]
) -> None:
    owner = spawn(OWNER)
    started = read_json_line(owner)
    ad = advert.read_advert(local_env)
    assert ad is not None
    assert (ad.scheduler_address, ad.owner_kind, ad.started_by, ad.requested_by) == (
        started["address"],
        "daemon",
        "server",
        owner.pid,
    )
    assert ad.owner_pid not in (owner.pid, os.getpid())  # the cluster runs in a daemon of its own

    # this process (a kernel, the CLI, …) connects to it instead of starting its own
    c = runtime.client()
    assert c.scheduler.address == started["address"]
    assert set(c.run(os.getpid)) and set(c.run(os.getpid).values()) <= daemon_children(ad.owner_pid)
    assert runtime.cluster.owned_clusters() == [] and runtime.cluster.launched_daemons() == []

    # and so does a third process
    other = spawn(STATUS)
    report = read_json_line(other)
    assert other.wait(60) == 0
    assert report["owned"] == 0
    assert report["status"]["scheduler_address"] == started["address"]
    assert (report["status"]["owner_pid"], report["status"]["started_by"]) == (ad.owner_pid, "server")
    assert [w["nthreads"] for w in report["status"]["workers"]] == [1]

    # the server stops its daemon when it shuts down, and the advertisement goes with it
    assert finish(owner) == 0
    assert advert.read_advert(local_env) is None
    assert not advert.pid_alive(ad.owner_pid, ad.owner_started)


def test_processes_starting_at_once_share_one_daemon_that_exits_when_they_are_gone(
    local_env: Path, spawn: Callable[[str], subprocess.Popen], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBDEPLOY_CLUSTER_IDLE_TIMEOUT", "1")
    first, second = spawn(KERNEL), spawn(KERNEL)
    a, b = read_json_line(first), read_json_line(second)
    assert a["address"] == b["address"]
    assert sorted([len(a["launched"]), len(b["launched"])]) == [0, 1]  # one daemon for both
    launcher = first if a["launched"] else second
    ad = advert.read_advert(local_env)
    assert ad is not None
    assert (ad.owner_pid, ad.started_by, ad.requested_by, ad.idle_timeout) == (
        (a["launched"] or b["launched"])[0],
        "process",
        launcher.pid,
        1.0,
    )
    assert finish(first) == 0
    assert finish(second) == 0
    # no client left: the daemon withdraws its advertisement and exits by itself
    eventually(lambda: not advert.pid_alive(ad.owner_pid, ad.owner_started), 120, "the idle daemon exiting")
    assert advert.read_advert(local_env) is None


def test_the_daemon_of_a_server_that_died_serves_its_clients_then_exits_once_idle(
    local_env: Path, spawn: Callable[[str], subprocess.Popen], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBDEPLOY_CLUSTER_IDLE_TIMEOUT", "1")
    owner = spawn(OWNER)
    started = read_json_line(owner)
    ad = advert.read_advert(local_env)
    assert ad is not None
    assert runtime.client().scheduler.address == started["address"]  # a kernel uses the server's cluster
    owner.kill()  # the server dies without stopping its daemon
    owner.wait(30)
    assert runtime.run(operator.add, 2, 2) == 4  # the daemon serves on while it has a client
    assert advert.pid_alive(ad.owner_pid, ad.owner_started)
    runtime.shutdown()  # the last client goes
    eventually(lambda: not advert.pid_alive(ad.owner_pid, ad.owner_started), 120, "the idle daemon exiting")
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
    assert (ad.scheduler_address, ad.started_by, ad.requested_by) == (address, "server", os.getpid())
    assert runtime.run(operator.add, 1, 2) == 3

    runtime.shutdown()
    assert advert.read_advert(local_env) is None
    assert not advert.pid_alive(ad.owner_pid, ad.owner_started)


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
    assert (ad.owner_kind, ad.started_by, ad.requested_by) == ("daemon", "process", os.getpid())
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
    assert (ad.owner_pid, ad.requested_by) == (runtime.cluster.launched_daemons()[-1].owner_pid, os.getpid())


# --- servers, class mode, stop ----------------------------------------------------------------------


def test_a_server_app_stops_the_daemon_it_started_when_it_stops(local_env: Path) -> None:
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
    assert (ad.owner_kind, ad.started_by, ad.requested_by, ad.mode) == ("daemon", "server", os.getpid(), "local")
    assert product == 42
    assert (info["mode"], info["owner_pid"], info["scheduler_address"]) == ("local", ad.owner_pid, ad.scheduler_address)
    assert info["dashboard_url"] == "/nbdeploy/api/cluster/dashboard/status"
    assert info["dashboard_link"].startswith("http://127.0.0.1:")
    assert len(info["workers"]) == 1
    assert advert.read_advert(local_env) is None
    assert not advert.pid_alive(ad.owner_pid, ad.owner_started)
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
    assert (ad.mode, ad.target, ad.owner_kind) == ("class", "distributed:LocalCluster", "daemon")
    runtime.shutdown()
    assert advert.read_advert(local_env) is None
    assert not advert.pid_alive(ad.owner_pid, ad.owner_started)


def test_stopping_a_servers_cluster_stops_its_daemon_not_the_server(
    local_env: Path, spawn: Callable[[str], subprocess.Popen]
) -> None:
    owner = spawn(OWNER)
    started = read_json_line(owner)
    stopped = runtime.stop_cluster()
    assert stopped is not None
    assert (stopped["requested_by"], stopped["scheduler_address"]) == (owner.pid, started["address"])
    assert not advert.pid_alive(stopped["owner_pid"], stopped["owner_started"])
    assert advert.read_advert(local_env) is None
    deadline = time.monotonic() + 60
    while advert.probe_address(started["address"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not advert.probe_address(started["address"])
    assert owner.poll() is None  # the server process lives on
    assert finish(owner) == 0
    assert runtime.stop_cluster() is None


def _worker_start() -> dict:
    """On a worker: what it imported before any task or plugin, and what its parent process runs."""
    import os
    import sys

    with open(f"/proc/{os.getppid()}/cmdline", "rb") as fh:
        parent = fh.read().replace(b"\0", b" ").decode()
    wanted = ("colorsys", "nbdeploy.models.serving", "nbdeploy.functions.capture")
    return {"imported": [m for m in wanted if m in sys.modules], "parent": parent}


def test_cluster_start_status_and_stop_on_the_command_line(
    local_env: Path, cluster_daemons: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the workers are forked from a fork server that imported the serving modules and the setting's (a module that
    # cannot be imported is skipped, never a reason for a worker not to start)
    monkeypatch.setenv("NBDEPLOY_WORKER_PRELOAD_MODULES", "colorsys,not_a_module_at_all")
    started = nbdeploy_cli("cluster", "start", "--workers", "1", "--threads", "1", "--json")
    assert started.returncode == 0, started.stderr
    ad = json.loads(started.stdout)
    cluster_daemons.append(ad["owner_pid"])
    assert (ad["owner_kind"], ad["started_by"], ad["idle_timeout"]) == ("daemon", "cli", None)
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
    (worker,) = runtime.client().run(_worker_start).values()
    assert worker["imported"] == ["colorsys", "nbdeploy.models.serving", "nbdeploy.functions.capture"], worker
    assert "multiprocessing.forkserver" in worker["parent"], worker
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


def test_a_cluster_shut_down_from_outside_is_replaced_by_a_new_daemon(local_env: Path) -> None:
    from distributed import Client

    first = runtime.ensure_cluster()
    daemon = advert.read_advert(local_env)
    assert daemon is not None
    workers = list(runtime.client().run(os.getpid).values())
    with Client(first, set_as_default=False) as other:
        other.shutdown()  # not through nbdeploy
    # its daemon notices, closes what is left and withdraws the advertisement …
    eventually(lambda: advert.read_advert(local_env) is None, 120, "the dead cluster's advertisement withdrawn")

    assert runtime.run(operator.sub, 5, 3) == 2  # … so the next call replaces it
    second = runtime.cluster.current_target()
    assert second is not None
    assert second.address != first
    ad = advert.read_advert(local_env)
    assert ad is not None
    assert (ad.scheduler_address, ad.started_by, ad.requested_by) == (second.address, "server", os.getpid())
    assert ad.owner_pid != daemon.owner_pid
    eventually(lambda: not advert.pid_alive(daemon.owner_pid, daemon.owner_started), 60, "the old daemon exiting")
    assert not any(alive(pid) for pid in workers)


def test_the_owned_cluster_is_scaled_up_and_down_through_the_api_the_view_and_the_cli(local_env: Path) -> None:
    from nbdeploy.widgets import ClusterView

    view = ClusterView(nbdeploy.default())  # its status launches the daemon: one worker
    assert view.workers.value == 1 and "1 worker(s)" in view.summary.value
    ad = advert.read_advert(local_env)
    assert ad is not None

    grown = nbdeploy.cluster.scale(2)  # the API waits for the workers
    assert len(grown["workers"]) == 2 and grown["owner_pid"] == ad.owner_pid
    assert [(w["nthreads"], w["memory_limit"]) for w in grown["workers"]] == [(1, 1024**3)] * 2  # alike
    c = runtime.client()
    pids = set(c.run(os.getpid).values())
    assert len(pids) == 2 and pids <= daemon_children(ad.owner_pid)  # worker processes of the owning daemon

    view.workers.value = 1  # the view's action, as a click in the notebook
    view.scale_button.click()
    assert "scaled to 1 worker(s)" in view.message.value, view.message.value
    assert "1 worker(s)" in view.summary.value and len(runtime.status()["workers"]) == 1

    shown = nbdeploy_cli("cluster", "scale", "1", "--json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert (info["scheduler_address"], len(info["workers"])) == (ad.scheduler_address, 1)


def test_scaling_refuses_a_bad_count_and_a_cluster_nbdeploy_does_not_own(
    nbd_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBDEPLOY_CLUSTER_MAX_WORKERS", "3")
    nbdeploy.config.reset_settings()
    app = nbdeploy.Nbdeploy()
    for bad in (0, -1, 4, "2", 2.0, True, None):  # checked before any cluster is asked
        with pytest.raises(nbdeploy.InvalidInputError, match="workers") as err:
            app.runtime.scale(bad)  # type: ignore[arg-type]
        assert err.value.field == "workers"
    with pytest.raises(nbdeploy.InvalidInputError, match="limit of 3"):
        app.runtime.scale(4)
    assert advert.read_advert(nbd_home / "runtime") is None  # nothing was started

    monkeypatch.setenv("NBDEPLOY_CLUSTER", "tcp://127.0.0.1:8786")
    nbdeploy.config.reset_settings()
    with pytest.raises(nbdeploy.ConflictError, match="belongs to whoever runs it"):
        nbdeploy.Nbdeploy().runtime.scale(2)
    refused = nbdeploy_cli("cluster", "scale", "2")
    assert refused.returncode == 1 and "belongs to whoever runs it" in refused.stderr, refused.stderr


def _seconds_until_exit(watch, now: list[float], step: float = 0.5, looks: int = 10) -> float:
    """Advance the fake clock ``now`` by ``step`` until ``watch`` gives a reason to exit (at most ``looks`` times);
    return the clock then (infinity when it never did)."""
    for _ in range(looks):
        now[0] += step
        if watch.reason_to_exit() is not None:
            return now[0]
    return float("inf")


def test_a_daemon_whose_server_had_a_client_waits_only_the_idle_timeout_once_it_is_gone() -> None:
    """The server that started a daemon is its client: once the server dies and no client is left, the daemon exits
    after ``cluster_idle_timeout``, not after the longer grace given to a daemon whose first client never came."""
    from nbdeploy.runtime.daemon import IdleWatch
    from nbdeploy.runtime.launch import FIRST_CLIENT_GRACE

    now = [0.0]
    clients = [1]
    server = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        watch = IdleWatch(lambda: (clients[0], 0), "server", server.pid, 1.0, clock=lambda: now[0])
        assert watch.reason_to_exit() is None  # the server lives (and is a client)
    finally:
        server.kill()
        server.wait()
    clients[0] = 0  # the server is gone, and so is its client
    assert _seconds_until_exit(watch, now) < FIRST_CLIENT_GRACE


def test_a_client_that_came_and_went_between_two_looks_counts_as_seen() -> None:
    """The scheduler's record of clients ever connected (third value of ``activity``) makes a daemon whose client
    connected and left between two of its looks wait only ``cluster_idle_timeout``."""
    from nbdeploy.runtime.daemon import IdleWatch
    from nbdeploy.runtime.launch import FIRST_CLIENT_GRACE

    now = [0.0]
    watch = IdleWatch(lambda: (0, 0, 1), "process", None, 1.0, clock=lambda: now[0])
    assert _seconds_until_exit(watch, now) < FIRST_CLIENT_GRACE
    start = now[0]
    never = IdleWatch(lambda: (0, 0, 0), "process", None, 1.0, clock=lambda: now[0])
    while now[0] - start < FIRST_CLIENT_GRACE - 1:  # no client ever: the first-client grace still applies
        assert never.reason_to_exit() is None, now[0] - start
        now[0] += 5.0
    now[0] = start + FIRST_CLIENT_GRACE + 1
    assert never.reason_to_exit() is not None
