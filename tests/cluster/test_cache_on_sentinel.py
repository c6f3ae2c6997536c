"""The cache API's own tests, run again against a Sentinel-managed primary, and a
failover under load."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from django_asyncredis import RedisCache
from tests.cluster.load import Load
from tests.test_operations import *  # noqa: F403  (the tests, collected again here)


def sentinel_location(sentinel: Any) -> list[str]:
    return [
        f"redis+sentinel://{host}:{port}/{sentinel.service_name}"
        for host, port in sentinel.sentinels
    ]


@pytest.fixture
def make_cache(sentinel: Any) -> Iterator[Callable[..., Any]]:
    def make(location: Any = None, **params: Any) -> RedisCache:
        return RedisCache(location or sentinel_location(sentinel), params)

    yield make
    sentinel.flush()


@pytest.fixture
def raw(sentinel: Any) -> Iterator[Any]:
    host, port = sentinel.primary_address()
    client = redis.Redis(host=host, port=port)
    yield client
    client.close()


def test_reads_can_go_to_the_replica(make_cache: Any, sentinel: Any) -> None:
    cache = make_cache(OPTIONS={"READ_FROM_REPLICAS": True})
    cache.set("key", "value")
    host, port = sentinel.primary_address()
    with redis.Redis(host=host, port=port) as primary:
        primary.wait(1, 2000)
    assert [cache.get("key") for _ in range(5)] == ["value"] * 5
    (replica_host, replica_port), *_ = sentinel.replica_addresses()
    with redis.Redis(host=replica_host, port=replica_port) as replica:
        assert int(replica.info("commandstats").get("cmdstat_get", {}).get("calls", 0)) >= 1


FAILOVER_BOUND = 15.0  # seconds from the primary's death to the cache serving again


def test_the_cache_follows_a_failover_under_load(make_cache: Any, sentinel: Any) -> None:
    """The primary dies; sentinels promote the replica; the same backend object
    serves again within FAILOVER_BOUND, with only ConnectionInterrupted meanwhile."""
    cache = make_cache(OPTIONS={"socket_connect_timeout": 0.3, "socket_timeout": 0.5})
    cache.set("key", 0)

    def step(i: int) -> None:
        cache.set("key", i)
        assert cache.get("key") == i

    try:
        with Load(step) as load:
            old = sentinel.primary_address()
            killed_at = time.monotonic()
            sentinel.kill_primary()
            assert sentinel.wait_for_failover(timeout=FAILOVER_BOUND) != old
            back = load.first_success_after(killed_at + 0.5, FAILOVER_BOUND)
    finally:
        sentinel.heal()
    assert back is not None, f"no success within {FAILOVER_BOUND} s; errors: {load.errors[-3:]}"
    assert back - killed_at < FAILOVER_BOUND
