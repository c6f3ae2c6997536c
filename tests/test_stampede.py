"""Stampede protection: concurrent misses compute once, early refresh, HerdClient."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_asyncredis import RedisCache, _stampede
from django_asyncredis._codec import Codec
from django_asyncredis.decorators import arguments_digest, cached
from django_asyncredis.serializers.pickle import PickleSerializer

pytestmark = pytest.mark.filterwarnings("error")


class Counter:
    """A default that counts its calls and takes ``seconds`` to compute."""

    def __init__(self, seconds: float = 0.05, value: Any = "computed") -> None:
        self.calls = 0
        self.seconds = seconds
        self.value = value
        self._lock = threading.Lock()

    def _count(self) -> int:
        with self._lock:
            self.calls += 1
            return self.calls

    def sync(self) -> Any:
        self._count()
        time.sleep(self.seconds)
        return self.value

    async def async_(self) -> Any:
        self._count()
        await asyncio.sleep(self.seconds)
        return self.value


def _run_threads(count: int, target: Callable[[], Any]) -> list[Any]:
    """``target`` in ``count`` threads started together; their results."""
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = target()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@contextlib.contextmanager
def _forking_threads_allowed() -> Iterator[None]:
    """Python 3.12+ warns when a multi-threaded process forks (the test server's
    client threads); these tests fork on purpose, with nothing held across it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        yield


# 1. Async callables.


def test_aget_or_set_awaits_an_async_callable(cache: RedisCache) -> None:
    """An ``async def`` default is awaited and its result stored, not its coroutine."""
    counter = Counter(0)
    assert asyncio.run(cache.aget_or_set("key", counter.async_)) == "computed"
    assert cache.get("key") == "computed"


def test_aget_or_set_awaits_an_awaitable_returned_by_a_callable(cache: RedisCache) -> None:
    """A plain callable returning an awaitable (a lambda around a coroutine) is awaited too."""
    counter = Counter(0)
    assert asyncio.run(cache.aget_or_set("key", lambda: counter.async_())) == "computed"
    assert cache.get("key") == "computed"


def test_get_or_set_refuses_an_async_callable_naming_aget_or_set(cache: RedisCache) -> None:
    """The sync API cannot await: a clear TypeError, nothing called, nothing stored."""
    counter = Counter(0)
    with pytest.raises(TypeError, match="aget_or_set"):
        cache.get_or_set("key", counter.async_)
    assert counter.calls == 0
    assert cache.get("key") is None


def test_get_or_set_refuses_a_callable_that_returns_a_coroutine(cache: RedisCache) -> None:
    """A lambda or a partial around a coroutine is found out after the call; the
    coroutine is closed (no "never awaited" warning, which would be an error here)."""
    counter = Counter(0)
    with pytest.raises(TypeError, match="aget_or_set"):
        cache.get_or_set("key", lambda: counter.async_())
    with pytest.raises(TypeError, match="aget_or_set"):
        cache.get_or_set("key", functools.partial(counter.async_))
    assert cache.get("key") is None


# 2. Single-flight within a process.


def test_a_thousand_concurrent_async_misses_call_the_default_once(cache: RedisCache) -> None:
    """1,000 tasks miss one key together: one 50 ms computation, every task gets its value."""
    counter = Counter(0.05)

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(cache.aget_or_set("hot", counter.async_, 60) for _ in range(1000))
        )

    results = asyncio.run(main())
    assert counter.calls == 1
    assert results == ["computed"] * 1000


def test_two_hundred_concurrent_sync_misses_call_the_default_once(cache: RedisCache) -> None:
    """200 threads miss one key together: one computation, every thread gets its value."""
    counter = Counter(0.05)
    results = _run_threads(200, lambda: cache.get_or_set("hot", counter.sync, 60))
    assert counter.calls == 1
    assert results == ["computed"] * 200


