"""The near-cache (NEAR_CACHE): hits from process memory, kept coherent by the server."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_asyncredis import RedisCache, _near
from tests.conftest import AsyncAPI
from tests.near import Writer, near_cache
from tests.servers import ServerProcess, running_server

pytestmark = pytest.mark.filterwarnings("error")


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` (an invalidation's delivery) for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("not delivered in time")
        time.sleep(0.002)


class echoed:
    """``with echoed(cache, n):`` a write of ``n`` keys, then wait for the server's
    invalidations of them: BCAST announces this process's own writes too, and an
    echo arriving after a read would drop the entry that read just stored."""

    def __init__(self, cache: RedisCache, keys: int = 1) -> None:
        self.cache, self.keys = cache, keys

    def __enter__(self) -> None:
        self.before = stats(self.cache)["invalidations"]

    def __exit__(self, *exc: object) -> None:
        wait_until(lambda: stats(self.cache)["invalidations"] >= self.before + self.keys)


def stats(cache: RedisCache) -> dict[str, Any]:
    result = cache.near_cache_stats()
    assert result is not None
    return result


@pytest.fixture
def near(redis_server: ServerProcess) -> Iterator[RedisCache]:
    cache = near_cache(redis_server.url)
    yield cache
    assert cache._near is not None
    cache._near.stop()
    redis_server.flush()


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, near: RedisCache) -> Iterator[Any]:
    """The near-cached backend through its sync API, then through its async API."""
    if request.param == "sync":
        yield near
        return
    with asyncio.Runner() as runner:
        yield AsyncAPI(near, runner)


@pytest.fixture
def deaf(near: RedisCache, monkeypatch: pytest.MonkeyPatch) -> None:
    """The listener ignores what the server sends: as if its invalidations were late."""
    listener = near._near._listener if near._near is not None else None
    assert listener is not None
    monkeypatch.setattr(listener, "_on_message", lambda message: None)


def test_a_second_read_is_a_hit(api: Any, near: RedisCache) -> None:
    """The first get reads the server and keeps the bytes; the second is served locally."""
    with echoed(near):
        api.set("k", "v")
    assert api.get("k") == "v"
    assert api.get("k") == "v"
    assert (stats(near)["misses"], stats(near)["hits"], stats(near)["entries"]) == (1, 1, 1)


def test_a_hit_is_a_fresh_object(api: Any, near: RedisCache) -> None:
    """Each hit decodes the bytes anew: mutating one result changes no other."""
    with echoed(near):
        api.set("k", [1, 2])
    api.get("k")
    first = api.get("k")
    first.append(3)
    assert api.get("k") == [1, 2]


def test_a_sync_fill_is_an_async_hit(near: RedisCache) -> None:
    """The store is process-wide: what a sync view read, an async one finds."""
    with echoed(near):
        near.set("k", "v")
    near.get("k")
    assert asyncio.run(near.aget("k")) == "v"
    assert stats(near)["hits"] == 1


def test_own_writes_are_read_at_once(api: Any, near: RedisCache, deaf: None) -> None:
    """set, incr, delete and clear drop the local copy before they return, without
    waiting for the server's invalidation."""
    api.set("k", 1)
    api.get("k")
    api.set("k", 2)
    assert api.get("k") == 2
    api.incr("k")
    assert api.get("k") == 3
    api.delete("k")
    assert api.get("k") is None
    api.set("k", 4)
    api.get("k")
    api.clear()
    assert api.get("k") is None


def test_touch_and_expire_drop_the_local_copy(api: Any, near: RedisCache, deaf: None) -> None:
    """A new TTL set by this process is honoured at once: its entry is dropped."""
    api.set("k", "v")
    api.get("k")
    api.touch("k", 0.1)
    assert stats(near)["entries"] == 0
    api.get("k")
    api.expire("k", 0.1)
    assert stats(near)["entries"] == 0
    time.sleep(0.2)
    assert api.get("k") is None


