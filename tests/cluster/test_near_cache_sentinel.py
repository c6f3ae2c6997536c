"""The near-cache on a Sentinel service: it tracks the current primary, and a
failover (the primary killed, or SENTINEL FAILOVER with the old one left up)
flushes it, so no value of the old primary shadows one written on the new."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from django_asyncredis import ConnectionInterrupted, RedisCache, _near, _near_primary
from tests.conftest import AsyncAPI
from tests.topologies import Address, NotReady, Sentinel, command, poll

pytestmark = pytest.mark.filterwarnings("error")

_prefixes = itertools.count()
#: Seconds for the sentinels to promote a replica (down-after 1 s, then an election).
FAILOVER_BOUND = 30.0


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        time.sleep(0.005)


def location(sentinel: Sentinel) -> list[str]:
    return [f"redis+sentinel://{h}:{p}/{sentinel.service_name}" for h, p in sentinel.sentinels]


def store_of(cache: RedisCache) -> _near.NearStore:
    store = cache._near
    assert store is not None
    return store


def tracked(cache: RedisCache) -> Address | None:
    """The (host, port) whose invalidations the listener hears, None while it moves."""
    listener = store_of(cache)._listener
    server = None if listener is None else listener.tracking
    return None if server is None else (server.host, server.port)


@pytest.fixture
def near(sentinel: Sentinel) -> Iterator[RedisCache]:
    """A near-cached backend of the service, on its own key prefix (its own store)."""
    prefix = f"near-sentinel{os.getpid()}-{next(_prefixes)}"
    options = {"NEAR_CACHE": True, "socket_connect_timeout": 0.3, "socket_timeout": 0.5}
    cache = RedisCache(location(sentinel), {"KEY_PREFIX": prefix, "OPTIONS": options})
    assert store_of(cache).wait_ready(10)
    yield cache
    store_of(cache).stop()


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def api(mode: str, near: RedisCache) -> Iterator[Any]:
    """The near-cached backend through its sync API, then through its async API."""
    if mode == "sync":
        yield near
        return
    with asyncio.Runner() as runner:
        yield AsyncAPI(near, runner)


def primary_client(sentinel: Sentinel) -> redis.Redis:
    host, port = sentinel.primary_address()
    return redis.Redis(host=host, port=port)


def hold(api: Any, near: RedisCache, value: Any) -> None:
    """Write ``value`` to "k", wait for its echoed invalidation, read it twice (held)."""
    store = store_of(near)
    before = store.invalidations
    api.set("k", value)
    wait_until(lambda: store.invalidations > before)
    assert api.get("k") == value
    hits = store.hits
    assert api.get("k") == value
    assert store.hits == hits + 1


class Reader:
    """Reads "k" in a loop in its own thread, through the sync API or on its own
    event loop through the async one, recording when each read began and what it
    returned (or the ConnectionInterrupted it raised)."""

    def __init__(self, cache: RedisCache, mode: str) -> None:
        self.cache, self.mode = cache, mode
        self.reads: list[tuple[float, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        if self.mode == "sync":
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    value: Any = self.cache.get("k")
                except ConnectionInterrupted as exc:
                    value = exc
                    time.sleep(0.01)
                self.reads.append((started, value))
            return

        async def reads() -> None:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    value: Any = await self.cache.aget("k")
                except ConnectionInterrupted as exc:
                    value = exc
                    await asyncio.sleep(0.01)
                self.reads.append((started, value))
                await asyncio.sleep(0)

        asyncio.run(reads())

    def since(self, moment: float) -> list[Any]:
        """What the reads begun after ``moment`` returned."""
        return [value for started, value in self.reads if started > moment]

    def __enter__(self) -> Reader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def write_on(address: Address, key: str, value: int) -> float:
    """SET on the server at ``address`` by another client; when it was acknowledged."""
    with redis.Redis(host=address[0], port=address[1]) as client:
        client.set(key, value)
    return time.monotonic()


def delivered(near: RedisCache, address: Address) -> float:
    """When every write made on ``address`` so far is known to the near-cache.

    The guarantee (docs/near-cache.md) holds once another client's write is
    delivered, not when it is acknowledged to its writer: in between is the
    staleness window. A write is delivered when its invalidation is heard, or
    when tracking of ``address`` begins after it (that flushes). So: write a
    probe key there and wait until its invalidation is heard, which the
    listener can hear only tracking ``address``, in order after any write
    before it; if tracking begins after the probe, write another."""
    store = store_of(near)
    deadline = time.monotonic() + FAILOVER_BOUND
    while True:
        heard = store.invalidations
        write_on(address, near.make_key("probe"), 0)
        with contextlib.suppress(AssertionError):
            wait_until(lambda heard=heard: store.invalidations > heard, 0.5)
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"no write on {address} heard in {FAILOVER_BOUND} s")


def sentinels_name(sentinel: Sentinel, old: Address) -> Address:
    """Wait until every sentinel names one primary other than ``old``; return it."""

    def switched() -> Address:
        named = {
            tuple(command(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", sentinel.service_name))
            for _, port in sentinel.sentinels
        }
        addresses = {(str(host), int(port)) for host, port in named}
        if len(addresses) != 1 or old in addresses:
            raise NotReady(f"sentinels name {addresses}")
        return addresses.pop()

    return poll(switched, FAILOVER_BOUND, "the sentinels switch the primary")


# Hits and invalidations on the primary.


def test_the_listener_tracks_the_primary(near: RedisCache, sentinel: Sentinel) -> None:
    """The invalidation connection is on the primary the sentinels name."""
    assert tracked(near) == sentinel.primary_address()


def test_hits_are_invalidated_by_another_clients_write(
    api: Any, near: RedisCache, sentinel: Sentinel
) -> None:
    """A held value is served locally until another client writes the key on the
    primary; then the new value is read."""
    hold(api, near, 1)
    store = store_of(near)
    before = store.invalidations
    write_on(sentinel.primary_address(), near.make_key("k"), 2)
    wait_until(lambda: store.invalidations > before)
    assert api.get("k") == 2
    assert api.get("k") == 2
    assert store.stats()["hits"] == 2


def test_near_cached_reads_go_to_the_primary(
    api: Any, near: RedisCache, sentinel: Sentinel
) -> None:
    """The misses of get and get_many are read from the primary, never a replica."""
    primary = sentinel.primary_address()
    replica, *_ = sentinel.replica_addresses()
    api.set_many({"a": 1, "b": 2})
    before = reads_served(primary), reads_served(replica)
    assert api.get("a") == 1
    assert api.get_many(["b", "c"]) == {"b": 2}
    assert (reads_served(primary) - before[0], reads_served(replica) - before[1]) == (2, 0)


def reads_served(address: Address) -> int:
    """The GET and MGET commands the server at ``address`` has run."""
    with redis.Redis(host=address[0], port=address[1]) as client:
        stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("get", "mget"))


# Failover.


def test_a_killed_primary_flushes_and_the_new_value_is_read(
    mode: str, api: Any, near: RedisCache, sentinel: Sentinel
) -> None:
    """The primary dies holding "k" = 1; once the sentinels promote the replica and
    another client writes 2 there, no read begun after that write returns 1."""
    hold(api, near, 1)
    sentinel.wait_for_replication()
    store = store_of(near)
    flushes = store.flushes
    with Reader(near, mode) as reader:
        old = sentinel.kill_primary()
        new = sentinels_name(sentinel, old)
        write_on(new, near.make_key("k"), 2)
        wait_until(lambda: tracked(near) == new and store.stats()["ready"], FAILOVER_BOUND)
        settled = delivered(near, new)
        wait_until(lambda: len(reader.since(settled)) >= 20)
    after = reader.since(settled)
    assert [value for value in after if value == 1] == []
    assert [value for value in after if isinstance(value, Exception)] == []
    assert after[-1] == 2
    assert store.flushes >= flushes + 2  # the connection's loss, then tracking on the new one


def test_a_write_after_a_failover_invalidates(
    api: Any, near: RedisCache, sentinel: Sentinel
) -> None:
    """After a failover the listener tracks the new primary: a value held from it is
    dropped when another client writes the key there."""
    old = sentinel.kill_primary()
    new = sentinels_name(sentinel, old)
    store = store_of(near)
    wait_until(lambda: tracked(near) == new and store.stats()["ready"], FAILOVER_BOUND)
    hold(api, near, 1)
    before = store.invalidations
    write_on(new, near.make_key("k"), 2)
    wait_until(lambda: store.invalidations > before)
    assert api.get("k") == 2


def test_a_sentinel_failover_leaving_the_old_primary_up_moves_the_near_cache(
    mode: str, api: Any, near: RedisCache, sentinel: Sentinel
) -> None:
    """SENTINEL FAILOVER: the old primary stays up (still a primary for seconds), so
    no connection drops; the listener hears of the switch from the sentinels,
    flushes and tracks the new primary, and from then on no read returns the value
    held from the old one."""
    hold(api, near, 1)
    sentinel.wait_for_replication()
    store = store_of(near)
    flushes = store.flushes
    old = sentinel.primary_address()
    with Reader(near, mode) as reader:
        command(sentinel.sentinels[0][1], "SENTINEL", "FAILOVER", sentinel.service_name)
        try:
            new = sentinels_name(sentinel, old)
            write_on(new, near.make_key("k"), 2)
            wait_until(lambda: tracked(near) == new and store.stats()["ready"], FAILOVER_BOUND)
            settled = delivered(near, new)
            # Moved on the sentinels' word: the old primary is still up, still one.
            old_role = command(old[1], "ROLE")[0]
            wait_until(lambda: len(reader.since(settled)) >= 20)
        finally:
            # What the sentinels would do some seconds later: the old primary follows.
            command(old[1], "REPLICAOF", *map(str, sentinel.primary_address()))
    assert old_role == "master", f"{len([v for v in reader.since(settled) if v == 1])} stale"
    after = reader.since(settled)
    assert [value for value in after if value == 1] == []
    assert [value for value in after if isinstance(value, Exception)] == []
    assert after[-1] == 2
    assert store.flushes >= flushes + 2  # the switch heard, then tracking on the new one
    assert api.get("k") == 2


def test_the_data_path_learning_of_a_new_primary_flushes_at_once(
    mode: str, sentinel: Sentinel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After SENTINEL FAILOVER, a call that follows the failover first (its primary
    forgotten, as after an error) flushes the store before it returns: the next
    read gets the new primary's value, whether the listener has moved yet or not."""
    monkeypatch.setattr(_near_primary, "CHECK_EVERY", 3600.0)  # the sentinels not asked
    prefix = f"near-sentinel{os.getpid()}-{next(_prefixes)}"
    cache = RedisCache(location(sentinel), {"KEY_PREFIX": prefix, "OPTIONS": {"NEAR_CACHE": True}})
    store = store_of(cache)
    assert store.wait_ready(10)
    old = sentinel.primary_address()
    with asyncio.Runner() as runner:
        api: Any = cache if mode == "sync" else AsyncAPI(cache, runner)
        try:
            hold(api, cache, 1)
            sentinel.wait_for_replication()
            command(sentinel.sentinels[0][1], "SENTINEL", "FAILOVER", sentinel.service_name)
            new = sentinels_name(sentinel, old)
            write_on(new, cache.make_key("k"), 2)
            cache._config.topology.forget()  # what a failed call does
            api.set("other", 0)  # follows the sentinels to the new primary
            assert api.get("k") == 2
        finally:
            store.stop()
            command(old[1], "REPLICAOF", *map(str, sentinel.primary_address()))


# Configuration.


def test_read_from_replicas_is_refused_with_the_near_cache() -> None:
    """A replica's reply could be stored after the primary's invalidation."""
    with pytest.raises(ImproperlyConfigured, match="cannot read from replicas"):
        RedisCache(
            "redis+sentinel://127.0.0.1:1/mymaster",
            {"OPTIONS": {"NEAR_CACHE": True, "READ_FROM_REPLICAS": True}},
        ).get("k")
