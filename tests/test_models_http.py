"""Models over HTTP on a real `nbdeploy serve` process and a real multi-process Dask cluster: MLflow's four
payload formats, versions and aliases, signature errors, batching under 32 concurrent clients, metrics,
serving statistics and drift."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import nbdeploy as nbd

API = "/nbdeploy/api"
COLUMNS = ["a", "b", "kind"]


@pytest.fixture
def manager(nbd_env):
    m = nbd.default().models
    yield m
    m.close()


@pytest.fixture
def server(monkeypatch, nbd_env, request):
    monkeypatch.setenv("NBDEPLOY_MODEL_STATS_SECONDS", "0.2")  # the server shares its statistics quickly
    return request.getfixturevalue("nbdeploy_server")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200), "kind": rng.integers(0, 4, 200)})


def linear_model(frame: pd.DataFrame, scale: float = 1.0):
    """A model whose every answer identifies its input: y = scale * (2a + 3b + 10 kind)."""
    from sklearn.linear_model import LinearRegression

    y = scale * (2 * frame.a + 3 * frame.b + 10 * frame.kind)
    return LinearRegression().fit(frame, y)


def expected(rows: list[list[float]], scale: float = 1.0) -> list[float]:
    return [scale * (2 * a + 3 * b + 10 * k) for a, b, k in rows]


def test_the_four_mlflow_payload_formats(server, manager, frame) -> None:
    manager.put(linear_model(frame), "lin", sample_input=frame[:50])
    rows = frame[:3].to_numpy().tolist()
    rows = [[a, b, int(k)] for a, b, k in rows]
    records = [dict(zip(COLUMNS, r, strict=True)) for r in rows]
    reordered = {"columns": ["kind", "b", "a"], "data": [[k, b, a] for a, b, k in rows]}
    bodies = {
        "dataframe_split": {"dataframe_split": {"columns": COLUMNS, "data": rows}},
        "dataframe_split reordered": {"dataframe_split": reordered},
        "dataframe_records": {"dataframe_records": records},
        "instances as records": {"instances": records},
        "instances as rows": {"instances": rows},
        "inputs as columns": {"inputs": {c: [r[i] for r in rows] for i, c in enumerate(COLUMNS)}},
        "inputs as rows": {"inputs": rows},
    }
    for label, body in bodies.items():
        status, answer = server.request("POST", f"{API}/models/lin/predict", body)
        assert status == 200, (label, answer)
        assert answer["version"] == 1
        np.testing.assert_allclose(answer["predictions"], expected(rows), rtol=1e-6, err_msg=label)


def test_array_models_take_instances_and_inputs(server, manager) -> None:
    from sklearn.linear_model import LinearRegression

    X = np.random.default_rng(0).normal(size=(50, 4))
    manager.put(LinearRegression().fit(X, X @ np.array([1.0, 2.0, 3.0, 4.0])), "arr", sample_input=X)
    for key in ("instances", "inputs"):
        status, answer = server.request("POST", f"{API}/models/arr/predict", {key: [[1, 0, 0, 0], [0, 0, 0, 1]]})
        assert status == 200, answer
        np.testing.assert_allclose(answer["predictions"], [1.0, 4.0], rtol=1e-6)
    status, answer = server.request("POST", f"{API}/models/arr/predict", {"inputs": [[1, 2, 3]]})
    assert status == 422 and "shape" in answer["error"]["message"]
    assert answer["error"]["fields"] == {"shape [0]": "expected 4 values, got 3"}


def test_signature_errors_name_the_column_and_bad_requests_the_field(server, manager, frame) -> None:
    manager.put(linear_model(frame), "lin", sample_input=frame[:50])
    req = server.request
    url = f"{API}/models/lin/predict"
    status, body = req("POST", url, {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}})
    assert status == 422 and body["error"]["fields"] == {"kind": "missing column"}
    assert "kind: missing column" in body["error"]["message"]
    status, body = req("POST", url, {"dataframe_records": [{"a": 1.0, "b": "two", "kind": 1}]})
    assert status == 422 and set(body["error"]["fields"]) == {"b"}
    assert "expected a number" in body["error"]["fields"]["b"]
    status, body = req("POST", url, {"dataframe_records": [{"a": 1.0, "b": 2.0, "kind": 1, "colour": "red"}]})
    assert status == 422 and set(body["error"]["fields"]) == {"colour"}
    status, body = req("POST", url, {"dataframe_split": {"columns": COLUMNS, "data": [[1.0, 2.0, 1.5]]}})
    assert status == 422 and "expected an integer" in body["error"]["fields"]["kind"]
    status, body = req("POST", url, {"rows": [[1, 2, 3]]})
    assert status == 400 and body["error"]["field"] == "rows"
    status, body = req("POST", url, raw=b"{not json")
    assert status == 400 and body["error"]["field"] == "body"
    status, body = req("POST", f"{API}/models/ghost/predict", {"inputs": [[1, 2, 3]]})
    assert status == 404 and "no model named 'ghost'" in body["error"]["message"]
    status, body = req("POST", url + "?alias=production", {"inputs": [[1.0, 2.0, 3]]})
    assert status == 404 and "no alias 'production'" in body["error"]["message"]
    status, body = req("POST", url + "?version=1&alias=production", {"inputs": [[1.0, 2.0, 3]]})
    assert status == 400 and body["error"]["field"] == "alias"
    status, body = req("POST", url + "?version=newest", {"inputs": [[1.0, 2.0, 3]]})
    assert status == 400 and body["error"]["field"] == "version"
    status, body = req("POST", url, {"inputs": [[1.0, 2.0, 3]]}, token="wrong")
    assert status == 401
    status, body = req("POST", url, {"inputs": [[1.0, 2.0, 3]]})
    assert status == 200  # still serving


def test_versions_and_aliases_over_http(server, manager, frame) -> None:
    manager.put(linear_model(frame), "lin", sample_input=frame[:50], alias="production", metrics={"r2": 1.0})
    manager.put(linear_model(frame, scale=-1.0), "lin", sample_input=frame[:50])
    row = [[1.0, 1.0, 1]]
    url = f"{API}/models/lin/predict"
    for query, version, scale in (("", 2, -1.0), ("?version=1", 1, 1.0), ("?alias=production", 1, 1.0)):
        status, body = server.request("POST", url + query, {"inputs": row})
        assert (status, body["version"]) == (200, version), body
        np.testing.assert_allclose(body["predictions"], expected(row, scale))
    manager.set_alias("lin", "production", 2)
    status, body = server.request("POST", url + "?alias=production", {"inputs": row})
    assert body["version"] == 2  # the alias move is seen by the next request
    status, listing = server.request("GET", f"{API}/models")
    assert status == 200 and [(m["name"], m["version"]) for m in listing["models"]] == [("lin", 2)]
    status, info = server.request("GET", f"{API}/models/lin")
    assert status == 200 and info["aliases"] == {"production": 2}
    assert [v["version"] for v in info["versions"]] == [1, 2] and info["versions"][0]["metrics"] == {"r2": 1.0}
    latest = info["latest"]
    assert [c["name"] for c in latest["signature"]["columns"]] == COLUMNS and latest["flavor"] == "sklearn"
    status, answer = server.request("POST", url, info["example"])  # the example payload works as it is
    assert status == 200 and len(answer["predictions"]) == 2
    assert server.request("GET", f"{API}/models/ghost")[0] == 404


def test_alias_moves_and_deletes_over_http_are_served_at_once(server, manager, frame) -> None:
    for scale in (1.0, 2.0, 3.0):
        manager.put(linear_model(frame, scale), "lin", sample_input=frame[:50])
    row, url = [[1.0, 1.0, 1]], f"{API}/models/lin"
    status, moved = server.request("PUT", f"{url}/aliases/production", {"version": 2})
    assert (status, moved["version"], moved["aliases"]) == (200, 2, ["production"])
    assert server.request("POST", f"{url}/predict?alias=production", {"inputs": row})[1]["version"] == 2
    for bad in ({}, {"version": "2"}, {"version": True}):
        assert server.request("PUT", f"{url}/aliases/production", bad)[0] == 400
    assert server.request("PUT", f"{url}/aliases/latest", {"version": 1})[0] == 400  # reserved
    assert server.request("PUT", f"{url}/aliases/staging", {"version": 9})[0] == 404
    # deleting a version stops serving it, and its alias with it, at once (answers were cached before)
    assert server.request("POST", f"{url}/predict?version=2", {"inputs": row})[0] == 200
    assert server.request("DELETE", f"{url}/versions/2")[0] == 204
    assert server.request("POST", f"{url}/predict?version=2", {"inputs": row})[0] == 404
    assert server.request("POST", f"{url}/predict?alias=production", {"inputs": row})[0] == 404
    assert server.request("DELETE", f"{url}/versions/two")[0] == 400
    assert server.request("DELETE", f"{url}/versions/2")[0] == 404
    assert server.request("POST", f"{url}/predict", {"inputs": row})[1]["version"] == 3
    assert server.request("DELETE", url)[0] == 204
    assert server.request("POST", f"{url}/predict?version=1", {"inputs": row})[0] == 404
    assert server.request("GET", url)[0] == 404
    assert server.request("DELETE", url)[0] == 404


def test_32_concurrent_clients_each_get_their_own_answers(server, manager, frame) -> None:
    manager.put(linear_model(frame), "lin", sample_input=frame[:50])
    rng = np.random.default_rng(11)

    def client(i: int) -> list[str]:
        problems = []
        for j in range(6):
            n = 1 + (i + j) % 4  # requests of 1 to 4 rows, so that batches mix sizes
            rows = [[float(rng_a), float(i * 100 + j), (i + j) % 4] for rng_a in rng.normal(size=n)]
            status, body = server.request(
                "POST", f"{API}/models/lin/predict", {"dataframe_split": {"columns": COLUMNS, "data": rows}}
            )
            if status != 200:
                problems.append(f"client {i} request {j}: {status} {body}")
                continue
            if not np.allclose(body["predictions"], expected(rows), rtol=1e-6):
                problems.append(f"client {i} request {j}: got {body['predictions']} for {rows}")
        return problems

    with ThreadPoolExecutor(32) as pool:
        problems = [p for found in pool.map(client, range(32)) for p in found]
    assert problems == []


async def test_concurrent_requests_are_predicted_together_and_split_back(manager, frame) -> None:
    manager.put(linear_model(frame), "lin", sample_input=frame[:50])
    for _ in range(5):  # one after another: replicas started, model loaded
        await manager.apredict("lin", {"inputs": [[0.0, 0.0, 0]]})
    pool = manager._pools.values()[0]
    assert pool.max_wait_ms > 0 and pool.max_in_flight == 2
    assert pool.batches_waited == 0  # a lone request never waits for company
    requests = [[[float(i), float(-i), i % 4]] * (1 + i % 3) for i in range(32)]
    import asyncio

    answers = await asyncio.gather(*(manager.apredict("lin", {"inputs": rows}) for rows in requests))
    for rows, answer in zip(requests, answers, strict=True):
        np.testing.assert_allclose(answer.predictions, expected(rows), rtol=1e-6, atol=1e-9)
    # at least one predict call took the rows of several requests at once
    assert max(a.batch_rows - len(rows) for a, rows in zip(answers, requests, strict=True)) > 0
    await manager.aclose()


def test_metrics_stats_and_drift_of_a_served_model(server, manager, frame) -> None:
    manager.put(linear_model(frame), "lin", sample_input=frame)
    url = f"{API}/models/lin/predict"
    shifted = frame.assign(a=frame.a + 5.0)  # 'a' drifts, 'b' and 'kind' do not
    for start in range(0, 200, 20):
        chunk = shifted[start : start + 20]
        body = {"dataframe_split": {"columns": COLUMNS, "data": chunk.to_numpy().tolist()}}
        body["dataframe_split"]["data"] = [[a, b, int(k)] for a, b, k in body["dataframe_split"]["data"]]
        assert server.request("POST", url, body)[0] == 200
    server.request("POST", url, {"dataframe_split": {"columns": ["a"], "data": [[1.0]]}})  # a 422
    status, text = server.request("GET", "/metrics")
    assert 'nbdeploy_requests_total{status="200",target="model:lin"} 10.0' in text
    assert 'nbdeploy_errors_total{target="model:lin"} 1.0' in text
    deadline = time.monotonic() + 30  # the server writes its statistics to the store every 0.2 s
    while nbd.models.stats("lin")["requests"] < 11 and time.monotonic() < deadline:
        time.sleep(0.1)
    stats = manager.stats("lin")
    assert (stats["requests"], stats["errors"], stats["statuses"]) == (11, 1, {"200": 10, "422": 1})
    assert stats["versions"]["1"]["rows_seen"] == 200 and stats["latency_ms"]["p50"] > 0
    report = manager.drift("lin")
    assert report.served_rows == 200
    assert report.drifted == ["a"], report.psi
    assert report.psi["b"] < 0.1 and report.psi["kind"] < 0.1
    status, body = server.request("GET", f"{API}/models/lin/stats")
    assert status == 200 and body["drift"]["drifted"] == ["a"] and body["stats"]["requests"] == 11
    fig = manager.plot("lin")
    assert any(ax.get_title().startswith("input drift of lin v1") for ax in fig.axes), [a.get_title() for a in fig.axes]


def test_openapi_documents_each_models_predict_body_typed_by_its_signature(server, manager, frame) -> None:
    import jsonschema

    manager.put(linear_model(frame), "lin", sample_input=frame[:50])
    manager.put(linear_model(frame), "arr", sample_input=frame.to_numpy()[:50])
    status, doc = server.request("GET", f"{API}/openapi.json")
    assert status == 200
    for name in ("lin", "arr"):
        post = doc["paths"][f"{API}/models/{name}/predict"]["post"]
        schema = post["requestBody"]["content"]["application/json"]["schema"]
        assert {p["name"] for p in post["parameters"]} == {"version", "alias"}
        example = server.request("GET", f"{API}/models/{name}")[1]["example"]
        jsonschema.validate(example, schema)  # what the server offers as an example fits what it documents
        assert server.request("POST", f"{API}/models/{name}/predict", example)[0] == 200
    lin = doc["paths"][f"{API}/models/lin/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    jsonschema.validate({"dataframe_records": [{"a": 1.5, "b": 2, "kind": 3}]}, lin)
    for bad in ({"dataframe_records": [{"a": "x", "b": 2, "kind": 3}]}, {"dataframe_records": [{"a": 1.0}]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, lin)
    arr = doc["paths"][f"{API}/models/arr/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    jsonschema.validate({"inputs": [[1.0, 2.0, 3.0]]}, arr)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"inputs": [[1.0, 2.0]]}, arr)  # three values per row
