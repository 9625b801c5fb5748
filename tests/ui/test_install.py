"""The installed package: JupyterLab and Jupyter Server list nbdeploy as enabled and OK, and
``python -m jupyterlab.browser_check`` (JupyterLab starting in a browser with every extension) passes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.daemons import advertised_daemon, stop_tree
from tests.ui.browser import CHROMIUM, OUTPUT, unavailable

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def jupyter(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    return ANSI.sub("", result.stdout + result.stderr)


def test_labextension_list_shows_nbdeploy_enabled_ok():
    out = jupyter("labextension", "list")
    assert re.search(r"nbdeploy v\S+ enabled\s+OK", out), out


def test_server_extension_list_shows_nbdeploy_enabled_ok():
    out = jupyter("server", "extension", "list")
    assert re.search(r"nbdeploy enabled", out), out
    assert re.search(r"nbdeploy \S+ OK", out), out


def _fake_playwright_browsers(browser_test: Path, browsers: Path) -> None:
    """Point Playwright's own browser install at Debian's chromium (Playwright cannot download one here):
    each directory ``playwright install --dry-run chromium`` names gets the executable it expects, as a
    link to chromium, and the markers saying the install is complete."""
    env = dict(os.environ, PLAYWRIGHT_BROWSERS_PATH=str(browsers))
    dry = subprocess.run(
        ["npx", "playwright", "install", "--dry-run", "chromium"],
        cwd=browser_test,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    chromium = Path("/usr/lib/chromium/chromium") if Path("/usr/lib/chromium/chromium").exists() else Path(CHROMIUM)
    executables = {
        "chromium-": "chrome-linux64/chrome",
        "chromium_headless_shell-": "chrome-headless-shell-linux64/chrome-headless-shell",
        "ffmpeg-": "ffmpeg-linux",
    }
    for location in re.findall(r"Install location:\s+(\S+)", dry):
        folder = Path(location)
        for prefix, exe in executables.items():
            if folder.name.startswith(prefix):
                target = folder / exe
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    target.symlink_to(chromium)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "INSTALLATION_COMPLETE").touch()
        (folder / "DEPENDENCIES_VALIDATED").touch()


def test_jupyterlab_browser_check_passes(tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"no chromium at {CHROMIUM}: apt-get install -y --no-install-recommends chromium")
    if shutil.which("npm") is None or shutil.which("npx") is None:
        unavailable("browser_check needs node and npm")
    from jupyterlab.commands import get_app_dir

    # what browser_check does first (npm install playwright into <app dir>/browser_test), done here so that
    # its browser can be pointed at chromium before it runs
    browser_test = Path(get_app_dir()) / "browser_test"
    if not (browser_test / "node_modules" / "playwright").exists():
        browser_test.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "init", "-y"], cwd=browser_test, capture_output=True, check=True, timeout=120)
        subprocess.run(
            ["npm", "install", "playwright@^1.9.2"], cwd=browser_test, capture_output=True, check=True, timeout=300
        )
    browsers = tmp_path / "ms-playwright"
    _fake_playwright_browsers(browser_test, browsers)

    env = dict(
        os.environ,
        PLAYWRIGHT_BROWSERS_PATH=str(browsers),
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1",
        NBDEPLOY_HOME=str(tmp_path / "nbdeploy-home"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
    )
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "jupyterlab.browser_check",
                "--allow-root",
                "--ServerApp.port=0",  # any free port: the browser opens the server's own start-up file
                f"--ServerApp.root_dir={tmp_path}",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
        )
    finally:  # the extension's server started the embedded cluster's daemon: it outlives the server (idle timeout)
        daemon = advertised_daemon(Path(env["NBDEPLOY_HOME"]) / "runtime")
        if daemon is not None:
            stop_tree(*daemon)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "browser_check.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "Browser test complete" in result.stdout + result.stderr
