"""Models honour ``Content-Type`` like MLflow's scoring server, on a real `nbdeploy serve`: ``application/json``
and ``text/csv`` are read, any other type is a 415 naming the accepted ones; a CSV pandas cannot read is a 400;
other routes keep reading their JSON body whatever its declared type (``curl -d`` works)."""

from __future__ import annotations

import http.client
import json
import urllib.parse

import numpy as np
import pandas as pd
import pytest

import nbdeploy as nbd
from tests.conftest import ServerProcess

API = "/nbdeploy/api"


@pytest.fixture
def served(nbd_env, nbdeploy_server: ServerProcess):
    """A server with a model ``lin`` (y = 2a + 3b) and a function ``add``."""
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    app = nbd.default()
    app.models.put(LinearRegression().fit(frame, 2 * frame.a + 3 * frame.b), "lin", sample_input=frame[:5])

    def add(a: int, b: int = 2) -> int:
        return a + b

    app.functions.deploy(add, name="add")
    yield nbdeploy_server
    app.close()


def post(server: ServerProcess, path: str, body: bytes, content_type: str | None) -> tuple[int, dict]:
    netloc = urllib.parse.urlsplit(server.url).netloc
    conn = http.client.HTTPConnection(netloc, timeout=120)
    headers = {"Authorization": f"token {server.token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    conn.request("POST", API + path, body=body, headers=headers)
    response = conn.getresponse()
    answer = json.loads(response.read())
    conn.close()
    return response.status, answer


def test_csv_and_json_bodies_predict_the_same_and_other_types_are_415(served: ServerProcess) -> None:
    as_json = json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0], [4.0, 0.0]]}}).encode()
    status, by_json = post(served, "/models/lin/predict", as_json, "application/json; charset=utf-8")
    assert status == 200, by_json
    status, by_csv = post(served, "/models/lin/predict", b"a,b\n1.0,2.0\n4.0,0.0\n", "text/csv")
    assert status == 200, by_csv
    assert np.allclose(by_csv["predictions"], by_json["predictions"]) and np.allclose(by_csv["predictions"], [8, 8])
    status, reordered = post(served, "/models/lin/predict", b"b,a\n2,1\n", "text/csv; charset=utf-8")
    assert status == 200 and np.allclose(reordered["predictions"], [8])

    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        status, answer = post(served, "/models/lin/predict", as_json, content_type)
        assert status == 415, (content_type, answer)
        assert "application/json, text/csv" in answer["error"]["message"]
        assert answer["error"]["type"] == "UnsupportedMediaTypeError"


def test_unreadable_or_ill_fitting_csv_is_a_4xx_naming_the_problem(served: ServerProcess) -> None:
    status, answer = post(served, "/models/lin/predict", b"", "text/csv")
    assert status == 400 and "CSV" in answer["error"]["message"], answer
    status, answer = post(served, "/models/lin/predict", b"a,b\n", "text/csv")
    assert status == 400 and "no rows" in answer["error"]["message"], answer
    status, answer = post(served, "/models/lin/predict", b"a,b\n1,2,3,4\n\xff\xfe", "text/csv")
    assert status == 400, answer
    status, answer = post(served, "/models/lin/predict", b"a,c\n1,2\n", "text/csv")
    assert status in (400, 422) and "c" in json.dumps(answer["error"]), answer
    status, answer = post(served, "/models/lin/predict", b"a,b\n1,spam\n", "text/csv")
    assert status == 422 and "b" in json.dumps(answer["error"]), answer


def test_other_routes_read_json_whatever_the_declared_type(served: ServerProcess) -> None:
    body = json.dumps({"a": 40}).encode()
    for content_type in (None, "application/json", "application/x-www-form-urlencoded"):
        status, answer = post(served, "/functions/add/invoke", body, content_type)
        assert (status, answer.get("result")) == (200, 42), (content_type, answer)
    status, answer = post(served, "/models/lin/predict", b'{"inputs": [[1.0, 2.0]]}', None)
    assert status == 200 and np.allclose(answer["predictions"], [8])  # no Content-Type: read as JSON
