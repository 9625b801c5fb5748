"""The Grafana dashboard shipped in deploy/grafana: every PromQL query in it parses and names only metrics that a
real `nbdeploy serve` exports on ``/metrics`` (after a few calls, so that the histograms and drift exist)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.linear_model import LogisticRegression

import nbdeploy as nbd
from tests.test_serving_fleet_stats import request, servers

pytestmark = pytest.mark.timeout(600)  # a hang guard for a server started on a crowded machine
DASHBOARD = Path(__file__).parent.parent / "deploy" / "grafana" / "nbdeploy.json"
VARIABLES = {"$__rate_interval": "5m", "$target": ".*", "$model": ".*", "$job": ".*"}


def queries() -> list[str]:
    """Every PromQL expression of the dashboard: its panels' targets and its template variables."""
    board = json.loads(DASHBOARD.read_text())
    found = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for var in board["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict):  # label_values(metric, label): Grafana's own function around a metric
            match = re.fullmatch(r"label_values\((\w+),\s*\w+\)", query["query"])
            assert match, query
            found.append(match.group(1))
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects, from its syntax tree."""
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expr}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def exported(text: str) -> set[str]:
    """Names of what a /metrics page exports: every family (declared, even without samples yet) and sample."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {s.name for s in family.samples}
    return names


@pytest.fixture
def app(nbd_env):
    a = nbd.default()
    yield a
    a.close()


def add(x: int, y: int = 1) -> int:
    return x + y


def test_every_dashboard_query_names_a_metric_that_metrics_exports(app, tmp_path: Path) -> None:
    assert len(queries()) >= 10
    app.functions.deploy(add)
    frame = pd.DataFrame(np.array([[0.0, 1.0], [1.0, 0.0], [0.3, 0.7], [0.8, 0.2]]), columns=["a", "b"])
    app.models.put(LogisticRegression().fit(frame, [0, 1, 0, 1]), "graf-lr", sample_input=frame)
    with servers(tmp_path, 1, "--no-scheduler") as (server,):
        for x in range(3):
            assert request(server, "POST", "/nbdeploy/api/functions/add/invoke", {"x": x})[0] == 200
            body = {"dataframe_split": {"columns": ["a", "b"], "data": [[x / 3, 1 - x / 3]]}}
            assert request(server, "POST", "/nbdeploy/api/models/graf-lr/predict", body)[0] == 200
        assert request(server, "POST", "/nbdeploy/api/functions/add/invoke", {"y": 1})[0] == 422
        status, text = request(server, "GET", "/metrics")
    assert status == 200 and isinstance(text, str)
    names = exported(text)
    for name in ("nbdeploy_request_seconds_bucket", "nbdeploy_requests_total", "nbdeploy_model_drift_psi"):
        assert name in names  # with samples: the calls above made them
    assert 'nbdeploy_model_drift_psi{column="a",model="graf-lr",version="1"}' in text
    missing = {expr: sorted(metric_names(expr) - names) for expr in queries()}
    assert {expr: m for expr, m in missing.items() if m} == {}
