"""The fast path of ``InferRequest.parse`` takes only requests the schema accepts, and builds the same records; all
else (every 4xx) is the full validation's, word for word. No server: these are the parsing functions themselves."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbdeploy.exceptions import InvalidInputError
from nbdeploy.oip.records import DATATYPES, InferRequest, TensorInput, _plain_request
from nbdeploy.oip.tensors import _flatten, _valid, _values
from nbdeploy.schema import MAX_JSON_DEPTH, Record


def full_parse(data: Any) -> InferRequest:
    """``Record.parse`` itself: the schema validation the fast path stands in for."""
    return Record.parse.__func__(InferRequest, data)  # type: ignore[attr-defined]


def same(a: Any, b: Any) -> bool:
    """Records equal field by field, with the same ``given()`` all the way down."""
    if isinstance(a, Record):
        return (
            type(a) is type(b)
            and a == b
            and a.given() == b.given()
            and all(same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
        )
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


scalars = st.none() | st.booleans() | st.integers(-3, 2**70) | st.floats(allow_nan=False) | st.text(max_size=4)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12,
)
plain_parameters = st.none() | st.dictionaries(st.text(max_size=5), scalars, max_size=2)
valid_tensors = st.fixed_dictionaries(
    {
        "name": st.text(max_size=4),
        "shape": st.lists(st.integers(0, 3), max_size=3),
        "datatype": st.sampled_from(DATATYPES),
    },
    optional={
        "data": st.none()
        | st.recursive(st.lists(scalars, max_size=3), lambda inner: st.lists(inner, max_size=2), max_leaves=8),
        "parameters": plain_parameters,
    },
)
valid_requests = st.fixed_dictionaries(
    {"inputs": st.lists(valid_tensors, max_size=3)},
    optional={
        "id": st.none() | st.text(max_size=4),
        "parameters": plain_parameters,
        "outputs": st.none()
        | st.lists(st.fixed_dictionaries({"name": st.text(max_size=4)}, optional={"parameters": plain_parameters})),
    },
)
# what replaces one part of a valid request: anything, and the near misses a hand-written check could let through
misfits = json_values | st.sampled_from([True, False, 1.0, 2.5, -1, "FP65", "fp64", [], {}, [[[[[[[[[[1.0]]]]]]]]]]])


def parts(value: Any, path: tuple = ()) -> list[tuple]:
    """Every path into ``value`` (dict keys and list indexes), but inside a tensor's ``data`` (any JSON there is
    the schema's, only its depth is limited: its values are checked later, against the datatype)."""
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out += parts(item, (*path, key)) if key != "data" else [(*path, key)]
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += parts(item, (*path, index))
    return out


@st.composite
def near_valid_requests(draw: st.DrawFn) -> Any:
    """A valid request, mostly with one part replaced, removed or given an unknown key beside it."""
    data = draw(valid_requests)
    how = draw(st.sampled_from(["keep", "replace", "replace", "replace", "remove", "extra"]))
    if how == "keep":
        return data
    path = draw(st.sampled_from(parts(data)))
    if not path:
        return draw(misfits)
    holder = data
    for step in path[:-1]:
        holder = holder[step]
    if how == "replace":
        holder[path[-1]] = draw(misfits)
    elif how == "remove":
        del holder[path[-1]]
    elif isinstance(holder[path[-1]], dict):
        holder[path[-1]][draw(st.text(max_size=3))] = draw(json_values)
    return data


def check(data: Any) -> None:
    """``InferRequest.parse(data)`` is the full validation's answer; the fast path takes only what that accepts."""
    fast = _plain_request(data)
    try:
        full = full_parse(data)
    except InvalidInputError as refused:
        assert fast is None, data  # the fast path never accepts what the schema refuses ...
        with pytest.raises(InvalidInputError) as again:
            InferRequest.parse(data)
        assert (str(again.value), again.value.field) == (str(refused), refused.field)  # ... and says it the same way
        return
    assert fast is None or same(fast, full), data
    assert same(InferRequest.parse(data), full)


@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_requests())
def test_the_fast_path_takes_only_what_the_schema_takes_and_builds_the_same_request(data: Any) -> None:
    check(data)


