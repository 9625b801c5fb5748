"""The jupyter-server extension: the same API behind Jupyter's authentication (pytest-jupyter)."""

from __future__ import annotations

import json
import re

import pytest
from tornado.httpclient import HTTPClientError

import nbdeploy as nbd
from nbdeploy.server_extension.openapi import mounted_routes


@pytest.fixture
def jp_server_config(nbd_env):
    return {
        "ServerApp": {"jpserver_extensions": {"nbdeploy": True}},
        "NbdeployExtension": {"background_services": False},
    }


@pytest.fixture
def manager(nbd_env):
    m = nbd.default().functions
    yield m
    m.close()


def double(x: int) -> int:
    return 2 * x


def fail(x: int) -> int:
    raise KeyError(f"missing {x}")


async def test_invoke_through_jupyter_server(jp_fetch, manager) -> None:
    manager.deploy(double)
    manager.deploy(fail)
    resp = await jp_fetch("nbdeploy", "api", "functions")
    assert [f["name"] for f in json.loads(resp.body)["functions"]] == ["double", "fail"]
    resp = await jp_fetch("nbdeploy", "api", "functions", "double", "invoke", method="POST", body=json.dumps({"x": 21}))
    assert json.loads(resp.body)["result"] == 42
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("nbdeploy", "api", "functions", "fail", "invoke", method="POST", body=json.dumps({"x": 1}))
    assert err.value.code == 500
    error = json.loads(err.value.response.body)["error"]
    assert error["type"] == "KeyError" and "raise KeyError" in error["traceback"]  # tracebacks shown in Jupyter
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("nbdeploy", "api", "functions", "double", "invoke", method="POST", body=json.dumps({"y": 1}))
    assert err.value.code == 422


async def test_every_extension_route_refuses_unauthenticated_requests(jp_fetch, jp_serverapp, manager) -> None:
    manager.deploy(double)
    routes = mounted_routes(jp_serverapp.web_app)
    paths = {path for path, _, _ in routes}
    assert any(p.endswith("/nbdeploy/api/functions/{name}/invoke") for p in paths), paths
    checked = 0
    for path, methods, _ in routes:
        rel = re.sub(r"{\w+}", "1", path.replace("{name}", "double"))
        rel = rel[rel.index("nbdeploy/") :]  # jp_fetch adds the server's base URL itself
        for method in methods:
            with pytest.raises(HTTPClientError) as err:
                await jp_fetch(
                    *rel.split("/"),
                    method=method.upper(),
                    headers={"Authorization": ""},
                    body=b"{}" if method in ("post", "put", "patch") else None,
                    allow_nonstandard_methods=True,
                )
            assert err.value.code == 403, f"{method.upper()} /{rel} answered {err.value.code} without credentials"
            checked += 1
    assert checked >= 6
