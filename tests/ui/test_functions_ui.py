"""Functions in the sidebar: deploy from a notebook cell with ``%%deploy``, see it listed, "Try it", its serving
statistics and figure, delete."""

from __future__ import annotations

import re

import pytest

from tests.ui.browser import (
    check_serving_line_and_figure,
    open_notebook,
    open_sidebar,
    require_api,
    screenshot,
    section,
    wait_for_call,
)

DEPLOY_CELL = """%%deploy greet --description "Says hello"
def greet(name: str = "world") -> str:
    return f"hello {name}"
"""


@pytest.fixture(scope="module", autouse=True)
def _functions_api() -> None:
    require_api("nbdeploy.functions.handlers")


def test_deploy_from_a_cell_then_try_it_and_delete(page, lab, api_calls):
    lab.write_notebook("greet.ipynb", [("code", "%load_ext nbdeploy", []), ("code", DEPLOY_CELL, [])])
    open_notebook(page, lab, "greet.ipynb")
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

    open_sidebar(page)
    functions = section(page, "functions")
    row = functions.locator('li[data-name="greet"]')
    row.wait_for(timeout=120_000)
    assert "v1" in row.inner_text()
    assert "/nbdeploy/api/functions/greet/invoke" in row.locator(".jp-nbdeploy-url").inner_text()
    row.get_by_role("button", name="Show versions").click()
    versions = row.locator(".jp-nbdeploy-sublist")
    versions.get_by_text("v1").wait_for()
    versions.get_by_text("latest").wait_for()  # the alias that points at v1
    screenshot(page, "functions-listed")

    row.get_by_role("button", name="Try it").click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Try greet").wait_for()
    field = dialog.locator("#nbdeploy-tryit-greet-name")
    field.wait_for()
    assert field.input_value() == "world"  # the default, from the function's form (GET /functions/greet)
    field.fill("nbdeploy")
    dialog.locator(".jp-mod-accept").click()
    # the first call starts the function on a worker (27 s server-side once on this small shared machine)
    dialog.locator(".jp-nbdeploy-result").get_by_text('"hello nbdeploy"').wait_for(timeout=120_000)
    # the server turned the typed text into the arguments (POST /forms/coerce), then ran the function
    assert wait_for_call(page, api_calls, "POST", "functions/greet/invoke") == 200
    calls = [(m, p) for m, p, _ in api_calls]
    assert calls.index(("POST", "forms/coerce")) < calls.index(("POST", "functions/greet/invoke"))
    assert "Result from version 1" in dialog.locator(".jp-nbdeploy-result").inner_text()
    screenshot(page, "functions-try-it")
    dialog.locator(".jp-mod-reject").click()
    dialog.wait_for(state="detached")

    # the call is counted in the serving line (over every server), and "Plot" opens the server's figure
    check_serving_line_and_figure(
        page, api_calls, row, r"^1 request · 0 errors · p50 .* ms · p99 .* ms · 1 server$", "functions/greet/stats.png"
    )
    screenshot(page, "functions-serving-figure")

    row.get_by_role("button", name="Delete greet").click()
    confirm = page.locator(".jp-Dialog")
    confirm.get_by_text("Delete function greet?").wait_for()
    confirm.locator(".jp-mod-warn").click()
    row.wait_for(state="detached")
    functions.get_by_text("No functions yet").wait_for()
