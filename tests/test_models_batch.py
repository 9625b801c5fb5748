"""Batch prediction on a real multi-process Dask cluster over real Parquet and CSV files equals pandas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbdeploy as nbd
from nbdeploy.exceptions import SignatureError
from nbdeploy.models import ModelManager

pytest.importorskip("pyarrow")


@pytest.fixture
def manager(nbd_env: Path) -> ModelManager:
    m = nbd.default().models
    yield m
    m.close()


def dataset(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"x": rng.normal(size=rows), "y": rng.normal(size=rows), "segment": rng.integers(0, 3, size=rows)}
    )


@pytest.fixture
def fitted(manager):
    from sklearn.ensemble import RandomForestClassifier

    train = dataset(300, 0)
    model = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0)
    model.fit(train, (train.x * train.segment > train.y).astype(int))
    manager.put(model, "rf", sample_input=train[:20])
    return model


def test_multi_partition_parquet_dataset_to_parquet_equals_pandas(manager, fitted, tmp_path: Path) -> None:
    source = tmp_path / "input"
    source.mkdir()
    parts = [dataset(400, seed) for seed in (1, 2, 3)]
    for i, part in enumerate(parts):
        part[["segment", "y", "x"]].to_parquet(source / f"part-{i}.parquet")  # column order differs: selected by name
    whole = pd.concat(parts, ignore_index=True)

    output = tmp_path / "predictions"
    assert manager.predict_batch("rf", str(source), output=str(output)) == str(output)
    written = sorted(p.name for p in output.iterdir())
    assert len([n for n in written if n.endswith(".parquet")]) == 3  # one file per input partition
    got = pd.read_parquet(output)
    assert got.prediction.tolist() == fitted.predict(whole).tolist()

    lazy = manager.predict_batch("rf", str(source))  # a Dask DataFrame, computed on the cluster
    assert lazy.npartitions == 3
    assert lazy.compute().prediction.tolist() == fitted.predict(whole).tolist()


def test_pandas_and_csv_inputs_keep_the_index_and_methods_with_several_outputs(manager, fitted, tmp_path) -> None:
    frame = dataset(500, 4).set_index(pd.RangeIndex(1000, 1500))
    out = nbd.models.predict_batch("rf", frame, npartitions=4).compute()
    assert out.index.tolist() == frame.index.tolist()
    assert out.prediction.tolist() == fitted.predict(frame).tolist()

    csv = tmp_path / "rows.csv"
    frame.to_csv(csv, index=False)
    manager.put(fitted, "rf-proba", sample_input=frame[:20], method="predict_proba")
    proba = manager.predict_batch("rf-proba", str(csv)).compute()
    assert list(proba.columns) == ["prediction_0", "prediction_1"]
    np.testing.assert_allclose(proba.to_numpy(), fitted.predict_proba(frame))
    nbd.default().close()


def test_missing_columns_are_refused_before_anything_runs(manager, fitted) -> None:
    with pytest.raises(SignatureError) as err:
        manager.predict_batch("rf", dataset(10, 5).drop(columns=["segment"]))
    assert err.value.errors == {"segment": "missing column"}
