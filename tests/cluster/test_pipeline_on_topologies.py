"""The cache pipeline's tests, run again on Redis Cluster (commands split per node,
an error on one node keeping the others' replies) and on a Sentinel primary."""

from __future__ import annotations

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
