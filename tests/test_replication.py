"""LOCATION with several servers: writes to the leader, reads from a replica."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from django_asyncredis import RedisCache
from tests.servers import ServerProcess


@pytest.fixture(scope="module")
def leader_and_replica() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    leader = ServerProcess().start()
    replica = ServerProcess(["--replicaof", "127.0.0.1", str(leader.port)]).start()
    client = redis.Redis(port=replica.port)
    deadline = time.monotonic() + 10
    while client.info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica did not sync with the leader"
        time.sleep(0.05)
    client.close()
    yield leader, replica
    replica.stop()
    leader.stop()


def commands_served(server: ServerProcess, command: str) -> int:
    with redis.Redis(port=server.port) as client:
        stats = client.info("commandstats").get(f"cmdstat_{command}", {})
        return int(stats.get("calls", 0))


def replicated(leader: ServerProcess, replica: ServerProcess) -> None:
    """Wait until the replica has applied everything the leader has."""
    with redis.Redis(port=leader.port) as primary:
        primary.wait(1, 2000)


@pytest.mark.parametrize("path", ["sync", "async"])
def test_writes_go_to_the_leader_and_reads_to_the_replica(
    leader_and_replica: tuple[ServerProcess, ServerProcess], path: str
) -> None:
    leader, replica = leader_and_replica
    cache = RedisCache([leader.url, replica.url], {"KEY_PREFIX": path})
    reads_before = commands_served(replica, "get")
    if path == "sync":
        cache.set("key", "value")
        replicated(leader, replica)
        results = [cache.get("key") for _ in range(5)]
    else:

        async def run() -> list[Any]:
            await cache.aset("key", "value")
            replicated(leader, replica)
            return [await cache.aget("key") for _ in range(5)]

        results = asyncio.run(run())
    assert results == ["value"] * 5
    assert commands_served(replica, "get") - reads_before == 5


def test_location_as_a_separated_string(
    leader_and_replica: tuple[ServerProcess, ServerProcess],
) -> None:
    leader, replica = leader_and_replica
    cache = RedisCache(f"{leader.url};{replica.url}", {"KEY_PREFIX": "str"})
    cache.set("key", 1)
    replicated(leader, replica)
    assert cache.get("key") == 1
