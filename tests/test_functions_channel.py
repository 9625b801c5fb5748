"""The direct serving channel between a server and its replicas, on a real multi-process Dask cluster."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from pathlib import Path

import pytest

import nbdeploy as nbd
from nbdeploy.exceptions import UserCodeError
from nbdeploy.functions import FunctionManager
from nbdeploy.functions.worker import FunctionActor
from nbdeploy.runtime.channel import Channel, ChannelClosedError
from nbdeploy.runtime.messages import FunctionCall
from nbdeploy.runtime.pool import TINY_CALL_MS, ActorPool
from nbdeploy.runtime.timings import MovingAverages
from tests.helpers import eventually


def square(x: int) -> int:
    return x * x


def a_lock() -> object:
    return threading.Lock()  # a result that cannot be pickled back to the caller


@pytest.fixture
def manager(nbd_env: Path) -> FunctionManager:
    manager = nbd.default().functions
    yield manager
    manager.close()


def test_calls_go_over_direct_channels_and_concurrent_calls_pipeline(manager: FunctionManager) -> None:
    version = manager.deploy(square).version.version

    async def many() -> list[int]:
        answers = await asyncio.gather(*[manager.ainvoke("square", {"x": i}) for i in range(200)])
        return [a.result for a in answers]

    assert manager._run(many()) == [i * i for i in range(200)]
    pool = next(iter(manager._pools.values()))
    eventually(lambda: len(pool.replicas) == 2, 60, "a replica on each worker")  # the first one served at once
    assert all(r.channel is not None and not r.channel.closed for r in pool.replicas)
    assert pool.calls_sent >= 200 and pool.batches_sent < pool.calls_sent  # concurrent calls shared batches
    assert manager.invoke("square", x=7) == 49 and version == 1


def snooze(ms: float) -> float:
    import time

    time.sleep(ms / 1000)
    return ms


def test_tiny_calls_ride_in_the_batch_being_gathered_and_slow_ones_spread_over_the_replicas(
    manager: FunctionManager,
) -> None:
    tiny, slow = manager.deploy(square).version, manager.deploy(snooze).version
    pool = manager._run(manager._pool(None))
    manager._run(pool.start_replicas())
    eventually(lambda: len(pool.live()) == 2, 60, "a replica on each worker")

    def burst(version, arguments: list[dict]) -> tuple[list, int]:
        """Send the calls at once (they all join queues in one turn of the event loop); return their outcomes and
        how many batches carried them."""

        async def send() -> tuple[list, int]:
            before = pool.batches_sent
            label = f"{version.name} v{version.version}"
            outcomes = await asyncio.gather(*[pool.call(FunctionCall(version.sha256, label, a)) for a in arguments])
            return outcomes, pool.batches_sent - before

        return manager._run(send())

    for _ in range(30):  # the pool learns how long each version's calls take (a loaded machine may need more calls)
        burst(tiny, [{"x": 1}])
        burst(slow, [{"ms": 20}])
        learned = pool._call_ms.get(tiny.sha256)
        if learned is not None and learned < TINY_CALL_MS:
            break
    assert pool._call_ms.get(slow.sha256) >= TINY_CALL_MS
    outcomes, batches = burst(tiny, [{"x": i} for i in range(16)])
    assert [o.value for o in outcomes] == [i * i for i in range(16)]
    assert batches == 1  # one message instead of one per replica: it left just as soon
    outcomes, batches = burst(slow, [{"ms": 20}] * 4)
    assert [o.value for o in outcomes] == [20] * 4
    assert batches == 2  # slow calls still go to the least-loaded replica: both workers run them


def test_an_answer_that_cannot_be_sent_back_fails_that_call_only(manager: FunctionManager) -> None:
    manager.deploy(a_lock)
    manager.deploy(square)
    with pytest.raises(UserCodeError, match="result of a-lock v1 cannot be sent back"):
        manager.invoke("a-lock")
    pool = next(iter(manager._pools.values()))
    replicas = list(pool.replicas)
    assert manager.invoke("square", x=3) == 9
    assert all(r in pool.replicas for r in replicas)  # none was dropped for it (more may have started meanwhile)


def test_the_channel_refuses_a_connection_without_the_workers_secret(manager: FunctionManager) -> None:
    manager.deploy(square)
    assert manager.invoke("square", x=2) == 4
    pool = next(iter(manager._pools.values()))
    replica = pool.replicas[0]
    info = manager._run(_open_channel(replica.actor))
    with pytest.raises(ChannelClosedError, match="closed the connection"):
        manager._run(Channel.open({**info, "secret": "0" * 64}))
    # garbage before the handshake is dropped without being unpickled, and the worker keeps serving
    with socket.create_connection((info["host"], info["port"]), timeout=5) as sock:
        payload = b"\x80\x05not a pickle nor json"
        sock.sendall(struct.pack("!QI", 0, len(payload)) + payload)
        assert sock.recv(16) == b""
    # the right secret but an actor id this worker never issued is refused too
    with pytest.raises(ChannelClosedError, match="refused"):
        manager._run(Channel.open({**info, "actor": "f" * 32}))
    assert [manager.invoke("square", x=i) for i in range(5)] == [0, 1, 4, 9, 16]


async def _open_channel(actor: object) -> dict:
    return await actor.open_channel()  # type: ignore[attr-defined]


def test_a_pool_without_channels_serves_through_dask_actor_rpc(manager: FunctionManager) -> None:
    from nbdeploy import runtime

    target = manager.deploy(square).version

    async def run() -> tuple[list, list]:
        client = await runtime.async_client()
        pool = await ActorPool.connect(client.scheduler.address, FunctionActor, (manager.store.url,), channel=False)
        try:
            answers = await asyncio.gather(
                *[pool.call(FunctionCall(target.sha256, "f", {"x": i}, True)) for i in range(20)]
            )
            await pool.warm("ping")  # every worker's replica has started
            return answers, [r.channel for r in pool.replicas]
        finally:
            await pool.close()

    answers, channels = manager._run(run())
    assert [json.loads(a.value) for a in answers] == [i * i for i in range(20)]
    assert channels == [None, None]


def test_on_a_tls_cluster_the_channel_uses_the_clusters_tls(nbd_home: Path, monkeypatch) -> None:
    import dask
    from distributed import LocalCluster
    from distributed.security import Security

    import nbdeploy.config

    security = Security.temporary()
    tls = {
        "distributed.comm.require-encryption": True,
        "distributed.comm.tls.ca-file": security.tls_ca_file,
        "distributed.comm.tls.client.cert": security.tls_client_cert,
        "distributed.comm.tls.client.key": security.tls_client_key,
    }
    with (
        dask.config.set(tls),
        LocalCluster(n_workers=1, threads_per_worker=1, security=security, dashboard_address=":0") as cluster,
    ):
        assert cluster.scheduler_address.startswith("tls://")
        monkeypatch.setenv("NBDEPLOY_CLUSTER", cluster.scheduler_address)
        nbdeploy.config.reset_settings()
        manager = nbd.default().functions
        try:
            manager.deploy(square)
            assert [manager.invoke("square", x=i) for i in range(3)] == [0, 1, 4]
            (replica,) = next(iter(manager._pools.values())).replicas
            assert replica.channel is not None
            assert replica.channel._writer.get_extra_info("ssl_object") is not None
            info = manager._run(_open_channel(replica.actor))
            with pytest.raises((ChannelClosedError, ConnectionError, OSError)):  # plain TCP is not spoken there
                manager._run(Channel.open({**info, "tls": False}, timeout=3))
            assert manager.invoke("square", x=5) == 25
        finally:
            manager.close()
            nbdeploy.config.reset_settings()


def _serving_state() -> tuple[int, int]:
    """(serving actors registered on this worker's channel, live serving threads) — run on a worker."""
    import gc

    gc.collect()
    from nbdeploy.runtime.channel import ChannelServer

    threads = [t for t in threading.enumerate() if t.name.startswith("nbdeploy-fn")]
    return len(ChannelServer.instance().actors), len(threads)


def test_closing_a_pool_releases_its_replicas_and_their_threads(nbd_env: Path, dask_cluster) -> None:
    from distributed import Client

    manager = nbd.default().functions
    manager.deploy(square)
    assert manager.invoke("square", x=3) == 9
    with Client(dask_cluster.scheduler_address) as client:
        eventually(lambda: all(n == 1 for n, _ in client.run(_serving_state).values()), 60, "a replica per worker")
        manager.close()
        eventually(
            lambda: all(state == (0, 0) for state in client.run(_serving_state).values()),
            timeout=30,
            what="replicas and their threads released",
        )


def test_calls_of_a_batch_are_answered_without_waiting_for_a_slow_neighbour(manager: FunctionManager) -> None:
    """A version learned as tiny gets one slow call: the calls batched after it run on the replica's other thread
    and are answered while it still runs, not when the whole batch ends."""
    version = manager.deploy(snooze).version
    pool = manager._run(manager._pool(None))
    manager._run(pool.start_replicas())
    eventually(lambda: len(pool.live()) == 2, 60, "a replica on each worker")
    label = f"{version.name} v{version.version}"

    async def send() -> tuple[list[float], bool, int]:
        await pool.call(FunctionCall(version.sha256, label, {"ms": 0}))
        # learned as tiny, so the calls below join one batch (set here: a loaded machine may time a call at 0 ms
        # above the bar)
        pool._call_ms = MovingAverages()
        pool._learn(version.sha256, 0.0)
        before = pool.batches_sent
        quick = [{"ms": 0}, {"ms": 0}, {"ms": 0}]
        slow = asyncio.ensure_future(pool.call(FunctionCall(version.sha256, label, {"ms": 4000})))
        rest = [asyncio.ensure_future(pool.call(FunctionCall(version.sha256, label, a))) for a in quick]
        answered = await asyncio.gather(*rest)
        still_running = not slow.done()
        await slow
        return [o.value for o in answered], still_running, pool.batches_sent - before

    values, still_running, batches = manager._run(send())
    assert batches == 1  # the slow call and the quick ones shared one batch
    assert values == [0, 0, 0]
    assert still_running  # the quick calls were answered while their slow neighbour still ran
