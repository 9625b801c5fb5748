"""Functions through the Python API on a real multi-process Dask cluster."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import nbdeploy as nbd
from nbdeploy.exceptions import InvalidInputError, InvalidNameError, NotFoundError, SignatureError, UserCodeError
from nbdeploy.functions import FunctionManager
from nbdeploy.functions.capture import capture_cell


@pytest.fixture
def manager(nbd_env: Path) -> FunctionManager:
    m = nbd.default().functions
    yield m
    m.close()


def run_cell(source: str, namespace: dict) -> dict:
    exec(compile(textwrap.dedent(source), "<cell>", "exec"), namespace)
    return namespace


def test_deploy_and_invoke_a_function_with_captured_numpy_and_sklearn_model(manager: FunctionManager) -> None:
    from sklearn.linear_model import LinearRegression

    ns: dict = {"__name__": "__main__"}
    ns["weights"] = np.array([1.0, 2.0, 3.0])
    ns["model"] = LinearRegression().fit(np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 5.0]))
    cell = """
    def predict(x: float, scale: float = 1.0) -> dict:
        return {"y": float(model.predict([[x]])[0]) * scale, "w": weights.sum()}
    """
    run_cell(cell, ns)
    d = manager.deploy_cell(textwrap.dedent(cell), ns, "predict")
    assert d.version.version == 1
    assert d.version.metadata["captured"] == {"model": "LinearRegression", "weights": "ndarray"}
    assert "scikit-learn" in d.version.metadata["requirements"] and "numpy" in d.version.metadata["requirements"]
    assert manager.invoke("predict", x=3.0) == {"y": pytest.approx(7.0), "w": 6.0}

    # redeploying with a refit model changes the answer, with nothing restarted
    ns["model"] = ns["model"].fit(np.array([[0.0], [1.0]]), np.array([0.0, 10.0]))
    d2 = manager.deploy_cell(textwrap.dedent(cell), ns, "predict")
    assert d2.version.version == 2
    assert manager.invoke("predict", x=1.0)["y"] == pytest.approx(10.0)
    assert manager.invoke("predict", version=1, x=3.0)["y"] == pytest.approx(7.0)  # versions are immutable


def test_signature_is_enforced_and_described(manager: FunctionManager) -> None:
    def greet(name: str, excited: bool = False, times: int = 1) -> str:
        """Say hello."""
        return (f"Hello {name}" + ("!" if excited else "")) * times

    manager.deploy(greet)
    info = manager.get("greet")
    assert info.signature["request"]["required"] == ["name"]
    assert info.signature["request"]["properties"]["excited"] == {"type": "boolean", "default": False}
    assert info.description == "Say hello."
    with pytest.raises(SignatureError) as err:
        manager.invoke("greet", times="3", colour="red")
    assert set(err.value.errors) == {"name", "times", "colour"}
    assert "expected integer, got string" in err.value.errors["times"]
    assert manager.invoke("greet", name="Ada", excited=True, times=2) == "Hello Ada!Hello Ada!"


def test_user_exception_comes_back_with_its_traceback(manager: FunctionManager) -> None:
    def divide(a: int, b: int) -> float:
        return a / b

    manager.deploy(divide)
    with pytest.raises(UserCodeError) as err:
        manager.invoke("divide", a=1, b=0)
    assert err.value.type == "ZeroDivisionError"
    assert "return a / b" in err.value.traceback
    assert 'File "<nbdeploy divide v1>"' in err.value.traceback
    assert "nbdeploy/functions/worker.py" not in err.value.traceback  # the user's frames only
    assert manager.invoke("divide", a=1, b=4) == 0.25  # still serving


def test_a_cells_traceback_shows_the_failing_line_of_the_cell(manager: FunctionManager) -> None:
    ns: dict = {"__name__": "__main__"}
    cell = (
        "LIMIT = 3\n\n"
        "def check(n: int) -> int:\n"
        "    return _over(n)\n\n"
        "def _over(n):\n"
        "    if n > LIMIT:\n"
        "        raise ValueError(f'{n} is over the limit')\n"
        "    return n\n"
    )
    run_cell(cell, ns)
    manager.deploy_cell(cell, ns, "check", handler="check")
    manager.deploy_cell(cell, ns, "check", handler="check")
    with pytest.raises(UserCodeError) as err:
        manager.invoke("check", n=5)
    tb = err.value.traceback
    assert 'File "<nbdeploy check v2>", line 4, in check' in tb and "return _over(n)" in tb
    assert "line 8, in _over" in tb and "raise ValueError(f'{n} is over the limit')" in tb


def test_a_cell_that_cannot_be_pickled_stores_nothing(manager: FunctionManager) -> None:
    import threading

    ns: dict = {"__name__": "__main__", "lock": threading.Lock()}
    cell = "def locked(x: int) -> int:\n    with lock:\n        return x\n"
    run_cell(cell, ns)
    with pytest.raises(InvalidInputError, match=r"the global .lock.*cannot be pickled"):
        manager.deploy_cell(cell, ns, "locked")
    assert nbd.store.versions("function", "locked") == []


def test_failed_redeploy_leaves_the_previous_version_serving(manager: FunctionManager) -> None:
    import threading

    ns: dict = {"__name__": "__main__", "k": 2}
    cell = "def double(x: int) -> int:\n    return x * k\n"
    run_cell(cell, ns)
    manager.deploy_cell(cell, ns, "double")
    ns["k"] = threading.Lock()
    with pytest.raises(InvalidInputError):
        manager.deploy_cell(cell, ns, "double")
    assert manager.invoke("double", x=21) == 42
    assert [v.version for v in manager.versions("double")] == [1]


def test_capture_picks_the_last_function_and_explicit_captures() -> None:
    ns: dict = {"__name__": "__main__", "table": {"a": 1}, "extra": 5}
    cell = "import math\ndef helper(x):\n    return table[x]\ndef handler(x: str) -> int:\n    return helper(x)\n"
    run_cell(cell, ns)
    pkg = capture_cell(cell, ns, capture=["extra"])
    assert pkg.handler == "handler"
    assert set(pkg.captured) == {"table"} and set(pkg.explicit) == {"extra"}
    with pytest.raises(InvalidInputError, match="defines no function"):
        capture_cell("x = 1\n", ns)
    with pytest.raises(NotFoundError, match="--capture names 'nope'"):
        capture_cell(cell, ns, capture=["nope"])


def test_deploy_from_python_file_and_notebook(manager: FunctionManager, tmp_path: Path) -> None:
    import nbformat

    src = tmp_path / "handlers.py"
    src.write_text("FACTOR = 3\n\ndef triple(x: int) -> int:\n    return x * FACTOR\n")
    d = manager.deploy_file(src, handler="triple")
    assert d.name == "triple" and manager.invoke("triple", x=2) == 6

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("offset = 10"),
        nbformat.v4.new_code_cell("raise RuntimeError('exploration only')", metadata={"tags": ["nbdeploy-ignore"]}),
        nbformat.v4.new_code_cell("%matplotlib inline\ndef shift(x: int) -> int:\n    return x + offset"),
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    d = manager.deploy_file(path, "shifter", handler="shift")
    assert d.name == "shifter" and manager.invoke("shifter", x=1) == 11


def test_unknown_names_versions_and_bad_names(manager: FunctionManager) -> None:
    with pytest.raises(NotFoundError, match="no function named 'ghost'"):
        manager.invoke("ghost")
    manager.deploy(lambda_free := _identity, "ident")  # noqa: F841
    with pytest.raises(NotFoundError, match="no version 9"):
        manager.invoke("ident", version=9, x=1)
    with pytest.raises(InvalidNameError):
        manager.deploy(_identity, "../evil")


def _identity(x: int) -> int:
    return x


def test_plain_task_path_and_module_api(nbd_env: Path) -> None:
    @nbd.deploy(name="square")
    def square(x: int) -> int:
        return x * x

    assert square(3) == 9  # the decorator returns the function itself
    assert nbd.invoke("square", x=4) == 16
    assert nbd.functions.submit("square", x=5).result() == 25
    assert [f.name for f in nbd.functions.list()] == ["square"]
    assert nbd.functions.delete("square") == 1
    with pytest.raises(NotFoundError):
        nbd.invoke("square", x=1)
    nbd.default().close()
