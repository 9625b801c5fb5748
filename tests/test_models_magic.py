"""`%model put` and `%models` in an IPython shell, drift arithmetic, and the cheapness of `import nbdeploy.models`."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from nbdeploy.models.psi import drift_report, profile_sample, psi


@pytest.fixture
def shell(nbd_env):
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbdeploy")
    yield ip
    import nbdeploy as nbd

    nbd.default().close()


def test_model_put_magic_stores_the_variable_and_models_lists_it(shell, capsys) -> None:
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"tenure": [1.0, 2.0, 3.0, 4.0], "spend": [0.5, 0.1, 0.9, 0.3]})
    shell.user_ns.update(clf=LogisticRegression().fit(X, [0, 1, 0, 1]), rows=X)
    shell.run_line_magic("model", "put clf churn --alias production --sample rows --metrics '{\"auc\": 0.75}'")
    out = capsys.readouterr().out
    assert "stored model churn v1 (sklearn" in out and "as production" in out
    assert "input: tenure (float64), spend (float64)" in out
    assert "/nbdeploy/api/models/churn/predict" in out and '"dataframe_split"' in out
    shell.run_line_magic("models", "")
    listing = capsys.readouterr().out
    assert "churn" in listing and "production" in listing and "auc=0.75" in listing
    shell.run_line_magic("model", "put nothing churn")
    assert "no variable 'nothing'" in capsys.readouterr().out
    shell.run_line_magic("model", "put clf Bad/Name")
    assert "not stored: invalid name" in capsys.readouterr().out


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(size=5000), "colour": rng.choice(["red", "blue"], size=5000)})
    profile = profile_sample(train)
    assert len(profile["columns"]["x"]["edges"]) == 9 and profile["columns"]["colour"]["kind"] == "categorical"
    same = [[float(v), c] for v, c in zip(rng.normal(size=2000), rng.choice(["red", "blue"], size=2000), strict=True)]
    moved = [[float(v) + 1.0, "green"] for v in rng.normal(size=2000)]
    stable = drift_report("m", 1, profile, ["x", "colour"], same)
    drifted = drift_report("m", 1, profile, ["x", "colour"], moved)
    assert stable.psi["x"] < 0.1 and stable.psi["colour"] < 0.1 and stable.drifted == []
    assert drifted.drifted == ["x", "colour"]
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    empty = drift_report("m", 1, None, [], [])
    assert empty.psi == {} and "sample_input" in empty.note


def test_importing_the_models_api_imports_nothing_heavy() -> None:
    code = (
        "import sys, nbdeploy as nbd; nbd.models; import nbdeploy.models.magics; "
        "heavy = ('sklearn', 'pandas', 'dask.dataframe', 'matplotlib', 'distributed', 'torch', 'xgboost'); "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
