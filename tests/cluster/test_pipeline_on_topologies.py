"""The cache pipeline's tests, run again on Redis Cluster (commands split per node,
an error on one node keeping the others' replies) and on a Sentinel primary."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.cluster

from django_asyncredis import RedisCache
from tests.cluster.test_cache_on_sentinel import sentinel_location
from tests.test_pipeline import *  # noqa: F403  (the tests, collected again here)


@pytest.fixture(params=["cluster", "sentinel"])
def topology(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param)


@pytest.fixture
def make_cache(topology: Any) -> Iterator[Callable[..., Any]]:
    if hasattr(topology, "startup_nodes"):
        location = [f"redis+cluster://{host}:{port}" for host, port in topology.startup_nodes]
    else:
        location = sentinel_location(topology)

    def make(location_override: Any = None, **params: Any) -> RedisCache:
        return RedisCache(location_override or location, params)

    yield make
    topology.flush()


@pytest.fixture
def raw(topology: Any) -> Iterator[Any]:
    if hasattr(topology, "startup_nodes"):
        host, port = topology.startup_nodes[0]
        client: Any = redis.cluster.RedisCluster(host=host, port=port)
    else:
        host, port = topology.primary_address()
        client = redis.Redis(host=host, port=port)
    yield client
    client.close()


def test_calls_on_every_node_come_back_in_order(cache: Any, run: Any) -> None:
    """Thirty keys (spread over every primary of a cluster), set then read in one pipeline."""

    def build(p: Any) -> None:
        for i in range(30):
            p.set(f"key{i}", i)
        for i in range(30):
            p.get(f"key{i}")

    assert run(cache, build) == [None] * 30 + list(range(30))


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_moved_slot_resends_only_the_redirected_calls(cluster: Any, is_async: bool) -> None:
    """After a slot moves, the pipeline's call on it is answered MOVED and sent again
    to the new owner; the calls other nodes executed do not run a second time."""
    from django_asyncredis._topology import _slot
    from tests.cluster.test_cluster_faults import location, move_slot, owner

    cache = RedisCache(location(cluster), {})
    keys = [f"counter{i}" for i in range(12)]
    cache.set_many(dict.fromkeys(keys, 0))  # the map is loaded now
    moving = cache.make_key(keys[0])
    source = owner(cluster, _slot(moving))
    target = next(p for p in cluster.primaries if tuple(p) != source)
    move_slot(cluster, _slot(moving), [moving], tuple(target))

    def build(p: Any) -> None:
        for key in keys:
            p.incr(key)

    if is_async:

        async def main() -> list[Any]:
            async with cache.apipeline() as p:
                build(p)
            return p.results

        results = asyncio.run(main())
    else:
        with cache.pipeline() as p:
            build(p)
        results = p.results
    assert results == [1] * 12
    assert cache.get_many(keys) == dict.fromkeys(keys, 1)
