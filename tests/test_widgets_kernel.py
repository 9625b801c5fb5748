"""The notebook views, exercised through a real ipykernel (jupyter_client): the widget models the kernel opens
(``comm_open``), the state updates it sends (``comm_msg``), the display data that points at them
(``application/vnd.jupyter.widget-view+json``) and the front end's side of the protocol (a button click, a value
typed) sent back as comm messages, as JupyterLab would."""

from __future__ import annotations

import os
import queue
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import NOTEBOOKS

VIEW = "application/vnd.jupyter.widget-view+json"


class WidgetKernel:
    """A real ipykernel; keeps every widget model's state from the comm messages it sends (whatever request they
    belong to, so updates from the views' threads count too) and every output of each execution."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, cwd=str(cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.models: dict[str, dict[str, Any]] = {}
        self.opened: list[str] = []

    def _track(self, msg: dict[str, Any]) -> None:
        content = msg["content"]
        if msg["msg_type"] == "comm_open" and content.get("target_name") == "jupyter.widget":
            self.models[content["comm_id"]] = dict(content["data"]["state"])
            self.opened.append(content["comm_id"])
        elif msg["msg_type"] == "comm_msg" and content["comm_id"] in self.models:
            data = content["data"]
            if data.get("method") in ("update", "echo_update"):
                self.models[content["comm_id"]].update(data["state"])

    def _until_idle(
        self, msg_id: str, timeout: float = 120, reply: bool = True
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        outputs: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        idle = False
        while not idle:
            try:
                msg = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no idle status within {timeout}s") from None
            self._track(msg)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] in ("stream", "display_data", "execute_result", "error"):
                outputs.append(msg)
            idle = msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"
        if not reply:  # a comm message has no reply
            return outputs, {}
        answer = self.kc.get_shell_msg(timeout=timeout)
        while answer["parent_header"].get("msg_id") != msg_id:
            answer = self.kc.get_shell_msg(timeout=timeout)
        return outputs, answer["content"]

    def run(self, code: str, ok: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Execute ``code``; return (its outputs, the execute reply). ``ok``: fail unless the reply is ok."""
        outputs, reply = self._until_idle(self.kc.execute(textwrap.dedent(code)))
        if ok and reply["status"] != "ok":
            raise AssertionError(f"cell failed: {self.text(outputs)}")
        return outputs, reply

    def send_comm(self, comm_id: str, data: dict[str, Any]) -> None:
        """Send a front end's comm message to a widget model and wait until the kernel handled it."""
        msg = self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        self.kc.shell_channel.send(msg)
        self._until_idle(msg["header"]["msg_id"], reply=False)

    def click(self, model_id: str) -> None:
        self.send_comm(model_id, {"method": "custom", "content": {"event": "click"}})

    def set(self, model_id: str, **state: Any) -> None:
        self.send_comm(model_id, {"method": "update", "state": state, "buffer_paths": []})
        self.models[model_id].update(state)

    @staticmethod
    def text(outputs: list[dict[str, Any]]) -> str:
        parts = []
        for m in outputs:
            c = m["content"]
            if m["msg_type"] == "stream":
                parts.append(c["text"])
            elif m["msg_type"] == "error":
                parts.append("\n".join(c["traceback"]))
            else:
                parts.append(c["data"].get("text/plain", ""))
        return "".join(parts)

    @staticmethod
    def views(outputs: list[dict[str, Any]]) -> list[str]:
        """Model ids of the widget views among ``outputs``."""
        return [m["content"]["data"][VIEW]["model_id"] for m in outputs if VIEW in m["content"].get("data", {})]

    def tree(self, model_id: str) -> list[dict[str, Any]]:
        """The model and every model below it (children, by the ``IPY_MODEL_`` references)."""
        found, todo, seen = [], [model_id], set()
        while todo:
            mid = todo.pop()
            if mid in seen or mid not in self.models:
                continue
            seen.add(mid)
            state = self.models[mid]
            found.append({"id": mid, **state})
            for ref in state.get("children", []) or []:
                todo.append(ref.removeprefix("IPY_MODEL_"))
        return found

    def find(self, model_id: str, model: str, contains: str = "") -> list[dict[str, Any]]:
        """Models of class ``model`` (e.g. ``HTMLModel``) under ``model_id``, whose value/description contains
        ``contains``."""
        return [
            s
            for s in self.tree(model_id)
            if s.get("_model_name") == model and contains in str(s.get("value", "")) + str(s.get("description", ""))
        ]

    def html(self, model_id: str) -> str:
        """Every HTML/Label value under ``model_id``, joined: what the view shows as text."""
        return "\n".join(
            str(s.get("value", "")) for s in self.tree(model_id) if s.get("_model_name") in ("HTMLModel", "LabelModel")
        )

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def kernel(nbd_env: Path, tmp_path: Path) -> Iterator[WidgetKernel]:
    env = {k: v for k, v in os.environ.items() if k != "NBDEPLOY_WIDGETS"}
    k = WidgetKernel(env, tmp_path)
    try:
        k.run("%load_ext nbdeploy")
        yield k
    finally:
        k.stop()


