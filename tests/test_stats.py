"""cache.stats: calls, hits, misses, errors and latency per operation, exact on both APIs."""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

import pytest
from django.test import override_settings

from django_asyncredis import ConnectionInterrupted, RedisCache
from django_asyncredis._core import AsyncCore
from django_asyncredis._sync import SyncAdapter
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