def test_get_many_sends_only_the_misses(api: Any, near: RedisCache) -> None:
    """get_many serves what is held and asks the server for the rest."""
    with echoed(near, 3):
        api.set_many({"a": 1, "b": 2, "c": 3})
    api.get("a")
    api.get("b")
    assert api.get_many(["a", "b", "c", "missing"]) == {"a": 1, "b": 2, "c": 3}
    assert (stats(near)["hits"], stats(near)["misses"]) == (2, 4)
    assert api.get_many(["a", "b", "c"]) == {"a": 1, "b": 2, "c": 3}
    assert stats(near)["hits"] == 5


def test_has_key_is_answered_locally(api: Any, near: RedisCache) -> None:
    """A key held locally exists; has_key needs no round trip for it."""
    with echoed(near):
        api.set("k", "v")
    api.get("k")
    assert api.has_key("k") is True
    assert stats(near)["hits"] == 1
    assert api.has_key("absent") is False


def test_a_write_by_another_process_is_never_read_after_delivery(
    api: Any, near: RedisCache, redis_server: ServerProcess
) -> None:
    """Once the invalidation of another process's write is delivered, every read
    returns the new value, for 30 writes in a row."""
    stored = near.make_key("k")
    writer = Writer(redis_server.url)
    try:
        with echoed(near):
            api.set("k", 0)
        for value in range(1, 31):
            assert api.get("k") == value - 1
            assert api.get("k") == value - 1  # a hit
            before = stats(near)["invalidations"]
            writer.set(stored, value)
            wait_until(lambda before=before: stats(near)["invalidations"] > before)
            assert api.get("k") == value
    finally:
        writer.close()
    assert stats(near)["hits"] >= 30


def test_concurrent_readers_converge_on_the_last_write(
    near: RedisCache, redis_server: ServerProcess
) -> None:
    """Eight threads and sixteen tasks read a key while another process writes it
    200 times; once the last invalidation is delivered, every one of them reads
    the last value, and none failed."""
    stored = near.make_key("k")
    store = near._near
    assert store is not None
    with echoed(near):
        near.set("k", 0)
    stop = threading.Event()
    errors: list[BaseException] = []

    def sync_reader() -> None:
        try:
            while not stop.is_set():
                near.get("k")
        except BaseException as exc:
            errors.append(exc)

    async def async_readers() -> None:
        async def one() -> None:
            while not stop.is_set():
                await near.aget("k")
                await asyncio.sleep(0)

        await asyncio.gather(*(one() for _ in range(16)))

    def async_reader() -> None:
        try:
            asyncio.run(async_readers())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sync_reader) for _ in range(8)]
    threads.append(threading.Thread(target=async_reader))
    for thread in threads:
        thread.start()
    writer = Writer(redis_server.url)
    before = store.invalidations
    try:
        for value in range(1, 201):
            writer.set(stored, value)
        wait_until(lambda: store.invalidations >= before + 200)
        assert {near.get("k") for _ in range(20)} == {200}
        assert asyncio.run(near.aget("k")) == 200
    finally:
        writer.close()
        stop.set()
        for thread in threads:
            thread.join(10)
    assert errors == []
    assert store.hits > 0


