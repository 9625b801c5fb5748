"""Pipelines in the lab: an opened ``.pipeline.yaml`` is drawn (through ``POST /pipelines/preview``), redrawn when
saved, and an invalid one shows the server's message naming the node; "Store and run" puts the pipeline and runs
it, and the drawing shows each node's state live (running with k/N cells, succeeded, skipped with its reason); a
node opens its output notebook; the sidebar lists the pipeline and its runs; a failed node shows its error and
the nodes after it why they were cancelled, in the light and the dark theme.

The pipeline's three tiny notebooks: ``prepare`` → ``train`` → ``report`` (which also runs after ``prepare``).
``train`` waits for a file the test creates once it saw the node running, so the running state is seen without
timing anything."""

from __future__ import annotations

import re

import pytest

from tests.ui.browser import expect, open_sidebar, require_api, screenshot, wait_for_call

RUN_TIMEOUT_MS = 180_000  # three kernels one after the other on a small shared machine

PIPELINE = """\
name: daily
parameters: {n: 3}
nodes:
  prepare: {notebook: prepare.ipynb, parameters: {n: "{{ params.n }}"}}
  train:   {notebook: train.ipynb, after: [prepare]}
  report:  {notebook: report.ipynb, after: [prepare, train], cache: false}
"""


@pytest.fixture(scope="module", autouse=True)
def _pipelines_api() -> None:
    require_api("nbdeploy.pipelines.handlers")


@pytest.fixture(scope="module")
def pipeline_files(lab):
    """The pipeline file and its three notebooks in the lab's root; the path of ``train``'s go-ahead file."""
    gate = lab.root / "train-may-finish"
    lab.write_notebook(
        "prepare.ipynb",
        [("code", "n = 1", ["parameters"]), ("code", "assert n != 0, 'n must not be 0'\nprint('prepared', n * 2)", [])],
    )
    lab.write_notebook(
        "train.ipynb",
        [
            ("code", "import time\nfrom pathlib import Path", []),
            ("code", f"while not Path({str(gate)!r}).exists():\n    time.sleep(0.05)", []),
            ("code", "print('trained')", []),
        ],
    )
    lab.write_notebook("report.ipynb", [("code", "print('report of the day')", [])])
    (lab.root / "daily.pipeline.yaml").write_text(PIPELINE)
    return gate


def open_file(page, lab, name: str):
    """Open ``name`` (in the lab root) with its default view and return the visible pipeline drawing's widget."""
    page.goto(f"{lab.url}lab/tree/{name}?reset&token={lab.token}")
    view = page.locator(".jp-nbdeploy-pipeline-file:visible")
    view.wait_for(timeout=60_000)
    return view


def node(view, name: str):
    return view.locator(f".jp-nbdeploy-pnode[data-node='{name}']")


def test_an_opened_pipeline_file_is_drawn_and_redrawn_when_saved(page, lab, pipeline_files, api_calls):
    view = open_file(page, lab, "daily.pipeline.yaml")
    for name in ("prepare", "train", "report"):
        node(view, name).wait_for()
    assert wait_for_call(page, api_calls, "POST", "pipelines/preview") == 200
    # one edge per `after`, laid out top to bottom
    assert view.locator(".react-flow__edge").count() == 3
    top = {n: node(view, n).bounding_box()["y"] for n in ("prepare", "train", "report")}
    assert top["prepare"] < top["train"] < top["report"]
    assert "report.ipynb" in node(view, "report").inner_text()
    assert "cache" not in node(view, "report").inner_text()  # cache: false
    screenshot(page, "pipeline-file")

    # edit the file in the text editor (on the same document), save: the drawing is redrawn from the saved text
    view.get_by_role("button", name="Edit").click()
    editor = page.locator(".jp-FileEditor:visible .cm-content")
    editor.wait_for()
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(PIPELINE + "  publish: {notebook: report.ipynb, after: [report]}\n")
    page.keyboard.press("Control+s")
    page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="daily.pipeline.yaml").first.click()
    view = page.locator(".jp-nbdeploy-pipeline-file:visible")
    node(view, "publish").wait_for()
    assert view.locator(".react-flow__edge").count() == 4
    screenshot(page, "pipeline-file-redrawn")
    # put the file back as it was, for the run below
    (lab.root / "daily.pipeline.yaml").write_text(PIPELINE)


def test_an_invalid_pipeline_file_shows_the_message_naming_the_node(page, lab, pipeline_files):
    (lab.root / "broken.pipeline.yaml").write_text(
        "name: broken\nnodes:\n  a: {notebook: prepare.ipynb}\n  b: {notebook: report.ipynb, after: [ghost]}\n"
    )
    view = open_file(page, lab, "broken.pipeline.yaml")
    message = view.locator(".jp-nbdeploy-error")
    message.wait_for()
    assert "b" in message.inner_text() and "ghost" in message.inner_text(), message.inner_text()
    assert view.locator(".jp-nbdeploy-pnode").count() == 0
    screenshot(page, "pipeline-file-invalid")


