"""The Open Inference Protocol (KServe V2) on a real `nbdeploy serve`, spoken by a real client
(``tritonclient[http]``): health, metadata, readiness and inference with typed tensors (binary and JSON), at the
root where clients look and under ``/nbdeploy/api/v2``, behind nbdeploy's tokens."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbdeploy as nbd
from tests.conftest import ServerProcess, start_nbdeploy_server

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture
def served(nbd_env: Path, tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    """A server with a DataFrame model ``churn`` (y = 2a + 3b + 10 kind), an array model ``lin`` (y = x0 + 2 x1)
    and a token that may call ``lin`` only."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "kind": rng.integers(0, 4, 60)})
    app = nbd.default()
    app.models.put(
        LinearRegression().fit(frame, 2 * frame.a + 3 * frame.b + 10 * frame.kind), "churn", sample_input=frame[:5]
    )
    x = rng.normal(size=(40, 2))
    app.models.put(LinearRegression().fit(x, x @ [1.0, 2.0]), "lin", sample_input=x[:5])
    token = app.tokens.create(["invoke:lin"], "oip").token
    yield from ((s, token) for s in start_nbdeploy_server(tmp_path, "--no-scheduler"))
    app.close()


def client(server: ServerProcess) -> object:
    """A tritonclient HTTP client of the server (it adds headers to the dict a call passes: pass a fresh one)."""
    return httpclient.InferenceServerClient(url=urllib.parse.urlsplit(server.url).netloc, network_timeout=120.0)


def test_tritonclient_reads_health_metadata_and_readiness(served: tuple[ServerProcess, str]) -> None:
    server, _ = served
    c = client(server)
    auth = {"Authorization": f"token {server.token}"}
    assert c.is_server_live() and c.is_server_ready()  # public, like /healthz: load balancers probe them
    assert c.get_server_metadata(headers=auth)["name"] == "nbdeploy"
    assert c.is_model_ready("churn", headers=auth) and c.is_model_ready("churn", "1", headers=auth)
    assert not c.is_model_ready("nope", headers=auth)
    meta = c.get_model_metadata("churn", headers=auth)
    assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [("a", "FP64"), ("b", "FP64"), ("kind", "INT64")]
    assert meta["versions"] == ["1"]
    assert c.get_model_metadata("lin", headers=auth)["inputs"] == [
        {"name": "input-0", "datatype": "FP64", "shape": [-1, 2]}
    ]
    with pytest.raises(InferenceServerException) as err:
        c.get_model_metadata("churn")
    assert "401" in str(err.value.status())


def test_tritonclient_infers_with_binary_and_json_tensors(served: tuple[ServerProcess, str]) -> None:
    server, _ = served
    c = client(server)
    auth = {"Authorization": f"token {server.token}"}
    a, b, kind = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.0, 0.25]), np.array([1, 3, 0], dtype=np.int64)
    expected = 2 * a + 3 * b + 10 * kind
    for binary in (True, False):
        inputs = []
        for name, values, dtype in (("a", a, "FP64"), ("b", b, "FP64"), ("kind", kind, "INT64")):
            tensor = httpclient.InferInput(name, list(values.shape), dtype)
            tensor.set_data_from_numpy(values, binary_data=binary)
            inputs.append(tensor)
        outputs = [httpclient.InferRequestedOutput("predictions", binary_data=False)]
        result = c.infer("churn", inputs, outputs=None if binary else outputs, headers=dict(auth), request_id="r1")
        assert np.allclose(result.as_numpy("predictions"), expected, atol=1e-6), binary
        assert result.get_response()["model_version"] == "1" and result.get_response()["id"] == "r1"

    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    table = httpclient.InferInput("input-0", [2, 2], "FP64")
    table.set_data_from_numpy(x)
    result = c.infer("lin", [table], model_version="1", headers=dict(auth))
    assert np.allclose(result.as_numpy("predictions"), [5.0, 1.0], atol=1e-6)


def test_bad_tensors_are_4xx_and_tokens_are_scoped(served: tuple[ServerProcess, str]) -> None:
    server, lin_token = served
    c = client(server)
    auth = {"Authorization": f"token {server.token}"}
    short = {"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}]}
    status, answer = server.request("POST", "/v2/models/lin/infer", short)  # tritonclient checks shapes itself
    assert status == 400 and "shape [2, 2] needs 4" in answer["error"], answer
    wide = httpclient.InferInput("input-0", [1, 3], "FP64")
    wide.set_data_from_numpy(np.array([[1.0, 2.0, 3.0]]))
    with pytest.raises(InferenceServerException) as err:
        c.infer("lin", [wide], headers=dict(auth))
    assert err.value.status() == "422"
    stray = httpclient.InferInput("z", [1], "FP64")
    stray.set_data_from_numpy(np.array([1.0]))
    with pytest.raises(InferenceServerException) as err:
        c.infer("churn", [stray, wide], headers=dict(auth))
    assert err.value.status() == "400" and "not columns" in str(err.value)

    ok = httpclient.InferInput("input-0", [1, 2], "FP64")
    ok.set_data_from_numpy(np.array([[1.0, 1.0]]))
    scoped = {"Authorization": f"token {lin_token}"}
    assert np.allclose(c.infer("lin", [ok], headers=dict(scoped)).as_numpy("predictions"), [3.0], atol=1e-6)
    with pytest.raises(InferenceServerException) as err:
        c.infer("churn", [ok], headers=dict(scoped))
    assert err.value.status() == "403"


def test_the_same_protocol_answers_under_the_nbdeploy_api(served: tuple[ServerProcess, str]) -> None:
    server, _ = served
    warm = httpclient.InferInput("input-0", [1, 2], "FP64")  # the first call loads the model (its time limit: 120 s)
    warm.set_data_from_numpy(np.array([[0.0, 0.0]]))
    client(server).infer("lin", [warm], headers={"Authorization": f"token {server.token}"})
    body = {"id": "x", "inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [[2.0, 1.0]]}]}
    status, answer = server.request("POST", "/nbdeploy/api/v2/models/lin/infer", body)
    assert status == 200, answer
    assert answer["outputs"][0]["name"] == "predictions" and np.allclose(answer["outputs"][0]["data"], [4.0])
    status, doc = server.request("GET", "/nbdeploy/api/openapi.json")
    assert "/nbdeploy/api/v2/models/{name}/infer" in doc["paths"]
    status, answer = server.request(
        "POST", "/v2/models/lin/infer", {**body, "inputs": [{**body["inputs"][0], "datatype": "BYTES"}]}
    )
    assert status == 400 and "not BYTES" in answer["error"]
