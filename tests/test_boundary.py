"""The REST boundary against a real `nbdeploy serve`: every answer matches the OpenAPI document the server
publishes, every malformed request gets a clear 4xx naming what is wrong (never a 500, nothing stored), bodies
over the limit get a 413, and bad names do not grow the metrics."""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import nbdeploy as nbd
from nbdeploy.schema import _to_json_schema
from tests.conftest import ServerProcess, start_nbdeploy_server
from tests.helpers import NOTEBOOKS

API = "/nbdeploy/api"


def add(a: int, b: int = 2) -> int:
    """Add two numbers."""
    return a + b


@pytest.fixture
def server(nbd_env: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    """`nbdeploy serve` with its scheduler, over the shared cluster, with a function, a model and a job stored."""
    import numpy as np
    from sklearn.linear_model import LinearRegression

    app = nbd.default()
    app.functions.deploy(add)
    x = np.arange(20.0).reshape(10, 2)
    app.models.put(LinearRegression().fit(x, x @ [1.0, 2.0]), "lin", sample_input=x[:5], alias="production")
    app.jobs.put(NOTEBOOKS / "quick.ipynb", "quick")
    app.datasets.put([{"day": 1, "amount": 2.5}, {"day": 2, "amount": 4.0}], "sales")
    yield from start_nbdeploy_server(tmp_path)
    app.close()


class Document:
    """The server's OpenAPI document: a validator per (path template, method, status)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        defs = {name: _to_json_schema(s, {}) for name, s in doc["components"]["schemas"].items()}
        self.defs = defs
        self.templates = [(re.compile("^" + re.sub(r"{\w+}", "[^/]+", p) + "$"), p) for p in doc["paths"]]
        self.seen: set[tuple[str, str]] = set()

    def template(self, path: str) -> str:
        concrete = [p for rx, p in self.templates if rx.match(path) and "{" not in p]
        return concrete[0] if concrete else next(p for rx, p in self.templates if rx.match(path))

    def check(self, method: str, path: str, status: int, content_type: str, body: bytes) -> None:
        template = self.template(urllib.parse.urlsplit(path).path)
        operation = self.doc["paths"][template][method.lower()]
        responses = operation["responses"]
        assert str(status) in responses, f"{method} {template} answered {status}, not in the document"
        self.seen.add((method.lower(), template))
        content = responses[str(status)].get("content")
        if content is None:
            assert not body, f"{method} {template} {status} has a body the document does not declare"
            return
        media = content_type.split(";")[0].strip()
        assert media in content, f"{method} {template} {status}: {media} not in {list(content)}"
        if media != "application/json":
            return
        schema = {**_to_json_schema(content[media]["schema"], {}), "$defs": self.defs}
        jsonschema.Draft202012Validator(schema).validate(json.loads(body))


def call(
    server: ServerProcess,
    doc: Document | None,
    method: str,
    path: str,
    body: Any = None,
    raw: bytes | None = None,
    prefix: str = API,
) -> tuple[int, Any]:
    """One request; its answer is checked against the document when ``doc`` is given."""
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Authorization": f"token {server.token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, prefix + path, body=data, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    if doc is not None:
        doc.check(method, prefix + path, response.status, response.getheader("Content-Type") or "", payload)
    try:
        return response.status, json.loads(payload) if payload else None
    except ValueError:
        return response.status, payload.decode(errors="replace")


def test_every_route_answers_as_the_document_says(server: ServerProcess) -> None:
    status, raw_doc = call(server, None, "GET", "/openapi.json")
    assert status == 200
    doc = Document(raw_doc)
    assert (
        "/nbdeploy/api/functions/add/invoke" in doc.doc["paths"]
        and "/nbdeploy/api/models/lin/predict" in doc.doc["paths"]
    )
    assert doc.doc["paths"]["/nbdeploy/api/functions/{name}"]["get"]["parameters"][0]["schema"]["pattern"]

    def ok(method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        status, answer = call(server, doc, method, path, body)
        assert status == expect, (method, path, answer)
        return answer

    ok("GET", "/status")
    ok("GET", "/openapi.json")
    ok("GET", "/cluster")
    refused = ok("POST", "/cluster/scale", {"workers": 2}, expect=409)  # the shared cluster is not the server's
    assert "belongs to whoever runs it" in refused["error"]["message"]
    ok("GET", "/kernels")
    ok("GET", "/functions")
    ok("GET", "/functions/add")
    assert ok("POST", "/functions/add/invoke", {"a": 1})["result"] == 3
    assert ok("POST", "/functions/add/versions/1/invoke", {"a": 1, "b": 5})["result"] == 6
    stats = ok("GET", "/functions/add/stats")  # the two calls above, served by this server
    assert (stats["name"], stats["requests"], stats["errors"], stats["statuses"]) == ("add", 2, 0, {"200": 2})
    assert sum(stats["histogram"]["counts"]) == 2 and stats["latency_ms"]["p99"] > 0
    ok("GET", "/functions/ghost/stats", expect=404)
    assert ok("GET", "/functions/add/stats.png").startswith("\ufffdPNG")  # the figure nbd.functions.plot draws
    ok("GET", "/functions/ghost/stats.png", expect=404)
    ok("GET", "/models")
    ok("GET", "/models/lin")
    assert len(ok("POST", "/models/lin/predict?alias=production", {"inputs": [[1.0, 2.0]]})["predictions"]) == 1
    ok("GET", "/models/lin/stats")
    assert ok("GET", "/models/lin/stats.png?alias=production").startswith("\ufffdPNG")
    ok("GET", "/models/ghost/stats.png", expect=404)
    ok("PUT", "/models/lin/aliases/staging", {"version": 1})
    ok("GET", "/jobs")
    ok("GET", "/jobs/quick")
    notebook = json.loads((NOTEBOOKS / "quick.ipynb").read_text())
    ok("POST", "/jobs", {"name": "quick2", "notebook": notebook}, expect=201)
    run = ok("POST", "/jobs/quick/runs", {"parameters": {"x": 2}}, expect=201)
    deadline = time.monotonic() + 120
    while ok("GET", f"/runs/{run['id']}")["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    ok("GET", "/runs")
    ok("GET", "/jobs/quick/runs")
    ok("GET", f"/runs/{run['id']}/output")
    ok("GET", f"/runs/{run['id']}/output?format=html")
    ok("GET", f"/runs/{run['id']}/log")
    ok("POST", f"/runs/{run['id']}/cancel", expect=202)
    ok("POST", f"/runs/{run['id']}/html", {"notebook_path": "quick.ipynb"}, expect=404)  # serve has no contents
    form = ok("GET", "/jobs/quick")["latest"]["form"]
    assert ok("POST", "/forms/coerce", {"fields": form, "inputs": {}, "include_defaults": True})["errors"] == {}
    assert ok("POST", "/notebooks/inspect", {"notebook": notebook, "path": "dir/quick.ipynb"})["name"] == "quick"
    planned = {"notebook": notebook, "path": "quick3.ipynb", "when": "schedule", "cron": "0 6 * * *"}
    ok("POST", "/notebooks/schedule", planned, expect=201)
    schedule = ok("POST", "/schedules", {"job": "quick", "cron": "0 6 * * *"}, expect=201)
    ok("GET", "/schedules")
    ok("GET", f"/schedules/{schedule['id']}")
    ok("PATCH", f"/schedules/{schedule['id']}", {"paused": True})
    ok("DELETE", f"/schedules/{schedule['id']}", expect=204)
    ok("DELETE", "/jobs/quick2", expect=204)
    ok("POST", "/pipelines/preview", {"yaml": "name: p\nnodes: {a: {job: quick, parameters: {x: 3}}}"})
    ok("POST", "/pipelines", {"spec": {"name": "p", "nodes": {"a": {"job": "quick"}}}}, expect=201)
    ok("GET", "/pipelines")
    ok("GET", "/pipelines/p")
    prun = ok("POST", "/pipelines/p/runs", {"force": ["a"]}, expect=201)
    ok("GET", "/pipelines/p/runs")
    ok("GET", f"/pipeline-runs/{prun['run']}")
    ok("POST", f"/pipeline-runs/{prun['run']}/cancel", expect=202)
    ok("DELETE", "/pipelines/p", expect=204)
    ok("GET", "/metrics")
    token = ok("POST", "/tokens", {"scopes": ["read"], "name": "boundary"}, expect=201)
    ok("GET", "/tokens")
    ok("DELETE", f"/tokens/{token['info']['id']}")
    for path in ("/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/lin", "/v2/models/lin/versions/1"):
        ok("GET", path)
    ok("GET", "/v2/models/lin/ready")
    ok("GET", "/v2/models/lin/versions/1/ready")
    tensor = {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
    assert ok("POST", "/v2/models/lin/infer", tensor)["outputs"][0]["shape"] == [1]
    assert ok("POST", "/v2/models/lin/versions/1/infer", tensor)["model_version"] == "1"
    ok("DELETE", "/models/lin/versions/1", expect=204)
    ok("DELETE", "/models/lin", expect=404)
    ok("DELETE", "/functions/add", expect=204)
    ok("GET", "/datasets")
    ok("POST", "/datasets", {"name": "sales", "records": [{"day": 3, "amount": 1.0}], "append": True}, expect=201)
    ok("GET", "/datasets/sales")
    ok("GET", "/datasets/sales/rows?limit=1&columns=day")
    ok("GET", "/datasets/sales/lineage")
    assert ok("GET", "/datasets/sales/diff?v1=1&v2=2")["rows_delta"] == 1
    ok("PUT", "/datasets/sales/aliases/training", {"version": 1})
    ok("POST", "/datasets/sales/versions/training/profile", {})
    ok("GET", "/datasets/sales/versions/1/profile.html")
    ok("DELETE", "/datasets/sales/versions/1", expect=204)
    ok("DELETE", "/datasets/sales", expect=204)
    status, created = call(
        server, None, "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": "0"}, prefix="/nbdeploy/mlflow"
    )
    assert status == 200, created
    run_id = created["run"]["info"]["run_id"]
    call(
        server,
        None,
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        {"run_id": run_id, "key": "loss", "value": 0.5},
        prefix="/nbdeploy/mlflow",
    )
    ok("GET", "/tracking/runs")
    ok("GET", f"/tracking/runs/{run_id}")
    ok("GET", f"/tracking/compare?runs={run_id}")
    ok("GET", f"/tracking/compare.png?runs={run_id}")
    declared = {(m, p) for p, item in doc.doc["paths"].items() for m in item if "/healthz" not in p}
    declared -= {("post", "/nbdeploy/api/functions/{name}/invoke"), ("post", "/nbdeploy/api/models/{name}/predict")}
    declared -= {("get", "/metrics")}  # checked in test_bad_names_do_not_grow_the_metrics
    missing = declared - doc.seen
    assert not missing, f"routes this test did not exercise: {sorted(missing)}"


DEEP = b"[" * 30_000 + b"]" * 30_000  # under the test server's 64 KiB limit, far over any recursion limit


def malformed_requests(notebook: dict[str, Any]) -> list[tuple[str, str, Any, int, str | None]]:
    """``(method, path, body, status, field)`` for each class of malformed request."""
    huge = "1" + "0" * 30
    cases: list[tuple[str, str, Any, int, str | None]] = [
        ("GET", f"/runs/{huge}", None, 400, "run_id"),
        ("GET", f"/schedules/{huge}", None, 400, "schedule_id"),
        ("GET", "/runs/%C2%B2", None, 400, "run_id"),  # "²".isdigit() is true, int("²") fails
        ("GET", "/runs/-1", None, 400, "run_id"),
        ("DELETE", "/models/lin/versions/%C2%B2", None, 400, "number"),
        ("DELETE", f"/models/lin/versions/{huge}", None, 400, "number"),
        ("POST", "/functions/add/versions/%C2%B2/invoke", {"a": 1}, 400, "version"),
        ("GET", "/functions/..%2F..%2Fetc", None, 400, "name"),
        ("GET", "/functions/" + "a" * 65, None, 400, "name"),
        ("GET", f"/runs?limit={huge}", None, 400, "limit"),
        ("GET", "/runs?limit=%C2%B2", None, 400, "limit"),
        ("GET", "/runs?status=exploded", None, 400, "status"),
        ("POST", "/jobs", None, 400, "body"),
        ("POST", "/jobs", [], 400, "body"),
        ("POST", "/jobs", {"name": "x"}, 400, "notebook"),
        ("POST", "/jobs", {"name": "../x", "notebook": notebook}, 400, "name"),
        ("POST", "/jobs", {"name": "x", "notebook": notebook, "extra": 1}, 400, "extra"),
        ("POST", "/jobs/quick/runs", {"timeout": "soon"}, 400, "timeout"),
        ("POST", "/jobs/quick/runs", {"retries": 10**30}, 400, "retries"),
        ("POST", "/jobs/quick/runs", {"kernel": "../../x"}, 400, "kernel"),
        ("POST", "/schedules", {"job": "quick", "cron": "0 6 * * *", "timezone": "x" * 10_000}, 400, "timezone"),
        ("PATCH", "/schedules/1", {"paused": "yes"}, 400, "paused"),
        ("PUT", "/models/lin/aliases/staging", {"version": 10**30}, 400, "version"),
        ("POST", "/models/lin/predict?version=newest", {"inputs": [[1.0, 2.0]]}, 400, "version"),
        ("POST", "/functions/add/invoke", {"a": "one"}, 422, None),
        ("POST", "/cluster/scale", {"workers": 0}, 400, "workers"),
        ("POST", "/cluster/scale", {"workers": "2"}, 400, "workers"),
        ("POST", "/cluster/scale", {"workers": 10**6}, 400, "workers"),
        ("POST", "/cluster/scale", {}, 400, "workers"),
    ]
    for method, path in (
        ("POST", "/jobs"),
        ("POST", "/jobs/quick/runs"),
        ("POST", "/schedules"),
        ("PATCH", "/schedules/1"),
        ("PUT", "/models/lin/aliases/x"),
        ("POST", "/functions/add/invoke"),
        ("POST", "/models/lin/predict"),
    ):
        cases.append((method, path, DEEP, 400, "body"))
        cases.append((method, path, b'{"a": ' + b"[" * 200 + b"]" * 200 + b"}", 400, "body"))
        cases.append((method, path, b"{not json", 400, "body"))
    return cases


def test_malformed_requests_get_a_4xx_naming_the_field_and_store_nothing(server: ServerProcess) -> None:
    notebook = json.loads((NOTEBOOKS / "quick.ipynb").read_text())
    before = {path: call(server, None, "GET", path)[1] for path in ("/jobs", "/schedules", "/runs", "/models")}
    for method, path, body, status, field in malformed_requests(notebook):
        raw = body if isinstance(body, bytes) else None
        got, answer = call(server, None, method, path, None if raw is not None else body, raw)
        assert got == status, (method, path, got, answer)
        assert isinstance(answer, dict) and answer["error"]["message"], (method, path, answer)
        if field is not None:
            assert answer["error"].get("field") == field, (method, path, answer)
    after = {path: call(server, None, "GET", path)[1] for path in before}
    assert after == before
    assert call(server, None, "POST", "/functions/add/invoke", {"a": 1})[0] == 200  # still serving


def test_a_body_far_over_the_limit_gets_a_413_not_a_reset(server: ServerProcess) -> None:
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    for size in (65_537, 5 * 1024 * 1024):  # the test server's limit is 64 KiB
        body = b'{"a": "' + b"x" * size + b'"}'
        status, answer = call(server, None, "POST", "/functions/add/invoke", raw=body)
        assert status == 413 and "max_body_bytes" in answer["error"]["message"], (size, status)
    # chunked, with no Content-Length: counted as it arrives
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        head = (
            f"POST {API}/functions/add/invoke HTTP/1.1\r\nHost: {host}\r\nAuthorization: token {server.token}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode())
        chunk = b"x" * 65536
        for _ in range(4):
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        reply = b""
        while data := sock.recv(65536):
            reply += data
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_bad_names_do_not_grow_the_metrics(server: ServerProcess) -> None:
    call(server, None, "POST", "/functions/add/invoke", {"a": 1})
    before = call(server, None, "GET", "/metrics", prefix="")[1]
    for i in range(300):
        call(server, None, "POST", f"/functions/Bad-Name-{i}/invoke", {"a": 1})  # 400: never a valid name
        call(server, None, "POST", f"/functions/ghost-{i}/invoke", {"a": 1})  # 404: one shared label
    after = call(server, None, "GET", "/metrics", prefix="")[1]
    series = lambda text: {line.split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}  # noqa: E731
    grown = series(after) - series(before)
    assert all("(unknown)" in s for s in grown), sorted(grown)[:5]
    assert len(grown) <= 30  # one label: a histogram (buckets, sum, count) and two counters


@pytest.mark.timeout(1200)
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Property-based requests over the whole published document (bounded examples, DELETE left out so the data
    the operations need stays)."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{server.url}{API}/openapi.json",
        "--url",
        server.url,
        "-H",
        f"Authorization: token {server.token}",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "10",
        "--workers",
        "1",
        "--exclude-method",
        "DELETE",
        "--exclude-path",
        f"{API}/openapi.json",
        "--seed",
        "20261130",
        "--request-timeout",
        "60",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]


def test_a_request_without_query_arguments_reuses_the_record_of_defaults_and_required_ones_still_fail() -> None:
    from dataclasses import dataclass

    from nbdeploy.exceptions import InvalidInputError
    from nbdeploy.schema import Record
    from nbdeploy.server_extension.base import parse_query

    @dataclass(frozen=True)
    class Page(Record):
        request = True
        limit: int = 10

    @dataclass(frozen=True)
    class Needs(Record):
        request = True
        since: str

    first = parse_query(Page, {})
    assert first == Page(10) and parse_query(Page, {}) is first  # built and validated once, then reused
    assert parse_query(Page, {"limit": [b"3"]}).limit == 3 and parse_query(Page, {}).limit == 10
    for _ in range(2):
        with pytest.raises(InvalidInputError, match="since"):
            parse_query(Needs, {})


def test_record_schemas_are_validated_with_nested_records_inlined_unless_one_contains_itself() -> None:
    from nbdeploy.exceptions import InvalidInputError
    from nbdeploy.oip.records import InferRequest
    from nbdeploy.schema import _inline_refs, _validator

    defs = {
        "A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/B", "description": "kept"}}},
        "B": {"type": "integer"},
        "C": {"type": "object", "properties": {"c": {"$ref": "#/$defs/C"}}},
    }
    inlined = {"type": "object", "properties": {"b": {"allOf": [{"type": "integer"}], "description": "kept"}}}
    assert _inline_refs({"$ref": "#/$defs/A"}, defs, ()) == inlined
    assert _inline_refs({"$ref": "#/$defs/C"}, defs, ()) is None  # recursive: validated through $ref as before
    assert "$ref" not in json.dumps(_validator(InferRequest).schema)
    tensor = {"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [0.5, 1.5]}
    assert InferRequest.parse({"inputs": [tensor]}).inputs[0].datatype == "FP64"
    with pytest.raises(InvalidInputError, match="FP65") as bad:
        InferRequest.parse({"inputs": [{**tensor, "datatype": "FP65"}]})
    assert bad.value.field == "inputs[0].datatype"
