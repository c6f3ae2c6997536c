"""cache.stats: calls, hits, misses, errors and latency per operation, exact on both APIs."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import os
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.test import override_settings

from django_asyncredis import ConnectionInterrupted, CorruptValueError, RedisCache
from django_asyncredis._core import AsyncCore
from django_asyncredis._near_stats import NEAR_COUNTERS, NEAR_LEVELS
from django_asyncredis._sync import SyncAdapter
from tests.conftest import AsyncAPI
from tests.servers import ServerProcess

FAST = {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}


def counters(cache: Any, api: str, operation: str) -> dict[str, Any]:
    return cache.stats.as_dict()["operations"][api][operation]  # type: ignore[no-any-return]


@pytest.fixture
def api_name(api: Any) -> str:
    return "sync" if isinstance(api, RedisCache) else "async"


@pytest.fixture(autouse=True)
def fresh_stats(cache: Any) -> None:
    cache.stats.reset()


def test_get_counts_one_hit_and_one_miss(api: Any, api_name: str, cache: Any) -> None:
    """A get that finds its key is a hit, one that does not is a miss."""
    api.set("present", 1)
    api.get("present")
    api.get("absent")
    get = counters(cache, api_name, "get")
    assert (get["calls"], get["hits"], get["misses"], get["errors"]) == (2, 1, 1, {})
    assert counters(cache, api_name, "set")["calls"] == 1


def test_get_many_counts_each_key(api: Any, api_name: str, cache: Any) -> None:
    """get_many counts a hit per key found and a miss per key not found."""
    api.set_many({"a": 1, "b": 2})
    assert api.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    get_many = counters(cache, api_name, "get_many")
    assert (get_many["calls"], get_many["hits"], get_many["misses"]) == (1, 2, 1)


def test_the_other_api_is_counted_apart(api: Any, api_name: str, cache: Any) -> None:
    """A call through one API leaves the other API's counters untouched."""
    api.get("absent")
    other = "async" if api_name == "sync" else "sync"
    assert cache.stats.as_dict()["operations"][other] == {}


def test_latency_histogram_holds_every_call(api: Any, api_name: str, cache: Any) -> None:
    """Each call lands in exactly one latency bucket, and its time in the sum."""
    for _ in range(5):
        api.get("absent")
    latency = counters(cache, api_name, "get")["latency"]
    assert latency["count"] == 5
    assert sum(latency["buckets"].values()) == 5
    assert latency["sum_seconds"] > 0


def test_totals_and_hit_ratio(api: Any, cache: Any) -> None:
    """Totals add up over operations; the hit ratio is hits over reads."""
    api.set("present", 1)
    api.get("present")
    api.get("present")
    api.get("absent")
    api.get("absent")
    totals = cache.stats.as_dict()["totals"]
    assert totals == {"calls": 5, "hits": 2, "misses": 2, "errors": 0, "hit_ratio": 0.5}


def test_scans_are_counted(api: Any, api_name: str, cache: Any) -> None:
    """keys() (SCAN, run as an iteration) is counted once per call."""
    api.set("k1", 1)
    assert api.keys("k*") == ["k1"]
    assert counters(cache, api_name, "scan")["calls"] == 1


def test_reset_starts_from_zero(api: Any, cache: Any) -> None:
    """reset() forgets every counter."""
    api.get("absent")
    cache.stats.reset()
    assert cache.stats.as_dict()["operations"] == {"async": {}, "sync": {}}


@pytest.mark.parametrize("api_name", ["sync", "async"])
def test_errors_are_counted_by_kind(api_name: str) -> None:
    """A call that raises is counted under its exception's class name."""
    server = ServerProcess().start()
    cache = RedisCache(server.url, {"OPTIONS": FAST})
    server.stop()
    cache.stats.reset()
    call = cache.get if api_name == "sync" else lambda key: asyncio.run(cache.aget(key))
    with pytest.raises(ConnectionInterrupted):
        call("key")
    assert counters(cache, api_name, "get")["errors"] == {"ConnectionInterrupted": 1}


@pytest.mark.parametrize("api_name", ["sync", "async"])
def test_ignored_errors_are_counted(api_name: str) -> None:
    """In ignore-exceptions mode the caller gets the default and the stats an error."""
    server = ServerProcess().start()
    cache = RedisCache(server.url, {"OPTIONS": {**FAST, "IGNORE_EXCEPTIONS": True}})
    server.stop()
    cache.stats.reset()
    if api_name == "sync":
        assert cache.get("key", "default") == "default"
    else:
        assert asyncio.run(cache.aget("key", "default")) == "default"
    get = counters(cache, api_name, "get")
    assert (get["calls"], get["hits"], get["misses"], get["errors"]) == (1, 0, 0, {"ignored": 1})


