"""Serving through the Jupyter extension (pytest-jupyter): Prometheus ``/metrics`` and the Open Inference
Protocol under ``/nbdeploy/api``, behind Jupyter's own authentication."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

import nbdeploy as nbd


@pytest.fixture
def jp_server_config(nbd_env):
    return {
        "ServerApp": {"jpserver_extensions": {"nbdeploy": True}},
        "NbdeployExtension": {"background_services": False},
    }


@pytest.fixture
def app(nbd_env):
    a = nbd.default()
    yield a
    a.close()


def triple(x: int) -> int:
    return 3 * x


async def test_metrics_and_the_inference_protocol_in_jupyter(jp_fetch, app) -> None:
    app.functions.deploy(triple)
    await jp_fetch("nbdeploy", "api", "functions", "triple", "invoke", method="POST", body=json.dumps({"x": 2}))
    resp = await jp_fetch("nbdeploy", "api", "metrics")
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert 'target="function:triple"' in resp.body.decode()

    live = await jp_fetch("nbdeploy", "api", "v2", "health", "live")
    assert json.loads(live.body) == {"live": True}
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("nbdeploy", "api", "v2", "models", "nope", "ready")
    assert err.value.code == 404 and "nope" in json.loads(err.value.response.body)["error"]
    with pytest.raises(HTTPClientError) as err:  # Jupyter's authentication applies
        await jp_fetch("nbdeploy", "api", "metrics", headers={"Authorization": "token wrong"})
    assert err.value.code in (401, 403)