def test_every_part_of_a_usual_request_replaced_by_each_near_miss() -> None:
    tensor = {"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [[0.5, 1]], "parameters": {"a": 1}}
    usual = {"id": "r", "inputs": [tensor], "parameters": {"p": "q"}, "outputs": [{"name": "y", "parameters": {}}]}
    near = [True, 1.0, 2.5, -1, "FP65", None, "x", [], {}, [1], [[1.0]], {"a": [1]}, [[[[[[[[[[1.0]]]]]]]]]]]
    for path in parts(usual):
        for value in [*near, "remove"]:
            data = copy.deepcopy(usual)
            if not path:
                check(value)
                continue
            holder = data
            for step in path[:-1]:
                holder = holder[step]
            if value == "remove":
                del holder[path[-1]]
            else:
                holder[path[-1]] = value
            check(data)


def test_the_usual_requests_take_the_fast_path_and_unusual_ones_the_schema() -> None:
    tensor = {"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [[0.5, 1.5]]}
    triton = {  # what tritonclient sends as the JSON header of a binary request
        "id": "r1",
        "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}],
        "outputs": [{"name": "predictions", "parameters": {"binary_data": False}}],
        "parameters": {"binary_data_output": False},
    }
    for usual in ({"inputs": [tensor]}, triton, {"inputs": [{**tensor, "data": [0.5, 1.5]}], "outputs": None}):
        fast = _plain_request(usual)
        assert fast is not None and same(fast, full_parse(usual))
    # valid but unusual (an extra key, a whole float in a shape, an object as data): the schema decides
    for unusual in (
        {"inputs": [tensor], "trace": {"on": True}},
        {"inputs": [{**tensor, "shape": [1.0, 2]}]},
        {"inputs": [{**tensor, "data": {"a": 1}}]},
    ):
        assert _plain_request(unusual) is None
        assert same(InferRequest.parse(unusual), full_parse(unusual))
    deep: Any = 0.5
    for _ in range(MAX_JSON_DEPTH):
        deep = [deep]
    with pytest.raises(InvalidInputError, match="deeper than"):
        InferRequest.parse({"inputs": [{**tensor, "data": deep}]})
    with pytest.raises(InvalidInputError, match="is required") as missing:
        InferRequest.parse({"inputs": [{"name": "x", "shape": [1]}]})
    assert missing.value.field == "inputs[0].datatype"


def values_one_by_one(tensor: TensorInput, data: Any) -> list[Any]:
    """What ``_values`` decides, value by value (``_flatten``, then ``_valid`` on each): the reference; its error
    names the first bad value as ``_values``' message does (``value 3 (``)."""
    flat: list[Any] = []
    _flatten(data if data is not None else [], flat)
    if len(flat) != math.prod(tensor.shape):
        raise InvalidInputError("shape", "")
    bad = [i for i, v in enumerate(flat) if not _valid(v, tensor.datatype)]
    if bad:
        raise InvalidInputError(f"value {bad[0]} (", "")
    return flat


near_values = st.sampled_from([0, 1, -1, 2.5, -0.0, True, False, "a", None, math.inf, -math.inf, 2**70, 2**1100])
tensor_values = st.one_of(
    st.lists(near_values, max_size=4),
    st.lists(st.lists(near_values, min_size=2, max_size=2), max_size=2),
    st.lists(scalars, max_size=6),
    st.lists(st.lists(scalars, min_size=2, max_size=2), max_size=3),
    st.lists(st.integers(-(2**70), 2**1100), max_size=4),
    st.lists(st.floats(allow_nan=False) | st.integers(0, 3), max_size=4),
    json_values,
)


def check_values(data: Any, datatype: str, fits: bool = True) -> None:
    """``_values`` answers as :func:`values_one_by_one` does: the same values, or an error on the same value."""
    flat: list[Any] = []
    _flatten(data if data is not None else [], flat)
    tensor = TensorInput("x", [len(flat) if fits else len(flat) + 1], datatype, data)  # type: ignore[arg-type]
    try:
        expected = values_one_by_one(tensor, data)
    except InvalidInputError as refused:
        with pytest.raises(InvalidInputError) as again:
            _values(tensor, data)
        assert str(refused) in str(again.value), (data, datatype, str(refused), str(again.value))
        return
    got = _values(tensor, data)
    assert got == expected and [type(v) for v in got] == [type(v) for v in expected], (data, datatype)


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(tensor_values, st.sampled_from(DATATYPES), st.booleans())
def test_tensor_values_are_checked_as_one_by_one(data: Any, datatype: str, fits: bool) -> None:
    check_values(data, datatype, fits)


def test_every_pair_of_near_values_is_checked_as_one_by_one() -> None:
    near = [0, 1, -1, 2.5, -0.0, True, False, "a", None, math.inf, -math.inf, math.nan, 2**70, 2**1100, [1]]
    for datatype in DATATYPES:
        for a in near:
            check_values([a], datatype)
            check_values([[a]], datatype)
            for b in near:
                check_values([a, b], datatype)
                check_values([[a], [b]], datatype)
