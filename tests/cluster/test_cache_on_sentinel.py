"""The cache API's own tests, run again against a Sentinel-managed primary, and a
failover under load."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from django_asyncredis import ConnectionInterrupted, RedisCache
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
    errors: list[BaseException] = []
    successes: list[float] = []
    stop = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                cache.set("key", i)
                assert cache.get("key") == i
                successes.append(time.monotonic())
            except ConnectionInterrupted as exc:
                errors.append(exc)
                time.sleep(0.02)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(0.3)
        old = sentinel.primary_address()
        killed_at = time.monotonic()
        sentinel.kill_primary()
        new = sentinel.wait_for_failover(timeout=FAILOVER_BOUND)
        assert new != old
        deadline = killed_at + FAILOVER_BOUND
        while time.monotonic() < deadline and not any(t > killed_at + 0.5 for t in successes):
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join()
        sentinel.heal()
    back = [t for t in successes if t > killed_at + 0.5]
    assert back, f"no success within {FAILOVER_BOUND} s of the failover; errors: {errors[-3:]}"
    assert back[0] - killed_at < FAILOVER_BOUND