def test_an_invalidation_during_a_read_wins(
    api: Any, near: RedisCache, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply that left the server before a write, stored after that write's
    invalidation arrived, is not kept: the next read gets the new value."""
    store = near._near
    assert store is not None
    with echoed(near):
        api.set("k", "old")
    stored = near.make_key("k")
    finish = store.finish_one

    def write_then_finish(ticket: Any, key: str, value: Any, pttl: Any) -> None:
        before = store.invalidations
        raw.set(stored, 2)
        wait_until(lambda: store.invalidations > before)
        finish(ticket, key, value, pttl)

    monkeypatch.setattr(store, "finish_one", write_then_finish)
    assert api.get("k") == "old"  # the read was in flight: its own answer is fine
    monkeypatch.undo()
    assert api.get("k") == 2
    assert stats(near)["refused_stale"] == 1


def test_an_invalidation_forgotten_by_a_full_log_still_wins(
    api: Any, near: RedisCache, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store remembers DIRTY_LOG invalidations, not more: when so many arrive
    while a read is in flight that the one of its key is forgotten, its reply
    is still not kept (and the log stays bounded)."""
    store = near._near
    assert store is not None
    monkeypatch.setattr(_near, "DIRTY_LOG", 3)
    with echoed(near):
        api.set("k", "old")
    finish = store.finish_one

    def writes_then_finish(ticket: Any, key: str, value: Any, pttl: Any) -> None:
        before = store.invalidations
        raw.set(near.make_key("k"), 2)
        for index in range(4):  # after the one of "k": the log overflows
            raw.set(near.make_key(f"other{index}"), index)
        wait_until(lambda: store.invalidations >= before + 5)
        assert len(store._dirty) <= 3
        finish(ticket, key, value, pttl)

    monkeypatch.setattr(store, "finish_one", writes_then_finish)
    assert api.get("k") == "old"
    monkeypatch.setattr(store, "finish_one", finish)
    assert api.get("k") == 2
    assert stats(near)["refused_stale"] == 1


def test_an_invalidation_during_a_get_many_wins(
    api: Any, near: RedisCache, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """get_many: the key written while its reply was in flight is not kept; the
    other key of the same read is."""
    store = near._near
    assert store is not None
    with echoed(near, 2):
        api.set_many({"a": "old", "b": "b"})
    finish = store.finish

    def write_then_finish(ticket: Any, replies: Any) -> None:
        before = store.invalidations
        raw.set(near.make_key("a"), 2)
        wait_until(lambda: store.invalidations > before)
        finish(ticket, replies)

    monkeypatch.setattr(store, "finish", write_then_finish)
    assert api.get_many(["a", "b"]) == {"a": "old", "b": "b"}
    monkeypatch.undo()
    assert api.get_many(["a", "b"]) == {"a": 2, "b": "b"}
    assert (stats(near)["refused_stale"], stats(near)["entries"]) == (1, 2)


def test_near_cached_reads_make_no_thread_hop(near: RedisCache, hops: list[str]) -> None:
    """A miss, a hit and a get_many on the loop run on the loop, no thread involved."""

    async def reads() -> None:
        await near.aset("k", "v")
        await near.aget("k")
        await near.aget("k")
        await near.aget_many(["k", "other"])
        await near.ahas_key("k")

    asyncio.run(reads())
    assert hops == []


def test_a_flush_during_a_read_wins(
    api: Any, near: RedisCache, raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FLUSHALL delivered while a read is in flight: its reply is not kept."""
    store = near._near
    assert store is not None
    with echoed(near):
        api.set("k", "old")
    finish = store.finish_one

    def flush_then_finish(ticket: Any, key: str, value: Any, pttl: Any) -> None:
        before = store.flushes
        raw.flushall()
        wait_until(lambda: store.flushes > before)
        finish(ticket, key, value, pttl)

    monkeypatch.setattr(store, "finish_one", flush_then_finish)
    assert api.get("k") == "old"
    monkeypatch.undo()
    assert api.get("k") is None


def test_flushall_empties_the_near_cache(api: Any, near: RedisCache, raw: Any) -> None:
    """FLUSHALL by anyone is a null invalidation: everything held is dropped."""
    api.set("k", "v")
    api.get("k")
    raw.flushall()
    wait_until(lambda: stats(near)["entries"] == 0)
    assert api.get("k") is None


def test_server_expiry_is_honoured(api: Any, near: RedisCache, deaf: None) -> None:
    """A value read with a TTL is not served locally past it, even when the
    server's expiry invalidation is late (its active expiry cycle lags)."""
    api.set("k", "v", timeout=0.2)
    assert api.get("k") == "v"
    assert api.get("k") == "v"
    assert stats(near)["hits"] == 1
    time.sleep(0.3)
    assert api.get("k") is None


@pytest.mark.parametrize("asynchronous", [False, True])
def test_without_ttl_checks_expiry_comes_by_invalidation(
    redis_server: ServerProcess, asynchronous: bool
) -> None:
    """NEAR_CACHE_CHECK_TTL False: a miss sends only GET (or MGET), and a value's
    expiry reaches the near-cache as the server's invalidation."""
    cache = near_cache(redis_server.url, NEAR_CACHE_CHECK_TTL=False)
    store = cache._near
    assert store is not None
    api: Any = AsyncAPI(cache, runner := asyncio.Runner()) if asynchronous else cache
    try:
        with echoed(cache, 2):
            api.set("k", "v", timeout=0.2)
            api.set("other", 1)
        assert api.get_many(["k", "other"]) == {"k": "v", "other": 1}
        assert api.get("k") == "v"
        assert stats(cache)["hits"] == 1
        wait_until(lambda: store.stats()["entries"] == 1)  # k's expiry, announced
        assert api.get("k") is None
    finally:
        store.stop()
        if asynchronous:
            runner.close()


def test_a_killed_invalidation_connection_flushes_and_recovers(
    api: Any, near: RedisCache, raw: Any
) -> None:
    """CLIENT KILL of the listener: the store is flushed and serves no hits until
    tracking is back; a write made meanwhile is then read exactly."""
    store = near._near
    assert store is not None
    with echoed(near):
        api.set("k", 1)
    api.get("k")
    flushes = store.flushes
    raw.client_kill_filter(_id=store.listener_client_id())
    raw.set(near.make_key("k"), 2)  # its invalidation may be lost with the connection
    wait_until(lambda: store.flushes >= flushes + 2 and stats(near)["ready"])
    assert api.get("k") == 2
    assert api.get("k") == 2
    assert stats(near)["hits"] >= 1


def test_a_server_restart_flushes_the_near_cache() -> None:
    """The server restarts empty: nothing held from before is served."""
    with running_server() as server:
        cache = near_cache(server.url)
        store = cache._near
        assert store is not None
        with echoed(cache):
            cache.set("k", "v")
        cache.get("k")
        assert store.stats()["entries"] == 1
        server.stop()
        wait_until(lambda: not store.stats()["ready"])
        assert store.stats()["entries"] == 0
        server.start()
        try:
            assert store.wait_ready(10)
            assert cache.get("k") is None
            assert asyncio.run(cache.aget("k")) is None
        finally:
            store.stop()


def test_memory_is_bounded_under_churn(redis_server: ServerProcess) -> None:
    """Under churn of 500 keys, the store never holds more than its bounds."""
    cache = near_cache(redis_server.url, NEAR_CACHE_MAX_ENTRIES=50, NEAR_CACHE_MAX_BYTES=8_000)
    try:
        for index in range(500):
            cache.set(f"k{index}", "x" * 100)
            cache.get(f"k{index}")
            held = stats(cache)
            assert held["entries"] <= 50
            assert held["bytes"] <= 8_000
        assert stats(cache)["entries"] > 0
    finally:
        assert cache._near is not None
        cache._near.stop()


def test_only_eligible_keys_are_held(redis_server: ServerProcess) -> None:
    """NEAR_CACHE_KEYS: keys matching none of its patterns are always read from the server."""
    cache = near_cache(redis_server.url, NEAR_CACHE_KEYS=["hot:*"])
    try:
        with echoed(cache, 2):
            cache.set_many({"hot:a": 1, "cold": 2})
        assert cache.get("hot:a") == 1
        assert cache.get("cold") == 2
        assert cache.get_many(["hot:a", "cold"]) == {"hot:a": 1, "cold": 2}
        assert stats(cache)["entries"] == 1
    finally:
        assert cache._near is not None
        cache._near.stop()


def test_a_forked_child_starts_empty_with_its_own_tracking(near: RedisCache, raw: Any) -> None:
    """After fork, the child holds nothing, then tracks on its own connection."""
    with echoed(near):
        near.set("k", 1)
    near.get("k")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            store = near._near
            assert store is not None
            held = store.stats()
            ready = store.wait_ready(5)
            near.get("k")
            before = store.stats()["invalidations"]
            raw.set(near.make_key("k"), 2)
            wait_until(lambda: store.stats()["invalidations"] > before)
            started = (held["entries"], held["hits"], ready)
            code = 0 if (started, near.get("k")) == ((0, 0, True), 2) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_near_cache_stats_is_none_without_the_option(cache: Any) -> None:
    """Without NEAR_CACHE, near_cache_stats() is None."""
    assert cache.near_cache_stats() is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"NEAR_CACHE_MAX_ENTRIES": 10}, "NEAR_CACHE'] is not True"),
        ({"NEAR_CACHE": True, "READ_FROM_REPLICAS": True}, "replicas"),
        ({"NEAR_CACHE": True, "near_cache_max_entries": 0}, "near_cache_max_entries"),
        ({"NEAR_CACHE": True, "NEAR_CACHE_MAX_BYTES": "1"}, "NEAR_CACHE_MAX_BYTES"),
        ({"NEAR_CACHE": True, "NEAR_CACHE_MAX_LIFETIME": None}, "NEAR_CACHE_MAX_LIFETIME"),
        ({"NEAR_CACHE": True, "NEAR_CACHE_KEYS": "hot:*"}, "glob patterns"),
        ({"NEAR_CACHE": True, "NEAR_CACHE_KEYS": [""]}, "not a pattern"),
        ({"NEAR_CACHE": True, "NEAR_CACHE_CHECK_TTL": "no"}, "NEAR_CACHE_CHECK_TTL"),
    ],
)
def test_bad_near_cache_options_are_refused(options: dict[str, Any], message: str) -> None:
    """Each bad NEAR_CACHE setting names itself."""
    with pytest.raises(ImproperlyConfigured, match=message):
        RedisCache("redis://127.0.0.1:1", {"OPTIONS": options}).get("k")


