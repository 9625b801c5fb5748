"""Plain scripts on the default ``local`` cluster, and runs that cannot be dispatched.

The scripts have no ``if __name__ == "__main__":`` guard: they run with this virtual environment's python as
real subprocesses, each test with its own nbdeploy home. The cluster runs in a daemon the first script launches
and the next one reuses; every daemon a test leaves is stopped by pid (``cluster_daemons``). A run whose
cluster cannot start ends failed with an error that says why, instead of ``wait()`` hanging.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbdeploy as nbd
import nbdeploy.config
from nbdeploy.jobs.dispatcher import stop_local_dispatchers
from nbdeploy.runtime import advert
from tests.helpers import NOTEBOOKS, eventually, free_port

OPTIONS = {"n_workers": 1, "threads_per_worker": 1, "memory_limit": "1GiB"}
SPAWN_ERROR = "bootstrapping phase"  # Dask's error when a guard-less script starts worker processes itself

INVOKE = """
import os
import nbdeploy as nbd
from nbdeploy.runtime import cluster

def greet(name: str, times: int = 1) -> str:
    return " ".join(["hello " + name] * times)

nbd.deploy(greet)
print("RESULT", nbd.invoke("greet", name="script", times=2))
print("LAUNCHED", len(cluster.launched_daemons()))
"""

INVOKE_AGAIN = """
import nbdeploy as nbd
from nbdeploy.runtime import cluster

print("RESULT", nbd.invoke("greet", name="again"))
print("LAUNCHED", len(cluster.launched_daemons()))
"""

JOB = """
import json, sys
import nbdeploy as nbd
from nbdeploy.runtime import cluster

nbd.jobs.put(sys.argv[1], "quick")
run = nbd.jobs.run("quick", {"x": 20}).wait(600)
print("STATUS", run.status, run.error_message)
texts = [o.get("text") for c in run.output()["cells"] for o in c.get("outputs", [])]
print("OUTPUT", json.dumps(["".join(t) if isinstance(t, list) else t for t in texts]))
print("DAEMON", json.dumps([[a.owner_pid, a.owner_started, a.idle_timeout] for a in cluster.launched_daemons()]))
"""


@pytest.fixture
def script_env(nbd_home: Path, monkeypatch: pytest.MonkeyPatch, cluster_daemons: list[int]) -> Iterator[Path]:
    """The default local mode with a small cluster (its dashboard on a free loopback port) for the scripts;
    yields the home's runtime folder. Daemons left are stopped by pid (``cluster_daemons``)."""
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.setenv("NBDEPLOY_CLUSTER_OPTIONS", json.dumps(OPTIONS))
    monkeypatch.setenv("NBDEPLOY_DASHBOARD_ADDRESS", "127.0.0.1:0")
    nbdeploy.config.reset_settings()
    yield nbd_home / "runtime"
    nbdeploy.config.reset_settings()


def run_script(folder: Path, name: str, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Write ``code`` to ``folder/name`` and run it with this environment's python (a hang guard only)."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(code)
    return subprocess.run(
        [sys.executable, str(path), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ),
    )


def lines(out: str, tag: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith(tag + " ")]


def test_a_script_without_a_main_guard_deploys_and_invokes_and_the_next_one_reuses_its_cluster(
    script_env: Path, tmp_path: Path
) -> None:
    first = run_script(tmp_path / "scripts", "invoke.py", INVOKE)
    assert first.returncode == 0, first.stderr[-4000:]
    assert SPAWN_ERROR not in first.stderr
    assert lines(first.stdout, "RESULT") == ["hello script hello script"]
    assert lines(first.stdout, "LAUNCHED") == ["1"]
    daemon = advert.read_advert(script_env)
    assert daemon is not None
    assert (daemon.owner_kind, daemon.started_by) == ("daemon", "process")
    assert advert.pid_alive(daemon.owner_pid, daemon.owner_started)  # it outlives the script, for the next one

    again = run_script(tmp_path / "scripts", "again.py", INVOKE_AGAIN)
    assert again.returncode == 0, again.stderr[-4000:]
    assert lines(again.stdout, "RESULT") == ["hello again"]
    assert lines(again.stdout, "LAUNCHED") == ["0"]  # it joined the first script's cluster
    assert advert.read_advert(script_env) == daemon


def test_a_script_without_a_main_guard_runs_a_job_and_its_daemon_exits_once_idle(
    script_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster_daemons: list[int]
) -> None:
    monkeypatch.setenv("NBDEPLOY_CLUSTER_IDLE_TIMEOUT", "1")
    out = run_script(tmp_path / "scripts", "job.py", JOB, str(NOTEBOOKS / "quick.ipynb"))
    launched = json.loads(lines(out.stdout, "DAEMON")[0]) if lines(out.stdout, "DAEMON") else []
    cluster_daemons.extend(pid for pid, _, _ in launched)
    assert out.returncode == 0, out.stderr[-4000:]
    assert SPAWN_ERROR not in out.stderr
    assert lines(out.stdout, "STATUS") == ["succeeded None"]
    assert "21\n" in json.loads(lines(out.stdout, "OUTPUT")[0])  # quick.ipynb prints x + 1

    # the script is gone; the client the run's worker kept does not count: the daemon exits by itself
    [(pid, started, idle)] = launched
    assert idle == 1.0
    eventually(lambda: not advert.pid_alive(pid, started), 120, "the idle daemon exiting")
    assert advert.read_advert(script_env) is None


# --- runs that cannot be dispatched -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "options", "error_type", "says"),
    [
        ("nbd_no_such_module:FancyCluster", OPTIONS, "MissingDependencyError", "pip install nbd-no-such-module"),
        ("local", {"no_such_option": 1}, "ClusterError", "could not start the 'local' cluster"),
        ("tcp://127.0.0.1:{port}", OPTIONS, "ClusterError", "could not connect to the Dask scheduler"),
    ],
    ids=["class-not-installed", "daemon-cannot-start", "nothing-listens"],
)
def test_wait_returns_a_failed_run_that_says_why_when_the_cluster_cannot_start(
    script_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    options: dict[str, object],
    error_type: str,
    says: str,
) -> None:
    monkeypatch.setenv("NBDEPLOY_CLUSTER", setting.format(port=free_port()))
    monkeypatch.setenv("NBDEPLOY_CLUSTER_OPTIONS", json.dumps(options))
    monkeypatch.setenv("NBDEPLOY_DISPATCH_TIMEOUT", "2")  # a scheduler that may come back: give up after 2 s
    monkeypatch.setenv("NBDEPLOY_CONNECT_TIMEOUT", "1")
    nbdeploy.config.reset_settings()
    try:
        nbd.jobs.put(NOTEBOOKS / "quick.ipynb", "quick")
        run = nbd.jobs.run("quick").wait(600)  # a hang guard only
        info = run.info
    finally:
        stop_local_dispatchers()
    assert (info.status, info.error_type, info.started_at) == ("failed", error_type, None)
    assert info.error_message.startswith("the run was never started")
    assert says in info.error_message
    assert [h.status for h in info.history] == ["failed"]
    with pytest.raises(nbd.RunFailedError, match="never started"):
        run.raise_for_status()
    assert advert.read_advert(script_env) is None  # no cluster was left advertised