def test_instances_of_one_alias_share_their_stats(redis_server: ServerProcess) -> None:
    """Backends Django builds per async context for one alias count into one place."""
    caches = {"default": {"BACKEND": "django_asyncredis.RedisCache", "LOCATION": redis_server.url}}
    with override_settings(CACHES=caches):
        first = RedisCache(redis_server.url, {})
        second = RedisCache(redis_server.url, {})
        first.stats.reset()
        first.get("absent")
        asyncio.run(second.aget("absent"))
        assert first.stats is second.stats
        assert first.stats.alias == "default"
        assert first.stats.as_dict()["totals"]["misses"] == 2


def test_counts_are_exact_across_threads_and_loops(cache: Any) -> None:
    """8 threads, half sync and half each on its own event loop: no call is lost."""

    def sync_calls() -> None:
        for _ in range(200):
            cache.get("absent")

    def async_calls() -> None:
        async def calls() -> None:
            for _ in range(200):
                await cache.aget("absent")

        asyncio.run(calls())

    threads = [threading.Thread(target=sync_calls if i % 2 else async_calls) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    operations = cache.stats.as_dict()["operations"]
    assert operations["sync"]["get"]["misses"] == 800
    assert operations["async"]["get"]["misses"] == 800


def test_counts_of_finished_threads_are_kept(cache: Any) -> None:
    """20 short-lived threads, 50 gets each: all 1,000 are counted after they end."""

    def calls() -> None:
        for _ in range(50):
            cache.get("absent")

    for _ in range(20):
        thread = threading.Thread(target=calls)
        thread.start()
        thread.join()
    gc.collect()  # the threads' own counters are folded into the kept ones
    assert counters(cache, "sync", "get")["misses"] == 1000


def test_reset_between_threads_calls_counts_only_the_later_ones(cache: Any) -> None:
    """4 threads make 100 gets, wait while the stats are reset, then make 100 more:
    exactly the 400 later gets are counted."""
    ready, resumed = threading.Barrier(5), threading.Barrier(5)

    def calls() -> None:
        for _ in range(100):
            cache.get("absent")
        ready.wait()
        resumed.wait()
        for _ in range(100):
            cache.get("absent")

    threads = [threading.Thread(target=calls) for _ in range(4)]
    for thread in threads:
        thread.start()
    ready.wait()
    cache.stats.reset()
    resumed.wait()
    for thread in threads:
        thread.join()
    get = counters(cache, "sync", "get")
    assert (get["calls"], get["misses"], get["latency"]["count"]) == (400, 400, 400)
    assert sum(get["latency"]["buckets"].values()) == 400


def test_stats_can_be_switched_off(make_cache: Any) -> None:
    """OPTIONS STATS False (and OPENTELEMETRY False): the plain drivers, nothing counted."""
    cache = make_cache(OPTIONS={"STATS": False, "OPENTELEMETRY": False})
    assert type(cache._sync) is SyncAdapter
    assert type(cache._async) is AsyncCore
    cache.get("absent")
    asyncio.run(cache.aget("absent"))
    assert cache.stats.enabled is False
    assert cache.stats.as_dict()["totals"]["calls"] == 0


def test_stats_option_takes_a_boolean(make_cache: Any) -> None:
    """A STATS that is not a boolean is refused, naming the option."""
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="'stats'"):
        make_cache(OPTIONS={"stats": "yes"}).get("k")


def test_prometheus_text_holds_the_counters(api: Any, api_name: str, cache: Any) -> None:
    """prometheus_text() renders the calls, hits, misses and a cumulative histogram."""
    from django_asyncredis.prometheus import prometheus_text

    api.set("present", 1)
    api.get("present")
    api.get("absent")
    api.get("absent")
    text = prometheus_text()
    labels = f'alias="{cache.stats.alias}",api="{api_name}",operation="get"'
    assert f"django_asyncredis_calls_total{{{labels}}} 3\n" in text
    assert f"django_asyncredis_hits_total{{{labels}}} 1\n" in text
    assert f"django_asyncredis_misses_total{{{labels}}} 2\n" in text
    assert f'django_asyncredis_duration_seconds_bucket{{{labels},le="+Inf"}} 3\n' in text
    assert f"django_asyncredis_duration_seconds_count{{{labels}}} 3\n" in text