def test_near_cache_is_refused_on_cluster() -> None:
    """Cluster is refused: no per-node invalidation streams (Sentinel is supported)."""
    with pytest.raises(ImproperlyConfigured, match="NEAR_CACHE is not supported with cluster"):
        RedisCache("redis+cluster://127.0.0.1:1", {"OPTIONS": {"NEAR_CACHE": True}}).get("k")


def test_near_cache_is_refused_on_shards() -> None:
    """ShardClient is refused too."""
    with pytest.raises(ImproperlyConfigured, match="NEAR_CACHE is not supported with shard"):
        RedisCache(
            ["redis://127.0.0.1:1", "redis://127.0.0.1:2"],
            {
                "OPTIONS": {
                    "NEAR_CACHE": True,
                    "CLIENT_CLASS": "django_redis.client.ShardClient",
                }
            },
        ).get("k")


def test_options_take_both_spellings() -> None:
    """near_cache_* and NEAR_CACHE_* are the same options."""
    upper = RedisCache(
        "redis://127.0.0.1:1", {"OPTIONS": {"NEAR_CACHE": True, "NEAR_CACHE_MAX_ENTRIES": 7}}
    )
    lower = RedisCache(
        "redis://127.0.0.1:1", {"OPTIONS": {"near_cache": True, "near_cache_max_entries": 7}}
    )
    assert upper._config.near_cache == lower._config.near_cache == _near.NearSettings(max_entries=7)


def test_the_listener_runs_on_no_event_loop(near: RedisCache) -> None:
    """The invalidation listener is a daemon thread, so loops may come and go."""
    listener = near._near._listener if near._near is not None else None
    assert listener is not None
    assert listener.daemon
    assert listener.is_alive()
