"""Models in the sidebar: a scikit-learn model stored with ``nbd.models.put`` is listed with its version,
flavor, aliases and metrics; its versions fold out; "Try it" gets predictions from one row of fields and
shows the 422 that names a missing column; an alias is set, a version and then the model deleted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.ui.browser import (
    LabServer,
    check_serving_line_and_figure,
    open_sidebar,
    require_api,
    screenshot,
    section,
    wait_for_call,
)

# churn = short tenure: v1 (alias "production") and v2 answer 1 for tenure 1 and 0 for tenure 10
PUT_MODELS = """
import pandas as pd
from sklearn.tree import DecisionTreeClassifier

import nbdeploy as nbd

frame = pd.DataFrame({"age": [23.5, 41.0, 35.0, 60.0, 29.0, 52.0], "tenure": [1, 12, 2, 30, 1, 24]})
churned = [1, 0, 1, 0, 1, 0]
model = DecisionTreeClassifier(random_state=0).fit(frame, churned)
nbd.models.put(model, "churn", metrics={"accuracy": 0.91}, sample_input=frame, alias="production")
nbd.models.put(model, "churn", metrics={"accuracy": 0.9534}, sample_input=frame)
"""


@pytest.fixture(scope="module", autouse=True)
def _models_api() -> None:
    require_api("nbdeploy.models.handlers")
    pytest.importorskip("sklearn")


def put_models(lab: LabServer) -> None:
    """Store the models into the lab server's nbdeploy home, from another process as a notebook would."""
    env = dict(os.environ, NBDEPLOY_HOME=str(lab.home))
    for var in ("NBDEPLOY_STORE_URL", "NBDEPLOY_CATALOG_URL", "NBDEPLOY_CLUSTER", "NBDEPLOY_TOKEN"):
        env.pop(var, None)
    done = subprocess.run([sys.executable, "-c", PUT_MODELS], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_models_are_listed_and_try_it_predicts(page, lab, api_calls):
    put_models(lab)
    open_sidebar(page)
    models = section(page, "models")
    row = models.locator('li[data-name="churn"]')
    row.wait_for()
    head = row.locator(".jp-nbdeploy-row").first
    head.get_by_text("v2", exact=True).wait_for()
    assert row.locator(".jp-nbdeploy-flavor").inner_text() == "sklearn"
    assert "accuracy 0.9534" in row.inner_text()
    assert "/nbdeploy/api/models/churn/predict" in row.locator(".jp-nbdeploy-url").inner_text()

    row.get_by_role("button", name="Show versions").click()
    v2 = row.locator('.jp-nbdeploy-model-version[data-version="2"]')
    v1 = row.locator('.jp-nbdeploy-model-version[data-version="1"]')
    v2.get_by_text("latest").wait_for()
    v1.get_by_text("production").wait_for()
    assert "accuracy 0.91" in v1.inner_text() and "sklearn" in v1.inner_text()
    assert "age float64, tenure int64" in row.locator(".jp-nbdeploy-model-input").inner_text()
    for other in ("Functions", "Jobs & schedules", "Runs", "Cluster"):  # room for Models, as a person would
        page.locator(".jp-nbdeploy-sidebar .lm-AccordionPanel-title", has_text=other).click()
    screenshot(page, "models-listed")

    # Try it: one row of fields from the signature, starting from the stored sample's first row
    row.get_by_role("button", name="Try it").click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Try model churn").wait_for()
    age, tenure = dialog.locator("#nbdeploy-trymodel-churn-age"), dialog.locator("#nbdeploy-trymodel-churn-tenure")
    age.wait_for()
    assert (age.input_value(), tenure.input_value()) == ("23.5", "1")
    dialog.locator(".jp-mod-accept").click()  # "Predict"
    result = dialog.locator(".jp-nbdeploy-result")
    result.wait_for(timeout=120_000)  # the first prediction loads the model onto a worker
    assert "Predictions from version 2" in result.inner_text()
    assert json.loads(result.locator("pre").inner_text()) == [1]

    tenure.fill("10")
    dialog.locator("#nbdeploy-trymodel-version").select_option("production")
    dialog.locator(".jp-mod-accept").click()
    result.get_by_text("Predictions from version 1").wait_for()
    assert json.loads(result.locator("pre").inner_text()) == [0]
    screenshot(page, "models-try-it")

    # a typed field says what is wrong before anything is sent to the model (the server's POST /forms/coerce)
    predictions = sum(1 for m, p, _ in api_calls if (m, p) == ("POST", "models/churn/predict"))
    tenure.fill("ten")
    dialog.locator(".jp-mod-accept").click()
    dialog.get_by_text('expected a whole number, not "ten"').wait_for()
    assert wait_for_call(page, api_calls, "POST", "forms/coerce") == 200
    assert sum(1 for m, p, _ in api_calls if (m, p) == ("POST", "models/churn/predict")) == predictions

    # as JSON, without the tenure column: the server's 422 names it
    dialog.get_by_label("JSON").check()
    payload = dialog.locator("#nbdeploy-trymodel-json")
    assert '"dataframe_records"' in payload.input_value()
    payload.fill('{"dataframe_records": [{"age": 30.0}]}')
    dialog.locator(".jp-mod-accept").click()
    error = dialog.locator(".jp-nbdeploy-error")
    error.get_by_text("tenure").wait_for()
    assert "missing column" in error.inner_text()
    assert not result.count()
    screenshot(page, "models-try-it-error")
    dialog.locator(".jp-mod-reject").click()
    dialog.wait_for(state="detached")

    # the predictions above are counted in the serving line (the 422 as an error); "Plot" opens the figure
    check_serving_line_and_figure(
        page, api_calls, row, r"^3 requests · 1 error · p50 .* ms · p99 .* ms · 1 server", "models/churn/stats.png"
    )
    screenshot(page, "models-serving-figure")

    # point an alias at v2, delete v1 (and its alias), then the whole model
    v2.get_by_role("button", name="Alias…").click()
    ask = page.locator(".jp-Dialog")
    ask.get_by_text("Alias for churn v2").wait_for()
    ask.locator("input").fill("staging")
    ask.locator(".jp-mod-accept").click()
    v2.get_by_text("staging").wait_for()
    row.locator(".jp-nbdeploy-urlrow").get_by_text("staging").wait_for()  # the newest version's aliases
    v1.get_by_role("button", name="Delete churn v1").click()
    confirm = page.locator(".jp-Dialog")
    confirm.get_by_text("Delete churn v1?").wait_for()
    confirm.locator(".jp-mod-warn").click()
    v1.wait_for(state="detached")
    screenshot(page, "models-alias-and-version-deleted")
    head.get_by_role("button", name="Delete churn").click()
    confirm.get_by_text("Delete model churn?").wait_for()
    confirm.locator(".jp-mod-warn").click()
    row.wait_for(state="detached")
    models.get_by_text("No models yet").wait_for()
    assert not [e for e in page.js_errors if "nbdeploy" in e.lower()]
