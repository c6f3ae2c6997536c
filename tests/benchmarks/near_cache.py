"""What the near-cache buys and costs (docs/near-cache.md). Not a test.

Run ``python tests/benchmarks/near_cache.py`` with the dev extra installed: it
starts a throwaway server and measures, interleaved round by round (each
round's ratio against the same round's reference, the median printed):

- hot key, async: ``aget`` of one key by 64 tasks on one loop, near-cached,
  against raw ``redis.asyncio`` ``GET`` of the same key by 64 tasks;
- hot key, sync: ``get`` near-cached against django-redis's ``get``;
- miss cost: ``aget``/``get`` of keys that are not held (the store flushed
  before each pass, so every read is a miss that fetches and stores),
  near-cached (with and without NEAR_CACHE_CHECK_TTL) against the same cache
  without NEAR_CACHE;
- the staleness window: from a ``SET`` acknowledged in another process to the
  local entry dropped by the listener thread, p50/p99 over many writes.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.conftest import pytest_configure

pytest_configure(None)  # type: ignore[arg-type]  # Django settings as the tests have them

import redis  # noqa: E402
import redis.asyncio  # noqa: E402
from django_redis.cache import RedisCache as DjangoRedisCache  # noqa: E402

from django_asyncredis import RedisCache  # noqa: E402
from tests.servers import ServerProcess  # noqa: E402

ROUNDS = 15
TASKS = 64
PER_TASK = 50
SYNC_CALLS = 2_000
MISS_CALLS = 300
STALENESS_SAMPLES = 1_000


def near(url: str, prefix: str, **options: Any) -> RedisCache:
    cache = RedisCache(url, {"KEY_PREFIX": prefix, "OPTIONS": {"NEAR_CACHE": True, **options}})
    assert cache._near is not None
    assert cache._near.wait_ready(10)
    return cache


async def tasks_seconds(call: Callable[[], Any]) -> float:
    """Seconds for TASKS tasks making PER_TASK awaited calls each."""

    async def one() -> None:
        for _ in range(PER_TASK):
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(TASKS)))
    return time.perf_counter() - start


def sync_seconds(call: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return time.perf_counter() - start


def median_ratio(pairs: list[tuple[float, float]]) -> float:
    """Median over rounds of reference time / measured time (> 1: measured is faster)."""
    return statistics.median(reference / measured for measured, reference in pairs)


async def hot_async(url: str, cache: RedisCache) -> float:
    await cache.aset("hot", "x" * 100)
    await cache.aget("hot")
    await cache.aget("hot")
    client = redis.asyncio.Redis.from_url(url, max_connections=TASKS)
    key = cache.make_key("hot")
    pairs = []
    try:
        for _ in range(ROUNDS):
            ours = await tasks_seconds(lambda: cache.aget("hot"))
            theirs = await tasks_seconds(lambda: client.get(key))
            pairs.append((ours, theirs))
    finally:
        await client.aclose()
    return median_ratio(pairs)


def hot_sync(url: str, cache: RedisCache) -> float:
    cache.set("hot", "x" * 100)
    time.sleep(0.05)  # this process's own write echoes back as an invalidation
    cache.get("hot")
    reference = DjangoRedisCache(url, {"KEY_PREFIX": "django-redis"})
    reference.set("hot", "x" * 100)
    pairs = []
    for _ in range(ROUNDS):
        ours = sync_seconds(lambda: cache.get("hot"), SYNC_CALLS)
        theirs = sync_seconds(lambda: reference.get("hot"), SYNC_CALLS)
        pairs.append((ours, theirs))
    return median_ratio(pairs)


def misses(url: str, cache: RedisCache) -> tuple[float, float]:
    """(async, sync) median ratio near / plain on reads that miss the near-cache:
    each read is of a key not held, which the near-cache fetches and stores."""
    plain = RedisCache(url, {"KEY_PREFIX": cache.key_prefix})
    store = cache._near
    assert store is not None
    keys = [f"m{index}" for index in range(MISS_CALLS)]
    cache.set_many(dict.fromkeys(keys, "x" * 100))
    time.sleep(0.1)  # let the echoes of those writes pass

    async def read_all(which: RedisCache) -> float:
        start = time.perf_counter()
        for key in keys:
            await which.aget(key)
        return time.perf_counter() - start

    def sync_read_all(which: RedisCache) -> float:
        start = time.perf_counter()
        for key in keys:
            which.get(key)
        return time.perf_counter() - start

    async_pairs, sync_pairs = [], []
    with asyncio.Runner() as runner:
        runner.run(read_all(plain))  # connections open before timing
        sync_read_all(plain)
        for number in range(ROUNDS):
            timings: dict[tuple[str, bool], float] = {}
            order = (True, False) if number % 2 else (False, True)
            for near_cached in order:
                which = cache if near_cached else plain
                store.flush()  # nothing held: every near-cached read misses
                timings["async", near_cached] = runner.run(read_all(which))
                store.flush()
                timings["sync", near_cached] = sync_read_all(which)
            async_pairs.append((timings["async", False], timings["async", True]))
            sync_pairs.append((timings["sync", False], timings["sync", True]))
    return median_ratio(async_pairs), median_ratio(sync_pairs)


#: The writer of the staleness measurement: another process, on its own
#: connection, printing the CLOCK_MONOTONIC instant each write was acknowledged.
STALENESS_WRITER = """
import sys, time, redis
client = redis.Redis.from_url(sys.argv[1])
for line in sys.stdin:
    key, value = line.split()
    client.set(key, value)
    print(time.monotonic_ns(), flush=True)
