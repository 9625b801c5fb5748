"""Outside a notebook the same calls print text and never import ipywidgets; the figures behind the views."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbdeploy as nbd
from tests.helpers import NOTEBOOKS


def test_plain_python_shows_runs_and_magics_as_text_without_importing_ipywidgets(nbd_env: Path) -> None:
    code = f"""
import sys
import nbdeploy as nbd
from IPython.core.interactiveshell import InteractiveShell
from nbdeploy.widgets import widgets_enabled
assert not widgets_enabled()
nbd.jobs.put({str(NOTEBOOKS / "quick.ipynb")!r}, "quick")
run = nbd.jobs.run("quick", {{"x": 41}}).wait(timeout=120)
print(repr(run))
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "nbdeploy")
ip.run_line_magic("runs", "quick")
ip.run_line_magic("functions", "")
ip.run_line_magic("cluster", "")
ip.run_line_magic("cluster", "scale 3")
ip.run_line_magic("functions", "ghost --plot")
print("ipywidgets" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("<Run ") and "status='succeeded'" in lines[0]
    assert "no functions deployed yet" in out.stdout and "worker(s)" in out.stdout
    assert "error: the cluster at tcp://" in out.stdout and "belongs to whoever runs it" in out.stdout
    assert "error: no function named 'ghost'" in out.stdout
    assert lines[-1] == "False"


def test_runs_metrics_figure_draws_each_metric_over_time_and_across_runs(nbd_env: Path, tmp_path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    nb.cells = [
        nbformat.v4.new_code_cell("scale = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import nbdeploy as nbd\nfor step in range(3):\n    nbd.log_metric('loss', scale / (step + 1), step=step)\n"
            "nbd.log_metric('auc', 0.5 + scale / 10)"
        ),
    ]
    path = tmp_path / "train.ipynb"
    nbformat.write(nb, str(path))
    nbd.jobs.put(path, "train")
    runs = [nbd.jobs.run("train", {"scale": s}).wait(timeout=120) for s in (1, 2)]
    assert [r.status for r in runs] == ["succeeded", "succeeded"], [r.error for r in runs]
    from nbdeploy.plots import runs_metrics_figure

    fig = runs_metrics_figure(runs)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["auc", "loss", "auc: last value per run", "loss: last value per run"]
    loss = fig.axes[1]
    assert sorted(line.get_label() for line in loss.get_lines()) == [f"run {runs[0].id}", f"run {runs[1].id}"]
    assert [list(line.get_ydata()) for line in loss.get_lines()] == [[1.0, 0.5, 1 / 3], [2.0, 1.0, 2 / 3]]
    across = fig.axes[3]
    assert list(across.get_lines()[0].get_ydata()) == [1 / 3, 2 / 3]


def test_latency_figure_shows_the_request_rate() -> None:
    from nbdeploy.plots import latency_figure

    samples = [[100.0 + t / 4, 2.0 + (t % 3), 200] for t in range(12)]  # 12 requests over 3 seconds
    fig = latency_figure({"latencies": samples, "latency_ms": {"p50": 3.0, "p99": 4.0}, "errors": 0})
    rate = [ax for ax in fig.axes if ax.get_ylabel() == "requests per second"]
    assert rate and list(rate[0].get_lines()[0].get_ydata()) == [4, 4, 4]
