"""Jobs, schedules and runs from the notebook: "Schedule this notebook…" → a run that succeeds and whose
output opens in JupyterLab; a schedule shown in words, paused and deleted; a long run cancelled."""

from __future__ import annotations

import re

import pytest

from tests.ui.browser import expect, open_notebook, open_sidebar, require_api, screenshot, section, wait_for_call

REPORT_PARAMETERS = "n = 3  # the number to square\nlabel = 'square'\n"
REPORT_BODY = 'print(f"{label} of {n} is {n * n}")'
RUN_TIMEOUT_MS = 180_000
ENDED = re.compile(
    r"succeeded|failed|cancelled|timed out", re.IGNORECASE
)  # kernel start and papermill on a small shared machine


@pytest.fixture(scope="module", autouse=True)
def _jobs_api() -> None:
    require_api("nbdeploy.jobs.handlers")
    require_api("nbdeploy.jobs.run_handlers")


def open_schedule_dialog(page, lab, name: str):
    open_notebook(page, lab, name)
    page.locator(".jp-NotebookPanel:visible .jp-nbdeploy-schedule-button").click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Schedule this notebook").wait_for()
    # the dialog focuses its first field once shown: type only after that
    expect(dialog.locator("#nbdeploy-schedule-name")).to_be_focused()
    return dialog


def test_run_now_succeeds_and_its_output_opens(page, lab, api_calls):
    lab.write_notebook("report.ipynb", [("code", REPORT_PARAMETERS, ["parameters"]), ("code", REPORT_BODY, [])])
    dialog = open_schedule_dialog(page, lab, "report.ipynb")
    dialog.locator("#nbdeploy-schedule-param-n").fill("7")
    dialog.locator(".jp-mod-accept").click()  # "Run now"
    dialog.wait_for(state="detached")
    # the server stored the job and queued the run in one call, from what was typed into the form
    assert wait_for_call(page, api_calls, "POST", "notebooks/schedule") == 201

    runs = section(page, "runs")
    row = runs.locator(".jp-nbdeploy-run", has_text="report").first
    row.wait_for()
    assert "n=7" in row.inner_text()
    # wait for the run to end, whichever way, then require success (a failure shows its error at once)
    row.locator(".jp-nbdeploy-status", has_text=ENDED).wait_for(timeout=RUN_TIMEOUT_MS)
    assert "succeeded" in row.locator(".jp-nbdeploy-status").inner_text().lower(), row.inner_text()
    # the browser that started the run is told it finished
    page.locator(".jp-Notification-Toast-success, .Toastify__toast", has_text="succeeded").first.wait_for()
    screenshot(page, "runs-succeeded")

    row.get_by_role("button", name="Open output").click()
    output = page.locator(".jp-nbdeploy-output:visible")
    output.get_by_text("square of 7 is 49").wait_for()
    assert "succeeded" in output.locator(".jp-nbdeploy-output-header").inner_text()
    screenshot(page, "run-output")


def test_output_html_is_saved_beside_the_notebook(page, lab, api_calls):
    lab.write_notebook("Weekly Report.ipynb", [("code", REPORT_PARAMETERS, ["parameters"]), ("code", REPORT_BODY, [])])
    dialog = open_schedule_dialog(page, lab, "Weekly Report.ipynb")
    switch = dialog.locator("#nbdeploy-schedule-output-html")
    assert not switch.is_checked()  # off unless asked for
    switch.check()
    dialog.get_by_text("save its output beside the notebook as Weekly Report-run-<id>.html").wait_for()
    dialog.locator("#nbdeploy-schedule-param-n").fill("6")
    screenshot(page, "schedule-dialog-output-html")
    dialog.locator(".jp-mod-accept").click()  # "Run now"
    dialog.wait_for(state="detached")

    row = section(page, "runs").locator(".jp-nbdeploy-run", has_text="weekly-report").first
    row.locator(".jp-nbdeploy-status", has_text=ENDED).wait_for(timeout=RUN_TIMEOUT_MS)
    assert "succeeded" in row.locator(".jp-nbdeploy-status").inner_text().lower(), row.inner_text()
    run_id = row.get_attribute("data-run-id")
    name = f"Weekly Report-run-{run_id}.html"
    # the server wrote the file (POST /runs/{id}/html), not the browser
    assert wait_for_call(page, api_calls, "POST", f"runs/{run_id}/html", timeout_ms=RUN_TIMEOUT_MS) == 201
    # the notification names the saved file, and opens it
    toast = page.locator(".jp-Notification-Toast-success, .Toastify__toast", has_text=f"saved as {name}").first
    toast.wait_for()
    page.wait_for_timeout(1000)  # the toast's slide-in, for the screenshot
    screenshot(page, "output-html-notification")
    toast.get_by_role("button", name="Open HTML").click()
    viewer = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current", has_text=name)
    viewer.wait_for()
    page.frame_locator(".jp-HTMLViewer:visible iframe").get_by_text("square of 6 is 36").wait_for()

    # the file is in the notebook's folder, through Jupyter's contents API, with the notebook's output
    saved = lab.contents(name)
    assert saved["type"] == "file" and saved["format"] == "text"
    assert "square of 6 is 36" in saved["content"] and "<html" in saved["content"].lower()
    # and the file browser shows it
    if not page.locator("#filebrowser").is_visible():
        page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="filebrowser"]').click()
    page.locator("#filebrowser .jp-DirListing-item", has_text=name).wait_for()
    screenshot(page, "output-html-saved")

    # the choice is remembered the next time the dialog opens for this notebook
    dialog = open_schedule_dialog(page, lab, "Weekly Report.ipynb")
    assert dialog.locator("#nbdeploy-schedule-output-html").is_checked()
    dialog.locator(".jp-mod-reject").click()
    dialog.wait_for(state="detached")


