"""The team set-up end to end on loopback: three `nbdeploy serve` processes behind HAProxy, a PostgreSQL catalog,
S3 through moto's server and an external Dask cluster (`dask scheduler` + two `dask worker`), every process
started by the test and stopped by pid. A deploy through one process is answered by every server; killing one
server under load costs only the requests it was answering. The three schedulers race over every tick of a
schedule (a shared fast clock) and fire it once; the server running a run is the one killed, and the ledger stays
consistent: the run it lost is retried, every run ends, no tick has two runs."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

import nbdeploy as nbd
from nbdeploy.jobs.clock import FastClock
from nbdeploy.jobs.tables import RunRow
from tests.helpers import NOTEBOOKS, free_port, stop_process, wait_for_http
from tests.test_serving_fleet_stats import servers

pytestmark = pytest.mark.timeout(900)  # a hang guard: a quiet machine runs this in about a minute
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
GUARD = 120.0  # hang guard for what the test waits on (never a timed assertion)


def eventually(check, seconds: float = GUARD):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    return check()


@pytest.fixture
def dask_scheduler(tmp_path: Path) -> Iterator[str]:
    """An external Dask cluster: `dask scheduler` and two `dask worker` processes, stopped by pid."""
    info = tmp_path / "scheduler.json"
    bindir = os.path.dirname(sys.executable)
    procs = [
        subprocess.Popen(
            [os.path.join(bindir, "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", ":0", "--scheduler-file", str(info)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    try:
        assert eventually(info.exists), "the Dask scheduler did not start"
        address = eventually(lambda: json.loads(info.read_text() or "{}").get("address"))
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [os.path.join(bindir, "dask"), "worker", "--scheduler-file", str(info), "--nthreads", "2",
                     "--memory-limit", "2GiB", "--preload", "nbdeploy.runtime.preload"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        from distributed import Client

        with Client(address, timeout=GUARD) as client:
            client.wait_for_workers(2, timeout=GUARD)
        yield address
    finally:
        from nbdeploy import runtime

        runtime.shutdown()  # close this process's clients before their scheduler goes away
        for proc in reversed(procs):
            stop_process(proc)


@pytest.fixture
def team_env(postgres_db: str, s3_env: dict[str, str], dask_scheduler: str, nbd_home: Path, monkeypatch) -> dict:
    """The settings every process of the team shares: PostgreSQL, S3 (moto), the external cluster."""
    import s3fs

    bucket = "team-" + os.urandom(4).hex()
    s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_env["endpoint_url"]}).mkdir(bucket)
    env = {
        "NBDEPLOY_CATALOG_URL": postgres_db,
        "NBDEPLOY_STORE_URL": f"s3://{bucket}/nbdeploy",
        "NBDEPLOY_CLUSTER": dask_scheduler,
        "NBDEPLOY_MODEL_STATS_SECONDS": "0.5",
        "NBDEPLOY_LEASE_TTL": "6",  # a killed server's run is reconciled (lost, retried) within seconds
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nbd.config.reset_settings()
    yield env
    from nbdeploy.app import reset_default

    reset_default()
    nbd.config.reset_settings()


@pytest.fixture
def haproxy(tmp_path: Path):
    """Start HAProxy (foreground, by pid) in front of the given backend ports; return the frontend URL."""
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (scripts/system-deps.sh installs it)")
    started: list[subprocess.Popen] = []

    def start(ports: list[int]) -> str:
        port = free_port()
        backends = "\n".join(
            f"    server s{i} 127.0.0.1:{p} check inter 300ms fall 1 rise 1" for i, p in enumerate(ports)
        )
        config = tmp_path / "haproxy.cfg"
        config.write_text(
            f"""global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout
frontend api
    bind 127.0.0.1:{port}
    default_backend nbdeploy
