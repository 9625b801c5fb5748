"""A request's failure is its own: poisonous calls (arguments that cannot be pickled, read on the worker or
answered) mixed with good ones at concurrency, on a real multi-process Dask cluster. Every good call gets
exactly its own answer, every poisonous one its own 4xx (or a 500 naming the user's code), and no replica is
dropped for them (the batching failure modes MLServer users reported: mlserver#1306, #514, #1541).
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbdeploy as nbd
from nbdeploy.exceptions import InvalidInputError, UserCodeError
from nbdeploy.functions import FunctionManager
from tests.helpers import eventually


def echo(x: Any) -> Any:
    """Return ``x``; ``"lock"`` returns a lock and ``"deep"`` a list nested 900 deep (results that cannot be sent
    back)."""
    if x == "lock":
        import threading

        return threading.Lock()
    if x == "deep":
        value: list = []
        for _ in range(900):
            value = [value]
        return value
    return x


def _explode() -> None:
    raise ValueError("this argument cannot be read on a worker")


class Unreadable:
    """Pickles fine here, fails to unpickle on the worker."""

    def __reduce__(self) -> tuple:
        return (_explode, ())


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


#: poison kind -> (the argument, the error its caller must get, a fragment of the message)
POISON: dict[str, tuple[Any, type[Exception], str]] = {
    "deep-argument": (_nested(5000), InvalidInputError, "nests too deeply"),
    "unpicklable-argument": (threading.Lock(), InvalidInputError, "cannot be pickled"),
    "unreadable-argument": (Unreadable(), InvalidInputError, "could not read this call's input"),
    "unpicklable-result": ("lock", UserCodeError, "cannot be sent back"),
    "deep-result": ("deep", UserCodeError, "cannot be sent back"),
}


@pytest.fixture
def manager(nbd_env: Path) -> FunctionManager:
    manager = nbd.default().functions
    manager.deploy(echo)
    manager.invoke("echo", x=0)
    pool = next(iter(manager._pools.values()))
    eventually(lambda: len(pool.replicas) == 2, 60, "a replica on each worker")
    yield manager
    manager.close()


async def _gather(manager: FunctionManager, requests: list[tuple[str, Any]], concurrency: int) -> list[Any]:
    limit = asyncio.Semaphore(concurrency)

    async def one(argument: Any) -> Any:
        async with limit:
            try:
                return (await manager.ainvoke("echo", {"x": argument})).result
            except Exception as exc:
                return exc

    return await asyncio.gather(*[one(argument) for _, argument in requests])


# (kind, id) pairs: the arguments are built in the test (hypothesis would print a 900-deep list when shrinking)
requests_strategy = st.lists(
    st.tuples(st.sampled_from(["good"] * 5 + sorted(POISON)), st.integers(0, 10**6)), min_size=20, max_size=120
)


def _argument(kind: str, i: int) -> Any:
    return {"id": i, "text": f"call {i}"} if kind == "good" else POISON[kind][0]


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(drawn=requests_strategy)
def test_every_good_call_gets_its_own_answer_among_poisonous_ones(manager: FunctionManager, drawn) -> None:
    requests = [(kind, _argument(kind, i)) for kind, i in drawn]
    pool = next(iter(manager._pools.values()))
    dropped = pool.replicas_dropped
    answers = manager._run(_gather(manager, requests, 32))
    for (kind, argument), answer in zip(requests, answers, strict=True):
        if kind == "good":
            assert answer == argument
        else:
            error, fragment = POISON[kind][1], POISON[kind][2]
            assert isinstance(answer, error), (kind, answer)
            assert fragment in str(answer), (kind, answer)
    assert pool.replicas_dropped == dropped  # no replica was taken for dead because of a poisonous call
    assert len(pool.replicas) == 2


def test_poisonous_calls_share_batches_with_good_ones_and_fail_alone(manager: FunctionManager) -> None:
    requests = [("good", i) if i % 5 else ("unreadable-argument", Unreadable()) for i in range(400)]
    pool = next(iter(manager._pools.values()))
    batches = pool.batches_sent
    answers = manager._run(_gather(manager, requests, 64))
    assert [a for (kind, _), a in zip(requests, answers, strict=True) if kind == "good"] == [
        i for i in range(400) if i % 5
    ]
    assert all(
        isinstance(a, InvalidInputError) for (kind, _), a in zip(requests, answers, strict=True) if kind != "good"
    )
    assert pool.batches_sent - batches < 400  # they did ride in shared batches
    assert pool.replicas_dropped == 0


def test_over_http_deep_json_is_a_400_and_other_callers_never_notice(nbdeploy_server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    nbd.default().functions.deploy(echo)
    deep = json.dumps({"x": _nested(900)}).encode()
    assert nbdeploy_server.request("POST", "/nbdeploy/api/functions/echo/invoke", {"x": 1})[0] == 200

    def call(i: int) -> tuple[int, Any]:
        if i % 7 == 0:
            return nbdeploy_server.request("POST", "/nbdeploy/api/functions/echo/invoke", raw=deep)
        if i % 11 == 0:
            return nbdeploy_server.request("POST", "/nbdeploy/api/functions/echo/invoke", {"x": "lock"})
        return nbdeploy_server.request("POST", "/nbdeploy/api/functions/echo/invoke", {"x": i})

    with ThreadPoolExecutor(16) as threads:
        answers = list(threads.map(call, range(300)))
    for i, (status, body) in enumerate(answers):
        if i % 7 == 0:
            assert status == 400 and "nests" in body["error"]["message"], body
        elif i % 11 == 0:
            assert status == 500 and "result cannot be encoded as JSON" in body["error"]["message"], body
        else:
            assert (status, body["result"]) == (200, i)
