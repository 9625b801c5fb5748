"""Shared fixtures: an isolated nbdeploy home per test, a real multi-process Dask cluster, PostgreSQL, S3.

Every server, kernel or cluster a fixture starts is stopped by that fixture, by process id.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, stop_process, wait_for_http

pytest_plugins = ("pytest_jupyter.jupyter_server",)

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    """Every process of the run (and what it starts: clusters, servers, kernels) defaults to a throwaway nbdeploy
    home, never the user's ``~/.nbdeploy``; tests that need their own set ``NBDEPLOY_HOME`` (``nbd_home``)."""
    import tempfile

    os.environ["NBDEPLOY_HOME"] = tempfile.mkdtemp(prefix="nbdeploy-test-home-")


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[object]:
    """A real LocalCluster with two worker processes, shared by the tests of one pytest process."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=":0", memory_limit="2GiB"
    )
    try:
        yield cluster
    finally:
        from nbdeploy import runtime

        runtime.shutdown()  # close this process's cached clients before their scheduler goes away
        cluster.close(timeout=20)


TUNING_VARIABLES = (
    "NBDEPLOY_CONNECT_TIMEOUT",
    "NBDEPLOY_LEASE_TTL",
    "NBDEPLOY_MODEL_MAX_BATCH_SIZE",
    "NBDEPLOY_MODEL_MAX_WAIT_MS",
    "NBDEPLOY_MODEL_STATS_SECONDS",
)


@pytest.fixture
def nbd_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated nbdeploy home (store, SQLite catalog) in a temporary folder; settings reset around it."""
    import nbdeploy.config

    home = tmp_path / "nbdeploy-home"
    monkeypatch.setenv("NBDEPLOY_HOME", str(home))
    for var in ("NBDEPLOY_STORE_URL", "NBDEPLOY_CATALOG_URL", "NBDEPLOY_CLUSTER", "NBDEPLOY_TOKEN", *TUNING_VARIABLES):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "jupyter-config").mkdir(exist_ok=True)
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "jupyter-config"))
    nbdeploy.config.reset_settings()
    yield home
    nbdeploy.config.reset_settings()


@pytest.fixture
def nbd_env(nbd_home: Path, dask_cluster: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated home whose cluster setting points at the shared real Dask cluster."""
    import nbdeploy.config

    monkeypatch.setenv("NBDEPLOY_CLUSTER", dask_cluster.scheduler_address)  # type: ignore[attr-defined]
    nbdeploy.config.reset_settings()
    yield nbd_home


@pytest.fixture
def cluster_daemons(nbd_home: Path) -> Iterator[list[int]]:
    """Pids of cluster daemons a test started (append them); at teardown these, the daemon still advertised for
    the test's home and the daemons this process launched are stopped with their workers, by pid."""
    from nbdeploy.runtime import cluster
    from tests.daemons import advertised_daemon, stop_tree

    before = len(cluster.launched_daemons())
    pids: list[int] = []
    yield pids
    advertised = advertised_daemon(nbd_home / "runtime")
    known = {(a.owner_pid, a.owner_started) for a in cluster.launched_daemons()[before:]}
    known |= {(pid, None) for pid in pids} | ({advertised} if advertised else set())
    for pid, started in known:
        stop_tree(pid, started)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a real PostgreSQL server: required under CI=true, skipped locally when not configured."""
    url = os.environ.get("NBDEPLOY_TEST_POSTGRES_URL")
    if not url:
        if IN_CI:
            pytest.fail("CI=true but NBDEPLOY_TEST_POSTGRES_URL is not set: .ci/run must start PostgreSQL")
        pytest.skip("set NBDEPLOY_TEST_POSTGRES_URL (make test starts a server) to run PostgreSQL tests")
    return url


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server, dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    name = "nbd_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = sa.engine.make_url(postgres_url)
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server (server mode, a real HTTP endpoint) on a loopback port; stopped by pid."""
    port = free_port()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Credentials and endpoint for s3fs against the moto server (set in the environment too)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", s3_endpoint)
    return {"endpoint_url": s3_endpoint}


class ServerProcess:
    """A running `nbdeploy serve` subprocess: its base URL, token and a small HTTP helper."""

    def __init__(self, url: str, token: str, proc: subprocess.Popen, log: Path) -> None:
        self.url, self.token, self.proc, self.log = url, token, proc, log

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        token: str | None = "",
        raw: bytes | None = None,
        timeout: float = 60,
    ) -> tuple[int, object]:
        """Send a request (JSON body) and return ``(status, parsed JSON or text)``; never raises on HTTP errors.
        ``timeout`` is a hang guard, not a timing assertion."""
        import json
        import urllib.error
        import urllib.request

        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if token is not None:
            req.add_header("Authorization", f"token {token or self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, payload = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, payload = err.code, err.read()
        try:
            return status, json.loads(payload) if payload else None
        except ValueError:
            return status, payload.decode(errors="replace")


def start_nbdeploy_server(tmp_path: Path, *extra: str) -> Iterator[ServerProcess]:
    """Run `nbdeploy serve` (plus ``extra`` flags) on a free loopback port with a fresh token; stop it by pid."""
    port = free_port()
    token = "test-token-" + os.urandom(6).hex()
    env = dict(os.environ, NBDEPLOY_TOKEN=token, NBDEPLOY_MAX_BODY_BYTES="65536")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nbdeploy.cli", "serve", "--port", str(port), *extra],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/healthz", timeout=60, proc=proc)
        yield ServerProcess(url, token, proc, log)
    finally:
        stop_process(proc)


@pytest.fixture
def nbdeploy_server(nbd_env: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    """`nbdeploy serve` (no scheduler) over the test's home and the shared cluster."""
    yield from start_nbdeploy_server(tmp_path, "--no-scheduler")


@pytest.fixture
def one_worker_client() -> Iterator[object]:
    """A cluster of its own (one worker process under a nanny that restarts it), so killing its worker
    disturbs no other test."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0", memory_limit="2GiB"
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close(timeout=20)
