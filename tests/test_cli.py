"""The CLI: thin over the API, one-line errors, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import nbdeploy


def nbdeploy_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nbdeploy.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_info_prints_every_setting_with_its_source(nbd_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBDEPLOY_TOKEN", "very-secret-token")
    out = nbdeploy_cli("info")
    assert out.returncode == 0, out.stderr
    for name in ("home", "store_url", "catalog_url", "cluster", "token"):
        assert name in out.stdout
    assert "very-secret-token" not in out.stdout
    assert f"file://{nbd_home}/store" in out.stdout and "(environment NBDEPLOY_TOKEN)" in out.stdout
    data = json.loads(nbdeploy_cli("info", "--json").stdout)
    assert data["home"] == {"value": str(nbd_home), "source": "environment NBDEPLOY_HOME"}


def test_version() -> None:
    out = nbdeploy_cli("--version")
    assert out.returncode == 0 and nbdeploy.__version__ in out.stdout


def test_store_ls_and_gc(nbd_home: Path) -> None:
    assert "nothing stored" in nbdeploy_cli("store", "ls").stdout
    nbdeploy.store.put("model", "churn", b"abc")
    nbdeploy.store.put("function", "greet", b"def")
    out = nbdeploy_cli("store", "ls", "model")
    assert "churn" in out.stdout and "greet" not in out.stdout and "v1" in out.stdout
    listed = json.loads(nbdeploy_cli("store", "ls", "--json").stdout)
    assert {(v["kind"], v["name"]) for v in listed} == {("model", "churn"), ("function", "greet")}
    nbdeploy.store.delete("model", "churn")
    out = nbdeploy_cli("store", "gc", "--grace", "0")
    assert out.returncode == 0 and "removed 1 blob(s), freed 3 bytes, kept 1" in out.stdout


def test_errors_are_one_line_without_traceback_unless_debug(nbd_home: Path) -> None:
    out = nbdeploy_cli("store", "ls", "gadget")
    assert out.returncode == 1
    assert out.stderr.strip().startswith("Error: invalid kind 'gadget'")
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    debug = nbdeploy_cli("--debug", "store", "ls", "gadget")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_cli_and_package_import_stay_lazy() -> None:
    code = (
        "import sys; from nbdeploy.cli import main; import nbdeploy; "
        "heavy = [m for m in ('distributed', 'jupyter_server', 'papermill', 'dask', 'ipywidgets', 'matplotlib') "
        "if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_help_imports_no_widgets_or_plots() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from nbdeploy.cli import main; "
        "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
        "print(','.join(m for m in ('ipywidgets', 'matplotlib', 'IPython', 'distributed') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
