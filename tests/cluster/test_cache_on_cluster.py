"""The cache API's own tests, run again on a real local Redis Cluster.

The fixtures ``make_cache`` and ``raw`` are replaced here: caches point at the
cluster (``redis+cluster://`` startup nodes) and ``raw`` is redis-py's cluster
client, so each imported test checks the same behaviour with keys spread over
three primaries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis.cluster

from django_asyncredis import RedisCache
from tests.test_extensions import *  # noqa: F403  (the tests, collected again here)
from tests.test_operations import *  # noqa: F403


@pytest.fixture
def make_cache(cluster: Any) -> Iterator[Callable[..., Any]]:
    location = [f"redis+cluster://{host}:{port}" for host, port in cluster.startup_nodes]

    def make(location_override: Any = None, **params: Any) -> RedisCache:
        return RedisCache(location_override or location, params)

    yield make
    cluster.flush()


@pytest.fixture
def raw(cluster: Any) -> Iterator[Any]:
    host, port = cluster.startup_nodes[0]
    client = redis.cluster.RedisCluster(host=host, port=port)
    yield client
    client.close()


def test_keys_really_are_spread_over_the_primaries(cache: Any, cluster: Any) -> None:
    """Otherwise the tests above would prove little about routing."""
    cache.set_many({f"key-{i}": i for i in range(100)})
    counts = []
    for host, port in cluster.primaries:
        with redis.Redis(host=host, port=port) as node:
            counts.append(node.dbsize())
    assert len(counts) == 3
    assert all(count > 10 for count in counts)
    assert sum(counts) == 100


def test_get_many_across_slots_is_in_the_callers_order(cache: Any) -> None:
    keys = [f"k{i}" for i in range(50)]
    asyncio.run(cache.aset_many({key: key.upper() for key in keys}))
    assert list(cache.get_many(reversed(keys)).items()) == [(k, k.upper()) for k in reversed(keys)]
    assert asyncio.run(cache.aget_many(keys)) == {key: key.upper() for key in keys}


def test_a_hash_tag_prefix_keeps_a_sites_keys_on_one_slot(make_cache: Any, cluster: Any) -> None:
    cache = make_cache(KEY_PREFIX="{site1}")
    cache.set_many({f"key-{i}": i for i in range(20)})
    sizes = []
    for host, port in cluster.primaries:
        with redis.Redis(host=host, port=port) as node:
            sizes.append(node.dbsize())
    assert sorted(sizes) == [0, 0, 20]
    assert cache.sinter("key-a", "key-b") == set()  # multi-key commands work on one slot
