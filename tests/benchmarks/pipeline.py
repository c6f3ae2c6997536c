"""Ten mixed cache calls in one cache pipeline versus ten awaited calls (docs/api.md).

Run ``python tests/benchmarks/pipeline.py`` with the package and its dev extra
installed: it starts a throwaway server itself, then times, interleaved, the same
ten calls (set, get, add, incr, expire, ttl, has_key, touch, delete, get) made one
``await`` at a time and queued in ``async with cache.apipeline()``, and the same
on the sync API. It prints medians and the ratio. Not a test: it asserts nothing.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.conftest import pytest_configure

pytest_configure(None)  # type: ignore[arg-type]  # Django settings as the tests have them

from django_asyncredis import RedisCache  # noqa: E402
from tests.servers import ServerProcess  # noqa: E402

ROUNDS = 7
REPEATS = 500


def queue_ten(p: Any) -> None:
    p.set("a", 1)
    p.get("a")
    p.add("b", 0)
    p.incr("b")
    p.expire("a", 60)
    p.ttl("a")
    p.has_key("b")
    p.touch("b", 60)
    p.delete("c")
    p.get("missing")


async def ten_awaited(cache: RedisCache) -> None:
    await cache.aset("a", 1)
    await cache.aget("a")
    await cache.aadd("b", 0)
    await cache.aincr("b")
    await cache.aexpire("a", 60)
    await cache.attl("a")
    await cache.ahas_key("b")
    await cache.atouch("b", 60)
    await cache.adelete("c")
    await cache.aget("missing")


def ten_called(cache: RedisCache) -> None:
    cache.set("a", 1)
    cache.get("a")
    cache.add("b", 0)
    cache.incr("b")
    cache.expire("a", 60)
    cache.ttl("a")
    cache.has_key("b")
    cache.touch("b", 60)
    cache.delete("c")
    cache.get("missing")


async def ten_pipelined(cache: RedisCache) -> None:
    async with cache.apipeline() as p:
        queue_ten(p)


def ten_pipelined_sync(cache: RedisCache) -> None:
    with cache.pipeline() as p:
        queue_ten(p)


def async_us(cache: RedisCache, batch: Any) -> float:
    async def run() -> float:
        await batch(cache)
        start = time.perf_counter()
        for _ in range(REPEATS):
            await batch(cache)
        return (time.perf_counter() - start) / REPEATS * 1e6

    return asyncio.run(run())


def sync_us(cache: RedisCache, batch: Any) -> float:
    batch(cache)
    start = time.perf_counter()
    for _ in range(REPEATS):
        batch(cache)
    return (time.perf_counter() - start) / REPEATS * 1e6


def main() -> None:
    server = ServerProcess().start()
    try:
        cache = RedisCache(server.url, {})
        results: dict[str, list[float]] = {}
        for _ in range(ROUNDS):
            for label, measure in (
                ("async, 10 awaited calls", lambda: async_us(cache, ten_awaited)),
                ("async, 10 calls in apipeline()", lambda: async_us(cache, ten_pipelined)),
                ("sync, 10 calls", lambda: sync_us(cache, ten_called)),
                ("sync, 10 calls in pipeline()", lambda: sync_us(cache, ten_pipelined_sync)),
            ):
                results.setdefault(label, []).append(measure())
    finally:
        server.stop()
    medians = {label: statistics.median(times) for label, times in results.items()}
    print(f"10 mixed calls, median of {ROUNDS} rounds of {REPEATS}, on one local server:\n")
    print("| calls | µs per 10 calls |")
    print("| --- | ---: |")
    for label, median in medians.items():
        print(f"| {label} | {median:.0f} |")
    print()
    for api in ("async", "sync"):
        plain, piped = (m for label, m in medians.items() if label.startswith(api))
        print(f"{api}: the pipeline is {plain / piped:.2f}x the throughput of separate calls")


if __name__ == "__main__":
    main()