DEPLOY = """
%%deploy greet --description "says hello"
def greet(name: str, times: int = 1) -> str:
    return " ".join([f"hello {name}"] * times) + SUFFIX
"""


def test_deploy_card_tries_the_function_and_a_redeploy_updates_the_same_card(kernel: WidgetKernel) -> None:
    kernel.run("SUFFIX = '!'")
    outputs, _ = kernel.run(DEPLOY)
    [card] = kernel.views(outputs)
    assert kernel.models[card]["_dom_classes"] == ["nbdeploy-deploy-card"]
    shown = kernel.html(card)
    assert "deployed greet v1" in shown and "says hello" in shown and "captured: SUFFIX (str)" in shown
    assert "/nbdeploy/api/functions/greet/invoke" in shown and "navigator.clipboard.writeText" in shown
    assert "deployed greet v1" in kernel.text(outputs)  # the text/plain beside the widget
    [url] = [s for s in kernel.tree(card) if s.get("_model_name") == "TextModel" and "invoke" in s["value"]]
    assert url["value"].endswith("/nbdeploy/api/functions/greet/invoke")

    # the "Try it" form comes from the signature: type into it and click, as the front end would
    [name] = kernel.find(card, "TextModel", "name *")
    [times] = kernel.find(card, "TextModel", "times")
    assert times["value"] == "1"
    kernel.set(name["id"], value="Ada")
    kernel.set(times["id"], value="2")
    [button] = kernel.find(card, "ButtonModel", "Try it")
    kernel.click(button["id"])
    shown = kernel.html(card)
    assert "&quot;hello Ada hello Ada!&quot;" in shown and "answered in" in shown and " ms" in shown

    # bad input is refused by the form, not sent
    kernel.set(times["id"], value="two")
    kernel.click(button["id"])
    assert "times: expected a whole number" in kernel.html(card)

    # redeploy: the same card (the same model) shows v2, in the new output too
    kernel.run("SUFFIX = '?'")
    outputs, _ = kernel.run(DEPLOY)
    assert kernel.views(outputs) == [card]
    assert "deployed greet v2" in kernel.html(card) and "answered in" not in kernel.html(card)
    [name] = kernel.find(card, "TextModel", "name *")
    kernel.set(name["id"], value="Bo")
    [button] = kernel.find(card, "ButtonModel", "Try it")
    kernel.click(button["id"])
    assert "&quot;hello Bo?&quot;" in kernel.html(card)


def test_a_deploy_cell_that_fails_ends_as_an_error_and_run_all_stops_there(nbd_env: Path, tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    def notebook(cell: str) -> Any:
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell("%load_ext nbdeploy"),
            nbformat.v4.new_code_cell(cell),
            nbformat.v4.new_code_cell("print('after')"),
        ]
        return nb

    cases = {
        "the cell raises": ("%%deploy f\ndef f(x: int) -> int:\n    return x\n1 / 0", "ZeroDivisionError"),
        "the capture fails": ("%%deploy f --handler missing\ndef f(x: int) -> int:\n    return x", "missing"),
    }
    for label, (cell, expected) in cases.items():
        nb = notebook(cell)
        client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
        with pytest.raises(CellExecutionError) as failed:
            client.execute(env=dict(os.environ))
        assert "DeployFailed" in str(failed.value) and "not deployed" in str(failed.value), label
        errors = [o for o in nb.cells[1].outputs if o.output_type == "error"]
        assert errors and errors[-1].ename == "DeployFailed" and expected in errors[-1].evalue, label
        assert nb.cells[2].outputs == [] and nb.cells[2].get("execution_count") is None, label  # Run All stopped
    import nbdeploy as nbd

    assert nbd.functions.list().functions == []


