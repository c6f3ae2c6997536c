"""``shared_connections``: the multiplexed transport's connections per (loop, server).

Each test uses a server of its own, so the server's connection count is exact.
Callers take the connection with the fewest callers waiting; a further one opens
only when every open one is busy, up to the option's count.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from django_asyncredis import RedisCache, _config, _multiplex, _pools
from django_asyncredis.errors import ReplyLostError
from tests.servers import ServerProcess, clients

THREE = {"OPTIONS": {"transport": "multiplexed", "shared_connections": 3}}


def multiplexer(cache: RedisCache) -> _multiplex.Multiplexer:
    """The running loop's multiplexer of the cache's server."""
    shared = _pools.async_pool(cache._config.servers[0]).shared
    assert shared is not None
    return shared  # type: ignore[no-any-return]


def shared_gauge(cache: RedisCache) -> int:
    """The ``shared`` gauge of the cache's async pool, as ``cache.stats`` reports it."""
    (pool,) = [pool for pool in cache.stats.as_dict()["pools"] if pool["api"] == "async"]
    return int(pool["shared"])


async def busy_until_open(cache: RedisCache, count: int) -> None:
    """Rounds of 64 concurrent gets until ``count`` shared connections are open
    (a further one opens only while every open one is busy)."""
    for _ in range(100):
        assert await asyncio.gather(*(cache.aget("key") for _ in range(64))) == ["value"] * 64
        if shared_gauge(cache) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{shared_gauge(cache)} shared connections open, not {count}")


def client_id(admin: redis.Redis, connection: _multiplex.SharedConnection) -> int:
    """The server's id for one shared connection (matched by its local address)."""
    host, port = connection._transport.get_extra_info("sockname")[:2]
    (entry,) = [entry for entry in admin.client_list() if entry["addr"] == f"{host}:{port}"]
    return int(entry["id"])


@contextlib.contextmanager
def writes_paused(server: ServerProcess, seconds: float) -> Iterator[None]:
    """Hold every write command (and everything queued behind one on its connection)."""
    with redis.Redis(port=server.port) as admin:
        admin.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "WRITE")
        yield


