"""``nbdeploy jobs|schedules|runs`` over the test's home and the shared Dask cluster.

``nbdeploy jobs run`` runs as a real process: no server runs here, so it dispatches its run itself (as a
notebook would). The quick read-only commands run in-process through click's runner (same code, no start-up).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import NOTEBOOKS


def cli_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbdeploy.cli", *args], capture_output=True, text=True, timeout=300)


def cli(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI in this process; the result looks like a finished process (returncode, stdout, stderr)."""
    from click.testing import CliRunner

    import nbdeploy.config
    from nbdeploy.cli import main

    nbdeploy.config.reset_settings()
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_jobs_put_run_wait_and_the_exit_code_reflects_the_run(nbd_env: Path, tmp_path: Path) -> None:
    out = cli("jobs", "put", str(NOTEBOOKS / "params.ipynb"))
    assert out.returncode == 0, out.stderr
    assert "stored job params v1" in out.stdout and "parameters: n, scale, label, flag, items" in out.stdout
    assert cli("jobs", "put", str(NOTEBOOKS / "fail.ipynb"), "--name", "broken").returncode == 0

    ok = cli_process("jobs", "run", "params", "-p", "n=5", "-p", "label=cli", "--wait")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "run 1 of job params queued" in ok.stdout and "succeeded" in ok.stdout
    bad = cli_process("jobs", "run", "broken", "--wait", "--json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    run = json.loads(bad.stdout)
    assert (run["status"], run["error"]["type"], run["error"]["cell"]) == ("failed", "ValueError", 2)
    timed_out = cli_process("jobs", "run", "broken", "-p", "fail_until_attempt=0", "--timeout", "0.001", "--wait")
    assert timed_out.returncode == 3, timed_out.stdout + timed_out.stderr

    typo = cli("jobs", "run", "params", "-p", "n=five", "--wait")
    assert typo.returncode == 1 and "parameter 'n' must be a int" in typo.stderr
    assert "Traceback" not in typo.stderr

    listing = cli("jobs", "list")
    assert "params" in listing.stdout and "broken" in listing.stdout
    shown = cli("jobs", "show", "params")
    assert "n: int = 3" in shown.stdout and "v1" in shown.stdout

    runs = cli("runs", "list", "--job", "params")
    assert runs.returncode == 0 and "succeeded" in runs.stdout and "broken" not in runs.stdout
    assert "result=7.5 label=cli" in cli("runs", "log", "1").stdout
    show = cli("runs", "show", "2")
    assert "ValueError" in show.stdout and "boom on attempt 1" in show.stdout
    assert "metric result = 7.5" in cli("runs", "show", "1").stdout
    executed = json.loads(cli("runs", "output", "1").stdout)
    assert executed["metadata"]["papermill"]["parameters"] == {"n": 5, "label": "cli"}
    page = tmp_path / "run.html"
    assert cli("runs", "output", "1", "--format", "html", "-o", str(page)).returncode == 0
    assert "result=7.5" in page.read_text()
    assert "already succeeded" in cli("runs", "cancel", "1").stdout
    missing = cli("runs", "show", "99")
    assert missing.returncode == 1 and "no run 99" in missing.stderr


def test_schedules_add_list_pause_resume_rm(nbd_home: Path) -> None:
    assert cli("jobs", "put", str(NOTEBOOKS / "quick.ipynb")).returncode == 0
    added = cli(
        "schedules", "add", "quick", "--cron", "0 6 * * *", "--timezone", "Europe/Berlin", "-p", "x=3",
        "--notify", "http://127.0.0.1:9/hook", "--json",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    schedule = json.loads(added.stdout)
    assert (schedule["parameters"], schedule["timezone"]) == ({"x": 3}, "Europe/Berlin")
    assert schedule["notify"] == {"url": "http://127.0.0.1:9/hook", "on": ["failure"]}
    assert all(t.endswith(("+01:00", "+02:00")) and "T06:00:00" in t for t in schedule["upcoming"])
    sid = str(schedule["id"])
    assert "Europe/Berlin" in cli("schedules", "list").stdout
    assert "paused" in cli("schedules", "pause", sid).stdout
    assert "next" in cli("schedules", "resume", sid).stdout
    bad = cli("schedules", "add", "quick", "--cron", "every day")
    assert bad.returncode == 1 and "must have 5 fields" in bad.stderr
    assert cli("schedules", "rm", sid).returncode == 0
    assert "no schedules" in cli("schedules", "list").stdout
    gone = cli("schedules", "rm", sid)
    assert gone.returncode == 1 and f"no schedule {sid}" in gone.stderr