def test_run_view_follows_a_run_to_its_end_beside_run_wait(kernel: WidgetKernel) -> None:
    kernel.run(f"import nbdeploy as nbd\nnbd.jobs.put({str(NOTEBOOKS / 'quick.ipynb')!r}, 'quick')")
    outputs, _ = kernel.run("run = nbd.jobs.run('quick', {'x': 41})\nrun")
    [view] = kernel.views(outputs)
    assert kernel.models[view]["_dom_classes"] == ["nbdeploy-run-view"]
    assert "<Run" not in kernel.text(outputs) and "quick" in kernel.text(outputs)
    outputs, _ = kernel.run(
        """
        from nbdeploy.widgets.run_view import run_view
        run.wait(timeout=120)
        run_view(run).wait(timeout=60)
        print(run.status)
        """
    )
    assert kernel.text(outputs).strip() == "succeeded"
    [progress] = kernel.find(view, "IntProgressModel")
    assert progress["value"] == progress["max"] == 3 and progress["bar_style"] == "success"
    shown = kernel.html(view)
    assert "3/3" in shown and "succeeded" in shown and "42" in shown  # the log tail holds print(y)
    run_id = kernel.text(kernel.run("print(run.id)")[0]).strip()
    assert f"/nbdeploy/api/runs/{run_id}/output?format=html" in shown and "open the output notebook" in shown
    [cancel] = kernel.find(view, "ButtonModel", "Cancel")
    assert cancel["disabled"] is True

    # %run_job shows the same view; a failing run shows its error
    kernel.run(f"nbd.jobs.put({str(NOTEBOOKS / 'fail.ipynb')!r}, 'broken')")
    outputs, _ = kernel.run("%run_job broken --wait")
    [view] = kernel.views(outputs)
    kernel.run("from nbdeploy.widgets.run_view import _VIEWS\nfor v in list(_VIEWS.values()): v.wait(timeout=60)")
    shown = kernel.html(view)
    assert "failed" in shown and "in cell" in shown


def test_tables_refresh_and_act_through_the_api(kernel: WidgetKernel) -> None:
    kernel.run(
        """
        import nbdeploy as nbd, pandas as pd
        from sklearn.linear_model import LinearRegression
        X = pd.DataFrame({"a": [0.0, 1.0, 2.0]})
        m = LinearRegression().fit(X, [0.0, 1.0, 2.0])
        nbd.models.put(m, "line", sample_input=X)
        nbd.models.put(m, "line", sample_input=X)
        nbd.datasets.put(X, "points")
        """
    )
    outputs, _ = kernel.run("%models")
    [models] = kernel.views(outputs)
    assert "line" in kernel.html(models) and "line" in kernel.text(outputs)
    [model] = kernel.find(models, "DropdownModel", "model")
    [version] = kernel.find(models, "BoundedIntTextModel")
    [alias] = kernel.find(models, "TextModel", "alias")
    assert model["index"] == 0 and model["_options_labels"] == ["line"]  # the one model, chosen already
    kernel.set(version["id"], value=1)
    kernel.set(alias["id"], value="production")
    [button] = kernel.find(models, "ButtonModel", "Set alias")
    kernel.click(button["id"])
    assert "production -&gt; line v1" in kernel.html(models)
    assert kernel.text(kernel.run("print(nbd.models.info('line').aliases)")[0]).strip() == "{'production': 1}"

    outputs, _ = kernel.run("%datasets")
    [datasets] = kernel.views(outputs)
    assert "points" in kernel.html(datasets)

    outputs, _ = kernel.run("%functions")
    [functions] = kernel.views(outputs)
    assert "no functions deployed yet" in kernel.html(functions)
    kernel.run("def ident(x: int) -> int:\n    return x\nnbd.deploy(ident)")
    [refresh] = kernel.find(functions, "ButtonModel", "Refresh")
    kernel.click(refresh["id"])
    assert "ident" in kernel.html(functions)

    outputs, _ = kernel.run("%cluster")
    [cluster] = kernel.views(outputs)
    shown = kernel.html(cluster)
    assert "worker(s)" in shown and "threads" in shown
    [workers] = kernel.find(cluster, "BoundedIntTextModel", "")
    assert workers["value"] == 2 and workers["description"] == "workers"  # the shared cluster's two workers
    kernel.set(workers["id"], value=3)
    [scale] = kernel.find(cluster, "ButtonModel", "Scale")
    kernel.click(scale["id"])  # the shared cluster is not nbdeploy's: the view says so, and scales nothing
    assert "ConflictError" in kernel.html(cluster) and "belongs to whoever runs it" in kernel.html(cluster)
    assert kernel.text(kernel.run("print(len(nbd.cluster.status()['workers']))")[0]).strip() == "2"

    # %runs: a run that has not ended can be cancelled from the table
    kernel.run(
        f"nbd.jobs.put({str(NOTEBOOKS / 'wait.ipynb')!r}, 'slow')\nslow = nbd.jobs.run('slow', {{'seconds': 60}})"
    )
    outputs, _ = kernel.run("%runs slow")
    [runs] = kernel.views(outputs)
    [choice] = kernel.find(runs, "DropdownModel", "run")
    assert len(choice["_options_labels"]) == 1 and choice["index"] == 0, kernel.html(runs)
    [cancel] = kernel.find(runs, "ButtonModel", "Cancel run")
    kernel.click(cancel["id"])
    assert "cancel requested" in kernel.html(runs)
    outputs, _ = kernel.run("print(slow.wait(timeout=60).status)")
    assert kernel.text(outputs).strip() == "cancelled"
