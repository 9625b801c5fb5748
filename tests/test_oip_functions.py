"""Functions with typed arguments through the Open Inference Protocol, spoken by ``tritonclient[http]`` against a
real `nbdeploy serve`: metadata from the signature, inference with one tensor per argument (JSON and binary)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import nbdeploy as nbd
from tests.conftest import ServerProcess, start_nbdeploy_server

pytestmark = pytest.mark.timeout(600)  # a hang guard for a server started on a crowded machine
httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402


def score(amount: float, visits: int, plan: str, flags: list[float], vip: bool = False) -> float:
    return amount * visits + len(plan) + sum(flags) + (100.0 if vip else 0.0)


def describe(name: str) -> dict:
    return {"name": name, "length": len(name)}


@pytest.fixture
def served(nbd_env: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    app = nbd.default()
    app.functions.deploy(score)
    app.functions.deploy(describe)
    yield from start_nbdeploy_server(tmp_path, "--no-scheduler")
    app.close()


def tensor(name: str, values: np.ndarray, datatype: str, binary: bool) -> object:
    t = httpclient.InferInput(name, list(values.shape), datatype)
    t.set_data_from_numpy(values, binary_data=binary)
    return t


def test_tritonclient_reads_a_functions_metadata_and_calls_it_with_typed_tensors(served: ServerProcess) -> None:
    c = httpclient.InferenceServerClient(url=urllib.parse.urlsplit(served.url).netloc, network_timeout=120.0)
    auth = {"Authorization": f"token {served.token}"}
    meta = c.get_model_metadata("score", headers=dict(auth))
    assert meta["platform"] == "nbdeploy/function" and meta["versions"] == ["1"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("amount", "FP64", [1]),
        ("visits", "INT64", [1]),
        ("plan", "BYTES", [1]),
        ("flags", "FP64", [-1]),
        ("vip", "BOOL", [1]),
    ]
    assert c.is_model_ready("score", headers=dict(auth))
    for binary in (False, True):
        inputs = [
            tensor("amount", np.array([2.5]), "FP64", binary),
            tensor("visits", np.array([4], dtype=np.int64), "INT64", binary),
            tensor("plan", np.array(["gold"], dtype=object), "BYTES", binary),
            tensor("flags", np.array([1.0, 2.0]), "FP64", binary),
            tensor("vip", np.array([True]), "BOOL", binary),
        ]
        answer = c.infer("score", inputs, headers=dict(auth))
        assert answer.as_numpy("result").tolist() == [10.0 + 4 + 3.0 + 100.0]
    # a dict result is one tensor per key; the same route under /nbdeploy/api/v2
    status, body = served.request(
        "POST",
        "/nbdeploy/api/v2/models/describe/infer",
        {"inputs": [{"name": "name", "shape": [1], "datatype": "BYTES", "data": ["ada"]}]},
    )
    assert status == 200 and {o["name"]: o["data"] for o in body["outputs"]} == {"name": ["ada"], "length": [3]}


def test_a_misfit_tensor_is_a_client_error_naming_it(served: ServerProcess) -> None:
    c = httpclient.InferenceServerClient(url=urllib.parse.urlsplit(served.url).netloc, network_timeout=120.0)
    auth = {"Authorization": f"token {served.token}"}
    unknown = [tensor("nope", np.array([1.0]), "FP64", False)]
    with pytest.raises(InferenceServerException) as err:
        c.infer("score", unknown, headers=dict(auth))
    assert "nope" in str(err.value) and "not an argument" in str(err.value)
    missing = [tensor("amount", np.array([1.0]), "FP64", False)]
    status, body = served.request(
        "POST",
        "/v2/models/score/infer",
        {"inputs": [{"name": "amount", "shape": [1], "datatype": "FP64", "data": [1]}]},
    )
    assert status == 422 and "visits" in str(body)
    with pytest.raises(InferenceServerException):
        c.infer("score", missing, headers=dict(auth))
    assert not c.is_model_ready("no-such-thing", headers=dict(auth))
