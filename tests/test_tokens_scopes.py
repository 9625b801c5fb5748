"""Scoped API tokens: created, listed and revoked through the CLI and the Python API (only their hashes in the
catalog), and enforced by a real `nbdeploy serve` on every route: a token without the scope a route needs gets a
403, the server's own token keeps every right, revoked and expired tokens get a 401."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from tornado.web import RequestHandler

import nbdeploy as nbd
from nbdeploy.exceptions import InvalidInputError, NotFoundError
from nbdeploy.server_extension.routes import collect_handlers, collect_mounted_handlers
from nbdeploy.server_extension.scopes import handler_scope, scope_allows
from tests.conftest import ServerProcess, start_nbdeploy_server

API = "/nbdeploy/api"
SAMPLE = {
    "name": "churn-x",
    "version": "1",
    "number": "1",
    "alias": "staging",
    "run_id": "1",
    "schedule_id": "1",
    "token_id": "999",
    "path": "status",
    "run_uuid": "0123456789abcdef",
    "endpoint": "experiments/get",
}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbdeploy.cli", *args], capture_output=True, text=True, timeout=180)


def churn_a(x: int) -> int:
    """Double x."""
    return 2 * x


def other(x: int) -> int:
    """Triple x."""
    return 3 * x


def test_tokens_are_stored_hashed_listed_with_last_use_and_revocable(nbd_home: Path) -> None:
    app = nbd.default()
    new = app.tokens.create(["invoke:churn-*", "read"], "churn-app", "30d")
    assert new.token.startswith("nbdt_") and new.info.scopes == ["invoke:churn-*", "read"]
    assert new.info.expires_at is not None and new.info.active
    catalog_bytes = b"".join(p.read_bytes() for p in nbd_home.rglob("*.db*"))
    assert new.token.encode() not in catalog_bytes
    assert hashlib.sha256(new.token.encode()).hexdigest().encode() in catalog_bytes

    grant = app.tokens.authenticate(new.token)
    assert grant is not None and grant.scopes == ("invoke:churn-*", "read")
    assert app.tokens.authenticate(new.token + "x") is None and app.tokens.authenticate("nope") is None
    app.tokens.close()  # the last use is written in the background
    [listed] = app.tokens.list().tokens
    assert listed.last_used_at is not None and listed.prefix == new.token[:11]
    assert "token" not in json.dumps(listed.to_json(), default=str).replace('"prefix"', "")

    assert app.tokens.revoke(new.info.id).revoked_at is not None
    assert app.tokens.authenticate(new.token) is None
    assert not app.tokens.list().tokens[0].active
    with pytest.raises(NotFoundError, match="nbdeploy tokens list"):
        app.tokens.revoke(12345)


def test_expired_tokens_and_malformed_scopes_are_refused(nbd_home: Path) -> None:
    app = nbd.default()
    expired = app.tokens.create(["read"], "old", timedelta(seconds=-1))
    assert app.tokens.authenticate(expired.token) is None
    for bad in (["write"], ["invoke:"], ["invoke:../x"], [], ["deploy:CAPS"]):
        with pytest.raises(InvalidInputError, match="scope"):
            app.tokens.create(bad)
    with pytest.raises(InvalidInputError, match="30d"):
        app.tokens.create(["read"], expires="forever")


def test_cli_creates_prints_the_token_last_then_lists_and_revokes(nbd_home: Path) -> None:
    out = cli("tokens", "create", "--scope", "invoke:churn-*", "--expires", "30d", "--name", "churn-app")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"nbdt_[A-Za-z0-9_-]{40,}", token)
    listed = json.loads(cli("tokens", "list", "--json").stdout)["tokens"]
    assert [(t["name"], t["scopes"], t["active"]) for t in listed] == [("churn-app", ["invoke:churn-*"], True)]
    assert token not in cli("tokens", "list").stdout
    out = cli("tokens", "revoke", str(listed[0]["id"]))
    assert out.returncode == 0 and "revoked" in out.stdout
    assert json.loads(cli("tokens", "list", "--json").stdout)["tokens"][0]["active"] is False
    out = cli("tokens", "create", "--scope", "everything")
    assert out.returncode != 0 and "read, admin, invoke:<glob> or deploy:<glob>" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.fixture
def server(nbd_env: Path, tmp_path: Path) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    """`nbdeploy serve` with two functions and a token of each kind."""
    app = nbd.default()
    app.functions.deploy(churn_a, name="churn-a")
    app.functions.deploy(other, name="other")
    tokens = {
        scope: app.tokens.create([scope], "t").token
        for scope in ("read", "invoke:churn-*", "deploy:churn-*", "invoke:nothing-*")
    }
    yield from ((s, tokens) for s in start_nbdeploy_server(tmp_path, "--no-scheduler"))
    app.close()


def _operations() -> list[tuple[str, str, str]]:
    """``(method, concrete path, required scope)`` of every declared route of `nbdeploy serve`."""
    found = []
    for route, cls in [*collect_handlers(), *collect_mounted_handlers(standalone=True), ("/metrics", None)]:
        if cls is None:
            from nbdeploy.server_extension.metrics import MetricsHandler

            cls = MetricsHandler
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: SAMPLE[m.group(1)], route)
        params = {k: v for k, v in SAMPLE.items() if f"?P<{k}>" in route}
        for method in ("get", "post", "put", "patch", "delete"):
            if getattr(cls, method, None) is not getattr(RequestHandler, method):
                found.append((method.upper(), path, handler_scope(cls, method, params)))
    return found


def test_every_route_declares_a_scope_derived_from_its_method_and_name() -> None:
    ops = _operations()
    assert len(ops) > 30
    for method, path, scope in ops:
        if path.endswith(("/v2/health/live", "/v2/health/ready")):
            assert scope == "public", path  # probes of load balancers, like /healthz
        elif method == "GET" and not path.startswith(API + "/tokens"):
            assert scope == "read", (method, path)
        elif path.endswith(("/forms/coerce", "/notebooks/inspect", "/pipelines/preview")):  # compute from the body only
            assert scope == "read", (method, path)
        elif path.endswith(("/invoke", "/predict", "/infer")) or (method == "POST" and path.endswith("churn-x/runs")):
            assert scope == "invoke:churn-x", (method, path)
        elif "churn-x" in path:
            assert scope == "deploy:churn-x", (method, path)
        else:
            assert scope == "admin", (method, path)


def test_routes_by_scopes_answer_403_where_the_scope_is_missing(
    server: tuple[ServerProcess, dict[str, str]],
) -> None:
    srv, tokens = server
    checked = 0
    for method, path, required in _operations():
        for scope, token in tokens.items():
            body = {} if method in ("POST", "PUT", "PATCH") else None
            status, answer = srv.request(method, path, body, token=token)
            if scope_allows([scope], required):
                assert status not in (401, 403), (scope, method, path, answer)
            else:
                assert status == 403, (scope, method, path, status, answer)
                if path.startswith("/nbdeploy/mlflow"):  # MLflow's routes answer MLflow's error body
                    assert answer["error_code"] == "PERMISSION_DENIED" and required in answer["message"], answer
                else:
                    error = answer["error"]  # the Open Inference Protocol's routes answer its own error body
                    message = error if path.startswith(("/v2", API + "/v2")) else error["message"]
                    assert required in message, answer
                checked += 1
    assert checked > 50


def test_a_scoped_token_calls_its_functions_only_and_the_server_token_keeps_every_right(
    server: tuple[ServerProcess, dict[str, str]],
) -> None:
    srv, tokens = server
    invoke = tokens["invoke:churn-*"]
    status, answer = srv.request("POST", f"{API}/functions/churn-a/invoke", {"x": 4}, token=invoke)
    assert (status, answer["result"]) == (200, 8)
    status, answer = srv.request("POST", f"{API}/functions/other/invoke", {"x": 4}, token=invoke)
    assert status == 403 and "invoke:other" in answer["error"]["message"]
    assert srv.request("GET", f"{API}/functions", token=invoke)[0] == 403
    assert srv.request("GET", f"{API}/functions", token=tokens["read"])[0] == 200
    assert srv.request("POST", f"{API}/functions/other/invoke", {"x": 1}, token=None)[0] == 401
    assert srv.request("POST", f"{API}/functions/other/invoke", {"x": 1}, token="nbdt_wrong")[0] == 401
    assert srv.request("POST", f"{API}/functions/other/invoke", {"x": 1})[1]["result"] == 3  # the server's token

    status, created = srv.request("POST", f"{API}/tokens", {"scopes": ["invoke:other"], "name": "rest"})
    assert status == 201 and created["info"]["scopes"] == ["invoke:other"]
    fresh = created["token"]
    status, answer = srv.request("POST", f"{API}/functions/other/invoke", {"x": 2}, token=fresh)
    assert (status, answer["result"]) == (200, 6)
    assert srv.request("POST", f"{API}/tokens", {"scopes": ["admin"]}, token=fresh)[0] == 403
    assert srv.request("DELETE", f"{API}/tokens/{created['info']['id']}")[0] == 200
    assert srv.request("POST", f"{API}/functions/other/invoke", {"x": 2}, token=fresh)[0] == 401
    assert srv.request("GET", "/healthz", token=None)[0] == 200


def _may_overlap(a: str, b: str) -> bool:
    """Whether some path could match both route patterns (segment by segment: a literal matches itself, a
    ``[^/]+`` group any one segment, any other group any rest)."""

    def segments(route: str) -> list[str]:
        route = route.replace("(?P<", "<").replace("[^/]+)", "ONE>")
        return route.split("/")

    sa, sb = segments(a), segments(b)
    for x, y in zip(sa, sb, strict=False):
        if any("<" in seg and "ONE>" not in seg for seg in (x, y)):
            return True  # a group that may span segments
        if "<" in x or "<" in y:
            continue
        if x != y:
            return False
    return len(sa) == len(sb)


def test_serving_routes_come_first_and_the_order_changes_no_answer() -> None:
    """`bind_handlers` puts the serving routes first (tornado tries rules in order); that is safe only because no
    path could match both a serving route and another one."""
    from nbdeploy.server_extension.routes import bind_handlers, serves

    routes = [*collect_handlers(), *collect_mounted_handlers(standalone=True)]
    bound = bind_handlers(routes, RequestHandler)
    first = [serves(cls) for _, cls in bound]
    assert any(first) and first == sorted(first, reverse=True)  # every serving route before every other
    serving = {r for r, c in bound if serves(c)}
    assert serving >= {API + "/functions/(?P<name>[^/]+)/invoke", "/v2/models/(?P<name>[^/]+)/infer"}
    for route in serving:
        clashes = [other for other, cls in routes if not serves(cls) and _may_overlap(route, other)]
        assert clashes == [], (route, clashes)
