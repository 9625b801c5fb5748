"""``%schedule``, ``%run_job`` and ``%runs`` in a real IPython shell."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbdeploy as nbd
from nbdeploy.jobs.dispatcher import stop_local_dispatchers
from nbdeploy.jobs.magics import JobMagics
from tests.helpers import NOTEBOOKS

SCHEDULE_CELL = '%schedule "*/15 * * * *" --name magic-report -p x=2 --timezone Europe/Berlin'


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    ip = InteractiveShell.instance()
    ip.register_magics(JobMagics)
    for name in ("__session__", "__vsc_ipynb_file__"):
        ip.user_ns.pop(name, None)
    yield ip
    for name in ("__session__", "__vsc_ipynb_file__"):
        ip.user_ns.pop(name, None)
    stop_local_dispatchers()


def saved_notebook(tmp_path: Path, extra_cell: str) -> Path:
    """A copy of quick.ipynb, saved with one more code cell."""
    nb = json.loads((NOTEBOOKS / "quick.ipynb").read_text())
    nb["cells"].append(
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "magic",
            "metadata": {},
            "outputs": [],
            "source": extra_cell,
        }
    )
    path = tmp_path / "My Report.ipynb"
    path.write_text(json.dumps(nb))
    return path


def test_schedule_magic_schedules_the_saved_notebook_without_its_own_line(
    shell: Any, nbd_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cell = "kept = 1\n" + SCHEDULE_CELL
    path = saved_notebook(tmp_path, cell)
    shell.user_ns["__session__"] = str(path)
    schedule = shell.run_cell(cell, store_history=True).result
    out = capsys.readouterr().out
    assert "scheduled My Report.ipynb as job 'magic-report' v1" in out, out
    assert "no scheduler is running right now" in out
    assert (schedule.job, schedule.cron, schedule.timezone, schedule.parameters) == (
        "magic-report", "*/15 * * * *", "Europe/Berlin", {"x": 2},
    )  # fmt: skip
    stored = json.loads(nbd.store.read("job", "magic-report"))
    sources = ["".join(c["source"]) for c in stored["cells"]]
    assert not any("%schedule" in s for s in sources) and "kept = 1\n" in sources

    # the cell being run is not in the saved file: unsaved changes, nothing scheduled
    shell.run_cell("kept = 2\n" + SCHEDULE_CELL, store_history=True)
    out = capsys.readouterr().out
    assert "not scheduled: the notebook has unsaved changes" in out and "Save it" in out
    assert len(nbd.schedules.list()) == 1

    shell.user_ns["__session__"] = str(tmp_path / "Untitled.ipynb")
    shell.run_cell(SCHEDULE_CELL, store_history=True)
    assert "is not saved on disk" in capsys.readouterr().out
    del shell.user_ns["__session__"]
    shell.run_cell(SCHEDULE_CELL, store_history=True)
    assert "cannot tell which notebook this is: pass its file, e.g. --path" in capsys.readouterr().out
    shell.run_cell(f'%schedule "*/15 * * *" --path "{path}" --force', store_history=True)
    assert "must have 5 fields" in capsys.readouterr().out
    assert len(nbd.schedules.list()) == 1


def test_run_job_and_runs_magics(shell: Any, nbd_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nbd.jobs.put(NOTEBOOKS / "quick.ipynb", "quick")
    run = shell.run_cell("%run_job quick -p x=41 --wait", store_history=True).result
    assert run.status == "succeeded" and run.parameters == {"x": 41}
    assert "42" in json.dumps(run.output())
    listing = shell.run_cell("%runs quick", store_history=True).result
    assert [r.id for r in listing] == [run.id]
    assert f"<td>{run.id}</td>" in listing._repr_html_() and "succeeded" in listing._repr_html_()
    assert shell.run_cell("%run_job ghost", store_history=True).result is None
    assert "not run: no job named 'ghost'" in capsys.readouterr().out