"""


def staleness(url: str, cache: RedisCache) -> tuple[float, float]:
    """p50, p99 in µs from a SET acknowledged in another process to the local drop.

    Both instants are ``time.monotonic_ns()`` (CLOCK_MONOTONIC, one clock for every
    process of the machine): the writer's right after its reply, this process's
    right after the listener thread dropped the key. Negative: the drop came
    before the writer read its acknowledgement."""
    store = cache._near
    assert store is not None
    dropped: list[int] = []
    invalidate = store.invalidate

    def recording(keys: Any, *, from_server: bool = False) -> None:
        invalidate(keys, from_server=from_server)
        if from_server:
            dropped.append(time.monotonic_ns())

    store.invalidate = recording  # type: ignore[method-assign]  # what the listener calls
    writer = subprocess.Popen(
        [sys.executable, "-c", STALENESS_WRITER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None
    assert writer.stdout is not None
    key = cache.make_key("stale")
    samples = []
    try:
        for value in range(STALENESS_SAMPLES):
            cache.get("stale")  # held locally: the drop has an entry to remove
            before = len(dropped)
            writer.stdin.write(f"{key} {value}\n")
            writer.stdin.flush()
            acknowledged = int(writer.stdout.readline())
            deadline = time.monotonic() + 5
            while len(dropped) == before:
                if time.monotonic() > deadline:
                    raise RuntimeError("an invalidation was not delivered within 5 s")
                time.sleep(0.00002)  # lets the listener thread take the GIL
            samples.append((dropped[before] - acknowledged) / 1000)
    finally:
        del store.invalidate
        writer.stdin.close()
        writer.wait(10)
        writer.stdout.close()
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def main() -> None:
    server = ServerProcess().start()
    try:
        cache = near(server.url, "near-bench")
        print(f"server: {server.binary}")
        ratio = asyncio.run(hot_async(server.url, cache))
        print(f"hot key aget x{TASKS} tasks vs raw redis.asyncio GET: {ratio:.1f}x faster")
        print(f"hot key sync get vs django-redis get: {hot_sync(server.url, cache):.1f}x faster")
        async_cost, sync_cost = misses(server.url, cache)
        print(f"miss cost vs the plain path: aget {async_cost:.2f}x, get {sync_cost:.2f}x")
        unchecked = near(server.url, "near-bench-unchecked", NEAR_CACHE_CHECK_TTL=False)
        async_cost, sync_cost = misses(server.url, unchecked)
        print(
            "miss cost vs the plain path, NEAR_CACHE_CHECK_TTL False: "
            f"aget {async_cost:.2f}x, get {sync_cost:.2f}x"
        )
        p50, p99 = staleness(server.url, cache)
        print(
            "staleness window (write ack in another process -> local drop): "
            f"p50 {p50:.0f} us, p99 {p99:.0f} us"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
