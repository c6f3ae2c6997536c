"""Connections the server closed while they sat idle in the pool are never handed out.

Servers close idle connections on their own: ``timeout`` in redis.conf, a managed
service's idle cut, a proxy, ``CLIENT KILL``, a failover. Each test kills the
pool's idle connections on a server of its own, waits (by polling CLIENT LIST,
never by sleeping blind) until the server has closed them, and requires every
later call to succeed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio

from django_asyncredis import ConnectionInterrupted, RedisCache, _config, _pools
from django_asyncredis._config import DEFAULT_MAX_CONNECTIONS
from django_asyncredis.errors import ReplyLostError
from tests.servers import ServerProcess, clients


def shared_connections() -> int:
    """The multiplexed transport's one shared connection, opened by the first call."""
    return 1 if _config.DEFAULT_TRANSPORT == "multiplexed" else 0


def poll(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a state the server reaches on its own, with a bound."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server never reached the expected state"
        time.sleep(0.02)


def warm_sync(cache: RedisCache, count: int) -> None:
    """Put ``count`` connections in the sync pool, all idle."""
    pool = _pools.sync_pool(cache._config.servers[0])
    args = ("_",) if _pools.SYNC_GET_CONNECTION_NEEDS_NAME else ()
    held = [pool.get_connection(*args) for _ in range(count)]
    for connection in held:
        pool.release(connection)


async def warm_async(cache: RedisCache, count: int) -> None:
    """Put ``count`` connections in this loop's pool, all idle."""
    pool = _pools.async_pool(cache._config.servers[0])
    held = [await pool.acquire() for _ in range(count)]
    for connection in held:
        pool.release(connection)


def kill_idle_connections(server: ServerProcess, admin: redis.Redis) -> None:
    """CLIENT KILL every connection but the admin's, and wait until they are gone."""
    admin.client_kill_filter(_type="normal", skipme=True)
    poll(lambda: clients(admin) == 0)


def close_by_idle_timeout(server: ServerProcess, admin: redis.Redis) -> None:
    """The server's own idle cut (``timeout 1``), as a managed service does it."""
    admin.config_set("timeout", 1)
    poll(lambda: clients(admin) == 0)
    admin.config_set("timeout", 0)


def restart(server: ServerProcess, admin: redis.Redis) -> None:
    """The server restarts on the same port while the pool sits idle (its data
    carried over, as persistence would)."""
    data = {key: admin.dump(key) for key in admin.scan_iter()}
    server.stop()
    server.start()
    for key, dump in data.items():
        admin.restore(key, 0, dump)


Killer = Callable[[ServerProcess, redis.Redis], None]
KILLERS: dict[str, Killer] = {
    "client-kill": kill_idle_connections,
    "idle-timeout": close_by_idle_timeout,
    "restart": restart,
}


@pytest.mark.parametrize("kill", KILLERS.values(), ids=KILLERS.keys())
def test_sync_calls_after_the_server_closed_idle_connections_all_succeed(
    own_server: ServerProcess, admin: redis.Redis, kill: Killer
) -> None:
    """8 idle connections closed by the server, then 10 calls: 10 succeed, on 1 connection."""
    cache = RedisCache(own_server.url, {})
    cache.set("key", "value")
    warm_sync(cache, 8)
    assert clients(admin) == 8
    kill(own_server, admin)
    results = [cache.get("key") for _ in range(10)]
    assert results == ["value"] * 10
    assert clients(admin) == 1


@pytest.mark.parametrize("kill", KILLERS.values(), ids=KILLERS.keys())
async def test_async_calls_after_the_server_closed_idle_connections_all_succeed(
    own_server: ServerProcess, admin: redis.Redis, kill: Killer
) -> None:
    """8 idle connections closed by the server, then 10 calls: 10 succeed. The kill
    is observed with the loop blocked, so the first call may take a connection
    whose close the loop has not read yet."""
    cache = RedisCache(own_server.url, {})
    await cache.aset("key", "value")
    await warm_async(cache, 8)
    assert clients(admin) == 8 + shared_connections()
    kill(own_server, admin)
    failed = []
    for _ in range(10):
        try:
            await cache.aget("key")
        except ConnectionInterrupted as exc:
            failed.append(exc)
    assert failed == []


@pytest.mark.parametrize("kill", KILLERS.values(), ids=KILLERS.keys())
async def test_concurrent_async_calls_after_the_server_closed_idle_connections_all_succeed(
    own_server: ServerProcess, admin: redis.Redis, kill: Killer
) -> None:
    """16 idle connections closed by the server, then 8 concurrent calls: 8 succeed."""
    cache = RedisCache(own_server.url, {})
    await cache.aset("key", "value")
    await warm_async(cache, 16)
    kill(own_server, admin)
    results = await asyncio.gather(*(cache.aget("key") for _ in range(8)), return_exceptions=True)
    assert [result for result in results if result != "value"] == []


async def test_a_non_idempotent_call_after_an_idle_cut_succeeds_once(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """A closed idle connection is skipped before anything is written, so even an
    incr (never re-sent) succeeds, and counts once."""
    cache = RedisCache(own_server.url, {"OPTIONS": {"retries": 0}})
    await cache.aset("n", 10)
    await warm_async(cache, 8)
    async with redis.asyncio.Redis(port=own_server.port) as watcher:
        await watcher.client_kill_filter(_type="normal", skipme=True)
        deadline = time.monotonic() + 10
        while len(await watcher.client_list()) > 1:  # the loop reads each close meanwhile
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    assert await cache.aincr("n") == 11
    assert int(admin.get(":1:n") or 0) == 11


async def test_a_non_idempotent_call_on_a_close_not_yet_read_fails_and_is_not_resent(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """The one case a dead connection is found by the command failing: the loop has
    not read the close yet. An incr is then not sent again: ReplyLostError, run once
    at most (here never: the server had closed that connection)."""
    cache = RedisCache(own_server.url, {})
    await cache.aset("n", 10)
    await warm_async(cache, 8)
    kill_idle_connections(own_server, admin)  # blocking: the loop reads nothing meanwhile
    with pytest.raises(ReplyLostError):
        await cache.aincr("n")
    assert int(admin.get(":1:n") or 0) == 10
    assert await cache.aincr("n") == 11  # the loop has read every close now


def test_sync_default_pool_all_killed_at_once(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """The default pool size, every connection killed at once: 0 errors afterwards."""
    cache = RedisCache(own_server.url, {})
    cache.set("key", "value")
    warm_sync(cache, DEFAULT_MAX_CONNECTIONS)
    kill_idle_connections(own_server, admin)
    results: list[Any] = []

    def worker() -> None:
        for _ in range(10):
            results.append(cache.get("key"))

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["value"] * 200


async def test_async_default_pool_all_killed_at_once(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """The default pool size, every connection killed at once, then 25 rounds of 8
    concurrent calls: 0 errors."""
    cache = RedisCache(own_server.url, {})
    await cache.aset("key", "value")
    await warm_async(cache, DEFAULT_MAX_CONNECTIONS)
    assert clients(admin) == DEFAULT_MAX_CONNECTIONS + shared_connections()
    kill_idle_connections(own_server, admin)
    failed = []
    for _ in range(25):
        results = await asyncio.gather(
            *(cache.aget("key") for _ in range(8)), return_exceptions=True
        )
        failed += [result for result in results if result != "value"]
    assert failed == []


async def test_async_idle_connections_cut_while_the_pool_is_under_load(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """Two tasks keep two connections busy while the server cuts the six idle ones;
    then a burst needs all eight: no call fails, during or after."""
    cache = RedisCache(own_server.url, {})
    await cache.aset("key", "value")
    await warm_async(cache, 8)
    results: list[Any] = []
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            results.append(await cache.aget("key"))
            await asyncio.sleep(0.005)

    workers = [asyncio.create_task(load()) for _ in range(2)]
    try:
        async with redis.asyncio.Redis(port=own_server.port) as watcher:
            await watcher.config_set("timeout", 1)
            deadline = time.monotonic() + 10
            while len(await watcher.client_list()) > 3:  # the 2 busy ones and the watcher
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            await watcher.config_set("timeout", 0)
        burst = await asyncio.gather(*(cache.aget("key") for _ in range(8)))
    finally:
        stop.set()
        await asyncio.gather(*workers)
    assert burst == ["value"] * 8
    assert results == ["value"] * len(results)
    assert len(results) > 100


def test_sync_idle_connections_cut_while_the_pool_is_under_load(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """The same with threads: two busy, six cut by the server, then a burst of eight."""
    cache = RedisCache(own_server.url, {})
    cache.set("key", "value")
    warm_sync(cache, 8)
    results: list[Any] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                results.append(cache.get("key"))
            except BaseException as exc:  # counted, asserted below
                errors.append(exc)
            time.sleep(0.005)

    def burst() -> None:
        try:
            results.append(cache.get("key"))
        except BaseException as exc:  # counted, asserted below
            errors.append(exc)

    workers = [threading.Thread(target=load) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        admin.config_set("timeout", 1)
        poll(lambda: clients(admin) <= 2)
        admin.config_set("timeout", 0)
        bursts = [threading.Thread(target=burst) for _ in range(8)]
        for thread in bursts:
            thread.start()
        for thread in bursts:
            thread.join()
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert errors == []
    assert results == ["value"] * len(results)


async def test_redis_py_still_keeps_the_stream_reader_where_the_pool_reads_it(
    own_server: ServerProcess,
) -> None:
    """The checkout test reads redis-py's private ``_reader``: if a redis-py release
    moves it, this fails with a clear message rather than the pool silently
    handing out dead connections."""
    cache = RedisCache(own_server.url, {})
    await cache.aget("key")
    pool = _pools.async_pool(cache._config.servers[0])
    connection = await pool.acquire()
    try:
        reader = getattr(connection, "_reader", None)
        assert isinstance(reader, asyncio.StreamReader), (
            "redis.asyncio connections no longer keep their StreamReader in `_reader`: "
            "update _pools.peer_is_open"
        )
        assert _pools.peer_is_open(connection)
    finally:
        pool.release(connection)
