"""LOCATION with several servers: writes to the leader, reads from a replica."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
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


# Reads that decide a write or a lock go to the primary.


def replica_gets_during(replica: ServerProcess, action: Callable[[], Any]) -> int:
    before = commands_served(replica, "get")
    action()
    return commands_served(replica, "get") - before


@pytest.mark.parametrize("path", ["sync", "async"])
def test_lock_owned_asks_the_primary(
    leader_and_replica: tuple[ServerProcess, ServerProcess], path: str
) -> None:
    """A replica that has not yet seen the acquisition would say "not owned"."""
    leader, replica = leader_and_replica
    cache = RedisCache([leader.url, replica.url], {"KEY_PREFIX": f"lock-{path}"})

    def check() -> list[bool]:
        if path == "sync":
            lock = cache.lock("resource", timeout=10)
            assert lock.acquire()
            try:
                return [lock.owned() for _ in range(5)]
            finally:
                lock.release()

        async def run() -> list[bool]:
            lock = cache.alock("resource", timeout=10)
            assert await lock.acquire()
            try:
                return [await lock.owned() for _ in range(5)]
            finally:
                await lock.release()

        return asyncio.run(run())

    owned: list[bool] = []
    assert replica_gets_during(replica, lambda: owned.extend(check())) == 0
    assert owned == [True] * 5


@pytest.mark.parametrize("path", ["sync", "async"])
def test_the_read_of_a_transactional_incr_asks_the_primary(
    leader_and_replica: tuple[ServerProcess, ServerProcess], path: str
) -> None:
    """Past 64 bits incr reads, adds and writes: a stale replica read would lose updates."""
    leader, replica = leader_and_replica
    cache = RedisCache([leader.url, replica.url], {"KEY_PREFIX": f"incr-{path}"})
    cache.set("big", 2**64)

    def increments() -> None:
        if path == "sync":
            for _ in range(5):
                cache.incr("big")
            return

        async def run() -> None:
            for _ in range(5):
                await cache.aincr("big")

        asyncio.run(run())

    assert replica_gets_during(replica, increments) == 0
    assert cache.get("big") == 2**64 + 5


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_session_load_asks_the_primary(
    leader_and_replica: tuple[ServerProcess, ServerProcess], path: str
) -> None:
    """A lagging replica would hand back an older session, which the next save restores."""
    from django.test import override_settings

    from django_asyncredis.sessions import SessionStore

    leader, replica = leader_and_replica
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
        "sessions": {
            "BACKEND": "django_asyncredis.RedisCache",
            "LOCATION": [leader.url, replica.url],
            "KEY_PREFIX": f"session-{path}",
        },
    }
    with override_settings(CACHES=caches, SESSION_CACHE_ALIAS="sessions"):
        session = SessionStore()
        session["user"] = 42
        session.save()
        key = session.session_key

        def loads() -> list[Any]:
            if path == "sync":
                return [SessionStore(key).load() for _ in range(5)]

            async def run() -> list[Any]:
                return [await SessionStore(key).aload() for _ in range(5)]

            return asyncio.run(run())

        loaded: list[Any] = []
        assert replica_gets_during(replica, lambda: loaded.extend(loads())) == 0
    assert loaded == [{"user": 42}] * 5
