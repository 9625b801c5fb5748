"""Datasets through the Python API, on a real store and catalog and the shared multi-process Dask cluster: every
kind of input, versions, append, aliases, reads with columns and filters, Dask reads, diff, bad input (nothing
half-written) and lineage from job runs and function calls."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbdeploy as nbd
from nbdeploy.exceptions import InvalidInputError, InvalidNameError, NotFoundError


@pytest.fixture
def app(nbd_env: Path):
    app = nbd.default()
    yield app
    app.close()


def frame(rows: int = 100, start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(start)
    return pd.DataFrame(
        {
            "id": np.arange(start, start + rows),
            "city": rng.choice(["berlin", "lyon", "oslo"], rows),
            "amount": rng.normal(100, 15, rows).round(2),
        }
    )


def version_folders(app) -> list[str]:
    fs, root = app.store.artifacts.fs, app.store.artifacts.root
    return sorted(fs.ls(f"{root}/datasets", detail=False)) if fs.exists(f"{root}/datasets") else []


def test_a_dataframe_round_trips_with_its_schema_rows_size_and_hash(app) -> None:
    df = frame()
    v = app.datasets.put(df, "sales", description="daily sales")
    assert (v.name, v.version, v.rows, v.files) == ("sales", 1, 100, 1)
    assert [(c.name, c.type) for c in v.columns] == [
        ("id", "int64"),
        ("city", "large_string"),
        ("amount", "double"),
    ] or [c.name for c in v.columns] == ["id", "city", "amount"]
    assert v.size > 0 and len(v.sha256) == 64
    pd.testing.assert_frame_equal(app.datasets.get("sales"), df, check_dtype=False)
    assert app.store.get("dataset", "sales").metadata["rows"] == 100  # the catalog holds the description


def test_each_put_is_a_new_immutable_version_and_aliases_move(app) -> None:
    app.datasets.put(frame(10), "sales")
    app.datasets.put(frame(20), "sales", alias="training")
    app.datasets.put(frame(30), "sales")
    assert [v.rows for v in app.datasets.versions("sales")] == [10, 20, 30]
    assert len(app.datasets.get("sales", version=1)) == 10
    assert len(app.datasets.get("sales", version="training")) == 20
    app.datasets.set_alias("sales", "training", 3)
    assert len(app.datasets.get("sales@training")) == 30
    assert app.datasets.path("sales", 1) != app.datasets.path("sales", 2)


def test_append_keeps_the_old_rows_and_adds_the_new(app) -> None:
    app.datasets.put(frame(10), "events")
    v2 = app.datasets.put(frame(5, start=10), "events", append=True)
    assert (v2.rows, v2.appended_to, v2.files) == (15, 1, 2)
    got = app.datasets.get("events")
    assert got["id"].tolist() == list(range(15))
    assert len(app.datasets.get("events", version=1)) == 10  # the old version is untouched


def test_a_schema_change_on_append_is_refused_and_nothing_is_written(app) -> None:
    app.datasets.put(frame(10), "events")
    before = version_folders(app)
    bad = frame(5).rename(columns={"amount": "total"})
    with pytest.raises(InvalidInputError, match=r"'total' is new.*'amount' is missing"):
        app.datasets.put(bad, "events", append=True)
    retyped = frame(5).assign(amount=lambda d: d["amount"].astype(str))
    with pytest.raises(InvalidInputError, match="changed type"):
        app.datasets.put(retyped, "events", append=True)
    assert [v.version for v in app.datasets.versions("events")] == [1]
    assert version_folders(app) == before
    with pytest.raises(NotFoundError, match="put it once without append"):
        app.datasets.put(frame(5), "nothing-yet", append=True)


def test_arrays_records_files_folders_and_urls_are_stored(app, tmp_path: Path) -> None:
    arr = app.datasets.put(np.arange(12.0).reshape(4, 3), "arr")
    assert [c.name for c in arr.columns] == ["x0", "x1", "x2"] and arr.rows == 4
    app.datasets.put([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], "recs")
    assert app.datasets.get("recs").to_dict("records") == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    df = frame(50)
    df.to_csv(tmp_path / "sales.csv", index=False)
    assert app.datasets.put(tmp_path / "sales.csv", "from-csv").rows == 50
    folder = tmp_path / "parts"
    folder.mkdir()
    df.iloc[:20].to_parquet(folder / "a.parquet")
    df.iloc[20:].to_parquet(folder / "b.parquet")
    assert app.datasets.put(folder, "from-folder").rows == 50
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in df.head(7).to_dict("records")))
    assert app.datasets.put(str(tmp_path / "rows.jsonl"), "from-json").rows == 7
    assert app.datasets.put(f"file://{folder}/*.parquet", "from-url").rows == 50
    import fsspec

    with fsspec.open("memory://incoming/x.csv", "w") as fh:
        df.head(3).to_csv(fh, index=False)
    assert app.datasets.put("memory://incoming/x.csv", "from-memory").rows == 3


def test_unsupported_inputs_and_bad_names_say_what_to_do(app, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="pandas or Dask DataFrame"):
        app.datasets.put(object(), "x")
    with pytest.raises(InvalidInputError, match="empty"):
        app.datasets.put([], "x")
    with pytest.raises(InvalidInputError, match="3-dimensional"):
        app.datasets.put(np.zeros((2, 2, 2)), "x")
    with pytest.raises(NotFoundError, match="no file or folder"):
        app.datasets.put(tmp_path / "missing.csv", "x")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInputError, match="not a supported file"):
        app.datasets.put(tmp_path / "notes.txt", "x")
    with pytest.raises(InvalidNameError):
        app.datasets.put(frame(3), "../escape")
    with pytest.raises(InvalidInputError, match="cannot be stored as Parquet"):  # a struct without fields
        app.datasets.put([{"x": {}}], "x")
    assert app.datasets.list().datasets == [] and version_folders(app) == []


def test_columns_and_filters_read_only_what_is_asked_and_missing_columns_are_clear(app) -> None:
    app.datasets.put(frame(100), "sales")
    got = app.datasets.get("sales", columns=["id", "amount"], filters=[("id", ">=", 90)])
    assert list(got.columns) == ["id", "amount"] and got["id"].tolist() == list(range(90, 100))
    with pytest.raises(InvalidInputError, match=r"no column.*'nope'.*its columns: id, city, amount"):
        app.datasets.get("sales", columns=["id", "nope"])
    with pytest.raises(InvalidInputError, match="filter names the column 'ghost'"):
        app.datasets.get("sales", filters=[("ghost", "=", 1)])
    with pytest.raises(NotFoundError, match="no dataset named 'ghost'"):
        app.datasets.get("ghost")


def test_a_dask_dataframe_is_written_by_the_workers_and_read_back_lazily(app) -> None:
    import dask.dataframe as dd

    df = frame(1000)
    ddf = dd.from_pandas(df, npartitions=4)
    v = app.datasets.put(ddf, "big")
    assert (v.rows, v.files, v.source) == (1000, 4, "dask.DataFrame")
    lazy = app.datasets.dask("big", columns=["id", "amount"])
    assert lazy.npartitions == 4
    total = lazy["amount"].sum().compute(scheduler=app.runtime.client())
    assert total == pytest.approx(df["amount"].sum())
    assert pd.read_parquet(app.datasets.path("big"))["id"].tolist() == list(range(1000))  # the URL for other tools
    # a version never changes: its frame is built once per columns and filters, a new version gets its own
    assert app.datasets.dask("big", columns=["id", "amount"]) is lazy
    filtered = app.datasets.dask("big", columns=["id", "amount"], filters=[("id", "<", 10)])
    assert filtered is not lazy and len(filtered.compute(scheduler=app.runtime.client())) == 10
    app.datasets.put(df.iloc[:10], "big")
    assert len(app.datasets.dask("big", columns=["id", "amount"]).compute(scheduler=app.runtime.client())) == 10
    assert app.datasets.dask("big", 1, columns=["id", "amount"]) is lazy


def test_a_big_frame_is_cut_into_parts_streamed_slice_by_slice(app, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbdeploy.datasets import storage

    monkeypatch.setattr(storage, "PART_BYTES", 64 * 1024)  # a small part size stands in for a 10 GB frame
    df = frame(20_000)
    v = app.datasets.put(df, "streamed")
    assert v.files > 3 and v.rows == 20_000
    assert app.datasets.get("streamed")["id"].tolist() == list(range(20_000))


def test_diff_shows_schema_changes_and_row_counts(app) -> None:
    app.datasets.put(frame(10), "sales")
    app.datasets.put(
        frame(12).drop(columns=["city"]).assign(region="eu", amount=lambda d: d["amount"].astype(str)), "sales"
    )
    d = app.datasets.diff("sales", 1, 2)
    assert [c.name for c in d.added] == ["region"] and [c.name for c in d.removed] == ["city"]
    assert d.changed[0]["name"] == "amount" and (d.rows_v1, d.rows_v2, d.rows_delta) == (10, 12, 2)
    assert app.datasets.diff("sales", 1, 1).same_content


def test_delete_hides_versions_and_gc_frees_their_files(app) -> None:
    app.datasets.put(frame(10), "tmp")
    app.datasets.put(frame(11), "tmp")
    app.datasets.delete("tmp", 1)
    assert [v.version for v in app.datasets.versions("tmp")] == [2]
    app.datasets.delete("tmp")
    with pytest.raises(NotFoundError):
        app.datasets.get("tmp")
    report = app.store.gc(grace_seconds=0)
    assert report.removed and version_folders(app) == []


def test_lineage_records_the_job_run_that_wrote_and_the_one_that_read(app, tmp_path: Path) -> None:
    import nbformat

    def notebook(code: str) -> Path:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(code)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = tmp_path / f"nb{abs(hash(code))}.ipynb"
        nbformat.write(nb, path)
        return path

    app.jobs.put(
        notebook("import nbdeploy as nbd, pandas as pd\nnbd.datasets.put(pd.DataFrame({'a': [1, 2]}), 'made')"), "maker"
    )
    app.jobs.put(notebook("import nbdeploy as nbd\nprint(len(nbd.datasets.get('made')))"), "reader")
    writer = app.jobs.run("maker").wait(180).raise_for_status()
    reader = app.jobs.run("reader").wait(180).raise_for_status()
    app.datasets.put(frame(3), "made")  # outside any run
    trace = app.datasets.lineage("made").versions
    assert trace[0].produced_by is not None and trace[0].produced_by.run_ref == str(writer.id)
    assert trace[0].produced_by.label == f"job maker, run {writer.id}"
    assert [e.run_ref for e in trace[0].read_by] == [str(reader.id)]
    assert trace[1].produced_by is None and trace[1].read_by == []


def test_lineage_records_function_calls_and_model_puts_from_a_run(app) -> None:
    from sklearn.linear_model import LinearRegression

    from nbdeploy.datasets import lineage_log as lineage

    app.datasets.put(frame(10), "features")

    store_url, catalog_url = app.settings.store_url, app.settings.catalog_url  # the workers' own home differs

    def count_rows(store_url: str = store_url, catalog_url: str = catalog_url) -> int:
        import nbdeploy as nbd

        with nbd.Nbdeploy(store_url=store_url, catalog_url=catalog_url) as mine:
            return len(mine.datasets.get("features"))

    app.functions.deploy(count_rows, "count-rows")
    assert app.functions.invoke("count-rows") == 10
    reads = app.datasets.lineage("features").versions[0].read_by
    assert [(e.run_kind, e.run_ref) for e in reads] == [("function", "count-rows@1")]
    with lineage.running("tracked", "0123456789abcdef0123456789abcdef"):
        app.models.put(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), "lin")
    rows = lineage.entries(app.store.catalog, "model", "lin")
    assert [(r.run_kind, r.direction, r.version) for r in rows] == [("tracked", "write", 1)]
