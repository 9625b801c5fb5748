"""Profiles (auto-EDA) computed on the shared multi-process Dask cluster, checked against pandas' own numbers; the
report stored with the version; the models' drift baseline is the same code path; the CLI and the magic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import nbdeploy as nbd
from nbdeploy.datasets.profiling import baseline, profile_frame


@pytest.fixture
def app(nbd_env: Path):
    app = nbd.default()
    yield app
    app.close()


def data(rows: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    df = pd.DataFrame(
        {
            "x": rng.normal(10, 2, rows),
            "y": np.nan,
            "skewed": rng.lognormal(0, 1.5, rows),
            "const": 1,
            "city": rng.choice(["berlin", "lyon", "oslo"], rows),
            "user": [f"u{i}" for i in range(rows)],
        }
    )
    df["y"] = df["x"] * 3 + rng.normal(0, 0.1, rows)
    df.loc[: rows * 0.6, "y"] = np.nan  # 60 % missing
    return pd.concat([df, df.iloc[:25]], ignore_index=True)  # 25 duplicate rows


def test_the_profile_is_computed_on_the_cluster_and_matches_pandas(app) -> None:
    import dask.dataframe as dd

    df = data()
    app.datasets.put(dd.from_pandas(df, npartitions=4), "people")
    report = app.datasets.profile("people")
    n = report.numbers
    assert (n["rows"], n["columns_count"], n["partitions"], n["duplicates"]) == (len(df), 6, 4, 25)
    x = n["columns"]["x"]
    assert x["mean"] == pytest.approx(df["x"].mean()) and x["std"] == pytest.approx(df["x"].std(ddof=0))
    assert (x["min"], x["max"]) == (pytest.approx(df["x"].min()), pytest.approx(df["x"].max()))
    assert x["quantiles"]["50%"] == pytest.approx(df["x"].median(), rel=0.02)
    assert x["skew"] == pytest.approx(df["x"].skew(), abs=0.02)
    assert sum(x["histogram"]["counts"]) == len(df)
    assert n["columns"]["y"]["missing"] == int(df["y"].isna().sum())
    assert n["columns"]["city"]["distinct"] == 3 and n["columns"]["city"]["distinct_exact"]
    assert n["columns"]["user"]["distinct"] == pytest.approx(df["user"].nunique(), rel=0.05)
    assert {k for k, _ in n["columns"]["city"]["top"]} == {"berlin", "lyon", "oslo"}
    names, matrix = n["correlations"]["columns"], n["correlations"]["matrix"]
    assert matrix[names.index("x")][names.index("y")] == pytest.approx(df["x"].corr(df["y"]), abs=1e-6)
    kinds = {(w["column"], w["kind"]) for w in report.warnings}
    assert {("const", "constant"), ("y", "missing"), ("skewed", "skewed"), ("user", "high_cardinality")} <= kinds
    assert ("", "duplicates") in kinds and ("x", "skewed") not in kinds


def test_infinities_are_counted_apart_and_both_passes_agree(app, monkeypatch) -> None:
    import dask.dataframe as dd

    from nbdeploy.datasets import profiling

    df = data(2000)
    df.loc[[3, 500, 1500], "x"] = np.inf
    df.loc[[7, 1700], "x"] = -np.inf
    app.datasets.put(dd.from_pandas(df, npartitions=3), "infinite")
    kept = app.datasets.profile("infinite").numbers  # small: read once and kept in the workers' memory
    monkeypatch.setattr(profiling, "KEEP_SHARE", 0.0)  # as a big dataset: read again for the second pass
    read_twice = app.datasets.profile("infinite", refresh=True).numbers
    kept.pop("seconds"), read_twice.pop("seconds")
    assert kept == read_twice
    x = kept["columns"]["x"]
    finite = df["x"][np.isfinite(df["x"])]
    assert x["infinite"] == 5 and x["present"] == len(df)
    assert all(np.isfinite(x["histogram"]["edges"])) and (x["min"], x["max"]) == (finite.min(), finite.max())
    assert sum(x["histogram"]["counts"]) == len(finite) and x["mean"] == pytest.approx(finite.mean())
    assert sum(x["deciles"]["counts"]) == len(df)  # the drift bins are open-ended: infinities in the outer ones
    assert x["deciles"]["counts"][0] >= 2 and x["deciles"]["counts"][-1] >= 3
    html = app.datasets.profile("infinite").html
    assert "infinite" in html and "left out of the statistics and histogram" in html


def test_the_report_is_html_with_figures_stored_with_the_version(app) -> None:
    app.datasets.put(data(500), "people")
    first = app.datasets.profile("people")
    assert "<h1>people v1</h1>" in first.html and "data:image/png;base64," in first.html
    assert "Correlations" in first.html and "city" in first.html
    again = app.datasets.profile("people")
    assert again.created_at == first.created_at  # stored: not computed again
    assert app.datasets.version("people").profiled
    assert app.datasets.profile("people", refresh=True).created_at > first.created_at
    assert app.datasets.profile_html("people", 1) == app.datasets.profile("people").html
    blobs = app.store.catalog.live_hashes()
    assert all(b in blobs for b in _profile_blobs(app))  # gc keeps the report


def _profile_blobs(app) -> list[str]:
    import sqlalchemy as sa

    from nbdeploy.datasets.tables import DatasetProfileRow

    with app.store.catalog.session() as s:
        rows = s.execute(sa.select(DatasetProfileRow.json_sha256, DatasetProfileRow.html_sha256)).all()
    return [h for row in rows for h in row]


def test_nested_values_are_profiled_by_their_text(app) -> None:
    app.datasets.put([{"tags": ["a", "b"], "meta": {"k": 1}}, {"tags": ["a", "b"], "meta": {"k": 1}}], "nested")
    n = app.datasets.profile("nested").numbers
    assert n["rows"] == 2 and n["duplicates"] == 1 and n["columns"]["meta"]["distinct"] == 1


def test_the_model_drift_baseline_is_the_dataset_profile_baseline(app) -> None:
    from sklearn.linear_model import LinearRegression

    df = data(300)[["x", "skewed", "city"]]
    numeric = df[["x", "skewed"]]
    v = app.models.put(LinearRegression().fit(numeric, df["x"]), "lin", sample_input=df)
    stored = app.store.get("model", "lin", v.version).metadata["profile"]
    assert stored == baseline(profile_frame(df))
    app.datasets.put(df, "train")
    assert app.datasets.profile("train").baseline == stored  # one partition: the same numbers
    report = app.models.drift("lin")
    assert set(report.columns) == {"x", "skewed", "city"}


def test_the_cli_profiles_and_writes_the_report(app, tmp_path: Path) -> None:
    from nbdeploy.cli import main

    csv = tmp_path / "people.csv"
    data(200).to_csv(csv, index=False)
    runner = CliRunner()
    put = runner.invoke(main, ["datasets", "put", "people", str(csv)], catch_exceptions=False)
    assert put.exit_code == 0 and "stored people v1" in put.output
    out = tmp_path / "report.html"
    done = runner.invoke(main, ["datasets", "profile", "people", "-o", str(out)], catch_exceptions=False)
    assert done.exit_code == 0 and "warning:" in done.output and out.read_text().startswith("<!doctype html>")
    listing = runner.invoke(main, ["datasets", "list"], catch_exceptions=False)
    assert "people" in listing.output and "rows" in listing.output
    lineage = runner.invoke(main, ["datasets", "lineage", "people"], catch_exceptions=False)
    assert "v1" in lineage.output and "outside any run" in lineage.output


def test_the_magic_lists_and_shows_datasets(app) -> None:
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "nbdeploy")
    app.datasets.put(data(50), "people")
    result = shell.run_cell("%datasets")
    assert result.success
    assert shell.run_cell("%datasets people").success


def test_fg_data_profiling_gives_the_full_report_when_installed(app) -> None:
    pytest.importorskip("data_profiling", reason="the optional extra eda (fg-data-profiling) is not installed")
    app.datasets.put(data(200), "people")
    report = app.datasets.profile("people", engine="fg-data-profiling")
    assert report.engine == "fg-data-profiling" and "<html" in report.html.lower()