@pytest.mark.parametrize("api_name", ["sync", "async"])
def test_stopping_an_iteration_early_is_not_an_error(api_name: str, cache: Any) -> None:
    """Leaving iter_keys after the first key counts one scan call and no error."""
    cache.set_many({"k1": 1, "k2": 2, "k3": 3})
    cache.stats.reset()
    if api_name == "sync":
        keys = cache.iter_keys("k*", itersize=1)
        next(keys)
        keys.close()
    else:

        async def first() -> None:
            keys = cache.aiter_keys("k*", itersize=1)
            await anext(keys)
            await keys.aclose()

        asyncio.run(first())
    scan = counters(cache, api_name, "scan")
    assert (scan["calls"], scan["errors"]) == (1, {})


# The near-cache's counters (NEAR_CACHE): read from its store when the stats are read.

_near_aliases = itertools.count()


@contextlib.contextmanager
def near_alias(url: str, near: bool = True) -> Iterator[RedisCache]:
    """A backend of an alias of its own (so stats of its own: backends outside
    CACHES share the stats of their server's address), near-cached and listening
    unless ``near`` is False."""
    number = next(_near_aliases)
    # Options of its own too: settings are parsed once per (LOCATION, OPTIONS).
    options = {"NEAR_CACHE": True, "NEAR_CACHE_MAX_ENTRIES": 1_000 + number}
    if not near:
        options = {"NEAR_CACHE": False, "max_connections": 1_000 + number}
    params = {"KEY_PREFIX": f"near-stats-{number}", "OPTIONS": options}
    caches = {f"near-{number}": {"BACKEND": "django_asyncredis.RedisCache", "LOCATION": url}}
    caches[f"near-{number}"].update(params)
    with override_settings(CACHES=caches):
        cache = RedisCache(url, params)
    if not near:
        yield cache
        return
    assert cache._near is not None
    assert cache._near.wait_ready(5)
    try:
        yield cache
    finally:
        cache._near.stop()


def near_api(api_name: str, cache: RedisCache, runner: asyncio.Runner) -> Any:
    return cache if api_name == "sync" else AsyncAPI(cache, runner)


def write_and_wait_for_the_echo(api: Any, cache: RedisCache, key: str, value: Any) -> None:
    """Write ``key``, then wait for the server's invalidation of it (BCAST announces
    this process's writes too: an echo after a read would drop what it stored)."""
    store = cache._near
    assert store is not None
    before = store.invalidations
    api.set(key, value, None)  # no timeout: SET names the key alone (_near._drop_written)
    deadline = time.monotonic() + 5
    while store.invalidations == before:
        assert time.monotonic() < deadline, "invalidation not delivered"
        time.sleep(0.002)


@pytest.mark.parametrize("api_name", ["sync", "async"])
def test_the_near_cache_counters_are_in_the_stats(
    api_name: str, redis_server: ServerProcess
) -> None:
    """One miss, one hit, one invalidation and one entry held show in as_dict()."""
    with near_alias(redis_server.url) as cache, asyncio.Runner() as runner:
        api = near_api(api_name, cache, runner)
        cache.stats.reset()
        write_and_wait_for_the_echo(api, cache, "k", "v")
        assert api.get("k") == "v"
        assert api.get("k") == "v"
        near = cache.stats.as_dict()["near_cache"]
        store = cache._near
        assert store is not None
        held = store.stats()["bytes"]
        assert held > 0
        assert near == {
            "hits": 1,
            "misses": 1,
            "invalidations": 1,
            "write_drops": 1,
            "flushes": 0,
            "refused_stale": 0,
            "entries": 1,
            "bytes": held,
            "ready": True,
        }


@pytest.mark.parametrize("api_name", ["sync", "async"])
def test_a_near_cache_hit_is_counted_as_a_get_of_its_api(
    api_name: str, redis_server: ServerProcess
) -> None:
    """A hit is answered without a driver, and counted as the driver counts a get:
    one call, a hit, its latency, on the API that made it; a key absent from the
    server is a miss, as without the near-cache."""
    with near_alias(redis_server.url) as cache, asyncio.Runner() as runner:
        api = near_api(api_name, cache, runner)
        write_and_wait_for_the_echo(api, cache, "k", "v")
        cache.stats.reset()
        assert [api.get("k") for _ in range(3)] == ["v", "v", "v"]  # a miss there, 2 hits
        assert api.get("absent") is None
        assert cache.stats.as_dict()["near_cache"]["hits"] == 2
        get = counters(cache, api_name, "get")
        assert (get["calls"], get["hits"], get["misses"], get["errors"]) == (4, 3, 1, {})
        assert get["latency"]["count"] == 4
        other = "async" if api_name == "sync" else "sync"
        assert "get" not in cache.stats.as_dict()["operations"][other]


