"""Transactional ``incr`` and ``incr_version`` (``Pinned``) on Redis Cluster and Sentinel:
the key's node, or the primary; reads that decide a write never asked of a replica."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import redis
import redis.cluster

from django_asyncredis import RedisCache
from tests.cluster.test_cache_on_sentinel import sentinel_location

SIGNED = {"SERIALIZER": "django_asyncredis.serializers.signed.SignedPickleSerializer"}


def cluster_cache(cluster: Any, **options: Any) -> RedisCache:
    location = [f"redis+cluster://{host}:{port}" for host, port in cluster.startup_nodes]
    return RedisCache(location, {"OPTIONS": {**SIGNED, **options}})


def increment_from_threads(cache: RedisCache, keys: list[str], rounds: int) -> None:
    def work() -> None:
        for _ in range(rounds):
            for key in keys:
                cache.incr(key, ignore_key_check=True)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_signed_incr_on_keys_of_every_primary_loses_nothing(cluster: Any) -> None:
    """Each key's transaction runs on its own node: 4 threads x 50 on 6 keys."""
    cache = cluster_cache(cluster)
    keys = [f"counter-{i}" for i in range(6)]
    try:
        increment_from_threads(cache, keys, 50)
        assert cache.get_many(keys) == dict.fromkeys(keys, 200)

        async def more() -> list[int]:
            return [await cache.aincr(key, 2**64) for key in keys]

        assert asyncio.run(more()) == [2**64 + 200] * 6
    finally:
        cluster.flush()


@pytest.mark.parametrize("path", ["sync", "async"])
def test_signed_incr_version_across_slots_re_signs_and_keeps_the_expiry(
    cluster: Any, path: str
) -> None:
    """``:1:key`` and ``:2:key`` live in different slots: no transaction spans them,
    so the value is verified and re-signed, written under the new key, then the old
    key is deleted."""
    cache = cluster_cache(cluster)
    try:
        cache.set("key", {"a": 1}, 100)
        if path == "sync":
            assert cache.incr_version("key") == 2
        else:
            assert asyncio.run(cache.aincr_version("key")) == 2
        assert cache.get("key", version=2) == {"a": 1}
        assert cache.has_key("key", version=1) is False
        host, port = cluster.startup_nodes[0]
        with redis.cluster.RedisCluster(host=host, port=port) as raw:
            assert 0 < raw.pttl(":2:key") <= 100_000
    finally:
        cluster.flush()


@pytest.mark.parametrize("path", ["sync", "async"])
def test_signed_incr_on_sentinel_runs_on_the_primary(sentinel: Any, path: str) -> None:
    cache = RedisCache(
        sentinel_location(sentinel), {"OPTIONS": {**SIGNED, "READ_FROM_REPLICAS": True}}
    )
    (replica_host, replica_port), *_ = sentinel.replica_addresses()

    def replica_gets() -> int:
        with redis.Redis(host=replica_host, port=replica_port) as replica:
            stats = replica.info("commandstats").get("cmdstat_get", {})
            return int(stats.get("calls", 0))

    try:
        cache.set("n", 1)
        before = replica_gets()
        if path == "sync":
            results = [cache.incr("n") for _ in range(5)]
            owned = []
            lock = cache.lock("resource", timeout=10)
            assert lock.acquire()
            owned.append(lock.owned())
            lock.release()
        else:

            async def run() -> tuple[list[int], list[bool]]:
                values = [await cache.aincr("n") for _ in range(5)]
                lock = cache.alock("resource", timeout=10)
                assert await lock.acquire()
                held = [await lock.owned()]
                await lock.release()
                return values, held

            results, owned = asyncio.run(run())
        assert results == [2, 3, 4, 5, 6]
        assert owned == [True]
        assert replica_gets() - before == 0
    finally:
        sentinel.flush()


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_transactional_incr_follows_a_moved_slot(cluster: Any, path: str) -> None:
    """The map goes stale: the WATCH gets MOVED, the map is refreshed and the
    transaction starts over on the key's new node, unseen and exact."""
    from django_asyncredis._topology import _slot
    from tests.cluster.test_cluster_faults import move_slot, owner

    cache = cluster_cache(cluster)
    try:
        cache.set("moving", 1)
        stored = cache.make_key("moving")
        slot = _slot(stored)
        target = next(tuple(p) for p in cluster.primaries if tuple(p) != owner(cluster, slot))
        move_slot(cluster, slot, [stored], target)
        if path == "sync":
            assert cache.incr("moving") == 2
        else:
            assert asyncio.run(cache.aincr("moving")) == 2
        assert cache.get("moving") == 2
    finally:
        cluster.reset()
