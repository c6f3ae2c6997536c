"""Pool gauges: connections in use and idle, waits, opened and closed, on both APIs.

Each test uses a server of its own, so its pools (keyed by server) start at zero.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import redis

from django_asyncredis import RedisCache, _pools
from tests.servers import ServerProcess

POOL_OF_2 = {"max_connections": 2, "transport": "pooled", "CLOSE_CONNECTION": True}
CALLERS = 8


def pause(server: ServerProcess, seconds: float) -> None:
    """Hold every reply for ``seconds``: concurrent callers must then queue for the pool."""
    with redis.Redis(port=server.port) as admin:
        admin.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")


def gauges(cache: RedisCache, api: str) -> dict[str, Any]:
    """The one pool of ``api`` that ``cache.stats.as_dict()`` reports."""
    pools = [pool for pool in cache.stats.as_dict()["pools"] if pool["api"] == api]
    assert len(pools) == 1, pools
    return pools[0]


async def test_async_callers_beyond_the_pool_wait_and_two_connections_open(
    own_server: ServerProcess,
) -> None:
    """8 concurrent agets on a pool of 2: 2 connections opened, the others waited."""
    cache = RedisCache(own_server.url, {"OPTIONS": POOL_OF_2})
    await cache.aset("key", "value")
    pause(own_server, 0.1)
    assert await asyncio.gather(*(cache.aget("key") for _ in range(CALLERS))) == ["value"] * 8
    pool = gauges(cache, "async")
    assert (pool["opened_total"], pool["closed_total"]) == (2, 0)
    assert (pool["in_use"], pool["idle"], pool["waiters"]) == (0, 2, 0)
    assert pool["waited_total"] >= CALLERS - 2
    assert pool["wait_seconds_total"] > 0


async def test_async_close_counts_the_closed_connections(own_server: ServerProcess) -> None:
    """Closing the cache (CLOSE_CONNECTION) counts both pooled connections closed."""
    cache = RedisCache(own_server.url, {"OPTIONS": POOL_OF_2})
    await asyncio.gather(*(cache.aget("key") for _ in range(CALLERS)))
    await cache.aclose()
    pool = gauges(cache, "async")
    assert (pool["opened_total"], pool["closed_total"], pool["in_use"], pool["idle"]) == (
        2,
        2,
        0,
        0,
    )


async def test_multiplexed_shows_one_shared_connection(own_server: ServerProcess) -> None:
    """64 concurrent agets multiplexed: 1 connection opened, in use as the shared one."""
    cache = RedisCache(own_server.url, {"OPTIONS": {"transport": "multiplexed"}})
    await asyncio.gather(*(cache.aget("key") for _ in range(64)))
    pool = gauges(cache, "async")
    assert (pool["shared"], pool["in_use"], pool["opened_total"], pool["closed_total"]) == (
        1,
        1,
        1,
        0,
    )


async def test_multiplexed_close_counts_the_shared_connection_closed(
    own_server: ServerProcess,
) -> None:
    """Closing a multiplexed cache counts its shared connection closed."""
    options = {"transport": "multiplexed", "CLOSE_CONNECTION": True}
    cache = RedisCache(own_server.url, {"OPTIONS": options})
    await asyncio.gather(*(cache.aget("key") for _ in range(64)))
    await cache.aclose()
    pool = gauges(cache, "async")
    assert (pool["shared"], pool["opened_total"], pool["closed_total"]) == (0, 1, 1)


def test_sync_callers_beyond_the_pool_wait_and_two_connections_open(
    own_server: ServerProcess,
) -> None:
    """8 threads calling get at once on a pool of 2: 2 connections opened, the others waited."""
    cache = RedisCache(own_server.url, {"OPTIONS": POOL_OF_2})
    cache.set("key", "value")
    pause(own_server, 0.1)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("key"))) for _ in range(CALLERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["value"] * CALLERS
    pool = gauges(cache, "sync")
    assert (pool["opened_total"], pool["closed_total"]) == (2, 0)
    assert (pool["in_use"], pool["idle"], pool["waiters"]) == (0, 2, 0)
    assert pool["waited_total"] >= CALLERS - 2
    assert pool["wait_seconds_total"] > 0


def test_sync_close_counts_the_closed_connections(own_server: ServerProcess) -> None:
    """Closing the cache (CLOSE_CONNECTION) counts the pool's connections closed."""
    cache = RedisCache(own_server.url, {"OPTIONS": POOL_OF_2})
    cache.set("key", "value")
    cache.close()
    pool = gauges(cache, "sync")
    assert (pool["opened_total"], pool["closed_total"], pool["in_use"], pool["idle"]) == (
        1,
        1,
        0,
        0,
    )


def test_the_sync_wait_line_still_reads_the_queue_it_subclasses() -> None:
    """The sync gauges read ``queue.Queue``'s ``mutex`` and ``queue`` (documented in
    docs/design.md): fail clearly here if the standard library renames them."""
    line = _pools._WaitLine.__mro__[1](1)
    assert hasattr(line, "mutex"), "queue.Queue lost its `mutex`: fix _WaitLine.idle_connected"
    assert hasattr(line, "queue"), "queue.Queue lost its `queue`: fix _WaitLine.idle_connected"


@pytest.mark.parametrize("api", ["sync", "async"])
def test_prometheus_text_holds_the_pool_gauges(api: str, own_server: ServerProcess) -> None:
    """After one call, the Prometheus text shows the pool: 1 opened, 1 idle, 0 waiters."""
    from django_asyncredis.prometheus import prometheus_text

    cache = RedisCache(own_server.url, {"OPTIONS": {"transport": "pooled"}})
    server = str(cache._config.servers[0])
    labels = f'{{alias="{cache.stats.alias}",api="{api}",server="{server}"}}'

    async def in_a_loop() -> str:
        await cache.aget("key")
        return prometheus_text()  # while the loop (and its pool) lives

    if api == "sync":
        cache.get("key")
        text = prometheus_text()
    else:
        text = asyncio.run(in_a_loop())
    assert f"django_asyncredis_pool_opened_total{labels} 1\n" in text
    assert f"django_asyncredis_pool_idle{labels} 1\n" in text
    assert f"django_asyncredis_pool_waiters{labels} 0\n" in text
    assert "# TYPE django_asyncredis_pool_opened_total counter" in text
    assert "# TYPE django_asyncredis_pool_in_use gauge" in text
