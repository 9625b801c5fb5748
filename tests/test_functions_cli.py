"""`nbdeploy deploy` and `nbdeploy functions …` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nbdeploy.cli", *args], capture_output=True, text=True, timeout=180, input=stdin
    )


def test_deploy_a_file_then_list_show_invoke_delete(nbd_env: Path, tmp_path: Path) -> None:
    src = tmp_path / "handlers.py"
    src.write_text("RATE = 0.2\n\ndef tax(amount: float) -> float:\n    return round(amount * RATE, 2)\n")
    out = cli("deploy", f"{src}:tax", "--name", "vat", "--description", "value added tax")
    assert out.returncode == 0, out.stderr
    assert "deployed vat v1" in out.stdout and "/nbdeploy/api/functions/vat/invoke" in out.stdout
    listed = json.loads(cli("functions", "list", "--json").stdout)
    assert [(f["name"], f["version"], f["description"]) for f in listed] == [("vat", 1, "value added tax")]
    shown = json.loads(cli("functions", "show", "vat").stdout)
    assert shown["signature"]["request"]["properties"]["amount"] == {"type": "number"}
    out = cli("functions", "invoke", "vat", "--json", '{"amount": 100}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == 20.0
    out = cli("functions", "invoke", "vat", "--json", '{"amount": "lots"}')
    assert out.returncode == 1 and "amount: expected number, got string" in out.stderr
    assert "Traceback" not in out.stderr
    out = cli("functions", "delete", "vat", stdin="y\n")
    assert out.returncode == 0 and "deleted vat (1 version(s))" in out.stdout
    out = cli("functions", "invoke", "vat")
    assert out.returncode == 1 and "no function named 'vat'" in out.stderr


def test_deploy_reports_missing_files_and_broken_code(nbd_env: Path, tmp_path: Path) -> None:
    out = cli("deploy", str(tmp_path / "nope.py"))
    assert out.returncode == 1 and "no file at" in out.stderr
    bad = tmp_path / "bad.py"
    bad.write_text("def f(x: int) -> int:\n    return x\nraise SystemError('import-time failure')\n")
    out = cli("deploy", f"{bad}:f")
    assert out.returncode == 1 and "import-time failure" in out.stderr
