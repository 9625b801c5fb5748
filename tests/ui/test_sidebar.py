"""The sidebar and the "Schedule this notebook…" dialog, in a real JupyterLab (no job needs to run)."""

from __future__ import annotations

import importlib.util
import re

from tests.ui.browser import expect, open_notebook, open_sidebar, screenshot, section, wait_for_call

PARAMETERS = """\
n_rows = 1000  # how many rows to sample
region = "eu-west"
verbose = False
tags = ["a", "b"]
"""


def test_sidebar_tab_opens_with_every_section(page, lab):
    sidebar = open_sidebar(page)
    titles = sidebar.locator(".lm-AccordionPanel-title")
    for title in ("Functions", "Models", "Jobs & schedules", "Runs", "Cluster"):
        assert titles.filter(has_text=title).is_visible(), f"the {title} section title is not shown"
    cluster = section(page, "cluster")
    if importlib.util.find_spec("nbdeploy.server_extension.cluster_handlers") is not None:
        # the embedded cluster: its scheduler address and workers
        # the embedded cluster starts on the first /cluster call: ≈30 s cold on a small shared machine
        cluster.get_by_text("Scheduler").wait_for(timeout=120_000)
        assert "tcp://" in cluster.inner_text() or "inproc://" in cluster.inner_text()
        cluster.locator(".jp-nbdeploy-table").wait_for()
    else:
        # without the API every section says so in words, never a blank or a stack trace
        cluster.get_by_text("The nbdeploy API is not available").wait_for()
    status = page.locator("#nbdeploy-status")
    assert re.search(r"\d+ running|nbdeploy: –", status.inner_text())
    screenshot(page, "sidebar-open")
    assert not [e for e in page.js_errors if "nbdeploy" in e.lower() and "404" not in e]


def test_schedule_dialog_reads_the_notebook_parameters(page, lab, api_calls):
    lab.write_notebook(
        "Daily Report.ipynb",
        [("markdown", "# Daily report", []), ("code", PARAMETERS, ["parameters"]), ("code", "print(n_rows * 2)", [])],
    )
    open_notebook(page, lab, "Daily Report.ipynb")
    page.locator(".jp-NotebookPanel:visible .jp-nbdeploy-schedule-button").click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Schedule this notebook").wait_for()
    expect(dialog.locator("#nbdeploy-schedule-name")).to_be_focused()  # typing goes where it should from here

    # the server read the notebook as it is in the editor (POST /notebooks/inspect): the name comes from the
    # file, the parameters from the tagged cell, typed, with their defaults
    assert wait_for_call(page, api_calls, "POST", "notebooks/inspect") == 200
    assert dialog.locator("#nbdeploy-schedule-name").input_value() == "daily-report"
    assert dialog.locator("#nbdeploy-schedule-param-n_rows").input_value() == "1000"
    assert dialog.locator("#nbdeploy-schedule-param-region").input_value() == "eu-west"
    assert not dialog.locator("#nbdeploy-schedule-param-verbose").is_checked()
    assert dialog.locator("#nbdeploy-schedule-param-tags").input_value() == '["a","b"]'  # the server's JSON
    assert dialog.get_by_text("how many rows to sample").is_visible()
    screenshot(page, "schedule-dialog-run-now")

    # on a schedule: the preset in words, with the time zone
    dialog.get_by_label("On a schedule").check()
    dialog.locator("#nbdeploy-schedule-preset").select_option("weekdays")
    dialog.locator("#nbdeploy-schedule-time").fill("06:30")
    dialog.locator("#nbdeploy-schedule-timezone").select_option("Europe/Berlin")
    dialog.get_by_text("Runs weekdays at 06:30 Europe/Berlin").wait_for()
    assert dialog.locator(".jp-mod-accept").inner_text().strip() == "Schedule"

    # a bad value is refused in words, next to its field, and the dialog stays open
    dialog.locator("#nbdeploy-schedule-param-n_rows").fill("ten")
    dialog.locator("#nbdeploy-schedule-preset").select_option("custom")
    dialog.locator("#nbdeploy-schedule-cron").fill("0 25 * * *")
    dialog.get_by_text('hour "25" is out of range 0-23').first.wait_for()
    dialog.locator(".jp-mod-accept").click()
    dialog.get_by_text('expected a whole number, not "ten"').wait_for()  # the server's 422, under its field
    dialog.get_by_text("Please correct the fields marked in red.").wait_for()
    assert wait_for_call(page, api_calls, "POST", "notebooks/schedule") == 422
    assert not lab.api("GET", "jobs")["jobs"]  # nothing stored unless every field fits
    screenshot(page, "schedule-dialog-errors")
    dialog.locator(".jp-mod-reject").click()
    dialog.wait_for(state="detached")


def test_schedule_dialog_shows_the_servers_complaint_about_the_name(page, lab, api_calls):
    open_notebook(page, lab, "Daily Report.ipynb")
    page.locator(".jp-NotebookPanel:visible .jp-nbdeploy-schedule-button").click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Schedule this notebook").wait_for()
    name = dialog.locator("#nbdeploy-schedule-name")
    expect(name).to_have_value("daily-report")
    name.fill("Daily Report!")
    dialog.locator(".jp-mod-accept").click()  # "Run now"
    # the server checks the name (400 naming the field): its words show under the name, the dialog stays open
    error = dialog.locator(".jp-nbdeploy-mod-invalid", has=page.locator("#nbdeploy-schedule-name"))
    error.locator(".jp-nbdeploy-field-error", has_text='name: "Daily Report!" is not a valid name').wait_for()
    dialog.get_by_text("Please correct the fields marked in red.").wait_for()
    assert wait_for_call(page, api_calls, "POST", "notebooks/schedule") == 400
    assert not lab.api("GET", "jobs")["jobs"]
    screenshot(page, "schedule-dialog-name-refused")
    name.fill("daily-report")  # an edited field drops its complaint
    assert not error.count()
    dialog.locator(".jp-mod-reject").click()
    dialog.wait_for(state="detached")


def test_status_bar_item_opens_the_runs(page, lab):
    page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="filebrowser"]').click()
    page.locator("#nbdeploy-sidebar").wait_for(state="hidden")
    status = page.locator("#nbdeploy-status button")
    assert re.search(r"\d+ running", status.inner_text())
    status.click()
    page.locator("#nbdeploy-section-runs").wait_for()
    page.locator("#nbdeploy-section-runs").get_by_text("No runs yet.").wait_for()


def test_schedule_command_is_in_the_palette(page, lab):
    page.keyboard.press("Control+Shift+C")
    palette = page.locator("#command-palette")
    palette.locator("input").fill("Schedule this notebook")
    item = palette.locator(".lm-CommandPalette-item", has_text="Schedule this notebook…")
    item.wait_for()
    screenshot(page, "command-palette")
    page.keyboard.press("Escape")