async def test_64_concurrent_calls_spread_over_exactly_3_connections(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """With shared_connections 3, 64 concurrent gets: 3 connections, no pooled one,
    each connection carrying gets."""
    cache = RedisCache(own_server.url, THREE)
    await cache.aset("key", "value")
    await busy_until_open(cache, 3)
    admin.config_resetstat()
    assert await asyncio.gather(*(cache.aget("key") for _ in range(64))) == ["value"] * 64
    connections = [entry for entry in admin.client_list() if entry["id"] != str(admin.client_id())]
    assert len(connections) == 3
    assert [entry["cmd"] for entry in connections] == ["get"] * 3
    assert shared_gauge(cache) == 3


async def test_sequential_calls_keep_to_one_connection(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """One caller at a time never finds its connection busy: 1 connection of the 3 allowed."""
    cache = RedisCache(own_server.url, THREE)
    for i in range(50):
        await cache.aset(f"k{i}", i)
        assert await cache.aget(f"k{i}") == i
    assert clients(admin) == 1
    assert shared_gauge(cache) == 1


async def test_killing_one_connection_fails_only_the_calls_on_it(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """30 incrs (never re-sent) waiting on 3 connections, one connection killed: exactly
    the 10 on it fail with ReplyLostError (and never ran), the other 20 count once;
    then 64 more incrs succeed with 0 errors and the killed connection is replaced."""
    cache = RedisCache(own_server.url, THREE)
    await cache.aset("key", "value")
    await busy_until_open(cache, 3)
    with writes_paused(own_server, 0.5):
        incrs = [
            asyncio.create_task(cache.aincr(f"n{i}", ignore_key_check=True)) for i in range(30)
        ]
        await asyncio.sleep(0.1)  # all written, each connection blocked on its first incr
        killed = multiplexer(cache)._connections[1]
        assert len(killed._waiting) == 10
        admin.client_kill_filter(_id=client_id(admin, killed))
        results = await asyncio.gather(*incrs, return_exceptions=True)
    failed = [i for i, result in enumerate(results) if isinstance(result, Exception)]
    # Equally busy connections take calls in turn: the 2nd connection had the 2nd, 5th...
    assert failed == list(range(1, 30, 3))
    assert all(isinstance(results[i], ReplyLostError) for i in failed)
    assert results.count(1) == 20
    values = await cache.aget_many([f"n{i}" for i in range(30)])
    assert set(values) == {f"n{i}" for i in range(30) if i not in failed}
    assert set(values.values()) == {1}
    after = await asyncio.gather(
        *(cache.aincr("after", ignore_key_check=True) for _ in range(64)), return_exceptions=True
    )
    assert [result for result in after if isinstance(result, Exception)] == []
    assert sorted(after) == list(range(1, 65))  # type: ignore[type-var]
    await busy_until_open(cache, 3)
    assert clients(admin) == 3


async def test_reads_on_a_killed_connection_are_sent_again_on_the_others(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """Each of 3 connections blocked on an incr with 10 gets behind it; one killed:
    its incr fails (ReplyLostError), its 10 gets are sent again once and answered;
    the server ran 30 gets and 2 incrs in all."""
    cache = RedisCache(own_server.url, THREE)
    await cache.aset("key", "value")
    await busy_until_open(cache, 3)
    admin.config_resetstat()
    with writes_paused(own_server, 0.5):
        incrs = [asyncio.create_task(cache.aincr(f"n{i}", ignore_key_check=True)) for i in range(3)]
        await asyncio.sleep(0)  # one incr at the head of each connection
        gets = [asyncio.create_task(cache.aget("key")) for _ in range(30)]
        await asyncio.sleep(0.1)
        killed = multiplexer(cache)._connections[0]
        assert len(killed._waiting) == 11
        admin.client_kill_filter(_id=client_id(admin, killed))
        results = await asyncio.gather(*incrs, return_exceptions=True)
        assert await asyncio.gather(*gets) == ["value"] * 30
    assert [type(result) for result in results].count(ReplyLostError) == 1
    assert results.count(1) == 2
    stats = admin.info("commandstats")
    assert (stats["cmdstat_get"]["calls"], stats["cmdstat_incrby"]["calls"]) == (30, 2)


async def test_close_waits_for_the_callers_on_every_connection(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """CLOSE_CONNECTION with 30 gets waiting over 3 connections: the 30 get their
    values, then all 3 connections close, counted closed."""
    options = {**THREE["OPTIONS"], "CLOSE_CONNECTION": True}
    cache = RedisCache(own_server.url, {"OPTIONS": options})
    await cache.aset("key", "value")
    await busy_until_open(cache, 3)
    with redis.Redis(port=own_server.port) as pauser:
        pauser.execute_command("CLIENT", "PAUSE", 200, "ALL")
        gets = [asyncio.create_task(cache.aget("key")) for _ in range(30)]
        await asyncio.sleep(0.05)
        assert [len(c._waiting) for c in multiplexer(cache)._connections] == [10, 10, 10]
        await cache.aclose()
    assert await asyncio.gather(*gets) == ["value"] * 30
    for _ in range(100):
        if clients(admin) == 0:
            break
        await asyncio.sleep(0.01)
    assert clients(admin) == 0
    (pool,) = [pool for pool in cache.stats.as_dict()["pools"] if pool["api"] == "async"]
    assert (pool["shared"], pool["closed_total"]) == (0, pool["opened_total"])


def test_the_sync_api_keeps_its_pool(own_server: ServerProcess, admin: redis.Redis) -> None:
    """shared_connections does not touch the sync API: its calls use 1 pooled connection."""
    cache = RedisCache(own_server.url, THREE)
    cache.set("key", "value")
    for _ in range(20):
        assert cache.get("key") == "value"
    assert clients(admin) == 1
    assert [pool["api"] for pool in cache.stats.as_dict()["pools"]] == ["sync"]


@pytest.mark.parametrize("spelling", ["shared_connections", "SHARED_CONNECTIONS"])
def test_the_option_is_read_in_both_spellings(spelling: str) -> None:
    """Django's lower-case and django-redis's upper-case spellings both set the count."""
    config = _config.parse("redis://localhost", {"transport": "multiplexed", spelling: 4})
    assert config.servers[0].shared_connections == 4


def test_the_default_is_one_connection() -> None:
    """Unset, each (loop, server) has DEFAULT_SHARED_CONNECTIONS shared connection."""
    config = _config.parse("redis://localhost", {"transport": "multiplexed"})
    assert config.servers[0].shared_connections == _config.DEFAULT_SHARED_CONNECTIONS == 1


@pytest.mark.parametrize("value", [0, 9, -1, "3", 2.0, True, None])
def test_a_count_outside_1_to_8_is_refused(value: Any) -> None:
    """Anything but an int from 1 to 8 is ImproperlyConfigured, naming the option as spelled."""
    with pytest.raises(ImproperlyConfigured, match=r"\['SHARED_CONNECTIONS'\] must be an int from"):
        _config.parse("redis://localhost", {"SHARED_CONNECTIONS": value})


def test_the_option_is_refused_with_the_pooled_transport() -> None:
    """With transport "pooled" the count would change nothing: refused, naming both options."""
    with pytest.raises(ImproperlyConfigured, match=r"'shared_connections'.*'pooled'"):
        _config.parse("redis://localhost", {"transport": "pooled", "shared_connections": 2})


def test_without_hiredis_the_option_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without hiredis the multiplexed transport falls back to pooled, and its count to 1."""
    monkeypatch.setattr(_multiplex, "AVAILABLE", False)
    options = {"transport": "multiplexed", "shared_connections": 3}
    config = _config.parse("redis://localhost", options)
    assert (config.servers[0].transport, config.servers[0].shared_connections) == ("pooled", 1)


async def test_a_refused_further_connection_leaves_the_calls_on_the_open_one(
    own_server: ServerProcess, admin: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server refuses a second client (maxclients): 20 rounds of 64 concurrent gets
    all succeed on the one connection, and each of the 2 further connections is tried
    once, not once per busy call."""
    monkeypatch.setattr(_multiplex, "_GROW_BACKOFF", 3600.0)
    cache = RedisCache(own_server.url, THREE)
    await cache.aset("key", "value")
    admin.config_set("maxclients", 2)  # the admin client and the first shared connection
    for _ in range(20):
        results = await asyncio.gather(*(cache.aget("key") for _ in range(64)))
        assert results == ["value"] * 64
    assert admin.info("stats")["rejected_connections"] == 2
    assert shared_gauge(cache) == 1


def test_a_loop_closed_right_after_calls_leaves_no_opening_behind(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """10 Celery-style loops (closed without shutdown_asyncgens) that each end right
    after 4 concurrent gets: every connection opening was awaited by a call, so none
    is left pending in a closed loop; the next clean loop closes the last one's 3."""
    cache = RedisCache(own_server.url, THREE)

    async def use() -> None:
        await cache.aset("key", "value")
        # The gets find the first connection busy: 2 more open, and the loop ends.
        assert await asyncio.gather(*(cache.aget("key") for _ in range(4))) == ["value"] * 4

    for _ in range(10):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(use())
        finally:
            loop.close()
        assert clients(admin) == 3
    asyncio.run(cache.aget("key"))
    for _ in range(100):
        if clients(admin) == 0:
            break
        time.sleep(0.01)
    assert clients(admin) == 0
