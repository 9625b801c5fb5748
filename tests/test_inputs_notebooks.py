"""Malformed notebooks are refused with the field at fault, before anything is stored; the parameters cell is
read the way papermill reads it, with bounded work; parameter values follow papermill, checked strictly only
where the notebook declares a type."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import nbdeploy as nbd
from nbdeploy.exceptions import InvalidInputError, NotFoundError
from nbdeploy.jobs import notebooks
from nbdeploy.jobs.parameter_cell import MAX_CELL_CHARS, Parameter, read_parameters
from nbdeploy.jobs.parameter_values import check_parameters, coerce_parameters
from tests.helpers import NOTEBOOKS

PARAMS = json.loads((NOTEBOOKS / "params.ipynb").read_text())  # cell 1 is the parameters cell


def edited(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    nb = copy.deepcopy(PARAMS)
    change(nb)
    return nb


def set_in(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(nb: dict[str, Any]) -> None:
        target = nb
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


BAD_NOTEBOOKS = {
    "metadata as a list": (set_in(["metadata"], []), "metadata"),
    "kernelspec as a string": (set_in(["metadata", "kernelspec"], "python3"), "metadata.kernelspec"),
    "kernelspec null": (set_in(["metadata", "kernelspec"], None), "metadata.kernelspec"),
    "kernelspec name a path": (set_in(["metadata", "kernelspec", "name"], "../../x"), "metadata.kernelspec.name"),
    "kernelspec name absolute": (set_in(["metadata", "kernelspec", "name"], "/usr/bin/py"), "metadata.kernelspec.name"),
    "kernelspec name a number": (set_in(["metadata", "kernelspec", "name"], 3), "metadata.kernelspec.name"),
    "kernelspec language a list": (
        set_in(["metadata", "kernelspec", "language"], ["py"]),
        "metadata.kernelspec.language",
    ),
    "language_info as a list": (set_in(["metadata", "language_info"], [1]), "metadata.language_info"),
    "language_info name an object": (set_in(["metadata", "language_info", "name"], {}), "metadata.language_info.name"),
    "cell metadata a string": (set_in(["cells", 1, "metadata"], "x"), "cells[1].metadata"),
    "tags a string": (set_in(["cells", 1, "metadata", "tags"], "parameters"), "cells[1].metadata.tags"),
    "tags null": (set_in(["cells", 3, "metadata", "tags"], None), "cells[3].metadata.tags"),
    "tags of numbers": (set_in(["cells", 3, "metadata", "tags"], [1, 2]), "cells[3].metadata.tags"),
    "source a number": (set_in(["cells", 2, "source"], 5), "cells[2].source"),
    "source an object": (set_in(["cells", 2, "source"], {"a": 1}), "cells[2].source"),
    "source lines with a number": (set_in(["cells", 2, "source"], ["x = 1\n", 5]), "cells[2].source"),
    "lone surrogate in a source": (set_in(["cells", 3, "source"], ["x = 1\n", "y = '\ud800'"]), "cells[3].source[1]"),
    "lone surrogate in metadata": (set_in(["metadata", "author"], "\udfff"), "metadata.author"),
    "unknown cell type": (set_in(["cells", 0, "cell_type"], "heading"), "cells[0].cell_type"),
    "cell not an object": (set_in(["cells", 2], "print(1)"), "cells[2]"),
    "outputs an object": (set_in(["cells", 2, "outputs"], {}), "cells[2].outputs"),
    "execution_count text": (set_in(["cells", 2, "execution_count"], "3"), "cells[2].execution_count"),
    "nbformat_minor text": (set_in(["nbformat_minor"], "5"), "nbformat_minor"),
    "huge parameters cell": (set_in(["cells", 1, "source"], "x = " + "-" * 100_000 + "1"), "cells[1].source"),
    "over-long parameters cell": (set_in(["cells", 1, "source"], "x = 1\n" * 10_000), "cells[1].source"),
    "deeply nested brackets": (set_in(["cells", 1, "source"], "x = " + "[" * 1000 + "]" * 1000), "cells[1].source"),
    "brackets just past the limit": (
        set_in(["cells", 1, "source"], "x = " + "(" * 101 + "1" + ")" * 101),
        "cells[1].source",
    ),
    "operators Python cannot compile": (set_in(["cells", 1, "source"], "x = " + "-" * 10_000 + "1"), "cells[1].source"),
    "a long chain Python cannot compile": (set_in(["cells", 1, "source"], "x = 1" + "+1" * 12_000), "cells[1].source"),
    "a NUL in the parameters cell": (set_in(["cells", 1, "source"], "x = 1\x00"), "cells[1].source"),
}


@pytest.mark.parametrize("label", list(BAD_NOTEBOOKS))
def test_a_malformed_notebook_is_a_400_naming_its_field(label: str) -> None:
    change, field = BAD_NOTEBOOKS[label]
    nb = edited(change)
    for form in (nb, json.dumps(nb)):
        started = time.perf_counter()
        with pytest.raises(InvalidInputError) as err:
            loaded, _ = notebooks.load_notebook(form)
            notebooks.inspect_parameters(loaded)
        assert err.value.field == field, (label, str(err.value))
        assert err.value.http_status == 400 and err.value.to_json()["error"]["field"] == field
        assert time.perf_counter() - started < 5, f"{label}: the check must stay cheap"
    assert field.split("[")[0].split(".")[0] in str(err.value) or "parameters cell" in str(err.value)


@pytest.mark.parametrize(
    "label", ["tags a string", "kernelspec name a path", "huge parameters cell", "lone surrogate in a source"]
)
def test_nothing_is_stored_for_a_malformed_notebook(nbd_home: Path, label: str) -> None:
    change, field = BAD_NOTEBOOKS[label]
    with nbd.Nbdeploy() as app:
        with pytest.raises(InvalidInputError) as err:
            app.jobs.put(edited(change), "x")
        assert err.value.field == field
        assert app.store.versions("job", "x") == []
        assert app.jobs.put(PARAMS, "x").version == 1  # the same name takes a good notebook afterwards


def test_unreadable_sources_are_400s_and_a_missing_file_a_404(tmp_path: Path) -> None:
    for source in ("a" * 10_000, b"\xff\xfe{", b'{"cells": [', 42, "{1, 2}", {"cells": [], "nbformat": 4.0}):
        with pytest.raises(InvalidInputError) as err:
            notebooks.load_notebook(source)
        assert err.value.field in ("notebook", "cells"), source
    deep: dict[str, Any] = {"cells": [], "nbformat": 4, "metadata": {}}
    inner = deep["metadata"]
    for _ in range(5000):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(InvalidInputError, match="too deeply") as err:
        notebooks.load_notebook(deep)
    assert err.value.field == "notebook"
    with pytest.raises(InvalidInputError, match="too deeply"):
        notebooks.load_notebook('{"cells": [], "nbformat": 4, "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(NotFoundError, match="no notebook at"):
        notebooks.load_notebook(tmp_path / "missing.ipynb")
    with pytest.raises(NotFoundError):
        notebooks.load_notebook(str(tmp_path))  # a folder


def test_keys_nbformat_requires_are_filled_in_and_the_kernel_name_is_kept() -> None:
    nb, data = notebooks.load_notebook(
        {"nbformat": 4, "cells": [{"cell_type": "code", "source": "x = 1"}, {"cell_type": "markdown"}]}
    )
    assert nb["metadata"] == {} and nb["nbformat_minor"] == 4
    assert nb["cells"][0] == {
        "cell_type": "code",
        "source": "x = 1",
        "metadata": {},
        "outputs": [],
        "execution_count": None,
    }
    assert nb["cells"][1] == {"cell_type": "markdown", "source": "", "metadata": {}}
    assert json.loads(data) == nb
    good, _ = notebooks.load_notebook(edited(set_in(["metadata", "kernelspec", "name"], "conda-env-py3.11_ml")))
    assert notebooks.kernel_name(good) == "conda-env-py3.11_ml"
    assert notebooks.KERNEL_NAME_PATTERN == r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


# --- reading the parameters cell ----------------------------------------------------------------------------------
def test_a_cell_that_does_not_parse_is_read_line_by_line_like_papermill() -> None:
    nb, _ = notebooks.load_notebook(NOTEBOOKS / "typed_params.ipynb")
    params = {name: p.to_json() for name, p in notebooks.inspect_parameters(nb).items()}
    assert list(params) == ["region", "threshold", "limit", "countries", "mode", "start", "verbose", "same", "when"]
    as_read = {n: (p["inferred_type_name"], p["type_source"], p["default"], p["help"]) for n, p in params.items()}
    assert as_read == {
        "region": ("None", "unknown", "None", ""),
        "threshold": ("float", "declared", "0.5", "cut-off for a positive"),
        "limit": ("int", "declared", "100", ""),
        "countries": ("List[str]", "declared", '["FR","DE",]', "countries to include"),
        "mode": ("str", "declared", '"fast"', ""),
        "start": ("int", "inferred", "3", "where to begin"),
        "verbose": ("bool", "inferred", "False", ""),
        "same": ("None", "unknown", 'region == "EU"', ""),
        "when": ("str", "inferred", '"2024-01-01"', "the first day"),  # `# type: ignore` declares nothing
    }


def test_declared_types_defaults_and_help_match_papermills_own_inspection() -> None:
    from papermill.translators import PythonTranslator

    source = "".join(json.loads((NOTEBOOKS / "typed_params.ipynb").read_text())["cells"][1]["source"])
    theirs = {p.name: p for p in PythonTranslator.inspect({"source": source})}
    ours = read_parameters(source)
    for name in ("region", "threshold", "limit", "countries", "mode"):
        assert (ours[name].inferred_type_name, ours[name].default, ours[name].help) == (
            theirs[name].inferred_type_name,
            theirs[name].default,
            theirs[name].help,
        ), name
    # papermill has no type for a plain literal default; nbdeploy infers one and says so
    assert theirs["start"].inferred_type_name == "None" and ours["start"].type_source == "inferred"
    assert set(theirs) <= set(ours)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a = 2", [("a", "int", "inferred", "2", "")]),
        ("a: int = 2", [("a", "int", "declared", "2", "")]),
        ("a = 2 # type:int", [("a", "int", "declared", "2", "")]),
        ("a: float = 2.5  # type: int the annotation wins", [("a", "float", "declared", "2.5", "the annotation wins")]),
        (
            "a = 'text'  # type: int papermill believes the comment",
            [("a", "int", "declared", "'text'", "papermill believes the comment")],
        ),
        ("m = 1  # type: Dict[str, int] a map", [("m", "Dict[str, int]", "declared", "1", "a map")]),
        ("x: int | None = None  # optional", [("x", "int | None", "declared", "None", "optional")]),
        ('c: "NoneType" = None', [("c", "NoneType", "declared", "None", "")]),
        (
            "a = 1; b = 'x#y'  # only b's help",
            [("a", "int", "inferred", "1", ""), ("b", "str", "inferred", "'x#y'", "only b's help")],
        ),
        (
            "t = (1,)\nu = ()\nv = (2)\nw = {}\ns = {1, 2}\nz = b'x'",
            [
                ("t", "tuple", "inferred", "(1,)", ""),
                ("u", "tuple", "inferred", "()", ""),
                ("v", "int", "inferred", "(2)", ""),
                ("w", "dict", "inferred", "{}", ""),
                ("s", "None", "unknown", "{1, 2}", ""),
                ("z", "None", "unknown", "b'x'", ""),
            ],
        ),
        (
            "n = -1.5e3\nh = 0x1F\nk = 2j",
            [
                ("n", "float", "inferred", "-1.5e3", ""),
                ("h", "int", "inferred", "0x1F", ""),
                ("k", "None", "unknown", "2j", ""),
            ],
        ),
        ("if True:\n    hidden = 1\nshown = 2", [("shown", "int", "inferred", "2", "")]),
        ("a = b = 1\nc, d = 1, 2\ne += 1\nf = lambda x=1: x\ng.h = 1", []),
        ("x = (1\ny = 2\nz = 3", [("y", "int", "inferred", "2", ""), ("z", "int", "inferred", "3", "")]),
        (
            "x = 1\ny = '" + '\\"' * 10_000 + "\nz = 2",
            [("x", "int", "inferred", "1", ""), ("z", "int", "inferred", "2", "")],
        ),
        ("x = 1\nx = 'two'", [("x", "str", "inferred", "'two'", "")]),
        ("only: int", [("only", "int", "declared", "None", "")]),
    ],
)
def test_parameter_lines(source: str, expected: list[tuple[str, ...]]) -> None:
    started = time.perf_counter()
    found = [(p.name, p.inferred_type_name, p.type_source, p.default, p.help) for p in read_parameters(source).values()]
    assert found == expected
    assert time.perf_counter() - started < 2


def test_reading_the_largest_cell_allowed_stays_cheap() -> None:
    for source in (
        "x = [" + "1," * (MAX_CELL_CHARS // 2 - 4) + "]",
        "x = 1\n" * (MAX_CELL_CHARS // 6),
        "x = (\n" + "1\n" * (MAX_CELL_CHARS // 2 - 4),
        "bad bad\n" * (MAX_CELL_CHARS // 8),
    ):
        assert len(source) <= MAX_CELL_CHARS
        started = time.perf_counter()
        read_parameters(source)
        assert time.perf_counter() - started < 3


def test_parameter_records_whether_its_type_was_declared_and_reads_old_metadata() -> None:
    declared = Parameter("n", "int", "3", "", "declared")
    assert declared.declared and declared.to_json()["type_source"] == "declared"
    # versions stored before type_source existed: a literal's type reads as inferred, anything else as declared
    assert Parameter(name="n", inferred_type_name="int", default="3", help="").type_source == "inferred"
    assert Parameter("b", "List[str]", "[]", "").type_source == "declared"
    assert Parameter("m", "None", "None", "").type_source == "unknown"


# --- values --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def declared() -> dict[str, Parameter]:
    return read_parameters(
        "n: int = 3\nratio: float = 0.5\nflag: bool = False\nnames: List[str] = []\nlevel: Optional[int] = None\n"
        "choice: Literal['a', 'b'] = 'a'\nwhen: pd.Timestamp = None\nvar = 1\nmsg = None\nscale = 1.5\nitems = [1]\n"
    )


def test_a_string_for_an_untyped_parameter_is_injected_as_a_string(declared: dict[str, Parameter]) -> None:
    assert check_parameters({"msg": "1"}, declared, "job").values == {"msg": "1"}  # papermill injects msg = "1"
    assert check_parameters({"msg": [1, {"a": None}]}, declared, "job").values == {"msg": [1, {"a": None}]}
    # text a caller says came from a command line is read like papermill's -p
    assert check_parameters({"msg": "1"}, declared, "job", from_text=True).values == {"msg": 1}
    assert check_parameters({"msg": "True"}, declared, "job", from_text=True).values == {"msg": True}


def test_an_inferred_type_takes_other_values_with_a_warning_unless_strict(declared: dict[str, Parameter]) -> None:
    checked = check_parameters({"var": "It works", "scale": 2, "items": "[3]"}, declared, "job")
    assert checked.values == {"var": "It works", "scale": 2.0, "items": [3]}
    assert [w.field for w in checked.warnings] == ["parameters.var"]
    assert "runs as given" in checked.warnings[0].message and "var = 1" in checked.warnings[0].message
    assert checked.to_json()["warnings"] == [checked.warnings[0].to_json()]
    assert check_parameters({"var": "7"}, declared, "job").values == {"var": 7}  # text that converts is converted
    with pytest.raises(InvalidInputError, match="must be a int") as err:
        check_parameters({"var": "It works"}, declared, "job", strict=True)
    assert err.value.field == "parameters.var"
    assert coerce_parameters({"var": "It works"}, declared, "job") == {"var": "It works"}  # warnings are logged
    with pytest.raises(InvalidInputError):
        coerce_parameters({"var": 1.5}, declared, "job", strict=True)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"n": 1.5}, "parameters.n"),
        ({"n": "three"}, "parameters.n"),
        ({"n": True}, "parameters.n"),
        ({"n": None}, "parameters.n"),
        ({"ratio": "fast"}, "parameters.ratio"),
        ({"flag": "maybe"}, "parameters.flag"),
        ({"names": ["a", 1]}, "parameters.names"),
        ({"names": "[1, 2]"}, "parameters.names"),
        ({"names": "not json"}, "parameters.names"),
        ({"level": "x"}, "parameters.level"),
        ({"choice": "c"}, "parameters.choice"),
        ({"ratio": float("nan")}, "parameters.ratio"),
        ({"msg": {1, 2}}, "parameters.msg"),
        ({"nope": 1}, "parameters.nope"),
        ({"class": 1}, "parameters"),
        ({"not an identifier": 1}, "parameters"),
        ({3: 1}, "parameters"),
    ],
)
def test_a_declared_type_is_checked_strictly(
    declared: dict[str, Parameter], values: dict[Any, Any], field: str
) -> None:
    with pytest.raises(InvalidInputError) as err:
        check_parameters(values, declared, "job")
    assert err.value.field == field and err.value.http_status == 400


def test_text_converts_to_a_declared_type(declared: dict[str, Parameter]) -> None:
    checked = check_parameters(
        {"n": "4", "ratio": 2, "flag": "yes", "names": '["a", "b"]', "level": "null", "choice": "b", "when": "2024"},
        declared,
        "job",
    )
    assert checked.values == {
        "n": 4, "ratio": 2.0, "flag": True, "names": ["a", "b"], "level": None, "choice": "b", "when": "2024",
    }  # fmt: skip
    assert checked.warnings == ()
    assert check_parameters({"n": 4.0, "level": 5}, declared, "job").values == {"n": 4, "level": 5}
    assert check_parameters(None, declared, "job").values == {}
    with pytest.raises(InvalidInputError, match="mapping"):
        check_parameters([("n", 1)], declared, "job")  # type: ignore[arg-type]


def test_no_run_is_queued_for_refused_parameters(nbd_home: Path) -> None:
    with nbd.Nbdeploy() as app:
        app.jobs.put(NOTEBOOKS / "params.ipynb", "params")
        with pytest.raises(InvalidInputError) as err:
            app.jobs.run("params", {"n": 1.5}, dispatch=False)
        assert err.value.field == "parameters.n"
        with pytest.raises(InvalidInputError):
            app.schedules.add("params", "0 6 * * *", parameters={"n": "three"})
        assert app.runs.list() == [] and app.schedules.list() == []
        run = app.jobs.run("params", {"n": "4", "label": 7}, dispatch=False)  # label = "x": a warning, not a 400
        assert run.parameters == {"n": 4, "label": 7}


@pytest.fixture
def old_style_version(nbd_home: Path) -> Iterator[nbd.Nbdeploy]:
    """A job whose stored parameters predate ``type_source`` (written the way older versions stored them)."""
    with nbd.Nbdeploy() as app:
        app.jobs.put(NOTEBOOKS / "params.ipynb", "old")
        version = app.jobs.get("old")
        params = [{k: v for k, v in p.items() if k != "type_source"} for p in version.metadata["parameters"]]
        app.store.put(
            "job", "old", app.store.artifacts.read_blob(version.sha256), {**version.metadata, "parameters": params}
        )
        yield app


def test_versions_stored_before_type_source_still_run(old_style_version: nbd.Nbdeploy) -> None:
    app = old_style_version
    assert "type_source" not in app.jobs.get("old").metadata["parameters"][0]
    assert app.jobs.check_parameters("old", {"n": "5", "label": 3}).values == {"n": 5, "label": 3}


def test_the_reading_modules_do_not_shadow_the_public_jobs_api(nbd_home: Path) -> None:
    import nbdeploy.jobs.parameter_cell
    import nbdeploy.jobs.parameter_values  # noqa: F401

    assert callable(nbd.jobs.parameters) and callable(nbd.jobs.check_parameters) and callable(nbd.jobs.put)
