"""Helpers of the browser tests: the running JupyterLab, screenshots, and the steps a person takes
(open the sidebar, a section, a notebook). Fixtures are in ``conftest.py``."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
LABEXTENSION = ROOT / "python" / "nbdeploy" / "labextension"
OUTPUT = ROOT / "test-output" / "ui"
CHROMIUM = os.environ.get("NBDEPLOY_TEST_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Waits on what a person would see; generous because the machine is small and shared.
TIMEOUT_MS = 30_000


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (under CI=true) a test whose browser tooling is missing."""
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def require_api(module: str) -> None:
    """Skip with a clear reason while the REST API a test drives is not implemented yet."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} does not exist yet: this browser test needs its REST API")


@dataclass
class LabServer:
    """A running ``jupyter lab``: its URL, token, root folder and log."""

    url: str
    token: str
    root: Path
    home: Path
    log: Path

    def lab_url(self, path: str = "lab") -> str:
        return f"{self.url}{path}?token={self.token}"

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call ``/nbdeploy/api/<path>`` with the token; return the decoded JSON (None for 204)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}nbdeploy/api/{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def contents(self, path: str) -> Any:
        """Jupyter's contents API: the model of the file at ``path`` (relative to the root), with its content."""
        request = urllib.request.Request(
            f"{self.url}api/contents/{quote(path)}?content=1", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read().decode())

    def write_notebook(self, name: str, cells: list[tuple[str, str, list[str]]]) -> Path:
        """Write a notebook of ``(cell_type, source, tags)`` cells into the root folder."""
        import nbformat

        nb = nbformat.v4.new_notebook()
        for cell_type, source, tags in cells:
            make = nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell
            cell = make(source)
            if tags:
                cell.metadata["tags"] = tags
            nb.cells.append(cell)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = self.root / name
        nbformat.write(nb, path)
        return path

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def expect(locator: Any) -> Any:
    """Playwright's ``expect`` (imported here, so a missing Playwright skips rather than breaks collection)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def screenshot(page: Any, name: str) -> Path:
    """Save what a person sees now as ``test-output/ui/<name>.png``; return the path."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{re.sub(r'[^a-zA-Z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path))
    return path


def wait_for_call(
    page: Any, calls: list[tuple[str, str, int]], method: str, path: str, timeout_ms: int = TIMEOUT_MS
) -> int:
    """Wait until ``calls`` (the ``api_calls`` fixture) holds an answer to ``method`` on a path under
    ``/nbdeploy/api/`` matching the regular expression ``path``; return its status."""
    pattern = re.compile(path)
    waited = 0
    while True:
        for m, p, status in calls:
            if m == method and pattern.fullmatch(p):
                return status
        if waited >= timeout_ms:
            raise AssertionError(f"the page never called {method} /nbdeploy/api/{path}; it called {calls}")
        page.wait_for_timeout(100)
        waited += 100


def check_serving_line_and_figure(page: Any, api_calls: list, row: Any, line: str, figure_route: str) -> None:
    """An expanded function or model ``row`` (re-expanded so it loads now) shows the serving line matching the
    regular expression ``line``; "Plot" opens the server's figure (``GET figure_route``) drawn in a main-area tab."""
    row.get_by_role("button", name="Hide versions").click()
    row.get_by_role("button", name="Show versions").click()
    serving = row.locator(".jp-nbdeploy-serving")
    serving.get_by_text(re.compile(line)).wait_for()
    serving.get_by_role("button", name="Plot").click()
    figure = page.locator(".jp-nbdeploy-serving-figure img.jp-nbdeploy-figure")
    figure.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=figure.element_handle())
    assert wait_for_call(page, api_calls, "GET", figure_route) == 200


def open_sidebar(page: Any) -> Any:
    """Click the nbdeploy tab of the left sidebar (if it is not open) and return the sidebar locator."""
    sidebar = page.locator("#nbdeploy-sidebar")
    if not sidebar.is_visible():
        page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[title="nbdeploy"]').click()
    sidebar.wait_for(state="visible")
    return sidebar


def section(page: Any, section_id: str) -> Any:
    """The body of a sidebar section, expanded if it was collapsed."""
    body = page.locator(f"#nbdeploy-section-{section_id}")
    if not body.is_visible():
        page.locator(".jp-nbdeploy-sidebar .lm-AccordionPanel-title", has_text=body_title(section_id)).click()
    body.wait_for(state="visible")
    return body


def body_title(section_id: str) -> str:
    return {
        "functions": "Functions",
        "models": "Models",
        "jobs": "Jobs & schedules",
        "runs": "Runs",
        "cluster": "Cluster",
    }[section_id]


def open_notebook(page: Any, lab: LabServer, name: str) -> Any:
    """Open ``name`` (in the lab root) in the notebook editor and return its panel, kernel idle."""
    # ?reset: a fresh workspace, so that no notebook of an earlier test is restored beside this one
    page.goto(f"{lab.url}lab/tree/{quote(name)}?reset&token={lab.token}")
    page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel", has_text=name).wait_for(
        timeout=60_000
    )
    panel = page.locator(".jp-NotebookPanel:visible")
    panel.locator(".jp-Cell").first.wait_for(state="visible", timeout=60_000)
    # the kernel started and idle, as the status bar says it
    page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\| Idle")).wait_for(timeout=60_000)
    return panel