@pytest.mark.parametrize("api_name", ["sync", "async"])
def test_a_held_value_that_cannot_be_decoded_is_a_counted_error(
    api_name: str, redis_server: ServerProcess
) -> None:
    """Bytes no serializer can read fail the miss that fetches them and the hit that
    finds them held, alike, and each failure is counted."""
    with near_alias(redis_server.url) as cache, asyncio.Runner() as runner:
        api = near_api(api_name, cache, runner)
        write_and_wait_for_the_echo(api, cache, "k", "v")
        store = cache._near
        assert store is not None
        before = store.invalidations
        redis.Redis.from_url(redis_server.url).set(cache.make_key("k"), b"\x80\x05not a pickle")
        deadline = time.monotonic() + 5
        while store.invalidations == before:
            assert time.monotonic() < deadline, "invalidation not delivered"
            time.sleep(0.002)
        cache.stats.reset()
        for _ in range(2):  # the miss keeps the bytes; the hit finds them
            with pytest.raises(CorruptValueError):
                api.get("k")
        assert store.stats()["hits"] >= 1
        get = counters(cache, api_name, "get")
        assert get["calls"] == 2
        assert get["errors"] == {"CorruptValueError": 2}


@pytest.mark.parametrize("api_name", ["sync", "async"])
def test_reset_zeroes_the_near_cache_counters_but_not_its_levels(
    api_name: str, redis_server: ServerProcess
) -> None:
    """After reset() the counters count again from zero; entries and bytes held stay."""
    with near_alias(redis_server.url) as cache, asyncio.Runner() as runner:
        api = near_api(api_name, cache, runner)
        write_and_wait_for_the_echo(api, cache, "k", "v")
        api.get("k")
        api.get("k")
        cache.stats.reset()
        near = cache.stats.as_dict()["near_cache"]
        assert {field: near[field] for field in NEAR_COUNTERS} == dict.fromkeys(NEAR_COUNTERS, 0)
        assert (near["entries"], near["ready"]) == (1, True)
        assert near["bytes"] > 0
        api.get("k")
        assert cache.stats.as_dict()["near_cache"]["hits"] == 1


def test_a_cache_without_near_cache_reports_none(redis_server: ServerProcess) -> None:
    """``near_cache`` is None (not absent) when the alias has no near-cache."""
    with near_alias(redis_server.url, near=False) as cache:
        assert cache.stats.as_dict()["near_cache"] is None


def test_the_stats_name_every_field_of_the_store(redis_server: ServerProcess) -> None:
    """NEAR_COUNTERS and NEAR_LEVELS together are exactly NearStore.stats()'s fields."""
    with near_alias(redis_server.url) as cache:
        assert cache._near is not None
        fields = list(cache._near.stats())
        assert sorted(NEAR_COUNTERS + NEAR_LEVELS) == sorted(fields)


@pytest.mark.parametrize("api_name", ["sync", "async"])
def test_prometheus_text_holds_the_near_cache(api_name: str, redis_server: ServerProcess) -> None:
    """The near-cache's counters are ``_total`` counters, its levels gauges, by alias."""
    from django_asyncredis.prometheus import prometheus_text

    with near_alias(redis_server.url) as cache, asyncio.Runner() as runner:
        api = near_api(api_name, cache, runner)
        write_and_wait_for_the_echo(api, cache, "k", "v")
        cache.stats.reset()
        api.get("k")
        api.get("k")
        text = prometheus_text()
        labels = f'{{alias="{cache.stats.alias}"}}'
        assert f"django_asyncredis_near_cache_hits_total{labels} 1\n" in text
        assert f"django_asyncredis_near_cache_misses_total{labels} 1\n" in text
        assert f"django_asyncredis_near_cache_entries{labels} 1\n" in text
        assert f"django_asyncredis_near_cache_ready{labels} 1\n" in text
        assert "# TYPE django_asyncredis_near_cache_bytes gauge\n" in text
        assert "# TYPE django_asyncredis_near_cache_invalidations_total counter\n" in text


def test_a_forked_child_counts_its_near_cache_from_zero(redis_server: ServerProcess) -> None:
    """The child's store starts from zero, so the parent's reset baseline is not
    subtracted from it: no negative counts."""
    with near_alias(redis_server.url) as cache:
        write_and_wait_for_the_echo(cache, cache, "k", "v")
        cache.get("k")
        cache.get("k")
        cache.stats.reset()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                near = cache.stats.as_dict()["near_cache"]
                counts = {field: near[field] for field in NEAR_COUNTERS}
                code = 0 if counts == dict.fromkeys(NEAR_COUNTERS, 0) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
