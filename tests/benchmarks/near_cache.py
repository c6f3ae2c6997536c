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
  without NEAR_CACHE, alternating in short slices (each slice's ratio);
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

import redis
import redis.asyncio
from django_redis.cache import RedisCache as DjangoRedisCache

from django_asyncredis import RedisCache
from tests.servers import ServerProcess

ROUNDS = 15
TASKS = 64
PER_TASK = 50
#: Calls per task for the near-cached side of the hot-key measurement: a hit is
#: some 20 times faster than a GET, so it makes that many more calls for a
#: measurement of comparable length (about 0.1 s), not one of a few milliseconds.
HOT_PER_TASK = 1_000
SYNC_CALLS = 2_000
#: Reads per slice of the miss-cost measurement, and slices per API.
MISS_CALLS = 60
MISS_SLICES = 75
STALENESS_SAMPLES = 1_000


def near(url: str, prefix: str, **options: Any) -> RedisCache:
    cache = RedisCache(url, {"KEY_PREFIX": prefix, "OPTIONS": {"NEAR_CACHE": True, **options}})
    assert cache._near is not None
    assert cache._near.wait_ready(10)
    return cache


async def tasks_seconds(call: Callable[[], Any], per_task: int = PER_TASK) -> float:
    """Seconds per call for TASKS tasks making ``per_task`` awaited calls each."""

    async def one() -> None:
        for _ in range(per_task):
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(TASKS)))
    return (time.perf_counter() - start) / (TASKS * per_task)


def sync_seconds(call: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return time.perf_counter() - start


def round_ratios(pairs: list[tuple[float, float]]) -> list[float]:
    """Each round's reference time / measured time (> 1: measured is faster)."""
    return [reference / measured for measured, reference in pairs]


async def hot_async(url: str, cache: RedisCache) -> list[float]:
    await cache.aset("hot", "x" * 100)
    await cache.aget("hot")
    await cache.aget("hot")
    client = redis.asyncio.Redis.from_url(url, max_connections=TASKS)
    key = cache.make_key("hot")
    pairs = []
    try:
        for _ in range(ROUNDS):
            ours = await tasks_seconds(lambda: cache.aget("hot"), HOT_PER_TASK)
            theirs = await tasks_seconds(lambda: client.get(key))
            pairs.append((ours, theirs))
    finally:
        await client.aclose()
    return round_ratios(pairs)


def hot_sync(url: str, cache: RedisCache) -> list[float]:
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
    return round_ratios(pairs)


def misses(url: str, cache: RedisCache) -> tuple[list[float], list[float]]:
    """(async, sync) ratios near / plain per slice on reads that miss the near-cache:
    each read is of a key not held, which the near-cache fetches and stores.

    A read that misses is a round trip to the server, whose time on a shared
    machine varies far more than a miss's own cost: the two caches alternate in
    MISS_SLICES short slices (MISS_CALLS reads each, the order flipping each
    slice), and each slice's ratio is taken against its neighbour's, so a slow
    spell of the machine falls on both sides of a ratio."""
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

    async_pairs: list[tuple[float, float]] = []
    sync_pairs: list[tuple[float, float]] = []
    with asyncio.Runner() as runner:
        runner.run(read_all(plain))  # connections open before timing
        sync_read_all(plain)
        timers: list[tuple[Callable[[RedisCache], float], list[tuple[float, float]]]] = [
            (lambda which: runner.run(read_all(which)), async_pairs),
            (sync_read_all, sync_pairs),
        ]
        for timed, pairs in timers:
            for number in range(MISS_SLICES):
                timings: dict[bool, float] = {}
                for near_cached in (True, False) if number % 2 else (False, True):
                    store.flush()  # nothing held: every near-cached read misses
                    timings[near_cached] = timed(cache if near_cached else plain)
                pairs.append((timings[False], timings[True]))
    return round_ratios(async_pairs), round_ratios(sync_pairs)


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


def figures(url: str) -> dict[str, Any]:
    """Every figure above against the server at ``url`` (also the ``near`` part of
    ``run.py``): per-round ratios, and the staleness percentiles in µs."""
    cache = near(url, "near-bench")
    unchecked = near(url, "near-bench-unchecked", NEAR_CACHE_CHECK_TTL=False)
    hot_async_ratios = asyncio.run(hot_async(url, cache))
    hot_sync_ratios = hot_sync(url, cache)
    miss_async, miss_sync = misses(url, cache)
    unchecked_async, unchecked_sync = misses(url, unchecked)
    p50, p99 = staleness(url, cache)
    return {
        "hot_aget_vs_raw": hot_async_ratios,
        "hot_get_vs_django_redis": hot_sync_ratios,
        # misses: near / plain time (> 1: what a miss costs more)
        "miss_aget_cost": miss_async,
        "miss_get_cost": miss_sync,
        "miss_aget_cost_unchecked": unchecked_async,
        "miss_get_cost_unchecked": unchecked_sync,
        "staleness_p50_us": p50,
        "staleness_p99_us": p99,
    }


def main() -> None:
    from tests.conftest import pytest_configure

    pytest_configure(None)  # type: ignore[arg-type]  # Django settings as the tests have them
    server = ServerProcess().start()
    try:
        print(f"server: {server.binary}")
        found = figures(server.url)
    finally:
        server.stop()
    median = statistics.median
    print(
        f"hot key aget x{TASKS} tasks vs raw redis.asyncio GET: "
        f"{median(found['hot_aget_vs_raw']):.1f}x faster"
    )
    print(
        "hot key sync get vs django-redis get: "
        f"{median(found['hot_get_vs_django_redis']):.1f}x faster"
    )
    print(
        "miss cost vs the plain path: "
        f"aget {median(found['miss_aget_cost']):.2f}x, get {median(found['miss_get_cost']):.2f}x"
    )
    print(
        "miss cost vs the plain path, NEAR_CACHE_CHECK_TTL False: "
        f"aget {median(found['miss_aget_cost_unchecked']):.2f}x, "
        f"get {median(found['miss_get_cost_unchecked']):.2f}x"
    )
    print(
        "staleness window (write ack in another process -> local drop): "
        f"p50 {found['staleness_p50_us']:.0f} us, p99 {found['staleness_p99_us']:.0f} us"
    )


if __name__ == "__main__":
    main()
