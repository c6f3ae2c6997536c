"""Connections: shared pools, event loops, cancellation, waiting, closing, forking.

These are the guarantees of the async core and the sync adapter that hold
whatever the operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async

from django_asyncredis import ConnectionInterrupted, PoolTimeoutError, _pools, aclose_all


def connected_clients(raw: Any) -> int:
    """Clients connected to the server, not counting the inspecting one."""
    return int(raw.info("clients")["connected_clients"]) - 1


# Atomic counters


async def test_concurrent_aincr_loses_no_update(cache: Any) -> None:
    """20 tasks x 50 increments end at exactly 1000 (one atomic server-side step each)."""
    await cache.aset("n", 0)

    async def worker() -> None:
        for _ in range(50):
            await cache.aincr("n")

    await asyncio.gather(*(worker() for _ in range(20)))
    assert await cache.aget("n") == 1000


def test_concurrent_incr_from_threads_loses_no_update(cache: Any) -> None:
    cache.set("n", 0)

    def worker() -> None:
        for _ in range(50):
            cache.incr("n")

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.get("n") == 1000


# Cancellation


async def cancel_at_random(cache: Any, rounds: int = 10) -> tuple[list[Any], int, int]:
    """Concurrent aget/aset on distinct keys (each value names its key), 40% of the
    tasks cancelled at random points. Returns (wrong values seen, cancelled, completed)."""
    keys = [f"key-{i}" for i in range(200)]
    await cache.aset_many({key: f"value-of-{key}" for key in keys})
    rng = random.Random(1234)
    wrong: list[tuple[str, Any]] = []
    completed = cancelled = 0

    async def read(key: str) -> None:
        nonlocal completed
        value = await cache.aget(key)
        completed += 1
        if value != f"value-of-{key}":
            wrong.append((key, value))

    async def write(key: str) -> None:
        await cache.aset(key, f"value-of-{key}")

    for _ in range(rounds):
        tasks = [
            asyncio.create_task(read(key) if rng.random() < 0.7 else write(key))
            for key in rng.sample(keys, 100)
        ]
        for _ in range(rng.randrange(1, 5)):
            await asyncio.sleep(0)
        for task in tasks:
            if rng.random() < 0.4 and task.cancel():
                cancelled += 1
        await asyncio.gather(*tasks, return_exceptions=True)
    # And afterwards, on the connections that survived:
    await asyncio.gather(*(read(key) for key in keys), return_exceptions=True)
    return wrong, cancelled, completed


async def test_cancelled_calls_never_leave_a_reply_for_another_caller(make_cache: Any) -> None:
    """Random cancellations mid-command: every completed aget returns its own key's value."""
    wrong, cancelled, completed = await cancel_at_random(make_cache(OPTIONS={"max_connections": 8}))
    assert wrong == []
    assert cancelled > 50
    assert completed > 200


async def cancel_mid_read_then_read_again(cache: Any, pause: Any) -> Any:
    """One connection; a call cancelled while its reply is pending (server paused),
    then another call on the same connection. Returns what that second call got."""
    await cache.aset_many({"first": "value of first", "second": "value of second"})
    with pause(0.3):
        task = asyncio.create_task(cache.aget("first"))
        await asyncio.sleep(0.05)  # sent; its reply waits for the pause to end
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await asyncio.sleep(0.4)  # the pause is over: the first reply is on the wire
    return await cache.aget("second")


@pytest.fixture
def pause(redis_server: Any) -> Any:
    @contextlib.contextmanager
    def paused(seconds: float) -> Iterator[None]:
        with redis.Redis.from_url(redis_server.url) as admin:
            admin.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")
            yield

    return paused


async def test_a_call_cancelled_mid_read_leaves_nothing_for_the_next(
    make_cache: Any, pause: Any
) -> None:
    cache = make_cache(OPTIONS={"max_connections": 1})
    assert await cancel_mid_read_then_read_again(cache, pause) == "value of second"


