"""Functions over HTTP on a real `nbdeploy serve` process, against a real multi-process Dask cluster."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

import nbdeploy as nbd

API = "/nbdeploy/api"


@pytest.fixture
def manager(nbd_env):
    m = nbd.default().functions
    yield m
    m.close()


def greet(name: str, excited: bool = False) -> str:
    return f"Hello {name}" + ("!" if excited else "")


def stats(values: list[float]) -> dict:
    arr = np.asarray(values)
    return {"mean": arr.mean(), "sorted": np.sort(arr), "n": np.int64(arr.size)}


def explode(x: int) -> int:
    raise ValueError(f"bad x {x}")


def slow(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_invoke_over_http_and_redeploy_without_restart(nbdeploy_server, manager) -> None:
    manager.deploy(greet)
    status, body = nbdeploy_server.request("POST", f"{API}/functions/greet/invoke", {"name": "Ada", "excited": True})
    assert status == 200, body
    assert body["result"] == "Hello Ada!" and body["version"] == 1 and body["duration_ms"] > 0

    def greet_v2(name: str, excited: bool = False) -> str:
        return f"Good day, {name}"

    manager.deploy(greet_v2, "greet")
    status, body = nbdeploy_server.request("POST", f"{API}/functions/greet/invoke", {"name": "Ada"})
    assert (status, body["result"], body["version"]) == (200, "Good day, Ada", 2)
    status, body = nbdeploy_server.request("POST", f"{API}/functions/greet/versions/1/invoke", {"name": "Ada"})
    assert (status, body["result"], body["version"]) == (200, "Hello Ada", 1)

    status, listing = nbdeploy_server.request("GET", f"{API}/functions")
    assert status == 200 and [f["name"] for f in listing["functions"]] == ["greet"]
    status, detail = nbdeploy_server.request("GET", f"{API}/functions/greet")
    assert [v["version"] for v in detail["versions"]] == [1, 2]


def test_numpy_results_are_encoded_as_json(nbdeploy_server, manager) -> None:
    manager.deploy(stats)
    status, body = nbdeploy_server.request("POST", f"{API}/functions/stats/invoke", {"values": [3, 1, 2]})
    assert status == 200, body
    assert body["result"] == {"mean": 2.0, "sorted": [1, 2, 3], "n": 3}


def test_every_error_has_its_status_and_the_server_keeps_serving(nbdeploy_server, manager) -> None:
    manager.deploy(greet)
    manager.deploy(explode)
    manager.deploy(slow, timeout=0.5)
    req = nbdeploy_server.request
    status, body = req("POST", f"{API}/functions/nobody/invoke", {})
    assert status == 404 and "no function named 'nobody'" in body["error"]["message"]
    status, body = req("POST", f"{API}/functions/greet/versions/7/invoke", {"name": "x"})
    assert status == 404 and "no version 7" in body["error"]["message"]
    status, body = req("POST", f"{API}/functions/greet/invoke", raw=b"{not json")
    assert status == 400 and body["error"]["field"] == "body"
    status, body = req("POST", f"{API}/functions/greet/invoke", {"name": 5, "shout": True})
    assert status == 422 and set(body["error"]["fields"]) == {"name", "shout"}
    status, body = req("POST", f"{API}/functions/greet/invoke", token=None)
    assert status == 401
    status, body = req("POST", f"{API}/functions/greet/invoke", {"name": "x"}, token="wrong")
    assert status == 401 and "wrong, revoked or expired token" in body["error"]["message"]
    status, body = req("POST", f"{API}/functions/greet/invoke", raw=b'{"name": "' + b"x" * 70000 + b'"}')
    assert status == 413
    status, body = req("POST", f"{API}/functions/explode/invoke", {"x": 3})
    assert status == 500
    assert body["error"] == {"type": "ValueError", "message": "bad x 3"}  # no traceback without --debug
    status, body = req("POST", f"{API}/functions/slow/invoke", {"seconds": 5})
    assert status == 504 and "timeout" in body["error"]["message"]
    status, body = req("POST", f"{API}/functions/Bad..Name/invoke", {})
    assert status == 400
    status, body = req("POST", f"{API}/functions/greet/invoke", {"name": "still here"})
    assert (status, body["result"]) == (200, "Hello still here")


def test_every_route_but_healthz_requires_the_token(nbdeploy_server, manager) -> None:
    manager.deploy(greet)
    status, doc = nbdeploy_server.request("GET", f"{API}/openapi.json")
    assert status == 200
    assert doc["paths"][f"{API}/functions/greet/invoke"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]["required"] == ["name"]
    checked = 0
    for path, item in doc["paths"].items():
        if path == "/healthz" or path.endswith(("/v2/health/live", "/v2/health/ready")):
            continue  # probes of load balancers answer without a token
        concrete = re.sub(r"{\w+}", "1", path.replace("{name}", "greet"))
        for method in item:
            status, _ = nbdeploy_server.request(method.upper(), concrete, {} if method != "get" else None, token=None)
            assert status == 401, f"{method.upper()} {concrete} answered {status} without a token"
            checked += 1
    assert checked >= 6
    for path in ("/metrics", "/no/such/route"):
        assert nbdeploy_server.request("GET", path, token=None)[0] == 401
    status, body = nbdeploy_server.request("GET", "/healthz", token=None)
    assert (status, body) == (200, {"status": "ok"})


def test_metrics_count_requests_errors_and_latency_per_function(nbdeploy_server, manager) -> None:
    manager.deploy(greet)
    for _ in range(3):
        nbdeploy_server.request("POST", f"{API}/functions/greet/invoke", {"name": "x"})
    nbdeploy_server.request("POST", f"{API}/functions/greet/invoke", {"nom": "x"})
    for name in ("nope-1", "nope-2"):
        assert nbdeploy_server.request("POST", f"{API}/functions/{name}/invoke", {})[0] == 404
    status, text = nbdeploy_server.request("GET", "/metrics")
    assert status == 200
    assert 'nbdeploy_requests_total{status="200",target="function:greet"} 3.0' in text
    assert 'nbdeploy_errors_total{target="function:greet"} 1.0' in text
    assert 'nbdeploy_request_seconds_count{target="function:greet"} 4.0' in text
    # names that do not exist share one label: requests cannot make the metrics grow without bound
    assert 'nbdeploy_requests_total{status="404",target="function:(unknown)"}' in text
    assert "nope-1" not in text


def test_delete_stops_serving(nbdeploy_server, manager) -> None:
    manager.deploy(greet)
    for path in (f"{API}/functions/greet/invoke", f"{API}/functions/greet/versions/1/invoke"):
        assert nbdeploy_server.request("POST", path, {"name": "x"})[0] == 200  # both resolved (and cached)
    assert nbdeploy_server.request("DELETE", f"{API}/functions/greet")[0] == 204
    assert nbdeploy_server.request("POST", f"{API}/functions/greet/versions/1/invoke", {"name": "x"})[0] == 404
    assert nbdeploy_server.request("POST", f"{API}/functions/greet/invoke", {"name": "x"})[0] == 404
    assert nbdeploy_server.request("DELETE", f"{API}/functions/greet")[0] == 404
