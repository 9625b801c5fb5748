"""Micro-batched predictions: the serving actor on the workers, and the server-side pool that feeds it.

The server sends calls to :class:`ModelActor` replicas through :class:`ModelPool` — the functions'
:class:`~nbdeploy.runtime.pool.ActorPool` (one actor per worker, called directly, answers matched by position)
with one change of policy: a batch waits up to ``max_wait_ms`` for more requests only while its replica is
already busy, so a lone request is never delayed. On the worker, :meth:`ModelActor.run_batch` groups the calls
of one batch by model version, concatenates their rows into one DataFrame or array, calls ``predict`` once
and splits the predictions back by row counts — that is where throughput under concurrency comes from. If a
combined call fails, each call of the group is retried alone, so one bad request never fails its neighbours.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..runtime.channel import ChannelActor
from ..runtime.messages import ModelCall, Outcome, decode_calls, encode_outcome, merge_outcomes
from ..runtime.pool import ActorPool
from ..runtime.timings import MovingAverages

__all__ = ["ModelActor", "ModelPool", "predict_rows", "split_predictions"]

#: a version whose batches predict in less than this (moving average of the thread's CPU time, in ms) is predicted in
#: the worker's event loop
INLINE_PREDICT_MS = 2.0


def _encode(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def split_predictions(predictions: Any, counts: list[int]) -> list[Any]:
    """Split one batch's predictions into one JSON-ready list per call, by the calls' row ``counts``."""
    total = sum(counts)
    if hasattr(predictions, "iloc"):  # a DataFrame or Series
        if hasattr(predictions, "columns"):
            records = predictions.to_dict(orient="records")
        else:
            records = predictions.tolist()
    elif hasattr(predictions, "tolist"):
        records = predictions.tolist()
    else:
        records = list(predictions)
    if len(records) != total:
        raise ValueError(f"the model returned {len(records)} predictions for {total} input rows")
    out, start = [], 0
    for n in counts:
        out.append(records[start : start + n])
        start += n
    return out


def predict_rows(store_url: str, sha256: str, kind: str, columns: Any, groups: list[list[Any]]) -> list[Outcome]:
    """Load the version (worker cache), predict every group's rows in one call, return one :class:`Outcome` per
    group: ``ok`` (``value``: the predictions as JSON), ``invalid`` (the input does not fit the signature),
    ``error`` (the model raised) or ``load_error``."""
    from ..exceptions import SignatureError
    from ..runtime import load_artifact
    from .flavors import loads_model
    from .signature import build_input

    try:
        loaded = load_artifact(store_url, sha256, loader=loads_model)
    except Exception as exc:
        outcome = Outcome.failed("load_error", exc, f"cannot load model {sha256[:12]}: {exc}", traceback.format_exc())
        return [outcome] * len(groups)
    counts = [len(g) for g in groups]
    rows = groups[0] if len(groups) == 1 else [r for g in groups for r in g]
    try:
        data = build_input(kind, columns, rows, loaded.signature)
        parts = split_predictions(loaded.predict(data), counts)
        dumps = json.dumps
        return [Outcome("ok", dumps(p, separators=(",", ":"), default=_encode), batch_rows=len(rows)) for p in parts]
    except SignatureError as exc:
        if len(groups) > 1:
            return [predict_rows(store_url, sha256, kind, columns, [g])[0] for g in groups]
        return [Outcome("invalid", error_type="SignatureError", message=str(exc), fields=exc.errors)]
    except Exception as exc:
        if len(groups) > 1:  # find the call at fault; the others still get their answers
            return [predict_rows(store_url, sha256, kind, columns, [g])[0] for g in groups]
        return [Outcome.failed("error", exc, tb=traceback.format_exc())]


class ModelActor(ChannelActor):
    """A serving replica on one worker: predicts batches of calls, one ``predict`` per model version."""

    def __init__(self, store_url: str, threads: int | None = None) -> None:
        self.store_url = store_url
        self.pool = ThreadPoolExecutor(threads or max(2, os.cpu_count() or 2), thread_name_prefix="nbdeploy-model")
        self.batches = self.calls = 0
        self.inline = 0  # batches predicted in the event loop (see INLINE_PREDICT_MS)
        self._predict_ms = MovingAverages(skip_first=True)  # per version: a batch's prediction time (CPU)

    async def run_batch(self, payloads: list[Any]) -> list[bytes]:
        """Predict a batch of calls (each pickled on its own); one outcome per call, in the same order, each
        pickled on its own (a call that cannot be read here fails alone)."""
        calls, failed = decode_calls(payloads)
        outcomes = await self._predict(calls) if calls else []
        return [encode_outcome(o, "the model") for o in merge_outcomes(len(payloads), outcomes, failed)]

    async def _predict(self, calls: list[ModelCall]) -> list[Outcome]:
        self.batches += 1
        self.calls += len(calls)
        loop = asyncio.get_running_loop()
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, call in enumerate(calls):
            groups.setdefault((call.sha256, call.kind, call.columns), []).append(i)
        if len(groups) == 1:
            [((sha, kind, columns), members)] = groups.items()
            took = self._predict_ms.get(sha)
            if took is not None and took < INLINE_PREDICT_MS:
                # a version whose predictions take a millisecond or two: predicted here, in the worker's event
                # loop, rather than handed to a thread and back (two thread switches cost more than the prediction)
                self.inline += 1
                started = time.thread_time()
                results = [predict_rows(self.store_url, sha, kind, columns, [calls[i].rows for i in members])]
                self._learn(sha, started)
                return self._answers(calls, groups, results)
        jobs = [
            loop.run_in_executor(self.pool, self._timed, sha, kind, columns, [calls[i].rows for i in members])
            for (sha, kind, columns), members in groups.items()
        ]
        results = await asyncio.gather(*jobs) if len(jobs) > 1 else [await jobs[0]]
        return self._answers(calls, groups, results)

    def _timed(self, sha: str, kind: str, columns: Any, rows: list[list[Any]]) -> list[Outcome]:
        started = time.thread_time()
        outcomes = predict_rows(self.store_url, sha, kind, columns, rows)
        if all(o.ok for o in outcomes):  # a failure (or a first load) says nothing of the prediction's own time
            self._learn(sha, started)
        return outcomes

    def _learn(self, sha: str, started: float) -> None:
        """Fold a batch's CPU time since ``started`` into the version's average (its first batch, which pays the load
        and first-call costs, is not counted)."""
        self._predict_ms.learn(sha, (time.thread_time() - started) * 1000)

    @staticmethod
    def _answers(calls: list[ModelCall], groups: dict[Any, list[int]], results: list[list[Outcome]]) -> list[Outcome]:
        answers: list[Outcome] = [Outcome("load_error")] * len(calls)
        for members, outcomes in zip(groups.values(), results, strict=True):
            for i, outcome in zip(members, outcomes, strict=True):
                answers[i] = outcome
        return answers

    async def load(self, sha256: str) -> bool:
        """Load a version (and import its libraries) into this worker's cache ahead of its first request;
        return whether it loaded."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.pool, self._load, sha256)
            return True
        except Exception:
            return False

    def _load(self, sha256: str) -> None:
        from ..runtime import load_artifact
        from ..runtime.warmup import serving_imports
        from .flavors import loads_model

        serving_imports("model")  # what the first call would import
        load_artifact(self.store_url, sha256, loader=loads_model)

    def counters(self) -> dict[str, int]:
        """How many batches and calls this replica has run (calls / batches is the mean batch size)."""
        return {"batches": self.batches, "calls": self.calls, "inline": self.inline}


class ModelPool(ActorPool):
    """:class:`ActorPool` of :class:`ModelActor` replicas (batches wait up to ``max_wait_ms`` only while their
    replica already has another batch on the wire; an idle replica sends at once)."""
