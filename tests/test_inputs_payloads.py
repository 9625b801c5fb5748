"""Model payloads: no rows, wrong widths and shapes, ragged rows, wrong value types, nulls, nesting and column
mix-ups are a 400 or a 422 naming the field, with MLflow's wording where MLflow has one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import nbdeploy as nbd
from nbdeploy.exceptions import InvalidInputError, SignatureError
from nbdeploy.models.signature import FORMATS, Rows, parse_payload, rows_from_python

ARRAY = {"type": "ndarray", "shape": [-1, 2], "dtype": "float64"}
INTS = {"type": "ndarray", "shape": [-1, 2], "dtype": "int32"}
FREE = {"type": "ndarray", "shape": [-1, -1], "dtype": "float64"}
FLAT = {"type": "ndarray", "shape": [-1], "dtype": "float64"}
FRAME = {
    "type": "dataframe",
    "columns": [
        {"name": "a", "dtype": "float64"},
        {"name": "b", "dtype": "float64"},
        {"name": "kind", "dtype": "int64"},
        {"name": "ok", "dtype": "bool"},
        {"name": "label", "dtype": "object"},
    ],
}
ONE = {"type": "dataframe", "columns": [{"name": "x", "dtype": "float64"}]}


def nested(depth: int) -> list[Any]:
    value: list[Any] = [1]
    for _ in range(depth):
        value = [value]
    return value


NULLABLE = {"type": "dataframe", "columns": [{"name": "n", "dtype": "Int64"}, {"name": "f", "dtype": "boolean"}]}


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": []},
        {"instances": []},
        {"dataframe_records": []},
        {"dataframe_split": {"columns": ["a", "b"], "data": []}},
        {"inputs": {}},
        {"inputs": {"a": [], "b": []}},
        {"instances": {"a": []}},
    ],
)
@pytest.mark.parametrize("signature", [None, ARRAY, FRAME])
def test_a_payload_without_rows_is_a_400(body: dict[str, Any], signature: dict[str, Any] | None) -> None:
    with pytest.raises(InvalidInputError, match="holds no rows") as err:
        parse_payload(body, signature)
    assert err.value.field == next(iter(body)) and err.value.http_status == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"inputs": [[1.0], [2.0]]}, "shape [0]"),
        ({"inputs": [1.0, 2.0]}, "shape [0]"),
        ({"instances": [[1.0, 2.0, 3.0]]}, "shape [0]"),
        ({"dataframe_split": {"columns": ["x"], "data": [[1.0], [2.0]]}}, "shape"),
        ({"dataframe_records": [{"x": 1.0}]}, "shape"),
        ({"inputs": {"x": [1.0, 2.0]}}, "shape"),
        ({"dataframe_split": {"columns": ["x", "y", "z"], "data": [[1.0, 2.0, 3.0]]}}, "shape"),
    ],
)
def test_the_wrong_width_for_an_array_signature_is_a_422_naming_the_shape(body: dict[str, Any], field: str) -> None:
    with pytest.raises(SignatureError) as err:
        parse_payload(body, ARRAY)
    assert set(err.value.errors) == {field} and err.value.http_status == 422
    assert "shape" in str(err.value) and "(-1, 2)" in str(err.value)


def test_a_table_whose_width_fits_an_array_signature_becomes_its_rows() -> None:
    rows = parse_payload({"dataframe_split": {"columns": ["p", "q"], "data": [[1.0, 2.0]]}}, ARRAY)
    assert rows == Rows("array", None, [[1.0, 2.0]])
    assert parse_payload({"inputs": {"x": [1.0, 2.0]}}, FLAT).data == [1.0, 2.0]
    assert parse_payload({"dataframe_records": [{"x": 1.0}]}, FLAT).data == [1.0]


@pytest.mark.parametrize(
    ("body", "signature", "field", "says"),
    [
        ({"inputs": [[1.0, 2.0], [3.0]]}, ARRAY, "shape [1]", "expected 2 values, got 1"),
        ({"inputs": [[1.0, 2.0], [3.0]]}, FREE, "shape [1]", "ragged"),
        ({"inputs": [[1.0, "two"]]}, ARRAY, "shape [0][1]", "expected a number"),
        ({"inputs": [[1.0, True]]}, ARRAY, "shape [0][1]", "expected a number"),
        ({"inputs": [[1, None]]}, INTS, "shape [0][1]", "cannot hold missing values"),
        ({"inputs": [[1, 1.5]]}, INTS, "shape [0][1]", "expected an integer"),
        ({"inputs": [[1, 2**40]]}, INTS, "shape [0][1]", "out of range for int32"),
        ({"inputs": [[1.0, 10**400]]}, ARRAY, "shape [0][1]", "too large"),
        ({"inputs": [[[1.0, 2.0], [3.0, 4.0]]]}, ARRAY, "shape [0][0]", "nested deeper than the signature"),
        ({"inputs": [[1.0, {"v": 2}]]}, ARRAY, "shape [0][1]", "expected a number, got an object"),
        (
            {"dataframe_split": {"columns": ["a", "b", "kind", "ok", "label"], "data": [[1.0, "x", 1, True, "l"]]}},
            FRAME,
            "b",
            "expected a number",
        ),
        (
            {"dataframe_split": {"columns": ["a", "b", "kind", "ok", "label"], "data": [[1.0, 2.0, None, True, "l"]]}},
            FRAME,
            "kind",
            "cannot hold missing values",
        ),
        (
            {"dataframe_split": {"columns": ["a", "b", "kind", "ok", "label"], "data": [[1.0, 2.0, 1, None, "l"]]}},
            FRAME,
            "ok",
            "cannot hold missing values",
        ),
        (
            {"dataframe_split": {"columns": ["a", "b", "kind", "ok", "label"], "data": [[1.0, [2.0], 1, True, "l"]]}},
            FRAME,
            "b",
            "got an array",
        ),
        (
            {"dataframe_split": {"columns": ["a", "b", "kind", "ok", "label"], "data": [[1.0, 2.0, 1, True, 7]]}},
            FRAME,
            "label",
            "expected a string",
        ),
        (
            {"dataframe_split": {"columns": ["a", "b", "kind", "ok", "label"], "data": [[1.0, 2.0, 1]]}},
            FRAME,
            "row 0",
            "the model takes 5",
        ),
        (
            {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}},
            FRAME,
            "kind",
            "Model is missing inputs ['kind', 'ok', 'label']",
        ),
        (
            {"dataframe_records": [{"a": 1.0, "b": 2.0, "kind": 1, "ok": True, "label": "l", "colour": "red"}]},
            FRAME,
            "colour",
            "Unknown inputs ['colour']",
        ),
        (
            {"dataframe_records": [{"a": 1.0, "b": 2.0, "kind": 1, "ok": True, "label": "l"}, {"a": 1.0}]},
            FRAME,
            "b",
            "Model is missing inputs",
        ),
        (
            {"inputs": {"a": [1.0], "b": [2.0], "kind": [1], "ok": [True], "label": ["l"], "z": [0]}},
            FRAME,
            "z",
            "unexpected column",
        ),
    ],
)
def test_input_that_does_not_fit_the_signature_is_a_422_naming_the_field(
    body: dict[str, Any], signature: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(SignatureError) as err:
        parse_payload(body, signature)
    assert field in err.value.errors, err.value.errors
    assert says in str(err.value)
    assert err.value.to_json()["error"]["fields"] == err.value.errors


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"inputs": [[1, 2], [3]]}, "inputs", "ragged"),
        ({"inputs": [[1, 2], 3]}, "inputs", "ragged"),
        ({"instances": [[[1]], [[1, 2]]]}, "instances", "ragged"),
        ({"inputs": nested(40)}, "inputs", "more than 32 deep"),
        ({"inputs": {"a": [1], "b": [1, 2]}}, "inputs", "same length"),
        ({"inputs": 3}, "inputs", "must be a list"),
        ({"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}, "dataframe_split", "more than once"),
        ({"dataframe_split": {"columns": [["a"]], "data": [[1]]}}, "dataframe_split", "names must be strings"),
        ({"dataframe_split": {"columns": "a", "data": [[1]]}}, "dataframe_split", "list of names"),
        ({"dataframe_split": {"data": [[1]]}}, "dataframe_split", "needs 'columns'"),
        ({"dataframe_records": [[1, 2]]}, "dataframe_records", "list of objects"),
        ({"inputs": [[1]], "instances": [[1]]}, "body", "exactly one of"),
        ({"inputs": [[1]], "extra": 1}, "extra", "exactly one of"),
        ({}, "body", "exactly one of"),
    ],
)
def test_a_malformed_payload_is_a_400_naming_the_field(body: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(InvalidInputError, match=says) as err:
        parse_payload(body, None)
    assert err.value.field == field


def test_mlflow_shapes_that_parse() -> None:
    frame_row = [1.0, 2.0, 3, False, "l"]
    names = [c["name"] for c in FRAME["columns"]]
    bodies = [
        {"dataframe_split": {"columns": names, "data": [frame_row]}},
        {"dataframe_split": {"columns": list(reversed(names)), "data": [list(reversed(frame_row))]}},
        {"dataframe_records": [dict(zip(names, frame_row, strict=True))]},
        {"instances": [dict(zip(names, frame_row, strict=True))]},
        {"inputs": [frame_row], "params": {"ignored": True}},
        {"inputs": {n: [v] for n, v in zip(names, frame_row, strict=True)}},
        {"inputs": dict(zip(names, frame_row, strict=True))},  # one row as an object of values, as MLflow reads it
    ]
    for body in bodies:
        assert parse_payload(body, FRAME) == Rows("frame", tuple(names), [frame_row]), body
    assert parse_payload({"inputs": [1.0, 2.0]}, ONE).data == [[1.0], [2.0]]  # one column: a list of its values
    assert parse_payload({"dataframe_split": {"columns": ["n", "f"], "data": [[None, None]]}}, NULLABLE).data == [
        [None, None]
    ]
    assert parse_payload({"inputs": [[1.0, None]]}, ARRAY).data == [[1.0, None]]  # null reads as NaN in a float
    assert set(FORMATS) == {"dataframe_split", "dataframe_records", "instances", "inputs"}


def test_python_callers_get_the_same_checks_and_may_ask_for_empty_rows() -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    with pytest.raises(InvalidInputError, match="holds no rows"):
        rows_from_python(np.zeros((0, 2)), ARRAY)
    with pytest.raises(InvalidInputError, match="holds no rows"):
        rows_from_python(pd.DataFrame({"x": pd.Series([], dtype=float)}), ONE)
    assert rows_from_python(np.zeros((0, 2)), ARRAY, allow_empty=True) == Rows("array", None, [])
    empty = rows_from_python(pd.DataFrame({"x": pd.Series([], dtype=float)}), ONE, allow_empty=True)
    assert empty == Rows("frame", ("x",), [])
    with pytest.raises(SignatureError) as err:
        rows_from_python(np.ones((3, 1)), ARRAY)
    assert err.value.errors == {"shape [0]": "expected 2 values, got 1"}


def test_a_refused_prediction_never_reaches_the_model(nbd_home: Path) -> None:
    np = pytest.importorskip("numpy")
    linear = pytest.importorskip("sklearn.linear_model")
    X = np.arange(20, dtype=float).reshape(10, 2)
    with nbd.Nbdeploy() as app:
        app.models.put(linear.LinearRegression().fit(X, X.sum(axis=1)), "lin", sample_input=X)
        for body, error in (
            ({"inputs": []}, InvalidInputError),
            ({"inputs": [[1.0]]}, SignatureError),
            ({"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}, SignatureError),
        ):
            with pytest.raises(error):
                app.models.predict("lin", body)  # refused before any worker or cluster is asked
        assert [v.version for v in app.models.versions("lin")] == [1]
