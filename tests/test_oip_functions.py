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
from tests.helpers import eventually

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


def test_function_calls_over_rest_and_oip_are_counted_as_the_function_with_stats_and_a_figure(
    served: ServerProcess,
) -> None:
    oip = {"inputs": [{"name": "name", "shape": [1], "datatype": "BYTES", "data": ["ada"]}]}
    assert served.request("POST", "/v2/models/describe/infer", oip)[0] == 200
    assert served.request("POST", "/nbdeploy/api/functions/describe/invoke", {"name": "bob"})[0] == 200
    assert served.request("POST", "/nbdeploy/api/functions/describe/invoke", {"name": 3})[0] == 422

    metrics = str(served.request("GET", "/metrics")[1])
    counted = [line for line in metrics.splitlines() if line.startswith("nbdeploy_requests_total{")]
    assert 'nbdeploy_requests_total{status="200",target="function:describe"} 2.0' in counted, counted
    assert 'nbdeploy_requests_total{status="422",target="function:describe"} 1.0' in counted, counted
    assert not [line for line in counted if "model:describe" in line], counted  # the OIP call is the function's

    status, stats = served.request("GET", "/nbdeploy/api/functions/describe/stats")
    assert status == 200 and isinstance(stats, dict), stats
    assert (stats["requests"], stats["errors"], stats["statuses"]) == (3, 1, {"200": 2, "422": 1})
    assert sum(stats["histogram"]["counts"]) == 3 and stats["histogram"]["le_ms"][-1] == "+Inf"
    assert served.request("GET", "/nbdeploy/api/functions/ghost/stats")[0] == 404

    # this process sees what the server served once it wrote its snapshot (every 5 s), and draws it
    merged = eventually(lambda: (s := nbd.functions.stats("describe"))["requests"] == 3 and s, 60, "the snapshot")
    assert merged["processes"] == 1 and len(merged["latencies"]) == 3
    from nbdeploy.functions.magics import DeployMagics

    fig = DeployMagics(shell=None).functions("describe --plot")  # what %functions describe --plot shows
    assert fig._suptitle.get_text() == "function describe: 3 requests served, 1 error"
    titles = [ax.get_title() for ax in fig.axes]
    assert "latency of the last 3 requests (1 error in all)" in titles
    assert "latency and request rate over time" in titles
    assert [ax.get_ylabel() for ax in fig.axes][-1] == "requests per second"


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
