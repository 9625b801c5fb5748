"""Models registry: every installed flavor round-trips (stored, loaded here and served on a real worker), the
signature and metadata are recorded, versions and aliases behave, bad input is refused with the field at fault."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbdeploy as nbd
from nbdeploy.exceptions import InvalidInputError, InvalidNameError, NotFoundError, SignatureError
from nbdeploy.models import ModelManager
from nbdeploy.models.flavors import dumps_model, flavor_for, loads_model


@pytest.fixture
def manager(nbd_env: Path) -> ModelManager:
    m = nbd.default().models
    yield m
    m.close()


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    X = pd.DataFrame(
        {"tenure": rng.normal(size=120), "spend": rng.gamma(2.0, size=120), "plan": rng.integers(0, 3, 120)}
    )
    y = ((X.tenure + 0.5 * X.spend - X.plan) > 0).astype(int).to_numpy()
    return X, y


def notebook_namespace(source: str) -> dict:
    """Run ``source`` as a notebook would (module ``__main__``): its functions and classes pickle by value."""
    ns: dict = {"__name__": "__main__", "np": np}
    exec(compile(source, "<cell>", "exec"), ns)
    return ns


def assert_round_trip(manager: ModelManager, model, name: str, X, expected, **put) -> nbd.models.ModelVersion:
    mv = manager.put(model, name, sample_input=X[:20], **put)
    np.testing.assert_allclose(manager.get(name).predict(X), expected, rtol=1e-6)  # loaded in this process
    np.testing.assert_allclose(manager.predict(name, X), expected, rtol=1e-6)  # served by a worker process
    return mv


def test_sklearn_pipeline_round_trips_with_skops_and_records_its_metadata(manager, data) -> None:
    pytest.importorskip("skops")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    mv = assert_round_trip(
        manager,
        model,
        "churn",
        X,
        model.predict(X),
        metrics={"accuracy": np.float64(0.93)},
        params={"C": 1.0},
        tags={"team": "growth"},
    )
    assert (mv.flavor, mv.format, mv.version) == ("sklearn", "skops", 1)
    assert mv.signature.to_json() == {
        "type": "dataframe",
        "columns": [
            {"name": "tenure", "dtype": "float64"},
            {"name": "spend", "dtype": "float64"},
            {"name": "plan", "dtype": "int64"},
        ],
        "shape": None,
        "dtype": None,
    }
    assert mv.metrics == {"accuracy": 0.93} and mv.params == {"C": 1.0} and mv.tags == {"team": "growth"}
    assert "scikit-learn" in mv.libraries and "numpy" in mv.libraries and "python" in mv.libraries
    assert set(mv.metadata["profile"]["columns"]) == {"tenure", "spend", "plan"}


def test_sklearn_with_a_notebook_function_falls_back_from_skops_and_still_loads_on_workers(manager, data) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    ns = notebook_namespace("def double(x):\n    return x * 2.0\n")
    X, y = data
    model = make_pipeline(FunctionTransformer(ns["double"]), LinearRegression()).fit(X, y)
    mv = assert_round_trip(manager, model, "doubled", X, model.predict(X))
    assert mv.flavor == "sklearn" and mv.format in ("joblib", "cloudpickle")
    assert mv.metadata["note"]  # says why skops was not used


def test_xgboost_native_format_round_trips(manager, data) -> None:
    xgb = pytest.importorskip("xgboost")
    X, y = data
    model = xgb.XGBClassifier(n_estimators=8, max_depth=3).fit(X, y)
    mv = assert_round_trip(manager, model, "xgb", X, model.predict(X))
    assert (mv.flavor, mv.format) == ("xgboost", "ubj")
    booster = model.get_booster()
    mv = manager.put(booster, "xgb-booster", sample_input=X[:10])
    expected = booster.predict(xgb.DMatrix(X))
    np.testing.assert_allclose(manager.predict("xgb-booster", X), expected, rtol=1e-6)


def test_lightgbm_round_trips(manager, data) -> None:
    lgb = pytest.importorskip("lightgbm")
    X, y = data
    model = lgb.LGBMRegressor(n_estimators=10, min_child_samples=5, verbose=-1).fit(X, y)
    mv = assert_round_trip(manager, model, "lgbm", X, model.predict(X))
    assert mv.flavor == "lightgbm"
    booster = model.booster_
    mv = manager.put(booster, "lgbm-booster", sample_input=X[:10])
    assert mv.format == "lightgbm-text"
    np.testing.assert_allclose(manager.predict("lgbm-booster", X), booster.predict(X), rtol=1e-6)


def test_torch_module_defined_in_a_notebook_round_trips(manager) -> None:
    torch = pytest.importorskip("torch")
    ns = notebook_namespace(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.layer = torch.nn.Linear(4, 2)\n"
        "    def forward(self, x):\n"
        "        return torch.softmax(self.layer(x), dim=1)\n"
    )
    torch.manual_seed(0)
    net = ns["Net"]()
    X = np.random.default_rng(1).normal(size=(16, 4)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.as_tensor(X)).numpy()
    mv = manager.put(net, "net", sample_input=X)
    assert (mv.flavor, mv.signature) == ("torch", {"type": "ndarray", "shape": [-1, 4], "dtype": "float32"})
    np.testing.assert_allclose(manager.predict("net", X), expected, rtol=1e-5)


def test_generic_cloudpickle_flavor_for_any_object_with_predict(manager) -> None:
    ns = notebook_namespace(
        "class Rule:\n    def __init__(self, k):\n        self.k = k\n"
        "    def predict(self, X):\n        return np.asarray(X).sum(axis=1) * self.k\n"
    )
    X = np.arange(12, dtype=float).reshape(4, 3)
    mv = manager.put(ns["Rule"](3), "rule", sample_input=X)
    assert (mv.flavor, mv.format) == ("generic", "cloudpickle")
    np.testing.assert_allclose(manager.predict("rule", X), X.sum(axis=1) * 3)
    assert flavor_for(ns["Rule"](1)).name == "generic"


def test_blob_is_self_describing() -> None:
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier(strategy="constant", constant=1).fit([[0], [1]], [0, 1])
    blob, header = dumps_model(model, extra={"method": "predict_proba"})
    loaded = loads_model(blob)
    assert header["flavor"] == "sklearn" and loaded.header["method"] == "predict_proba"
    assert loaded.predict([[5]]).tolist() == [[0.0, 1.0]]
    with pytest.raises(InvalidInputError, match="not a stored nbdeploy model"):
        loads_model(b"not a model")


def test_versions_aliases_and_deletion(manager, data) -> None:
    from sklearn.dummy import DummyClassifier

    X, _ = data
    for constant in (0, 1, 2):
        model = DummyClassifier(strategy="constant", constant=constant).fit(X, [0, 1, 2] * 40)
        manager.put(model, "const", sample_input=X[:5], alias="production" if constant == 1 else None)
    assert [v.version for v in manager.versions("const")] == [1, 2, 3]
    assert manager.predict("const", X[:2]).tolist() == [2, 2]  # the newest
    assert manager.predict("const", X[:2], alias="production").tolist() == [1, 1]
    assert manager.predict("const", X[:2], version=1).tolist() == [0, 0]
    assert manager.get("const", alias="production").constant == 1
    manager.set_alias("const", "production", 3)
    assert manager.predict("const", X[:1], alias="production").tolist() == [2]  # an alias move is seen at once
    info = manager.info("const")
    assert info.aliases == {"production": 3} and [v.version for v in info.versions] == [1, 2, 3]
    assert info.example["dataframe_split"]["columns"] == ["tenure", "spend", "plan"]
    manager.delete_version("const", 3)
    assert manager.predict("const", X[:1]).tolist() == [1]
    with pytest.raises(NotFoundError, match="no alias 'production'"):
        manager.predict("const", X[:1], alias="production")
    with pytest.raises(NotFoundError, match="no version 9"):
        manager.predict("const", X[:1], version=9)
    with pytest.raises(InvalidInputError, match="not both"):
        manager.predict("const", X[:1], version=1, alias="production")
    assert [m.name for m in manager.list()] == ["const"]
    assert manager.delete("const") == 2
    with pytest.raises(NotFoundError, match="no model named 'const'"):
        manager.predict("const", X[:1])


def test_bad_names_metadata_and_unstorable_models_store_nothing(manager, data) -> None:
    from sklearn.dummy import DummyClassifier

    X, y = data
    model = DummyClassifier().fit(X, y)
    with pytest.raises(InvalidNameError):
        manager.put(model, "../evil")
    with pytest.raises(InvalidInputError, match="metrics must be a dict"):
        manager.put(model, "m", metrics=[0.9])
    with pytest.raises(InvalidInputError, match="no method 'transform_all'"):
        manager.put(model, "m", method="transform_all")
    ns = notebook_namespace(
        "import threading\nclass Locked:\n    def __init__(self):\n        self.lock = threading.Lock()\n"
        "    def predict(self, X):\n        return X\n"
    )
    with pytest.raises(InvalidInputError, match="cannot be stored"):
        manager.put(ns["Locked"](), "m")
    assert nbd.store.versions("model", "m") == []


def test_python_predict_checks_the_signature(manager, data) -> None:
    from sklearn.dummy import DummyClassifier

    X, y = data
    manager.put(DummyClassifier().fit(X, y), "sig", sample_input=X[:5])
    with pytest.raises(SignatureError) as err:
        manager.predict("sig", X[["tenure", "spend"]])
    assert err.value.errors == {"plan": "missing column"}
    bad = X[:2].astype({"plan": str})
    with pytest.raises(SignatureError) as err:
        manager.predict("sig", bad)
    assert set(err.value.errors) == {"plan"} and "expected an integer" in err.value.errors["plan"]


def test_module_level_api(nbd_env, data) -> None:
    from sklearn.linear_model import LinearRegression

    X, y = data
    model = LinearRegression().fit(X, y)
    mv = nbd.models.put(model, "lin", metrics={"r2": 0.5}, sample_input=X[:10], alias="staging")
    assert mv.aliases == ("staging",) and mv.path == "/nbdeploy/api/models/lin/predict"
    np.testing.assert_allclose(nbd.models.predict("lin", X[:3]), model.predict(X[:3]))
    assert nbd.models.get("lin", alias="staging").coef_.tolist() == model.coef_.tolist()
    assert [v.version for v in nbd.models.versions("lin")] == [1]
    assert nbd.models.available_flavors()["generic"] is True
    nbd.default().close()


SKOPS_PROBE = """
import json, sys
import nbdeploy.store  # a package that delegates names to the default app's manager
from nbdeploy.models.skops_import import _trusted_estimator_names, skops_io
sio = skops_io()
payload = open(sys.argv[1], "rb").read()
try:
    sio.loads(payload, trusted=[])
    refused = None