def test_async_and_sync_misses_together_call_the_default_once(cache: RedisCache) -> None:
    """500 tasks on a loop and 100 threads miss together: one computation for all."""
    counter = Counter(0.1)
    sync_results: list[Any] = []
    start = threading.Event()

    def threads() -> None:
        start.wait()
        sync_results.extend(_run_threads(100, lambda: cache.get_or_set("hot", counter.sync, 60)))

    async def main() -> list[Any]:
        start.set()
        return await asyncio.gather(
            *(cache.aget_or_set("hot", counter.async_, 60) for _ in range(500))
        )

    thread = threading.Thread(target=threads)
    thread.start()
    async_results = asyncio.run(main())
    thread.join(30)
    assert counter.calls == 1
    assert async_results == ["computed"] * 500
    assert sync_results == ["computed"] * 100


def test_misses_on_two_event_loops_call_the_default_once(cache: RedisCache) -> None:
    """Two loops in two threads, 100 tasks each: one computation across the loops."""
    counter = Counter(0.1)

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(cache.aget_or_set("hot", counter.async_, 60) for _ in range(100))
        )

    results = _run_threads(2, lambda: asyncio.run(main()))
    assert counter.calls == 1
    assert results == [["computed"] * 100] * 2


def test_the_sync_api_on_a_loop_thread_does_not_wait_for_that_loop(
    cache: RedisCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync get_or_set called from a coroutine, while a task of the same loop computes
    the key, computes itself rather than block the loop the computation needs."""
    monkeypatch.setattr(_stampede, "WAIT_SECONDS", 30.0)
    leader = Counter(0.2, "async")

    async def main() -> tuple[Any, bool, Any]:
        task = asyncio.ensure_future(cache.aget_or_set("hot", leader.async_, 60))
        await asyncio.sleep(0.05)  # the task is computing
        started = time.monotonic()
        value = cache.get_or_set("hot", lambda: "sync", 60)
        waited_for_the_bound = time.monotonic() - started >= 30.0
        return value, waited_for_the_bound, await task

    value, waited_for_the_bound, leader_value = asyncio.run(main())
    assert value == "sync"
    assert not waited_for_the_bound
    assert leader_value == "sync"  # it lost the add race to the sync caller's value


def test_coalescing_and_refreshing_make_no_thread_hop(cache: RedisCache, hops: list[str]) -> None:
    """Async waiters, a background refresh and the cross-process lock all stay on the
    loop: no sync_to_async, no executor."""
    counter = Counter(0.05)

    async def main() -> None:
        await asyncio.gather(
            *(cache.aget_or_set("hot", counter.async_, 0.2, stale=30, lock=5) for _ in range(100))
        )
        await asyncio.sleep(0.3)
        await asyncio.gather(
            *(cache.aget_or_set("hot", counter.async_, 60, stale=30) for _ in range(100))
        )
        await asyncio.gather(*_stampede._refreshes)

    hops.clear()
    asyncio.run(main())
    assert counter.calls == 2
    assert hops == []


def test_different_versions_are_different_flights(cache: RedisCache) -> None:
    """Concurrent misses of one key in two versions compute once per version."""
    counter = Counter(0.05)

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(cache.aget_or_set("hot", counter.async_, 60, version=v % 2 + 1) for v in range(10))
        )

    asyncio.run(main())
    assert counter.calls == 2


@pytest.mark.parametrize("side", ["sync", "async"])
def test_a_failure_reaches_every_waiter_once_and_is_not_cached(
    cache: RedisCache, side: str
) -> None:
    """The computing caller fails: every concurrent caller gets the error, nothing is
    stored, and the next call computes again."""
    calls = 0

    entered = threading.Semaphore(0)

    def failing() -> Any:
        nonlocal calls
        calls += 1
        # Fail only once every thread has called (a thread the OS starts late would
        # otherwise arrive after the failure and rightly compute again), plus a
        # moment for the last one to reach the flight.
        for _ in range(50):
            assert entered.acquire(timeout=10)
        time.sleep(0.1)
        raise ValueError("backend down")

    def call() -> Any:
        entered.release()
        return cache.get_or_set("hot", failing, 60)

    async def afailing() -> Any:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        raise ValueError("backend down")

    if side == "sync":
        results = _run_threads(50, call)
    else:

        async def main() -> list[Any]:
            return await asyncio.gather(
                *(cache.aget_or_set("hot", afailing, 60) for _ in range(50)),
                return_exceptions=True,
            )

        results = asyncio.run(main())
    assert calls == 1
    assert [type(result) for result in results] == [ValueError] * 50
    assert cache.get("hot") is None
    assert cache.get_or_set("hot", lambda: "retried", 60) == "retried"


def test_a_cancelled_computing_caller_hands_the_work_to_a_waiter(cache: RedisCache) -> None:
    """The task computing the miss is cancelled: a waiter computes, no waiter hangs."""
    counter = Counter(0.2)

    async def main() -> list[Any]:
        first = asyncio.ensure_future(cache.aget_or_set("hot", counter.async_, 60))
        await asyncio.sleep(0.05)  # it is computing now
        waiters = [
            asyncio.ensure_future(cache.aget_or_set("hot", counter.async_, 60)) for _ in range(10)
        ]
        await asyncio.sleep(0.05)
        first.cancel()
        return await asyncio.wait_for(asyncio.gather(*waiters), 5)

    assert asyncio.run(main()) == ["computed"] * 10
    assert counter.calls == 2


def test_a_forked_child_starts_with_no_flight(cache: RedisCache) -> None:
    """A computation in flight in the parent is not awaited forever in a forked child."""
    started = threading.Event()
    release = threading.Event()

    def slow() -> str:
        started.set()
        release.wait(10)
        return "parent"

    thread = threading.Thread(target=lambda: cache.get_or_set("hot", slow, 60))
    thread.start()
    started.wait(5)
    assert _stampede._flights
    with _forking_threads_allowed():
        pid = os.fork()
    if pid == 0:  # the child
        os._exit(0 if not _stampede._flights else 1)
    _, status = os.waitpid(pid, 0)
    release.set()
    thread.join(10)
    assert os.waitstatus_to_exitcode(status) == 0


# 3. Single-flight across processes.


def _process_sync_misses(url: str, lock: bool, tasks: int, ready: Any, go: Any) -> None:
    """A child process: ``tasks`` threads miss "hot" at once through the sync API."""
    import redis

    cache = RedisCache(url, {"OPTIONS": {"socket_connect_timeout": 10}})
    counter = redis.Redis.from_url(url)

    def compute() -> str:
        counter.incr("calls")
        time.sleep(0.2)
        return "computed"

    ready.set()
    go.wait(10)
    results = _run_threads(tasks, lambda: cache.get_or_set("hot", compute, 60, lock=lock or False))
    counter.close()
    assert results == ["computed"] * tasks


def _process_misses(url: str, lock: bool, tasks: int, ready: Any, go: Any) -> None:
    """A child process: ``tasks`` concurrent misses of "hot", counting computations
    in the server's "calls" counter."""
    import redis

    # 4 x 250 tasks connecting at once on a shared machine: a small pool, patient connects.
    cache = RedisCache(url, {"OPTIONS": {"max_connections": 20, "socket_connect_timeout": 10}})
    counter = redis.Redis.from_url(url)

    async def compute() -> str:
        counter.incr("calls")  # a single fast command: the count is what matters here
        await asyncio.sleep(0.2)
        return "computed"

    async def main() -> None:
        results = await asyncio.gather(
            *(cache.aget_or_set("hot", compute, 60, lock=lock or False) for _ in range(tasks))
        )
        assert results == ["computed"] * tasks

    ready.set()
    go.wait(10)
    asyncio.run(main())
    counter.close()


def _misses_in_processes(
    url: str, lock: bool, raw: Any, target: Any = _process_misses, tasks: int = 250
) -> tuple[int, list[int]]:
    context = multiprocessing.get_context("fork")
    go = context.Event()
    readies = [context.Event() for _ in range(4)]
    processes = [
        context.Process(target=target, args=(url, lock, tasks, ready, go)) for ready in readies
    ]
    with _forking_threads_allowed():
        for process in processes:
            process.start()
    for ready in readies:
        ready.wait(10)
    go.set()
    for process in processes:
        process.join(30)
    return int(raw.get("calls") or 0), [p.exitcode or 0 for p in processes]


def test_four_processes_with_the_lock_compute_once(redis_server: Any, raw: Any) -> None:
    """4 processes x 250 concurrent misses, cross-process lock on: 1 computation in all."""
    calls, codes = _misses_in_processes(redis_server.url, True, raw)
    raw.flushdb()
    assert codes == [0, 0, 0, 0]
    assert calls == 1


def test_four_processes_of_sync_threads_with_the_lock_compute_once(
    redis_server: Any, raw: Any
) -> None:
    """The sync API: 4 processes x 50 threads missing at once, lock on: 1 computation."""
    calls, codes = _misses_in_processes(redis_server.url, True, raw, _process_sync_misses, 50)
    raw.flushdb()
    assert codes == [0, 0, 0, 0]
    assert calls == 1


def test_four_processes_without_the_lock_compute_at_most_once_each(
    redis_server: Any, raw: Any
) -> None:
    """Without the lock, single-flight is per process: at most 4 computations."""
    calls, codes = _misses_in_processes(redis_server.url, False, raw)
    raw.flushdb()
    assert codes == [0, 0, 0, 0]
    assert 1 <= calls <= 4


def _holder(url: str, holding: Any) -> None:
    cache = RedisCache(url, {})

    def compute() -> str:
        holding.set()
        time.sleep(60)  # killed before it ends
        return "holder"

    cache.get_or_set("hot", compute, 60, lock=1)


@pytest.mark.parametrize("side", ["sync", "async"])
def test_waiters_recover_when_the_lock_holder_dies(
    redis_server: Any, raw: Any, cache: RedisCache, side: str
) -> None:
    """The process holding the lock is killed mid-computation: after the lock's TTL
    (1 s) one waiter computes, and every waiter gets its value."""
    context = multiprocessing.get_context("fork")
    holding = context.Event()
    holder = context.Process(target=_holder, args=(redis_server.url, holding))
    with _forking_threads_allowed():
        holder.start()
    assert holding.wait(10)
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    counter = Counter(0.05, "recovered")
    if side == "sync":
        results = _run_threads(20, lambda: cache.get_or_set("hot", counter.sync, 60, lock=1))
    else:

        async def main() -> list[Any]:
            calls = (cache.aget_or_set("hot", counter.async_, 60, lock=1) for _ in range(20))
            return await asyncio.wait_for(asyncio.gather(*calls), 10)

        results = asyncio.run(main())
    assert results == ["recovered"] * 20
    assert counter.calls == 1


# 4. Early refresh.


def test_a_framed_value_reads_back_with_plain_get(api: Any) -> None:
    """A value stored with stale-while-revalidate metadata is still a value for get."""
    assert api.get_or_set("key", lambda: {"a": 1}, 60, stale=30) == {"a": 1}
    assert api.get_or_set("number", lambda: 7, 60, stale=30) == 7
    assert api.get("key") == {"a": 1}
    assert api.get("number") == 7


@pytest.mark.parametrize(
    "options",
    [
        {"SERIALIZER": "django_asyncredis.serializers.signed.SignedPickleSerializer"},
        {"SERIALIZER": "django_asyncredis.serializers.json.JSONSerializer"},
        {
            "COMPRESSOR": "django_asyncredis.compressors.zlib.ZlibCompressor",
            "COMPRESS_MIN_LENGTH": 1,
        },
    ],
    ids=["signed", "json", "compressed"],
)
def test_framed_values_round_trip_under_every_codec(
    make_cache: Callable[..., Any], options: dict[str, Any]
) -> None:
    """A framed value (a string, an int, a list) reads back through get and get_or_set
    under a signing serializer, JSON and compression."""
    if "signed" in options.get("SERIALIZER", ""):
        options = {**options, "SIGNING_KEY": "k"}
    cache = make_cache(OPTIONS=options)
    for key, value in (("s", "x" * 300), ("i", 12), ("l", [1, 2, 3])):
        assert cache.get_or_set(key, lambda v=value: v, 60, stale=30) == value
        assert cache.get(key) == value
        assert cache.get_or_set(key, lambda: "recomputed", 60, stale=30) == value


def test_a_framed_value_lives_for_timeout_plus_stale(cache: RedisCache, raw: Any) -> None:
    """The server keeps a stale-while-revalidate value for its timeout plus the stale window."""
    cache.get_or_set("key", lambda: "v", 10, stale=30)
    assert 39_000 < raw.pttl(":1:key") <= 40_000


def test_stale_value_is_served_and_refreshed_once_in_the_background(cache: RedisCache) -> None:
    """Past the timeout, 100 concurrent async callers get the stale value at once and
    one background task refreshes it."""
    old = Counter(0, "old")
    new = Counter(0.1, "new")

    async def main() -> tuple[list[Any], Any]:
        await cache.aget_or_set("hot", old.async_, 0.2, stale=30)
        await asyncio.sleep(0.3)
        served = await asyncio.gather(
            *(cache.aget_or_set("hot", new.async_, 60, stale=30) for _ in range(100))
        )
        await asyncio.gather(*_stampede._refreshes)
        return served, await cache.aget("hot")

    served, after = asyncio.run(main())
    assert served == ["old"] * 100
    assert new.calls == 1
    assert after == "new"


def test_a_sync_caller_refreshes_a_stale_value_inline_and_the_others_get_it_stale(
    cache: RedisCache,
) -> None:
    """Past the timeout, 20 threads: one refreshes inline (gets the new value), the
    others are served the stale one at once; one computation."""
    cache.get_or_set("hot", lambda: "old", 0.2, stale=30)
    time.sleep(0.3)
    new = Counter(0.2, "new")
    results = _run_threads(20, lambda: cache.get_or_set("hot", new.sync, 60, stale=30))
    assert new.calls == 1
    assert sorted(results) == ["new"] + ["old"] * 19
    assert cache.get("hot") == "new"


@pytest.mark.parametrize("side", ["sync", "async"])
def test_no_refresh_while_another_process_holds_the_refresh_claim(
    cache: RedisCache, raw: Any, side: str
) -> None:
    """Another process is refreshing the key (its claim is on the server): the
    stale value is served and this process does not refresh it too."""
    cache.get_or_set("hot", lambda: "old", 0.2, stale=30)
    time.sleep(0.3)
    raw.set(":1:hot\x00lock", b"another-process", px=10_000)
    new = Counter(0, "new")
    if side == "sync":
        served = cache.get_or_set("hot", new.sync, 60, stale=30)
    else:

        async def main() -> Any:
            value = await cache.aget_or_set("hot", new.async_, 60, stale=30)
            await asyncio.gather(*_stampede._refreshes)
            return value

        served = asyncio.run(main())
    assert served == "old"
    assert new.calls == 0
    assert cache.get("hot") == "old"


def test_a_refresh_failure_is_logged_and_the_stale_value_kept(
    cache: RedisCache, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing background refresh logs the error; callers keep getting the stale value."""

    async def failing() -> Any:
        raise ValueError("backend down")

    async def main() -> tuple[Any, Any]:
        await cache.aget_or_set("hot", lambda: "old", 0.2, stale=30)
        await asyncio.sleep(0.3)
        served = await cache.aget_or_set("hot", failing, 60, stale=30)
        await asyncio.gather(*_stampede._refreshes)
        return served, await cache.aget("hot")

    assert asyncio.run(main()) == ("old", "old")
    assert "Refreshing the cache key ':1:hot' failed" in caplog.text


def test_xfetch_refreshes_ahead_of_expiry(cache: RedisCache) -> None:
    """With a huge beta, a hit well before expiry is refreshed (once), and served meanwhile."""
    slow = Counter(0.05, "old")
    cache.get_or_set("hot", slow.sync, 60, xfetch=True)
    new = Counter(0, "new")
    assert cache.get_or_set("hot", new.sync, 60, xfetch=1e9) == "new"
    assert new.calls == 1
    assert cache.get("hot") == "new"


def test_xfetch_refreshes_ahead_of_expiry_in_the_background(cache: RedisCache) -> None:
    """Async: the caller that draws the early refresh is served the current value
    and one background task refreshes it."""
    slow = Counter(0.05, "old")
    new = Counter(0.3, "new")  # still computing while the 20 callers read

    async def main() -> tuple[list[Any], Any]:
        await cache.aget_or_set("hot", slow.async_, 60, xfetch=True)
        served = await asyncio.gather(
            *(cache.aget_or_set("hot", new.async_, 60, xfetch=1e9) for _ in range(20))
        )
        await asyncio.gather(*_stampede._refreshes)
        return served, await cache.aget("hot")

    assert asyncio.run(main()) == (["old"] * 20, "new")
    assert new.calls == 1


def test_xfetch_leaves_a_fresh_value_alone_at_beta_one(cache: RedisCache) -> None:
    """A 50 ms computation, 60 s from expiry: the chance of an early refresh is nil."""
    slow = Counter(0.05, "old")
    cache.get_or_set("hot", slow.sync, 60, xfetch=True)
    new = Counter(0, "new")
    for _ in range(100):
        assert cache.get_or_set("hot", new.sync, 60, xfetch=True) == "old"
    assert new.calls == 0


def test_stampede_options_are_the_alias_defaults(make_cache: Callable[..., Any], raw: Any) -> None:
    """STAMPEDE_STALE in OPTIONS applies to every get_or_set of the alias."""
    cache = make_cache(OPTIONS={"STAMPEDE_STALE": 30})
    cache.get_or_set("key", lambda: "v", 10)
    assert raw.pttl(":1:key") > 30_000
    assert raw.get(":1:key")[:1] == b"\xc1"


def test_a_call_can_switch_the_alias_default_off(make_cache: Callable[..., Any], raw: Any) -> None:
    """stale=False stores a plain value under an alias that defaults to framing."""
    cache = make_cache(OPTIONS={"STAMPEDE_STALE": 30})
    cache.get_or_set("key", lambda: "v", 10, stale=False)
    assert raw.pttl(":1:key") <= 10_000
    assert raw.get(":1:key")[:1] != b"\xc1"


def test_bad_stampede_arguments_are_refused(cache: RedisCache) -> None:
    """A negative or textual stale/xfetch/lock is a clear TypeError, not a silent default."""
    with pytest.raises(TypeError, match="stale="):
        cache.get_or_set("key", lambda: 1, stale=-1)
    with pytest.raises(TypeError, match="lock="):
        cache.get_or_set("key", lambda: 1, lock="10")
    with pytest.raises(TypeError, match="stale="):
        cache.get_or_set("key", lambda: 1, stale=True)


def test_a_payload_starting_with_the_framing_byte_is_escaped() -> None:
    """A serializer whose output starts with 0xC1 is escaped, so it never reads as framed."""

    class Raw(PickleSerializer):
        def dumps(self, value: Any) -> bytes:
            return bytes(value)

        def loads(self, data: bytes) -> Any:
            return data

    codec = Codec(Raw())
    stored = codec.dumps(b"\xc1abc", "key")
    assert stored == b"\x00\xc1abc"
    assert codec.loads(stored, "key") == b"\xc1abc"


def test_signed_values_keep_their_stored_format(make_cache: Callable[..., Any], raw: Any) -> None:
    """The signed serializer's key-bound frame (first byte 0x01) is stored unescaped as
    before framing existed, so values written by earlier releases still read."""
    signed = "django_asyncredis.serializers.signed.SignedPickleSerializer"
    cache = make_cache(OPTIONS={"SERIALIZER": signed, "SIGNING_KEY": "k"})
    cache.set("key", {"a": 1})
    assert raw.get(":1:key")[:1] == b"\x01"
    assert cache.get("key") == {"a": 1}


# 5. django-redis's HerdClient.

HERD = {"CLIENT_CLASS": "django_redis.client.HerdClient"}


def test_herd_client_is_accepted(make_cache: Callable[..., Any]) -> None:
    """CLIENT_CLASS HerdClient configures a herd window of CACHE_HERD_TIMEOUT (default 60 s)."""
    assert make_cache(OPTIONS=HERD)._config.herd_timeout == 60
    with override_settings(CACHE_HERD_TIMEOUT=5):
        assert make_cache(OPTIONS=HERD)._config.herd_timeout == 5
    for bad in (-1, 0, "60", None):
        with (
            override_settings(CACHE_HERD_TIMEOUT=bad),
            pytest.raises(ImproperlyConfigured, match="CACHE_HERD_TIMEOUT"),
        ):
            make_cache(OPTIONS=HERD).get("k")


@pytest.fixture
def herd_api(make_cache: Callable[..., Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    from tests.conftest import AsyncAPI

    with override_settings(CACHE_HERD_TIMEOUT=1):
        cache = make_cache(OPTIONS=HERD)
        if request.param == "sync":
            yield cache
            return
        with asyncio.Runner() as runner:
            yield AsyncAPI(cache, runner)


@pytest.mark.parametrize("herd_api", ["sync", "async"], indirect=True)
def test_herd_client_set_keeps_the_value_for_the_herd_window(herd_api: Any, raw: Any) -> None:
    """set(timeout=10) under HerdClient lives 10 s + CACHE_HERD_TIMEOUT on the server."""
    herd_api.set("key", "v", 10)
    assert 10_000 < raw.pttl(":1:key") <= 11_000
    assert herd_api.get("key") == "v"


@pytest.mark.parametrize("herd_api", ["sync", "async"], indirect=True)
def test_herd_client_get_misses_across_the_herd_window(herd_api: Any) -> None:
    """Past timeout + herd window the value is gone; within the window, get reports a
    miss to some readers, as django-redis's HerdClient does, so one recomputes."""
    herd_api.set("key", "v", 0.2)
    time.sleep(0.2 + 1.0 + 0.05)
    assert herd_api.get("key", "missing") == "missing"
    # within the herd window, at least one of many readers is told to recompute
    herd_api.set("key", "v", 0.2)
    time.sleep(0.9)
    assert "missing" in {herd_api.get("key", "missing") for _ in range(50)}


def test_values_written_by_django_redis_herd_client_are_read(
    redis_server: Any, make_cache: Callable[..., Any]
) -> None:
    """django-redis's HerdClient writes (Marker, value, soft expiry): our HerdClient
    returns the value, through both APIs, to get and get_or_set."""
    from django_redis.cache import RedisCache as DjangoRedisCache

    theirs = DjangoRedisCache(redis_server.url, {"OPTIONS": HERD})
    theirs.set("key", {"a": 1}, 30)
    ours = make_cache(OPTIONS=HERD)
    assert ours.get("key") == {"a": 1}
    assert asyncio.run(ours.aget("key")) == {"a": 1}
    assert ours.get_or_set("key", lambda: "recomputed", 30) == {"a": 1}
    assert asyncio.run(ours.aget_or_set("key", lambda: "recomputed", 30)) == {"a": 1}


def test_django_redis_herd_values_past_their_timeout_are_refreshed(
    redis_server: Any, make_cache: Callable[..., Any]
) -> None:
    """A django-redis HerdClient value past its timeout is stale for our HerdClient:
    get_or_set serves it and refreshes it once."""
    from django_redis.cache import RedisCache as DjangoRedisCache

    with override_settings(CACHE_HERD_TIMEOUT=5):
        theirs = DjangoRedisCache(redis_server.url, {"OPTIONS": HERD})
        theirs.set("key", "old", 1)
        ours = make_cache(OPTIONS=HERD)
    time.sleep(2.1)  # their soft expiry is in whole seconds
    new = Counter(0, "new")
    assert ours.get_or_set("key", new.sync, 30) == "new"  # the sync caller refreshes inline
    assert new.calls == 1
    assert ours.get("key") == "new"


# 6. The decorator.


@pytest.fixture
def default_cache(redis_server: Any) -> Iterator[None]:
    caches = {"default": {"BACKEND": "django_asyncredis.RedisCache", "LOCATION": redis_server.url}}
    with override_settings(CACHES=caches):
        yield
    redis_server.flush()


def test_cached_memoises_a_sync_function_per_arguments(default_cache: None) -> None:
    """Equal arguments hit the cache; other arguments compute."""
    calls: list[tuple[int, int]] = []

    @cached(60)
    def add(a: int, b: int = 0) -> int:
        calls.append((a, b))
        return a + b

    assert add(1, b=2) == 3
    assert add(1, b=2) == 3
    assert add(2) == 2
    assert calls == [(1, 2), (2, 0)]


def test_cached_coalesces_concurrent_calls_of_an_async_function(default_cache: None) -> None:
    """1,000 concurrent calls of a cached async function with one argument: one call."""
    counter = Counter(0.05)

    @cached(60, stale=30)
    async def fetch(item: int) -> Any:
        return await counter.async_()

    async def main() -> list[Any]:
        return await asyncio.gather(*(fetch(7) for _ in range(1000)))

    assert asyncio.run(main()) == ["computed"] * 1000
    assert counter.calls == 1


def test_cached_keys_are_stable_and_documented(default_cache: None, raw: Any) -> None:
    """The key is cached:<module>.<qualname>:<sha256 of pickled args>; key= replaces the name."""

    @cached(60)
    def double(x: int) -> int:
        return 2 * x

    @cached(60, key="doubling")
    def double2(x: int) -> int:
        return 2 * x

    @cached(60, key=lambda x: f"double:{x}")
    def double3(x: int) -> int:
        return 2 * x

    double(4)
    double2(4)
    double3(4)
    digest = arguments_digest((4,), {})
    name = f"{__name__}.test_cached_keys_are_stable_and_documented.<locals>.double"
    assert raw.get(f":1:cached:{name}:{digest}") == b"8"
    assert raw.get(f":1:cached:doubling:{digest}") == b"8"
    assert raw.get(":1:double:4") == b"8"
    assert digest == arguments_digest((4,), {})


def test_cached_refuses_unpicklable_arguments_clearly(default_cache: None) -> None:
    """An argument that cannot be pickled is a TypeError pointing at key=."""

    @cached(60)
    def f(x: Any) -> Any:
        return 1

    with pytest.raises(TypeError, match="key="):
        f(lambda: 0)


def test_cached_coalesces_concurrent_calls_of_a_sync_function(default_cache: None) -> None:
    """100 threads call a cached sync function with the same argument at once: one call."""
    counter = Counter(0.05)

    @cached(60)
    def fetch(item: int) -> Any:
        return counter.sync()

    assert _run_threads(100, lambda: fetch(7)) == ["computed"] * 100
    assert counter.calls == 1
