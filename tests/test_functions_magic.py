"""`%%deploy` in a real IPython kernel (jupyter_client), then the function answers over HTTP."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator

import pytest

API = "/nbdeploy/api"


class Kernel:
    """A real ipykernel started by jupyter_client; ``run`` returns the text a notebook would show."""

    def __init__(self, env: dict[str, str]) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str) -> str:
        chunks: list[str] = []

        def hook(msg: dict) -> None:
            content = msg["content"]
            if msg["msg_type"] == "stream":
                chunks.append(content["text"])
            elif msg["msg_type"] in ("display_data", "execute_result"):
                chunks.append(content["data"].get("text/plain", ""))
            elif msg["msg_type"] == "error":
                chunks.append("\n".join(content["traceback"]))

        reply = self.kc.execute_interactive(textwrap.dedent(code), output_hook=hook, timeout=120)
        text = "".join(chunks)
        if reply["content"]["status"] != "ok" and "not deployed" not in text:
            raise AssertionError(f"cell failed: {text}")
        return text

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def kernel(nbd_env) -> Iterator[Kernel]:
    k = Kernel(dict(os.environ))
    try:
        yield k
    finally:
        k.stop()


def test_deploy_magic_in_a_real_kernel_then_call_over_http(kernel: Kernel, nbdeploy_server) -> None:
    kernel.run("%load_ext nbdeploy")
    kernel.run(
        """
        import numpy as np
        from sklearn.linear_model import LinearRegression
        model = LinearRegression().fit(np.array([[0.0], [1.0]]), np.array([1.0, 3.0]))
        bias = np.array([0.5])
        """
    )
    out = kernel.run(
        """
        %%deploy predict --description "a line"
        def predict(x: float) -> float:
            return float(model.predict([[x]])[0] + bias[0])
        """
    )
    assert "deployed predict v1" in out
    assert f"POST {nbdeploy_server.url}{API}/functions/predict/invoke" in out
    assert "captured: bias (ndarray), model (LinearRegression)" in out
    assert "curl -X POST" in out and '{"x": 1.0}' in out
    status, body = nbdeploy_server.request("POST", f"{API}/functions/predict/invoke", {"x": 1.0})
    assert (status, body["version"]) == (200, 1) and body["result"] == pytest.approx(3.5)

    # a cell that fails deploys nothing: the previous version keeps serving
    out = kernel.run(
        """
        %%deploy predict
        def predict(x: float) -> float:
            return 0.0
        raise RuntimeError("half-finished cell")
        """
    )
    assert "not deployed" in out and "half-finished cell" in out
    status, body = nbdeploy_server.request("POST", f"{API}/functions/predict/invoke", {"x": 1.0})
    assert (status, body["version"]) == (200, 1) and body["result"] == pytest.approx(3.5)

    # refit in the kernel and redeploy: the server answers with the new model, nothing restarted
    kernel.run("model = LinearRegression().fit(np.array([[0.0], [1.0]]), np.array([0.0, 10.0]))")
    out = kernel.run(
        """
        %%deploy predict
        def predict(x: float) -> float:
            return float(model.predict([[x]])[0] + bias[0])
        """
    )
    assert "deployed predict v2" in out
    status, body = nbdeploy_server.request("POST", f"{API}/functions/predict/invoke", {"x": 1.0})
    assert (status, body["version"]) == (200, 2) and body["result"] == pytest.approx(10.5)

    # the Python API works from the same kernel
    assert float(kernel.run("import nbdeploy as nbd\nprint(nbd.invoke('predict', x=0.0))")) == pytest.approx(0.5)