def test_schedule_is_listed_in_words_paused_and_deleted(page, lab):
    dialog = open_schedule_dialog(page, lab, "report.ipynb")
    dialog.get_by_label("On a schedule").check()
    dialog.locator("#nbdeploy-schedule-preset").select_option("weekdays")
    dialog.locator("#nbdeploy-schedule-time").fill("06:30")
    dialog.locator("#nbdeploy-schedule-timezone").select_option("Europe/Berlin")
    dialog.get_by_text("Runs weekdays at 06:30 Europe/Berlin").wait_for()
    dialog.locator(".jp-mod-accept").click()  # "Schedule"
    dialog.wait_for(state="detached")

    open_sidebar(page)
    jobs = section(page, "jobs")
    job = jobs.locator('li[data-name="report"]')
    schedule = job.locator(".jp-nbdeploy-schedule").first
    schedule.get_by_text("weekdays at 06:30 Europe/Berlin").wait_for()
    schedule.get_by_text(re.compile(r"next (in|\d)")).wait_for()
    screenshot(page, "jobs-schedule")

    schedule.get_by_role("button", name="Pause this schedule").click()
    schedule.get_by_text("paused").wait_for()
    screenshot(page, "jobs-schedule-paused")
    schedule.get_by_role("button", name="Resume this schedule").click()
    schedule.get_by_text(re.compile(r"next (in|\d)")).wait_for()

    schedule.get_by_role("button", name="Delete this schedule").click()
    confirm = page.locator(".jp-Dialog")
    confirm.get_by_text("Delete this schedule?").wait_for()
    confirm.locator(".jp-mod-warn").click()
    job.get_by_text("No schedule.").wait_for()


def test_run_now_from_the_jobs_list_takes_parameters(page, lab, api_calls):
    open_sidebar(page)
    job = section(page, "jobs").locator('li[data-name="report"]')
    job.get_by_role("button", name="Run now").click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Run report now").wait_for()
    field = dialog.locator("#nbdeploy-run-report-n")
    field.wait_for()
    assert field.input_value() == "3"  # the default the jobs API read from the stored notebook
    assert dialog.get_by_text("the number to square").is_visible()
    field.fill("five")
    dialog.locator(".jp-mod-accept").click()
    dialog.get_by_text('expected a whole number, not "five"').wait_for()  # the server's words (POST /forms/coerce)
    assert wait_for_call(page, api_calls, "POST", "forms/coerce") == 200
    field.fill("5")
    dialog.locator(".jp-mod-accept").click()
    dialog.wait_for(state="detached")
    runs = section(page, "runs")
    runs.locator(".jp-nbdeploy-run", has_text="n=5").first.wait_for()
    screenshot(page, "jobs-run-now")


def test_cancel_a_long_run(page, lab):
    lab.write_notebook(
        "long.ipynb",
        [
            ("code", "seconds = 600", ["parameters"]),
            ("code", "import time", []),
            ("code", "time.sleep(seconds)", []),
            ("code", "print('never printed')", []),
        ],
    )
    dialog = open_schedule_dialog(page, lab, "long.ipynb")
    dialog.locator(".jp-mod-accept").click()
    dialog.wait_for(state="detached")

    runs = section(page, "runs")
    row = runs.locator(".jp-nbdeploy-run", has_text="long").first
    row.locator(".jp-nbdeploy-status", has_text="running").wait_for(timeout=RUN_TIMEOUT_MS)
    row.get_by_text(re.compile(r"cell \d+ of 4")).wait_for(timeout=RUN_TIMEOUT_MS)
    screenshot(page, "runs-long-running")
    row.get_by_role("button", name="Cancel").click()
    row.locator(".jp-nbdeploy-status", has_text="cancelled").wait_for(timeout=RUN_TIMEOUT_MS)
    assert not row.get_by_role("button", name="Cancel").count()
    screenshot(page, "runs-cancelled")