except Exception as exc:
    refused = type(exc).__name__
print(json.dumps({"names": _trusted_estimator_names(), "walked": "sklearn.utils._testing" in sys.modules,
                  "catalog": "nbdeploy.store.catalog" in sys.modules,
                  "untrusted": sio.get_untrusted_types(data=payload), "refused": refused}))
"""


def test_skops_imported_from_the_recorded_estimator_names_trusts_and_refuses_what_a_full_import_does(
    tmp_path: Path, data, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers import skops.io without walking all of scikit-learn once a full import recorded its estimators' names
    (per version, in the user's cache); its trusted types, and what it refuses to load, stay the same."""
    import json
    import operator
    import os
    import subprocess
    import sys

    pytest.importorskip("skops")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from nbdeploy.models import skops_import

    sio = skops_import.skops_io()  # here: a full import (or the one this process already made)
    full = skops_import._trusted_estimator_names()
    assert full and all(name.startswith("sklearn.") for name in full)
    X, y = data
    model = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression()).fit(X, y)
    payload = tmp_path / "model.skops"
    payload.write_bytes(sio.dumps(model))
    untrusted = sio.get_untrusted_types(data=payload.read_bytes())
    assert untrusted  # operator.neg is not trusted by default: loading it without trusting it is refused
    with pytest.raises(Exception) as refused:
        sio.loads(payload.read_bytes(), trusted=[])

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    names_file = Path(skops_import._estimator_names_file())
    names_file.parent.mkdir(parents=True)
    names_file.write_text(json.dumps(["sklearn.evil.Thing", "os.system"]))  # not all scikit-learn's: ignored
    assert skops_import._read_estimator_names(str(names_file)) is None
    names_file.write_text(json.dumps(full))
    probe = subprocess.run(
        [sys.executable, "-c", SKOPS_PROBE, str(payload)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(probe.stdout)
    assert got["walked"] is False  # all_estimators' walk (sklearn.utils._testing, pytest, …) was skipped
    # skops' import asks every module for names (pickle.whichmodule): nbdeploy's packages answer without building
    # the default app, so a worker importing skops opens no catalog
    assert got["catalog"] is False
    assert got["names"] == full
    assert got["untrusted"] == untrusted and got["refused"] == type(refused.value).__name__


def test_a_replica_predicts_a_fast_version_in_its_event_loop_and_bad_input_still_fails_alone(
    manager: ModelManager, data: tuple[pd.DataFrame, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a version's batches are known to take a millisecond or two, a replica predicts them in its event loop
    (no thread hand-off); the answers are the same, and one bad call of a batch still fails alone."""
    import asyncio

    from sklearn.linear_model import LogisticRegression

    from nbdeploy.models import serving
    from nbdeploy.models.serving import ModelActor

    # what is "fast" is measured (CPU time) and differs between machines: the test sets the bar, not the clock
    monkeypatch.setattr(serving, "INLINE_PREDICT_MS", 1e9)
    from nbdeploy.runtime.messages import ModelCall

    X, y = data
    version = manager.put(LogisticRegression().fit(X, y), "fast", sample_input=X.head(5))
    columns = tuple(X.columns)
    good = ModelCall(version.sha256, "frame", columns, X.head(2).to_numpy().tolist())
    bad = ModelCall(version.sha256, "frame", columns, [["not a number"] * len(columns)])
    actor = ModelActor(manager.store.url, threads=1)

    async def batches() -> list[list]:
        return [await actor._predict([good, good]) for _ in range(5)] + [await actor._predict([good, bad, good])]

    answers = asyncio.run(batches())
    expected = LogisticRegression().fit(X, y).predict(X.head(2)).tolist()
    assert [o.value for o in answers[0]] == [json.dumps(expected, separators=(",", ":"))] * 2
    assert all([o.value for o in a] == [o.value for o in answers[0]] for a in answers[1:5])
    # the first two batches (load, then learn) ran in a thread, the other four (the mixed one too) inline
    assert actor.counters()["inline"] == 4
    ok, failed, ok2 = answers[5]
    assert ok.ok and ok2.ok and ok.value == ok2.value
    assert failed.status == "invalid"
    monkeypatch.setattr(serving, "INLINE_PREDICT_MS", 0.0)  # a slow version: back to a thread, same answers
    again = asyncio.run(actor._predict([good, good]))
    assert [o.value for o in again] == [o.value for o in answers[0]]
    assert actor.counters()["inline"] == 4
    actor.pool.shutdown()
