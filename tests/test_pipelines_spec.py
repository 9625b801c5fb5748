"""Pipeline definitions: the file's shape, what ``put`` refuses (naming the node and the problem, storing nothing),
the builder, previews and the Elyra import. No cluster needed: nothing runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nbdeploy as nbd
from nbdeploy.exceptions import NotFoundError
from nbdeploy.pipelines import Pipeline, SpecError
from nbdeploy.pipelines.elyra import import_elyra
from nbdeploy.pipelines.spec import parse_yaml, resolve, staleness
from tests.test_pipelines_support import notebook, write_pipeline

DAILY = """
name: daily
parameters: {day: "2026-11-30"}
nodes:
  extract: {notebook: extract.ipynb}
  clean:   {notebook: clean.ipynb, after: [extract], parameters: {limit: 10}}
  report:  {notebook: report.ipynb, after: [clean], cache: false}
"""


@pytest.fixture
def folder(tmp_path: Path, nbd_home: Path) -> Path:
    notebook(tmp_path / "extract.ipynb", 'day = "x"', "rows = 42")
    notebook(tmp_path / "clean.ipynb", "upstream = {}\nlimit = 1", "n = limit")
    notebook(tmp_path / "report.ipynb", "upstream = {}", "pass")
    return tmp_path


def test_the_minimal_file_is_stored_with_its_nodes_upstreams_first(folder: Path) -> None:
    info = nbd.pipelines.put(write_pipeline(folder, DAILY))
    assert (info.name, info.version, info.parameters) == ("daily", 1, {"day": "2026-11-30"})
    assert [(n.name, n.after, n.cache, n.job) for n in info.nodes] == [
        ("extract", [], True, "daily.extract"),
        ("clean", ["extract"], True, "daily.clean"),
        ("report", ["clean"], False, "daily.report"),
    ]
    assert nbd.pipelines.get("daily").to_json() == info.to_json()
    assert [p.name for p in nbd.pipelines.list()] == ["daily"]
    again = nbd.pipelines.put(write_pipeline(folder, DAILY))
    assert again.version == 2
    assert nbd.jobs.versions("daily.extract")[-1].version == 1  # an unchanged notebook is not stored again


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        (
            "name: d\nnodes: {a: {notebook: extract.ipynb, after: [b]}, b: {notebook: clean.ipynb, after: [a]}}",
            "nodes.a.after",
            "cycle: a -> b -> a",
        ),
        (
            "name: d\nnodes: {a: {notebook: extract.ipynb, after: [ghost]}}",
            "nodes.a.after",
            "unknown upstream node 'ghost'",
        ),
        ("name: d\nnodes: {a: {notebook: missing.ipynb}}", "nodes.a.notebook", "no notebook at 'missing.ipynb'"),
        ("name: Bad Name\nnodes: {a: {notebook: extract.ipynb}}", "name", "invalid pipeline name"),
        ("name: d\nnodes: {Bad: {notebook: extract.ipynb}}", "nodes.Bad", "invalid node name"),
        (
            "name: d\nnodes: {a: {notebook: extract.ipynb, parameters: {nope: 1}}}",
            "nodes.a.parameters",
            "declares no parameter 'nope'",
        ),
        (
            "name: d\nnodes: {a: {notebook: extract.ipynb, parameters: {day: '{{ params.when }}'}}}",
            "nodes.a.parameters",
            "unknown pipeline parameter(s) when",
        ),
        ("name: d\nnodes: {a: {notebook: extract.ipynb, cache: sometimes}}", "nodes.a.cache", "cache must be"),
        ("name: d\nnodes: {a: {notebook: extract.ipynb, retries: -1}}", "nodes.a.retries", "whole number"),
        ("name: d\nnodes: {a: {notebook: extract.ipynb, colour: red}}", "nodes.a", "unknown key(s) 'colour'"),
        ("name: d\nnodes: {a: {job: ghost}}", "nodes.a.job", "ghost"),
        ("name: d\nnodes: [a, b]", "nodes", "at least one node"),
        ("name: d\nnodes: {a: {notebook: extract.ipynb}\n", "yaml", "is not valid YAML"),
    ],
)
def test_put_refuses_a_bad_definition_naming_the_node_and_stores_nothing(
    folder: Path, text: str, where: str, problem: str
) -> None:
    with pytest.raises(SpecError) as err:
        nbd.pipelines.put(write_pipeline(folder, text, "bad"))
    assert err.value.where == where and problem in str(err.value), str(err.value)
    assert err.value.http_status == 422
    assert list(nbd.pipelines.list()) == [] and nbd.jobs.list().jobs == []


def test_preview_checks_and_draws_without_storing(folder: Path) -> None:
    info = nbd.pipelines.preview(DAILY, path="daily.pipeline.yaml", root=folder)
    assert info.version is None and info.created_at is None and info.nodes[0].name == "extract"
    assert list(nbd.pipelines.list()) == []
    with pytest.raises(SpecError, match="outside the server's root folder"):
        nbd.pipelines.preview(DAILY, path="../elsewhere/daily.pipeline.yaml", root=folder)
    with pytest.raises(SpecError, match="outside the server's root folder"):
        nbd.pipelines.preview(DAILY.replace("extract.ipynb", "../x/extract.ipynb"), path="d.pipeline.yaml", root=folder)


def test_the_builder_and_a_dict_are_the_same_as_the_file(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(folder)
    builder = (
        Pipeline("daily", day="2026-11-30")
        .node("extract", "extract.ipynb")
        .node("clean", "clean.ipynb", after=["extract"], parameters={"limit": 10})
        .node("report", "report.ipynb", after=["clean"], cache=False)
    )
    a = nbd.pipelines.put(builder)
    b = nbd.pipelines.put(write_pipeline(folder, DAILY))
    assert [n.to_json() for n in a.nodes] == [n.to_json() for n in b.nodes]


def test_parameter_references_keep_their_type_or_format_into_text() -> None:
    assert resolve(
        {"d": "{{ params.day }}", "n": "{{params.n}}", "t": "at {{ params.day }}"}, {"day": "x", "n": 3}
    ) == {
        "d": "x",
        "n": 3,
        "t": "at x",
    }
    assert (staleness(True), staleness(False), staleness("1h"), staleness("30m")) == (None, 0.0, 3600.0, 1800.0)
    spec = parse_yaml("name: d\nnodes: {a: a.ipynb, b: {notebook: b.ipynb, after: a}}")
    assert spec.nodes["b"].after == ("a",)


def test_an_unknown_pipeline_is_not_found(nbd_home: Path) -> None:
    with pytest.raises(NotFoundError, match="nbdeploy pipelines put"):
        nbd.pipelines.get("ghost")


def _elyra(nodes: list[dict]) -> dict:
    return {"doc_type": "pipeline", "version": "3.0", "id": "p1", "primary_pipeline": "main",
            "pipelines": [{"id": "main", "nodes": nodes, "app_data": {"version": 8}, "runtime_ref": ""}],
            "schemas": []}  # fmt: skip


def _node(nid: str, label: str, filename: str, after: list[str] = (), op: str = "execute-notebook-node",
          env: list | None = None) -> dict:  # fmt: skip
    return {
        "id": nid,
        "type": "execution_node",
        "op": op,
        "app_data": {
            "label": label,
            "component_parameters": {"filename": filename, "env_vars": env or [], "runtime_image": "python:3.11"},
            "ui_data": {"label": label},
        },
        "inputs": [
            {"id": "inPort", "links": [{"id": f"l{u}", "node_id_ref": u, "port_id_ref": "outPort"} for u in after]}
        ],
        "outputs": [{"id": "outPort"}],
    }


def test_elyra_import_reads_notebook_nodes_dependencies_and_env_vars(folder: Path) -> None:
    doc = _elyra([
        _node("n1", "Extract", "extract.ipynb", env=[{"env_var": "day", "value": "2026-01-01"}]),
        _node("n2", "Clean", "clean.ipynb", ["n1"], env=["limit=5"]),
        _node("n3", "Report", "report.ipynb", ["n2"]),
    ])  # fmt: skip
    path = folder / "flow.pipeline"
    path.write_text(json.dumps(doc))
    text, name = import_elyra(path)
    spec = parse_yaml(text, folder)
    assert name == "flow" and list(spec.nodes) == ["extract", "clean", "report"]
    assert spec.nodes["clean"].after == ("extract",) and spec.nodes["clean"].parameters == {"limit": "5"}
    assert spec.nodes["extract"].parameters == {"day": "2026-01-01"}
    stored = nbd.pipelines.put(text.replace("name: flow", "name: flow"), path="flow.pipeline.yaml", root=folder)
    assert [n.name for n in stored.nodes] == ["extract", "clean", "report"]


def test_elyra_import_refuses_other_node_kinds_by_name(folder: Path) -> None:
    doc = _elyra(
        [_node("n1", "Extract", "extract.ipynb"), _node("n2", "Train", "train.py", ["n1"], op="execute-python-node")]
    )
    path = folder / "flow.pipeline"
    path.write_text(json.dumps(doc))
    with pytest.raises(SpecError, match=r"nodes\.train: is an Elyra 'execute-python-node' node: only notebook nodes"):
        import_elyra(path)
