"""The kernelspecs nbdeploy ships, and kernelspec names as runs and the workers see them: the ``nbdeploy`` kernel
starts with the magics loaded (``%%deploy`` works in its first cell), ``nbdeploy kernels list`` asks the workers,
and an unknown kernelspec is refused listing those that exist."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbdeploy as nbd
from nbdeploy.kernels.specs import UnknownKernelError
from tests.helpers import NOTEBOOKS
from tests.test_jobs_cli import cli

API = "/nbdeploy/api"


class Kernel:
    """A kernel of kernelspec ``name`` started by jupyter_client; ``run`` returns what a notebook would show."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name=name)
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code: str) -> tuple[str, str]:
        chunks: list[str] = []

        def hook(msg: dict) -> None:
            content = msg["content"]
            if msg["msg_type"] == "stream":
                chunks.append(content["text"])
            elif msg["msg_type"] in ("display_data", "execute_result"):
                chunks.append(content["data"].get("text/plain", ""))
            elif msg["msg_type"] == "error":
                chunks.append("\n".join(content["traceback"]))

        reply = self.kc.execute_interactive(textwrap.dedent(code), output_hook=hook, timeout=180)
        return reply["content"]["status"], "".join(chunks)

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def nbdeploy_kernel(nbd_env: Path) -> Iterator[Kernel]:
    k = Kernel("nbdeploy", dict(os.environ))
    try:
        yield k
    finally:
        k.stop()


def test_the_shipped_kernelspecs_are_installed_and_run_this_environment() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().get_all_specs()
    assert {"nbdeploy", "nbdeploy-gpu"} <= set(specs), "run `make install` (it installs the kernelspecs)"
    for name in ("nbdeploy", "nbdeploy-gpu"):
        spec = specs[name]["spec"]
        assert spec["argv"][:3] == ["python", "-m", "nbdeploy.kernels.launch"]  # jupyter_client: this interpreter
        assert spec["language"] == "python"
    assert specs["nbdeploy-gpu"]["spec"]["env"] == {"NBDEPLOY_CLUSTER": "cuda"}


def test_the_nbdeploy_kernel_starts_with_the_magics_and_deploy_works_in_its_first_cell(
    nbdeploy_kernel: Kernel,
) -> None:
    status, out = nbdeploy_kernel.run(
        """
        %%deploy double
        def double(x: int) -> int:
            return 2 * x
        """
    )
    assert status == "ok", out
    assert "deployed double v1" in out
    assert nbd.invoke("double", x=21) == 42
    status, out = nbdeploy_kernel.run("import sys; print(sys.executable)")
    assert out.strip() == os.path.realpath(os.sys.executable) or out.strip() == os.sys.executable


def test_kernels_list_asks_the_workers_and_shows_their_pools(nbd_env: Path) -> None:
    listed = nbd.default().kernels.list()
    assert len(listed.workers) == 2
    assert {"python3", "nbdeploy", "nbdeploy-gpu"} <= set(listed.names)
    assert listed.find("nbdeploy") is not None and listed.find("nbdeploy").language == "python"  # type: ignore[union-attr]
    assert all(w.error is None for w in listed.workers)
    out = cli("kernels", "list")
    assert out.returncode == 0, out.stderr
    assert "warm pool: 1 per kernelspec per worker, pooled: python3" in out.stdout
    assert "nbdeploy-gpu" in out.stdout and "python3" in out.stdout
    data = json.loads(cli("kernels", "list", "--json").stdout)
    assert sorted(w["worker"] for w in data["workers"]) == sorted(w.worker for w in listed.workers)


def test_an_unknown_kernelspec_is_refused_listing_the_ones_that_exist(nbd_env: Path) -> None:
    nbd.jobs.put(NOTEBOOKS / "quick.ipynb", "quick")
    with pytest.raises(UnknownKernelError, match="no kernelspec named 'nope' on the workers") as err:
        nbd.jobs.run("quick", kernel="nope")
    assert "nbdeploy, nbdeploy-gpu, python3" in str(err.value)
    assert err.value.known == sorted(set(err.value.known)) and "python3" in err.value.known
    assert nbd.runs.list(job="quick") == []  # nothing queued


def test_rest_answers_422_for_an_unknown_kernelspec_and_lists_kernels(nbdeploy_server) -> None:
    status, body = nbdeploy_server.request("GET", f"{API}/kernels")
    assert status == 200, body
    assert "nbdeploy" in body["names"] and len(body["workers"]) == 2
    nb = json.loads((NOTEBOOKS / "quick.ipynb").read_text())
    status, body = nbdeploy_server.request("POST", f"{API}/jobs", {"name": "quick", "notebook": nb})
    assert status == 201, body
    status, body = nbdeploy_server.request("POST", f"{API}/jobs/quick/runs", {"kernel": "nope"})
    assert status == 422, body
    assert "nbdeploy, nbdeploy-gpu, python3" in json.dumps(body)
