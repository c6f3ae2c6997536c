"""Redis Cluster under change: redirections and a failover during load."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

from django_asyncredis import RedisCache
from django_asyncredis._topology import _slot
from tests.cluster.load import Load


def location(cluster: Any) -> list[str]:
    return [f"redis+cluster://{host}:{port}" for host, port in cluster.startup_nodes]


def node_ids(cluster: Any) -> dict[tuple[str, int], str]:
    host, port = cluster.primaries[0]
    with redis.Redis(host=host, port=port) as client:
        ids = {}
        for line in client.execute_command("CLUSTER", "NODES").decode().splitlines():
            node_id, address = line.split()[:2]
            hostport = address.split("@")[0]
            h, p = hostport.rsplit(":", 1)
            ids[(h, int(p))] = node_id
        return ids


def owner(cluster: Any, slot: int) -> tuple[str, int]:
    host, port = cluster.primaries[0]
    with redis.Redis(host=host, port=port) as client:
        for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return primary[0].decode(), int(primary[1])
    raise AssertionError(f"slot {slot} has no owner")


def move_slot(cluster: Any, slot: int, keys: list[str], target: tuple[str, int]) -> None:
    """Migrate a slot and its keys to another primary, as redis-cli --cluster reshard does."""
    source = owner(cluster, slot)
    ids = node_ids(cluster)
    with redis.Redis(*source) as src, redis.Redis(*target) as dst:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
        for key in keys:
            src.execute_command("MIGRATE", target[0], target[1], key, 0, 5000)
        for host, port in cluster.primaries:
            with redis.Redis(host=host, port=port) as node:
                node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target])


def test_a_moved_slot_is_followed(cluster: Any) -> None:
    """The cache's slot map goes stale; MOVED makes it refresh and retry, unseen."""
    cache = RedisCache(location(cluster), {})
    cache.set("moving", "value")
    stored = cache.make_key("moving")
    slot = _slot(stored)
    source = owner(cluster, slot)
    target = next(p for p in cluster.primaries if tuple(p) != source)
    move_slot(cluster, slot, [stored], tuple(target))
    assert cache.get("moving") == "value"
    assert asyncio.run(cache.aget("moving")) == "value"
    assert owner(cluster, slot) == tuple(target)


def test_an_ask_redirection_during_a_migration_is_followed(cluster: Any) -> None:
    """Mid-migration, a key already moved is answered by ASK: the cache asks the new node."""
    cache = RedisCache(location(cluster), {})
    cache.set("asked", "value")
    stored = cache.make_key("asked")
    slot = _slot(stored)
    source = owner(cluster, slot)
    target = next(tuple(p) for p in cluster.primaries if tuple(p) != source)
    ids = node_ids(cluster)
    with redis.Redis(*source) as src, redis.Redis(*target) as dst:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
        src.execute_command("MIGRATE", target[0], target[1], stored, 0, 5000)
        try:
            assert cache.get("asked") == "value"
            assert asyncio.run(cache.aget("asked")) == "value"
        finally:
            for host, port in cluster.primaries:
                with redis.Redis(host=host, port=port) as node:
                    node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target])


FAILOVER_BOUND = 15.0


def test_the_cache_survives_a_primary_failover_under_load(cluster: Any) -> None:
    cache = RedisCache(
        location(cluster), {"OPTIONS": {"socket_connect_timeout": 0.3, "socket_timeout": 0.5}}
    )
    keys = [f"load-{i}" for i in range(30)]
    cache.set_many(dict.fromkeys(keys, 0))

    def step(i: int) -> None:
        cache.set_many(dict.fromkeys(keys, i))
        assert cache.get_many(keys) == dict.fromkeys(keys, i)

    try:
        with Load(step) as load:
            killed_at = time.monotonic()
            cluster.wait_for_failover(cluster.kill_primary(0), timeout=FAILOVER_BOUND)
            back = load.first_success_after(killed_at + 0.5, FAILOVER_BOUND)
    finally:
        cluster.heal()
    assert back is not None, f"no success within {FAILOVER_BOUND} s; errors: {load.errors[-3:]}"
