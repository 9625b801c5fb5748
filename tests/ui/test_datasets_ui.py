"""Datasets in the sidebar: datasets stored with ``nbd.datasets.put`` are listed with their newest version, rows,
columns and fsspec URL; their versions fold out with their lineage (the job run that produced one, the runs that
read it); "Profile" has the server profile a version on the cluster and opens the HTML report in the main area;
a version and then the dataset are deleted. Runs logged by the MLflow client appear under the job runs in the
Runs section and "Compare" plots them side by side."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.ui.browser import LabServer, open_sidebar, require_api, screenshot, wait_for_call

PUT_DATASETS = """
import numpy as np
import pandas as pd

import nbdeploy as nbd

rng = np.random.default_rng(0)
frame = pd.DataFrame({"id": range(200), "city": rng.choice(["berlin", "oslo"], 200), "amount": rng.normal(10, 2, 200)})
nbd.datasets.put(frame.iloc[:120], "sales", description="daily sales")
nbd.datasets.put(frame.iloc[120:], "sales", append=True)
"""

LOG_RUNS = """
import mlflow

mlflow.set_experiment("churn")
for lr in (0.1, 0.01):
    with mlflow.start_run(run_name=f"lr-{lr}"):
        mlflow.log_param("lr", lr)
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1) + lr, step=step)
"""


@pytest.fixture(scope="module", autouse=True)
def _datasets_api() -> None:
    require_api("nbdeploy.datasets.handlers")
    require_api("nbdeploy.tracking.handlers")


def run_python(lab: LabServer, code: str, **extra: str) -> None:
    """Run ``code`` in another process against the lab server's nbdeploy home, as a notebook would."""
    env = dict(os.environ, NBDEPLOY_HOME=str(lab.home), **extra)
    for var in ("NBDEPLOY_STORE_URL", "NBDEPLOY_CATALOG_URL", "NBDEPLOY_CLUSTER", "NBDEPLOY_TOKEN"):
        env.pop(var, None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr


def datasets_section(page):
    body = page.locator("#nbdeploy-section-datasets")
    if not body.is_visible():
        page.locator(".jp-nbdeploy-sidebar .lm-AccordionPanel-title", has_text="Datasets").click()
    body.wait_for(state="visible")
    return body


def test_datasets_are_listed_with_lineage_and_profiled(page, lab, api_calls):
    run_python(lab, PUT_DATASETS)
    open_sidebar(page)
    datasets = datasets_section(page)
    row = datasets.locator('li[data-name="sales"]')
    row.wait_for()
    head = row.locator(".jp-nbdeploy-row").first
    head.get_by_text("v2", exact=True).wait_for()
    assert "200 rows · 3 columns" in row.inner_text()
    url = row.locator(".jp-nbdeploy-url").inner_text()
    assert url.startswith("file://") and "sales" in url  # the fsspec URL of the newest version's files

    row.get_by_role("button", name="Show versions").click()
    v1 = row.locator('.jp-nbdeploy-dataset-version[data-version="1"]')
    v2 = row.locator('.jp-nbdeploy-dataset-version[data-version="2"]')
    v1.wait_for()
    assert "120 rows" in v1.inner_text() and "200 rows" in v2.inner_text()
    assert "written outside a run" in v1.inner_text()
    assert "appended to v1" in v2.inner_text()
    assert "id int64" in row.locator(".jp-nbdeploy-dataset-detail").inner_text()
    screenshot(page, "datasets-listed")

    # Profile: the server computes the report on the cluster; the lab shows the page it sends
    v2.get_by_role("button", name="Profile").click()
    tab = page.locator(".lm-TabBar-tab", has_text="sales v2 · profile")
    tab.wait_for(timeout=180_000)  # the first profile starts the cluster
    assert wait_for_call(page, api_calls, "POST", "datasets/sales/versions/2/profile") == 200
    assert wait_for_call(page, api_calls, "GET", "datasets/sales/versions/2/profile.html") == 200
    report = page.frame_locator("iframe[title='Profile of sales v2']")
    report.locator("h1", has_text="sales v2").wait_for()
    report.get_by_text("amount").first.wait_for()
    assert report.locator("img").count() > 0  # matplotlib figures
    screenshot(page, "datasets-profile")

    # delete v1, then the dataset
    v1.get_by_role("button", name="Delete sales v1").click()
    confirm = page.locator(".jp-Dialog")
    confirm.get_by_text("Delete sales v1?").wait_for()
    confirm.locator(".jp-mod-warn").click()
    v1.wait_for(state="detached")
    head.get_by_role("button", name="Delete sales").click()
    confirm.get_by_text("Delete dataset sales?").wait_for()
    confirm.locator(".jp-mod-warn").click()
    row.wait_for(state="detached")
    datasets.get_by_text("No datasets yet").wait_for()
    assert not [e for e in page.js_errors if "nbdeploy" in e.lower()]


def test_tracked_runs_are_listed_under_job_runs_and_compared(page, lab, api_calls):
    pytest.importorskip("mlflow")
    run_python(
        lab,
        LOG_RUNS,
        MLFLOW_TRACKING_URI=f"{lab.url.rstrip('/')}/nbdeploy/mlflow",
        MLFLOW_TRACKING_TOKEN=lab.token,
    )
    open_sidebar(page)
    body = page.locator("#nbdeploy-section-runs")
    if not body.is_visible():
        page.locator(".jp-nbdeploy-sidebar .lm-AccordionPanel-title", has_text="Runs").click()
    tracked = body.locator(".jp-nbdeploy-tracked")
    tracked.wait_for()
    rows = tracked.locator(".jp-nbdeploy-tracked-run")
    rows.nth(1).wait_for()
    assert rows.count() == 2
    text = tracked.inner_text()
    assert "lr-0.1" in text and "lr-0.01" in text and "churn" in text and "loss" in text
    tracked.get_by_label("Compare lr-0.1").check()
    tracked.get_by_label("Compare lr-0.01").check()
    tracked.get_by_role("button", name="Compare 2").click()
    view = page.locator(".jp-nbdeploy-compare")
    view.locator("img.jp-nbdeploy-compare-figure").wait_for()
    assert wait_for_call(page, api_calls, "GET", "tracking/compare.png") == 200
    table = view.locator(".jp-nbdeploy-compare-table")
    assert "param lr" in table.inner_text() and "metric loss" in table.inner_text()
    screenshot(page, "tracked-runs-compared")
    assert not [e for e in page.js_errors if "nbdeploy" in e.lower()]
