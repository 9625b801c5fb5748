"""Binder, the way Binder does it: a clean environment built by ``binder/postBuild`` (into a fresh venv, with uv
standing in for pip), then every example notebook executed with ``jupyter nbconvert --execute`` under
``binder/start`` (its home, its cluster) — what someone who clicks the Binder badge gets.

repo2docker itself cannot run here (no container runtime), so the conda part (``binder/environment.yml``: Python
and Node) is this machine's own. Slow (a venv from the uv cache, then the notebooks): run by ``make test-binder``,
which ``make test`` calls; skipped in the main pytest run so the examples are executed once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.ipynb"))
VIEW = "application/vnd.jupyter.widget-view+json"

pytestmark = pytest.mark.skipif(
    os.environ.get("NBDEPLOY_TEST_BINDER") != "1", reason="the Binder build runs under `make test-binder`"
)


def _clean_env(venv: Path, home: Path) -> dict[str, str]:
    """This process's environment without nbdeploy's, Jupyter's or the test venv's settings: the new venv first on
    PATH, a fresh HOME (as a new Binder session has)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NBDEPLOY_", "JUPYTER_", "JPY_", "PYTEST_", "VIRTUAL_ENV", "PYTHON"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["HOME"] = str(home)
    return env


@pytest.fixture(scope="module")
def binder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The venv postBuild built and the environment a session runs in; the session's cluster stopped at the end."""
    base = tmp_path_factory.mktemp("binder")
    venv, home = base / "venv", base / "home"
    home.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = _clean_env(venv, home)
    uv = Path(sys.executable).parent / "uv"
    build = dict(
        env,
        NBDEPLOY_BINDER_PIP=f"{uv} pip install -q --python {venv / 'bin' / 'python'} "
        "--build-constraint requirements-lock.txt",
    )
    done = subprocess.run(
        ["bash", "binder/postBuild"], cwd=ROOT, env=build, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        yield {"venv": venv, "home": home, "env": env, "base": base}
    finally:
        subprocess.run(
            [str(venv / "bin" / "nbdeploy"), "cluster", "stop"],
            env=dict(env, NBDEPLOY_HOME=str(home / ".nbdeploy")),
            capture_output=True,
            timeout=120,
        )


@pytest.mark.timeout(900)  # builds the venv (the module's fixture) first
def test_postbuild_installs_the_demos_needs_not_the_test_extras_and_enables_the_extensions(
    binder: dict[str, Any],
) -> None:
    python, env = str(binder["venv"] / "bin" / "python"), binder["env"]
    present = subprocess.run(
        [python, "-c", "import importlib.util as u; print([m for m in ('sklearn', 'pandas', 'matplotlib', "
         "'ipywidgets', 'pytest', 'moto', 'playwright', 'mlflow') if u.find_spec(m)])"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert present.strip() == "['sklearn', 'pandas', 'matplotlib', 'ipywidgets']"
    labext = subprocess.run(["jupyter", "labextension", "list"], env=env, capture_output=True, text=True)
    assert "nbdeploy" in labext.stdout + labext.stderr and "enabled" in labext.stdout + labext.stderr
    server = subprocess.run(["jupyter", "server", "extension", "list"], env=env, capture_output=True, text=True)
    assert "nbdeploy" in server.stdout + server.stderr and "enabled" in server.stdout + server.stderr


def _outputs(nb: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


def _text(nb: dict[str, Any]) -> str:
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in _outputs(nb))


@pytest.mark.timeout(1200)  # four notebooks on a cold cluster; minutes on a loaded 2-core machine
def test_every_example_runs_top_to_bottom_under_the_binder_start_script(binder: dict[str, Any]) -> None:
    work, out = binder["base"] / "examples", binder["base"] / "executed"
    shutil.copytree(ROOT / "examples", work)  # a fresh clone's files: the examples write next to themselves
    done = subprocess.run(
        ["bash", str(ROOT / "binder" / "start"), "jupyter", "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=300", "--output-dir", str(out), *[p.name for p in EXAMPLES]],
        cwd=work, env=binder["env"], capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-6000:]
    assert (binder["home"] / ".nbdeploy" / "catalog.db").is_file()  # the session's home, as start set it
    executed = {p.stem: json.loads((out / p.name).read_text()) for p in EXAMPLES}
    for name, nb in executed.items():
        errors = [o for o in _outputs(nb) if o["output_type"] == "error"]
        assert not errors, (name, errors)
    # one session, one home: the tour deployed churn-score first, so 01's cell makes the next version
    assert re.search(r"deployed churn-score v[0-9]+", _text(executed["01-deploy-a-function"]))
    assert "'probability'" in _text(executed["01-deploy-a-function"])

    tour = executed["00-tour"]
    views = [o for o in _outputs(tour) if VIEW in o.get("data", {})]
    assert len(views) >= 7  # cluster, card, models, the run, %run_job's run, runs, datasets
    state = tour["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    for view in views:
        assert view["data"][VIEW]["model_id"] in state  # saved with the notebook: renders without a kernel
    shown = json.dumps(state)
    assert "deployed churn-score v1" in shown and "nbdeploy-run-view" in shown and "succeeded" in shown
    assert "churn-model" in shown and "customers" in shown
    images = [o for o in _outputs(tour) if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the model's latency/drift figure and the runs' metrics