def test_a_run_is_drawn_live_and_a_node_opens_its_output(page, lab, pipeline_files, api_calls):
    gate = pipeline_files
    view = open_file(page, lab, "daily.pipeline.yaml")
    node(view, "train").wait_for()
    view.get_by_role("button", name="Store and run").click()
    assert wait_for_call(page, api_calls, "POST", "pipelines") == 201
    assert wait_for_call(page, api_calls, "POST", "pipelines/daily/runs") == 201

    run_view = page.locator(".jp-nbdeploy-pipeline-view:visible")
    run_view.wait_for()
    # prepare ran; train is running, held at its second cell until the test lets it go; report waits for it
    node(run_view, "prepare").and_(page.locator("[data-status=succeeded]")).wait_for(timeout=RUN_TIMEOUT_MS)
    train = node(run_view, "train")
    train.and_(page.locator("[data-status=running]")).wait_for(timeout=RUN_TIMEOUT_MS)
    expect(train.locator(".jp-nbdeploy-pnode-state")).to_have_text(re.compile(r"running · 1/3 cells"), timeout=60_000)
    assert node(run_view, "report").get_attribute("data-status") == "queued"
    # the edges stay drawn while the states update (the edge into the running node is animated)
    expect(run_view.locator(".react-flow__edge-path")).to_have_count(3)
    expect(run_view.locator(".react-flow__edge.animated")).to_have_count(1)
    screenshot(page, "pipeline-run-running")

    gate.write_text("go")
    header = run_view.locator(".jp-nbdeploy-prun")
    header.locator(".jp-nbdeploy-status", has_text=re.compile("succeeded|failed|cancelled")).wait_for(
        timeout=RUN_TIMEOUT_MS
    )
    statuses = {n: node(run_view, n).get_attribute("data-status") for n in ("prepare", "train", "report")}
    assert statuses == dict.fromkeys(statuses, "succeeded"), statuses
    assert "3 succeeded" in header.inner_text()
    screenshot(page, "pipeline-run-succeeded")

    # a node opens its job run's executed notebook
    node(run_view, "report").click()
    output = page.locator(".jp-nbdeploy-output:visible")
    output.get_by_text("report of the day").first.wait_for()
    screenshot(page, "pipeline-node-output")


def test_a_second_run_skips_unchanged_nodes_and_says_why(page, lab, pipeline_files, api_calls):
    sidebar = open_sidebar(page)
    body = page.locator("#nbdeploy-section-pipelines")
    if not body.is_visible():
        sidebar.locator(".lm-AccordionPanel-title", has_text="Pipelines").click()
    row = body.locator(".jp-nbdeploy-pipeline[data-name='daily']")
    row.wait_for()
    assert "3 notebooks" in row.inner_text()
    row.get_by_role("button", name="Run", exact=True).click()
    assert wait_for_call(page, api_calls, "POST", "pipelines/daily/runs") == 201

    run_view = page.locator(".jp-nbdeploy-pipeline-view:visible")
    header = run_view.locator(".jp-nbdeploy-prun")
    header.locator(".jp-nbdeploy-status", has_text=re.compile("succeeded|failed|cancelled")).wait_for(
        timeout=RUN_TIMEOUT_MS
    )
    # prepare and train are unchanged since the first run: skipped, saying so; report has cache: false and ran
    for name in ("prepare", "train"):
        state = node(run_view, name)
        assert state.get_attribute("data-status") == "skipped", state.inner_text()
        assert re.search(r"skipped: unchanged since run \d+", state.inner_text()), state.inner_text()
    assert node(run_view, "report").get_attribute("data-status") == "succeeded"
    screenshot(page, "pipeline-run-cached")

    # the sidebar lists both runs of the pipeline, newest first
    row.get_by_role("button", name="Hide runs").or_(row.get_by_role("button", name="Show runs")).first.wait_for()
    if row.get_by_role("button", name="Show runs").count():
        row.get_by_role("button", name="Show runs").click()
    runs = row.locator(".jp-nbdeploy-prun-item")
    expect(runs).to_have_count(2)
    expect(runs.first).to_have_attribute("data-status", "succeeded")
    screenshot(page, "pipelines-sidebar")
    assert not [e for e in page.js_errors if "Failed to load resource" not in e], page.js_errors


def test_a_failed_node_shows_its_error_and_the_nodes_after_it_why_they_did_not_run(page, lab, pipeline_files):
    # another client starts a run whose parameters make `prepare` fail; the sidebar lists it and opens it
    failed = lab.api("POST", "pipelines/daily/runs", {"parameters": {"n": 0}})
    sidebar = open_sidebar(page)
    row = sidebar.locator("#nbdeploy-section-pipelines .jp-nbdeploy-pipeline[data-name='daily']")
    item = row.locator(f".jp-nbdeploy-prun-item[data-run='{failed['run']}']")
    item.wait_for()
    item.click()
    run_view = page.locator(".jp-nbdeploy-pipeline-view:visible")
    run_view.locator(f".jp-nbdeploy-prun[data-run='{failed['run']}']").wait_for()
    header = run_view.locator(".jp-nbdeploy-prun")
    header.locator(".jp-nbdeploy-status", has_text=re.compile("succeeded|failed|cancelled")).wait_for(
        timeout=RUN_TIMEOUT_MS
    )
    prepare = node(run_view, "prepare")
    assert prepare.get_attribute("data-status") == "failed", prepare.inner_text()
    assert "n must not be 0" in prepare.get_attribute("title")
    for name in ("train", "report"):
        state = node(run_view, name)
        assert state.get_attribute("data-status") == "cancelled", state.inner_text()
        assert "upstream 'prepare' failed" in state.get_attribute("title")
    screenshot(page, "pipeline-run-failed")

    # the same drawing in JupyterLab's dark theme: every colour comes from the theme's variables
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^JupyterLab Dark$")).click()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
    background = run_view.locator(".jp-nbdeploy-pnode[data-node='report']").evaluate(
        "n => getComputedStyle(n).backgroundColor"
    )
    assert background != "rgb(255, 255, 255)", background
    screenshot(page, "pipeline-run-failed-dark")

    # the failed node opens its job run's output notebook, with the error
    prepare.click()
    output = page.locator(".jp-nbdeploy-output:visible, .jp-nbdeploy-log:visible").first
    output.get_by_text("n must not be 0").first.wait_for()
    screenshot(page, "pipeline-failed-node-output")
