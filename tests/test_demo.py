"""`make demo` (scripts/demo.py), the headless tour the README starts with, runs end to end: it starts `nbdeploy serve`
with its embedded cluster, deploys and calls a function, runs a notebook job and serves a model over HTTP, then stops
everything it started, without a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_make_demo_tours_every_service_and_stops_cleanly(tmp_path: Path) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env.pop("NBDEPLOY_HOME", None)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its server and cluster are in its process group, stopped by that id if it hangs
    )
    try:
        out, _ = proc.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"the demo hung:\n{out[-4000:]}") from None
    assert proc.returncode == 0, out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    for line in (
        "-> 200 {'result': 'Hello Ada!'",
        "misspelt argument -> 422",
        "POST /jobs -> 201: job summing v1, parameters ['n', 'label']",
        "its output notebook printed: 'hundred 4950'",
        "POST /models/churn/predict",
        "a missing column -> 422",
        "   stopped",
    ):
        assert line in out, (line, out[-4000:])