async def test_the_check_catches_a_connection_left_with_a_pending_reply(
    make_cache: Any, pause: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: with the bug class of CVE-2023-28858 put back (a
    connection interrupted mid-read is kept, its reply still pending), the next
    caller receives the cancelled call's value."""
    import redis.asyncio.connection

    original = redis.asyncio.connection.AbstractConnection.read_response

    async def keep_connection_on_error(self: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["disconnect_on_error"] = False
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(
        redis.asyncio.connection.AbstractConnection, "read_response", keep_connection_on_error
    )
    cache = make_cache(OPTIONS={"max_connections": 1, "transport": "pooled"})
    assert await cancel_mid_read_then_read_again(cache, pause) == "value of first"


async def test_timeouts_mid_command_never_leave_a_reply_for_another_caller(
    make_cache: Any,
) -> None:
    """asyncio.timeout of a few hundred microseconds around aget, as a client disconnect."""
    cache = make_cache(OPTIONS={"max_connections": 4})
    keys = [f"k{i}" for i in range(64)]
    await cache.aset_many({key: key * 3 for key in keys})
    wrong = []
    rng = random.Random(99)

    async def read(key: str) -> None:
        try:
            async with asyncio.timeout(rng.choice([0.0001, 0.0003, 0.001, 1])):
                value = await cache.aget(key)
        except TimeoutError:
            return
        if value != key * 3:
            wrong.append((key, value))

    for _ in range(20):
        await asyncio.gather(*(read(key) for key in keys))
    assert wrong == []


# Pools


async def test_backend_instances_share_the_loops_pool(make_cache: Any, raw: Any) -> None:
    """Django builds a backend per async context; they must not open connections each."""
    before = connected_clients(raw)
    for _ in range(50):
        await make_cache().aget("key")
    assert connected_clients(raw) - before == 1


async def test_callers_wait_for_a_free_connection(make_cache: Any, raw: Any) -> None:
    """With max_connections=2, 300 concurrent callers all complete on 2 connections."""
    cache = make_cache(OPTIONS={"max_connections": 2})
    await cache.aset("key", "value")
    before = connected_clients(raw)
    results = await asyncio.gather(*(cache.aget("key") for _ in range(300)))
    assert results == ["value"] * 300
    assert connected_clients(raw) - before <= 2


async def test_waiting_past_pool_timeout_is_a_clear_error(make_cache: Any) -> None:
    # The pool's own limit: on the multiplexed transport, gets share one connection.
    cache = make_cache(OPTIONS={"max_connections": 1, "pool_timeout": 0.05, "transport": "pooled"})
    await cache.aget("warm")
    pool = _pools.async_pool(cache._config.servers[0])
    held = await pool.acquire()
    try:
        with pytest.raises(PoolTimeoutError, match="max_connections=1"):
            await cache.aget("key")
    finally:
        pool.release(held)
    assert await cache.aget("key") is None


@pytest.mark.parametrize("pool_class", [None, "redis.BlockingConnectionPool"])
def test_sync_waiting_past_pool_timeout_is_a_clear_error(
    make_cache: Any, pool_class: str | None
) -> None:
    """PoolTimeoutError by type (redis-py raises a bare ConnectionError), with our pool
    class or the user's BlockingConnectionPool."""
    options: dict[str, Any] = {"max_connections": 1, "pool_timeout": 0.05}
    if pool_class:
        options["CONNECTION_POOL_CLASS"] = pool_class
    cache = make_cache(OPTIONS=options)
    cache.get("warm")
    pool = _pools.sync_pool(cache._config.servers[0])
    held = pool.get_connection(*(("_",) if _pools.SYNC_GET_CONNECTION_NEEDS_NAME else ()))
    try:
        with pytest.raises(PoolTimeoutError, match="max_connections=1"):
            cache.get("key")
    finally:
        pool.release(held)
    assert cache.get("key") is None


def test_sync_callers_wait_for_a_free_connection(make_cache: Any) -> None:
    cache = make_cache(OPTIONS={"max_connections": 2})
    cache.set("key", "value")
    results = []

    def worker() -> None:
        for _ in range(20):
            results.append(cache.get("key"))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["value"] * 320


def test_each_event_loop_gets_its_own_pool(cache: Any) -> None:
    seen = []

    async def use() -> None:
        await cache.aget("key")
        seen.append(_pools.async_pool(cache._config.servers[0]))

    asyncio.run(use())
    asyncio.run(use())
    assert seen[0] is not seen[1]


def test_closed_loops_leave_no_connections_and_no_warnings(cache: Any, raw: Any) -> None:
    """Many consecutive asyncio.run() loops, as test runners do: connections stay bounded."""
    before = connected_clients(raw)

    async def use() -> None:
        await cache.aset("key", "value")
        assert await cache.aget("key") == "value"

    for _ in range(100):
        asyncio.run(use())
    gc.collect()  # a ResourceWarning from an unclosed transport would fail the test here
    assert connected_clients(raw) - before <= 1
    assert not any(loop.is_closed() for loop in _pools._async_pools)


def test_async_api_through_async_to_sync_many_times(cache: Any, raw: Any) -> None:
    """Sync code calling the async API via async_to_sync: a loop per call, no leak."""
    before = connected_clients(raw)
    for i in range(200):
        async_to_sync(cache.aset)("key", i)
        assert async_to_sync(cache.aget)("key") == i
    gc.collect()
    assert connected_clients(raw) - before <= 2


# The sync adapter in every context


async def test_sync_api_on_the_event_loop_thread_blocks_but_completes(cache: Any) -> None:
    """As with Django's built-in backend: it blocks the loop for one round trip, no deadlock."""
    cache.set("key", "value")
    assert cache.get("key") == "value"


async def test_sync_api_in_threads_alongside_async_tasks(cache: Any) -> None:
    """Sync views in sync_to_async threads and async views on the loop, at once."""

    def sync_view(i: int) -> Any:
        cache.set(f"sync-{i}", i)
        return cache.get(f"sync-{i}")

    async def async_view(i: int) -> Any:
        await cache.aset(f"async-{i}", i)
        return await cache.aget(f"async-{i}")

    results = await asyncio.gather(
        *(sync_to_async(sync_view, thread_sensitive=False)(i) for i in range(20)),
        *(async_view(i) for i in range(20)),
    )
    assert results == list(range(20)) * 2


# Closing


def test_close_at_request_end_keeps_the_connections(cache: Any, raw: Any) -> None:
    """Django calls close() after every request; with shared pools that costs nothing."""
    cache.get("key")
    before = connected_clients(raw)
    cache.close()
    cache.get("key")
    assert connected_clients(raw) == before


def test_close_connection_option_closes_sync_connections(make_cache: Any, raw: Any) -> None:
    cache = make_cache(OPTIONS={"CLOSE_CONNECTION": True})
    cache.get("key")
    before = connected_clients(raw)
    cache.close()
    assert wait_for(lambda: connected_clients(raw) < before)


async def test_close_connection_option_closes_async_connections(make_cache: Any, raw: Any) -> None:
    cache = make_cache(OPTIONS={"close_connection": True})
    await cache.aget("key")
    before = connected_clients(raw)
    await cache.aclose()
    assert wait_for(lambda: connected_clients(raw) < before)
    assert await cache.aget("key") is None


def test_close_connection_leaves_other_threads_commands_alone(make_cache: Any, raw: Any) -> None:
    """CLOSE_CONNECTION at the end of one request never cuts the command another
    thread is waiting on (an incr, never re-sent, that must count exactly once)."""
    cache = make_cache(OPTIONS={"CLOSE_CONNECTION": True})
    cache.set("n", 1)
    outcome: list[Any] = []

    def other_request() -> None:
        try:
            outcome.append(cache.incr("n"))
        except ConnectionInterrupted as exc:
            outcome.append(exc)

    raw.execute_command("CLIENT", "PAUSE", 2000, "WRITE")  # holds the incr, not our reads
    try:
        thread = threading.Thread(target=other_request)
        thread.start()
        assert wait_for(lambda: any("b" in client["flags"] for client in raw.client_list())), (
            "the incr never reached the server"
        )
        cache.close()
    finally:
        raw.execute_command("CLIENT", "UNPAUSE")
    thread.join()
    assert outcome == [2]
    assert cache.get("n") == 2


def test_close_connection_reaches_the_data_nodes_of_sentinel_and_cluster() -> None:
    """Under Sentinel and Cluster the connections are to the data nodes found at run
    time, not (only) to the configured sentinels or startup nodes."""
    from django_asyncredis._config import parse

    sentinel = parse("redis+sentinel://127.0.0.1:26379/mymaster", {})
    sentinel.topology.update([b"10.0.0.1", b"6379"], None)
    assert {(s.host, s.port) for s in _pools.servers_in_use(sentinel)} == {
        ("127.0.0.1", 26379),
        ("10.0.0.1", 6379),
    }
    cluster = parse("redis+cluster://127.0.0.1:7000", {})
    cluster.topology.update(
        cluster.servers[0],
        [[0, 8191, [b"10.0.0.1", 7000]], [8192, 16383, [b"10.0.0.2", 7000]]],
    )
    assert {(s.host, s.port) for s in _pools.servers_in_use(cluster)} == {
        ("127.0.0.1", 7000),
        ("10.0.0.1", 7000),
        ("10.0.0.2", 7000),
    }


async def test_aclose_all_closes_this_loops_and_the_sync_connections(cache: Any, raw: Any) -> None:
    cache.get("key")
    await cache.aget("key")
    await aclose_all()
    assert wait_for(lambda: connected_clients(raw) == 0)
    assert await cache.aget("key") is None


def wait_for(condition: Any, timeout: float = 5.0) -> bool:
    """Poll a condition the server reaches asynchronously (a client count), with a bound."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


# Fork


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_uses_its_own_connections(cache: Any) -> None:
    cache.set("key", "parent")
    asyncio.run(cache.aget("key"))
    pid = os.fork()
    if pid == 0:  # the child: exit status tells the parent what happened
        try:
            ok = cache.get("key") == "parent" and asyncio.run(cache.aget("key")) == "parent"
            cache.set("child", "was here")
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache.get("key") == "parent"
    assert cache.get("child") == "was here"


# Failures


@pytest.mark.parametrize("path", ["sync", "async"])
def test_unreachable_server_fails_fast_with_a_clear_error(make_cache: Any, path: str) -> None:
    from tests.servers import free_port

    cache = make_cache(
        f"redis://user:s3cret@127.0.0.1:{free_port()}/0",
        OPTIONS={"socket_connect_timeout": 0.5},
    )
    get = cache.get if path == "sync" else lambda key: asyncio.run(cache.aget(key))
    start = time.monotonic()
    with pytest.raises(ConnectionInterrupted) as caught:
        get("key")
    assert time.monotonic() - start < 2
    assert "s3cret" not in str(caught.value)
    assert isinstance(caught.value, redis.exceptions.ConnectionError)


@pytest.mark.parametrize("path", ["sync", "async"])
def test_reads_fall_back_to_the_leader_when_the_replica_is_down(
    make_cache: Any, redis_server: Any, path: str
) -> None:
    from tests.servers import free_port

    cache = make_cache([redis_server.url, f"redis://127.0.0.1:{free_port()}"])
    cache.set("key", "value")
    for _ in range(5):
        if path == "sync":
            assert cache.get("key") == "value"
        else:
            assert asyncio.run(cache.aget("key")) == "value"


async def test_hiredis_parses_replies_when_installed(cache: Any) -> None:
    pytest.importorskip("hiredis")
    await cache.aget("key")
    pool = _pools.async_pool(cache._config.servers[0])
    connection = await pool.acquire()
    try:
        assert "Hiredis" in type(connection._parser).__name__
    finally:
        pool.release(connection)