backend nbdeploy
    balance roundrobin
    option httpchk GET /healthz
{backends}
"""
        )
        proc = subprocess.Popen([HAPROXY, "-f", str(config), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_for_http(url + "/healthz", timeout=GUARD, proc=proc)
        return url

    yield start
    for proc in started:
        stop_process(proc)


def call(url: str, token: str, x: int) -> tuple[int, dict]:
    req = urllib.request.Request(
        url + "/nbdeploy/api/functions/team-add/invoke",
        data=json.dumps({"x": x}).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=GUARD) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, {}
    except OSError:
        return 0, {}


def test_three_servers_behind_haproxy_share_deploys_and_survive_losing_one(team_env, haproxy, tmp_path: Path) -> None:
    def add_v1(x: int) -> int:
        return x + 1

    def add_v2(x: int) -> int:
        return x + 2

    app = nbd.default()
    app.functions.deploy(add_v1, "team-add")
    app.jobs.put(NOTEBOOKS / "wait.ipynb", "team-wait")
    clock = FastClock(datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC), time.time(), 60.0)  # a cron minute a second
    with servers(tmp_path, 3, "--behind-proxy", "--clock", clock.spec()) as team:
        token = team[0].token
        front = haproxy([int(s.url.rsplit(":", 1)[1]) for s in team])
        for server in team:  # every server answers what was deployed before it started
            assert eventually(lambda s=server: call(s.url, token, 1)[1].get("result") == 2)

        # a deploy made elsewhere (this process) is answered by all, each server on its own
        version = app.functions.deploy(add_v2, "team-add").version.version
        for server in team:
            assert eventually(lambda s=server: call(s.url, token, 1)[1].get("version") == version)
        assert call(front, token, 5)[1]["result"] == 7

        # the three schedulers race over each tick; runs wait for `gate` (a retried attempt does not)
        gate = tmp_path / "gate"
        schedule = app.schedules.add(
            "team-wait", "* * * * *", catchup="all", retries=1, max_concurrency=4, now=clock.now(),
            parameters={"gate": str(gate), "skip_after_attempt": 1},
        )  # fmt: skip
        assert eventually(lambda: len(schedule.runs()) >= 3)
        schedule.pause()
        running = eventually(lambda: next((r for r in ledger(app, schedule.id) if r.status == "running"), None))
        victim = next(s for s in team if s.proc.pid == int(running.lease_owner.split(":")[1]))

        # under load through HAProxy, kill one server: only the requests it was answering may fail
        stop = threading.Event()
        outcomes: list[int] = []
        lock = threading.Lock()

        def load() -> None:
            while not stop.is_set():
                status, _ = call(front, token, 3)
                with lock:
                    outcomes.append(status)

        concurrency = 8
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            workers = [pool.submit(load) for _ in range(concurrency)]
            assert eventually(lambda: len(outcomes) >= 50)
            victim.proc.send_signal(signal.SIGKILL)  # the server running the schedule's first run
            victim.proc.wait()
            killed_at = len(outcomes)
            gate.touch()
            assert eventually(lambda: len(outcomes) >= killed_at + 100)
            stop.set()
            for w in workers:
                w.result()
        failed = [s for s in outcomes if s != 200]
        assert len(failed) <= concurrency, f"{len(failed)} of {len(outcomes)} requests failed: {sorted(set(failed))}"
        assert all(s == 200 for s in outcomes[killed_at + concurrency :])
        # the survivors still answer, directly and through HAProxy
        for server in team:
            assert server is victim or call(server.url, token, 0)[0] == 200

        # the ledger: every run ends (none stays queued or running), one run per tick, no tick skipped; the run
        # the victim was running was lost and retried by a survivor
        assert eventually(lambda: all(r.status not in ("queued", "running") for r in ledger(app, schedule.id)))
        rows = ledger(app, schedule.id)
        assert {r.status for r in rows} <= {"succeeded", "failed"}, [(r.id, r.status, r.history) for r in rows]
        ticks = [r.fire_time for r in rows]
        assert ticks == [ticks[0] + timedelta(minutes=i) for i in range(len(rows))], ticks
        assert len({r.id for r in rows}) == len(rows) == len(schedule.runs()) == len(app.runs.list(job="team-wait"))
        lost = next(r for r in rows if r.id == running.id)
        assert [a["status"] for a in lost.history][:1] == ["lost"] and lost.attempt == 2, lost.history
        for r in rows:  # each attempt recorded once, in order
            assert [a["attempt"] for a in r.history] == list(range(1, len(r.history) + 1)), r.history
    app.close()


def ledger(app: nbd.Nbdeploy, schedule_id: int) -> list[RunRow]:
    """The schedule's runs straight from the catalog, oldest tick first."""
    with app.store.catalog.session() as s:
        rows = list(s.scalars(sa.select(RunRow).where(RunRow.schedule_id == schedule_id).order_by(RunRow.fire_time)))
        s.expunge_all()
    return rows
