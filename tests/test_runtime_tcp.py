"""The ``tcp://`` mode against a real cluster started with the ``dask scheduler`` / ``dask worker`` command lines.

Also: workers killed under a task, the worker-side artifact cache, and the ``/cluster`` REST endpoint.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cloudpickle
import psutil
import pytest

import nbdeploy.config
from nbdeploy import runtime
from nbdeploy.exceptions import ClusterError, ClusterTimeoutError
from nbdeploy.store import ArtifactStore
from tests.helpers import free_port, stop_process

WORKER_CACHE_BYTES = 50_000_000
DASK = Path(sys.executable).with_name("dask")
ROOT = Path(__file__).resolve().parent.parent


def _wait_for_address(scheduler_file: Path, proc: subprocess.Popen, timeout: float = 60.0) -> str:
    """The address the scheduler wrote once it listens (it picks a free port itself: no race for one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            return str(json.loads(scheduler_file.read_text())["address"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    raise TimeoutError(f"the scheduler wrote no {scheduler_file} within {timeout}s")


@pytest.fixture(scope="module")
def cli_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """``dask scheduler`` + ``dask worker --nworkers 2`` on loopback, stopped by pid."""
    from distributed import Client

    if not DASK.exists():
        pytest.fail(f"the dask command line is missing at {DASK}")
    tmp = tmp_path_factory.mktemp("cli-cluster")
    scheduler_file = tmp / "scheduler.json"
    env = dict(
        os.environ,
        DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1",  # a task may kill 2 workers before it is bad
        NBDEPLOY_CACHE_BYTES=str(WORKER_CACHE_BYTES),
        NBDEPLOY_HOME=str(tmp / "worker-home"),
        JUPYTER_CONFIG_DIR=str(tmp / "jupyter-config"),
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),  # tasks defined here
    )
    log = open(tmp / "cluster.log", "wb")
    scheduler = subprocess.Popen(
        [
            *(str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"),
            *("--scheduler-file", str(scheduler_file)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    worker = None
    try:
        address = _wait_for_address(scheduler_file, scheduler)
        worker = subprocess.Popen(
            [
                *(str(DASK), "worker", address, "--nworkers", "2", "--nthreads", "2", "--memory-limit", "1GiB"),
                *("--no-dashboard", "--host", "127.0.0.1", "--local-directory", str(tmp / "workers")),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        with Client(address, timeout=30, set_as_default=False) as c:
            c.wait_for_workers(2, timeout=120)
        yield SimpleNamespace(address=address, scheduler=scheduler, worker=worker, log=tmp / "cluster.log")
    finally:
        if worker is not None:
            stop_tree(worker)
        stop_process(scheduler)
        log.close()


def stop_tree(proc: subprocess.Popen) -> None:
    """Stop ``proc`` by pid, then any of its worker processes that outlived it (a restart under way)."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    stop_process(proc, timeout=30)
    _, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        child.kill()
    psutil.wait_procs(alive, timeout=10)


@pytest.fixture
def tcp_env(nbd_home: Path, cli_cluster: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """This process's runtime pointed at the command-line cluster; its clients closed afterwards."""
    monkeypatch.setenv("NBDEPLOY_CLUSTER", cli_cluster.address)
    nbdeploy.config.reset_settings()
    yield cli_cluster
    runtime.shutdown()
    nbdeploy.config.reset_settings()


def _restore_workers(n: int = 2) -> None:
    runtime.client().wait_for_workers(n, timeout=120)


def _worker_processes(cli_cluster: SimpleNamespace) -> set[int]:
    return {p.pid for p in psutil.Process(cli_cluster.worker.pid).children(recursive=True)}


# --- the tcp:// mode --------------------------------------------------------------------------------


def test_tcp_mode_runs_tasks_on_the_command_line_cluster(tcp_env: SimpleNamespace, nbd_home: Path) -> None:
    c = runtime.client()
    assert c.scheduler.address == tcp_env.address
    assert runtime.client() is c  # cached per process
    pids = set(runtime.run_map(lambda _: os.getpid(), range(8)))
    assert pids <= _worker_processes(tcp_env)  # ran in the `dask worker` processes
    assert runtime.run(divmod, 17, 5) == (3, 2)
    assert runtime.ensure_cluster() == tcp_env.address
    assert not (nbd_home / "runtime" / "cluster.json").exists()  # connect-only: nothing advertised


def test_a_closed_client_is_replaced(tcp_env: SimpleNamespace) -> None:
    first = runtime.client()
    first.close()
    second = runtime.client()
    assert second is not first
    assert runtime.run(sum, [1, 2, 3]) == 6


def test_dask_scheduler_address_is_used_for_the_default_setting(
    nbd_home: Path, cli_cluster: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cli_cluster.address)
    nbdeploy.config.reset_settings()
    try:
        assert runtime.client().scheduler.address == cli_cluster.address
        assert runtime.status()["mode"] == "address"
    finally:
        runtime.shutdown()


def test_status_reports_workers_threads_memory_and_running_tasks(tcp_env: SimpleNamespace) -> None:
    from distributed import Event

    _restore_workers()
    gate = Event(f"gate-{uuid.uuid4().hex}", client=runtime.client())
    future = runtime.submit(lambda name: Event(name).wait(60), gate.name)
    deadline = time.monotonic() + 30
    info = runtime.status()
    while info["tasks_running"] < 1 and time.monotonic() < deadline:  # counts come with worker heartbeats
        time.sleep(0.1)
        info = runtime.status()
    gate.set()
    assert runtime.result(future, timeout=30) is True
    assert info["mode"] == "address"
    assert info["scheduler_address"] == tcp_env.address
    assert len(info["workers"]) == 2
    assert info["tasks_running"] == 1
    assert sum(w["executing"] for w in info["workers"]) == 1
    for w in info["workers"]:
        assert (w["nthreads"], w["memory_limit"], w["gpus"]) == (2, 1024**3, 0)
        assert w["address"].startswith("tcp://127.0.0.1:")
    assert (info["total_threads"], info["total_memory"]) == (4, 2 * 1024**3)


def test_an_unreachable_scheduler_is_a_cluster_error_that_says_what_to_do(
    nbd_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    monkeypatch.setenv("NBDEPLOY_CLUSTER", address)
    nbdeploy.config.reset_settings()
    with pytest.raises(ClusterError, match=f"could not connect to the Dask scheduler at {address}.*NBDEPLOY_CLUSTER"):
        runtime.client()
    with pytest.raises(ClusterError):
        asyncio.run(runtime.async_client())


# --- tasks and their failures -----------------------------------------------------------------------


def _kill_own_worker_once(marker: str) -> str:
    try:
        open(marker, "x").close()
    except FileExistsError:
        return f"survived on a second worker (pid {os.getpid()})"
    os.kill(os.getpid(), signal.SIGKILL)
    return "unreachable"


def _kill_own_worker(_: object = None) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_task_whose_worker_dies_once_is_retried_elsewhere(tcp_env: SimpleNamespace, tmp_path: Path) -> None:
    _restore_workers()
    before = _worker_processes(tcp_env)
    out = runtime.run(_kill_own_worker_once, str(tmp_path / "killed-once"), timeout=120)
    assert out.startswith("survived on a second worker")
    assert (tmp_path / "killed-once").exists()
    assert before - _worker_processes(tcp_env)  # one worker process really died
    _restore_workers()


def test_a_task_that_keeps_killing_workers_gives_a_clear_cluster_error(tcp_env: SimpleNamespace) -> None:
    from distributed.scheduler import KilledWorker

    _restore_workers()
    with pytest.raises(ClusterError, match="killed the Dask worker running it, 2 time") as info:
        runtime.run(_kill_own_worker, timeout=120)
    assert isinstance(info.value.__cause__, KilledWorker)
    assert info.value.http_status == 502
    _restore_workers()
    assert runtime.run(int, "7") == 7  # the cluster recovered


def test_a_timeout_cancels_the_task(tcp_env: SimpleNamespace) -> None:
    from distributed import Event

    gate = Event(f"never-{uuid.uuid4().hex}", client=runtime.client())
    with pytest.raises(ClusterTimeoutError, match=r"did not finish within 0\.5s"):
        runtime.run(lambda name: Event(name).wait(60), gate.name, timeout=0.5)
    gate.set()


def _connect_somewhere(port: int) -> None:
    socket.create_connection(("127.0.0.1", port), timeout=5)


def test_the_users_own_exceptions_pass_through(tcp_env: SimpleNamespace) -> None:
    with pytest.raises(ZeroDivisionError):
        runtime.run(lambda: 1 / 0)
    with pytest.raises(ConnectionRefusedError):  # the user's connection error is not a cluster failure
        runtime.run(_connect_somewhere, free_port())
    with pytest.raises(TimeoutError) as info:
        runtime.run(lambda: (_ for _ in ()).throw(TimeoutError("the user's own")), timeout=30)
    assert not isinstance(info.value, ClusterTimeoutError)


def test_asking_for_a_gpu_no_worker_has_fails_instead_of_waiting(tcp_env: SimpleNamespace) -> None:
    with pytest.raises(ClusterError, match=r"offers the resources \{'GPU': 1\}.*NBDEPLOY_CLUSTER=cuda"):
        runtime.run(os.getpid, resources=runtime.gpu_resources())


# --- the worker-side artifact cache -----------------------------------------------------------------


def test_each_worker_loads_an_artifact_once(tcp_env: SimpleNamespace, tmp_path: Path) -> None:
    _restore_workers()
    store = ArtifactStore(f"file://{tmp_path}/store")
    sha = store.put_blob(cloudpickle.dumps({"coef": [0.5, 1.5]})).sha256
    c = runtime.client()
    c.run(runtime.clear_cache)
    workers = sorted(c.scheduler_info(n_workers=-1)["workers"])
    assert len(workers) == 2

    def predict(url: str, digest: str, x: float) -> tuple[int, float]:
        from nbdeploy.runtime import load_artifact

        model = load_artifact(url, digest)
        return id(model), model["coef"][0] * x + model["coef"][1]

    futures = {w: [c.submit(predict, store.url, sha, x, workers=[w], pure=False) for x in range(6)] for w in workers}
    results = {w: runtime.result(fs, timeout=60) for w, fs in futures.items()}
    for w in workers:
        assert [y for _, y in results[w]] == [0.5 * x + 1.5 for x in range(6)]
        assert len({model_id for model_id, _ in results[w]}) == 1  # one object per worker
    stats = c.run(runtime.cache_stats)
    for w in workers:
        assert stats[w]["loads"] == 1
        assert stats[w]["hits"] == 5
        assert stats[w]["max_bytes"] == WORKER_CACHE_BYTES  # NBDEPLOY_CACHE_BYTES of the worker's environment


# --- the REST endpoint ------------------------------------------------------------------------------


async def _get(url: str, token: str | None) -> tuple[int, dict[str, Any]]:
    import json

    from tornado.httpclient import AsyncHTTPClient

    headers = {"Authorization": f"token {token}"} if token else {}
    response = await AsyncHTTPClient().fetch(url, headers=headers, raise_error=False)
    return response.code, json.loads(response.body or b"{}")


async def _call_cluster_api(own_cluster: bool) -> list[tuple[int, dict[str, Any]]]:
    from tornado import httpserver, netutil, web

    from nbdeploy.server_extension.routes import bind_handlers, collect_handlers
    from nbdeploy.server_extension.standalone import TokenAuthHandler

    ctx = nbdeploy.Nbdeploy(nbdeploy.config.Settings.resolve())
    await ctx.start(own_cluster=own_cluster, background=False)
    app = web.Application(
        bind_handlers(collect_handlers(["nbdeploy.server_extension.cluster_handlers"]), TokenAuthHandler),
        nbdeploy=ctx,
        nbdeploy_token="s3cret",
        nbdeploy_debug=True,
    )
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/nbdeploy/api/cluster"
    try:
        return [await _get(url, "s3cret"), await _get(url, None)]
    finally:
        server.stop()
        await ctx.stop()


def test_cluster_endpoint_returns_the_status_as_json(tcp_env: SimpleNamespace) -> None:
    _restore_workers()
    (code, body), (denied, _) = asyncio.run(_call_cluster_api(own_cluster=True))
    assert code == 200
    assert body["scheduler_address"] == tcp_env.address
    assert body["mode"] == "address"
    assert len(body["workers"]) == 2
    assert {"address", "name", "nthreads", "memory_limit", "gpus", "executing"} <= set(body["workers"][0])
    assert body["total_threads"] == 4
    assert denied == 401


def test_cluster_endpoint_answers_502_when_the_cluster_is_unreachable(
    nbd_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBDEPLOY_CLUSTER", f"tcp://127.0.0.1:{free_port()}")
    nbdeploy.config.reset_settings()
    (code, body), _ = asyncio.run(_call_cluster_api(own_cluster=False))
    assert code == 502
    assert body["error"]["type"] == "ClusterError"
    assert "could not connect" in body["error"]["message"]
