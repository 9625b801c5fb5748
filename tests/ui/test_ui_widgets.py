"""The notebook views in JupyterLab: a notebook run with "Run All" shows the ``%%deploy`` card (then "Try it" from
it, and its copy button puts the URL on the clipboard), the live run view, and the tables of runs, models, datasets and the cluster; each is screenshotted under
``test-output/ui/widgets-*.png``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import NOTEBOOKS
from tests.ui.browser import expect, open_notebook, screenshot

CELLS = [
    "%load_ext nbdeploy\nimport nbdeploy as nbd\nimport pandas as pd",
    '%%deploy greet --description "says hello"\ndef greet(name: str, times: int = 1) -> str:\n'
    '    return " ".join([f"hello {name}"] * times)',
    f"nbd.jobs.put({str(NOTEBOOKS / 'quick.ipynb')!r}, 'quick')\nrun = nbd.jobs.run('quick', {{'x': 41}})\nrun",
    "run.wait(timeout=300).status",
    "%runs",
    "from sklearn.linear_model import LinearRegression\nX = pd.DataFrame({'a': [0.0, 1.0, 2.0]})\n"
    "nbd.models.put(LinearRegression().fit(X, [0.0, 1.0, 2.0]), 'line', sample_input=X, alias='production')\n%models",
    "nbd.datasets.put(X, 'points')\n%datasets",
    "%cluster",
]


@pytest.mark.timeout(900)
def test_notebook_views_render_in_jupyterlab(page, lab) -> None:
    lab.write_notebook("views.ipynb", [("code", c, []) for c in CELLS])
    panel = open_notebook(page, lab, "views.ipynb")
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

    # the kernel runs the cells in order: the run view first, then the tables (a click waits for the kernel)
    view = panel.locator(".nbdeploy-run-view")
    expect(view.get_by_text("succeeded", exact=True)).to_be_visible(timeout=300_000)
    expect(view.get_by_text("3/3")).to_be_visible()
    expect(view.get_by_role("link", name="open the output notebook")).to_be_visible()
    view.screenshot(path=str(_shot("widgets-run-view")))

    tables = panel.locator(".nbdeploy-table-view")
    expect(tables).to_have_count(4, timeout=180_000)
    for name, marker in (("runs", "quick"), ("models", "line"), ("datasets", "points"), ("cluster", "worker(s)")):
        table = tables.filter(has=page.get_by_text(name, exact=True))
        expect(table.get_by_text(marker).first).to_be_visible(timeout=60_000)
        table.screenshot(path=str(_shot(f"widgets-{name}")))
    card = panel.locator(".nbdeploy-deploy-card")
    expect(card.get_by_text("deployed greet v1")).to_be_visible()
    expect(card.get_by_text("says hello", exact=True)).to_be_visible()
    card.get_by_role("textbox", name="name *").fill("Ada")
    card.get_by_role("textbox", name="times").fill("2")
    card.get_by_role("button", name="Try it").click()
    # the first call starts the function on a worker: slow once on this small shared machine
    expect(card.get_by_text('"hello Ada hello Ada"')).to_be_visible(timeout=180_000)
    expect(card.get_by_text(re.compile(r"answered in [0-9.]+ ms"))).to_be_visible()
    card.screenshot(path=str(_shot("widgets-deploy-card")))

    # the copy button puts the function's URL (what the card's URL field shows) on the clipboard
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url.rstrip("/"))
    url = card.locator("input[type='text'][disabled]").input_value()
    assert url.startswith(lab.url.rstrip("/")) and url.endswith("/nbdeploy/api/functions/greet/invoke"), url
    page.evaluate("navigator.clipboard.writeText('not copied yet')")
    card.get_by_role("button", name="copy", exact=True).click()
    copied = ""
    for _ in range(50):  # the write is asynchronous
        copied = page.evaluate("navigator.clipboard.readText()")
        if copied == url:
            break
        page.wait_for_timeout(100)
    assert copied == url
    screenshot(page, "widgets-notebook")


def _shot(name: str) -> Path:
    from tests.ui.browser import OUTPUT

    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT / f"{name}.png"
