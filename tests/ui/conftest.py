"""Browser tests of the JupyterLab extension: a real ``jupyter lab`` with the built extension, driven by
Debian's chromium through Python Playwright.

One JupyterLab server and one browser page per test module (module-scoped fixtures), started from a
temporary root folder with its own nbdeploy home, settings and workspaces, and stopped by process id.
Screenshots go to ``test-output/ui/`` (git-ignored). Locally a missing browser or Playwright skips these
tests with the command that installs it; under ``CI=true`` it fails them.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import stop_process, wait_for_http
from tests.ui.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LABEXTENSION,
    OUTPUT,
    TIMEOUT_MS,
    LabServer,
    screenshot,
    unavailable,
)


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[None]:
    """Overrides pytest-jupyter's: browser tests are synchronous and Playwright owns the event loop while a
    module's browser is open (pytest-jupyter would close that loop after each test)."""
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> Iterator[None]:
    """Overrides pytest-jupyter's: these tests start no in-process Jupyter server to clean up."""
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a failed browser test, save what the page showed as ``FAILED-<test>.png``."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and "page" in request.fixturenames:
        try:
            screenshot(request.getfixturevalue("page"), f"FAILED-{request.node.name}")
        except Exception:  # the page may be gone; the failure itself is what matters
            pass


def _write_settings(settings_dir: Path) -> None:
    """User settings: no news, update or kernel prompts; the sidebar refreshes every second."""
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"autoStartDefaultKernel": True},
        "nbdeploy/plugin.jupyterlab-settings": {"refreshInterval": 1},
    }
    for rel, content in files.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


def _server_url(runtime: Path, proc: subprocess.Popen, timeout: float) -> str:
    """The URL a Jupyter server started with ``--ServerApp.port=0`` wrote into its runtime folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode} before it was ready")
        for info in runtime.glob("jpserver-*.json"):
            try:
                return json.loads(info.read_text())["url"]
            except (ValueError, KeyError):
                pass  # being written
        time.sleep(0.2)
    raise TimeoutError(f"jupyter lab wrote no server file into {runtime} within {timeout}s")


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """``jupyter lab`` on a free loopback port, token-protected, from a temporary root; stopped by pid."""
    if not (LABEXTENSION / "package.json").exists():
        pytest.fail(
            f"the lab extension is not built ({LABEXTENSION} is missing): run `pip install -e .` "
            "or `npm ci && npm run build:prod` in js/"
        )
    base = tmp_path_factory.mktemp("lab")
    root, home, settings = base / "root", base / "nbdeploy-home", base / "settings"
    root.mkdir()
    (base / "jupyter-config").mkdir()  # an empty config folder (a missing one makes every job run "lost")
    _write_settings(settings)
    # the freshly built extension, whatever copy is installed: <dir>/nbdeploy -> python/nbdeploy/labextension
    extensions = base / "labextensions"
    extensions.mkdir()
    (extensions / "nbdeploy").symlink_to(LABEXTENSION, target_is_directory=True)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log = OUTPUT / f"{request.module.__name__.rsplit('.', 1)[-1]}-jupyter.log"
    token = secrets.token_hex(16)
    runtime = base / "runtime"
    env = dict(
        os.environ,
        NBDEPLOY_HOME=str(home),
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTER_CONFIG_DIR=str(base / "jupyter-config"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
    )
    for var in ("NBDEPLOY_STORE_URL", "NBDEPLOY_CATALOG_URL", "NBDEPLOY_CLUSTER", "NBDEPLOY_TOKEN"):
        env.pop(var, None)
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.port=0",  # the OS picks a free port (no race with other tests); read back below
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.extra_labextensions_path={extensions}",
        "--LabApp.news_url=None",
    ]
    with log.open("w") as log_file:
        proc = subprocess.Popen(command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        url = _server_url(runtime, proc, timeout=90)
        server = LabServer(url=url, token=token, root=root, home=home, log=log)
        wait_for_http(f"{server.url}api/status?token={token}", timeout=30, proc=proc)
        yield server
    finally:
        stop_process(proc, timeout=20)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, through Python Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Python Playwright is missing: PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 pip install playwright")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"no chromium at {CHROMIUM}: apt-get install -y --no-install-recommends chromium")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def page(browser: Any, lab: LabServer) -> Iterator[Any]:
    """A JupyterLab page, loaded and ready; JavaScript errors are collected in ``page.js_errors``."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.js_errors = errors
    pg.goto(lab.lab_url())
    pg.locator("#jp-main-dock-panel").wait_for(state="visible", timeout=60_000)
    pg.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab").first.wait_for(state="visible")
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def api_calls(page: Any) -> Iterator[list[tuple[str, str, int]]]:
    """``(method, path under /nbdeploy/api/, status)`` of every nbdeploy API answer the page gets during a test:
    which routes the lab called, so a test can check that the server (not the browser) did the work."""
    calls: list[tuple[str, str, int]] = []
    marker = "/nbdeploy/api/"

    def record(response: Any) -> None:
        url = response.url.split("?", 1)[0]
        if marker in url:
            calls.append((response.request.method, url.split(marker, 1)[1], response.status))

    page.on("response", record)
    try:
        yield calls
    finally:
        page.remove_listener("response", record)
