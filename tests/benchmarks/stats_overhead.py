"""What the stats cost: ``aget``/``get`` with STATS on versus off (docs/benchmarks.md).

Run ``python tests/benchmarks/stats_overhead.py`` with the package and its dev
extra installed: it starts a throwaway server, then times, interleaved round by
round, the same hit ``aget`` (and ``get``) on caches that differ only in
OPTIONS: STATS and OPENTELEMETRY off (the plain drivers, twice: "off, again" is
an identical cache built apart, whose ratio to "off" is the measurement's noise
floor), STATS on, and STATS plus OPENTELEMETRY on (spans on the API's default
no-op tracer, as when the extra is installed but no SDK is configured). Each round's ratio is taken
against the same round's "off", and the median ratio printed. Not a test.

A third table times ``aget`` hits by 64 tasks on one loop, in client CPU: the
multiplexed transport makes each call cheap there, so the counting's share is
at its largest.

The drivers count in place (``_stats.Meter``: two clock reads and a few
increments per call, no wrapper), so what "stats" adds over "off" is the
counting itself.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.conftest import pytest_configure

pytest_configure(None)  # type: ignore[arg-type]  # Django settings as the tests have them

from django_asyncredis import RedisCache  # noqa: E402
from django_asyncredis._operations import Operation  # noqa: E402
from tests.servers import ServerProcess  # noqa: E402

ROUNDS = 200
CALLS = 200

VARIANTS = {
    "off": {"STATS": False, "OPENTELEMETRY": False},
    #: The same as "off", built apart: what the measurement shows between two
    #: identical caches (its noise floor, in the ratio column).
    "off, again": {"STATS": False, "OPENTELEMETRY": False},
    "stats": {"STATS": True, "OPENTELEMETRY": False},
    "stats+otel (no SDK)": {"STATS": True, "OPENTELEMETRY": True},
}


async def async_us(cache: RedisCache) -> tuple[float, float]:
    """(wall, this process's CPU) µs per ``aget``."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(CALLS):
        await cache.aget("key")
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return wall / CALLS * 1e6, cpu / CALLS * 1e6


def sync_us(cache: RedisCache) -> tuple[float, float]:
    """(wall, this process's CPU) µs per ``get``."""
    cache.get("key")
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(CALLS):
        cache.get("key")
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return wall / CALLS * 1e6, cpu / CALLS * 1e6


def get(default: object) -> Operation[object]:
    """A stand-in ``get`` that needs no server: a miss, at once (what the drivers
    add around an operation, without the network's noise)."""
    return default
    yield


def driver_us(cache: RedisCache, api: str) -> float:
    """µs per ``run`` of the stand-in operation on the cache's own driver."""
    number = 20000
    if api == "get":
        run = cache._sync.run
        start = time.perf_counter()
        for _ in range(number):
            run(get(None), None)
        return (time.perf_counter() - start) / number * 1e6

    async def loop() -> float:
        run = cache._async.run
        start = time.perf_counter()
        for _ in range(number):
            await run(get(None), None)
        return (time.perf_counter() - start) / number * 1e6

    return asyncio.run(loop())


#: The loaded case: ``aget`` hits by this many tasks on one loop, where the
#: multiplexed transport makes a call cheap and the counting's share largest.
TASKS = 64
TASK_CALLS = 25
SLICES = 60


async def tasks_cpu_us(cache: RedisCache) -> float:
    """Client CPU µs per ``aget`` with TASKS tasks making TASK_CALLS each."""

    async def one() -> None:
        for _ in range(TASK_CALLS):
            await cache.aget("key")

    cpu = time.process_time()
    await asyncio.gather(*(one() for _ in range(TASKS)))
    return (time.process_time() - cpu) / (TASKS * TASK_CALLS) * 1e6


def main() -> None:
    server = ServerProcess().start()
    try:
        caches = {label: RedisCache(server.url, {"OPTIONS": o}) for label, o in VARIANTS.items()}
        next(iter(caches.values())).set("key", "value")
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}

        async def async_rounds() -> None:
            for cache in caches.values():
                await cache.aget("key")  # connect first
            for round_ in range(ROUNDS):
                order = list(caches.items())[:: -1 if round_ % 2 else 1]  # alternate who goes first
                for label, cache in order:
                    times.setdefault(("aget", label), []).append(await async_us(cache))

        asyncio.run(async_rounds())

        async def loaded_slices() -> None:
            for cache in caches.values():
                await tasks_cpu_us(cache)  # warm: the shared connection open
            for slice_ in range(SLICES):
                order = list(caches.items())[:: -1 if slice_ % 2 else 1]
                for label, cache in order:
                    loaded.setdefault(label, []).append(await tasks_cpu_us(cache))

        loaded: dict[str, list[float]] = {}
        asyncio.run(loaded_slices())
        for round_ in range(ROUNDS):
            order = list(caches.items())[:: -1 if round_ % 2 else 1]
            for label, cache in order:
                times.setdefault(("get", label), []).append(sync_us(cache))
        driver: dict[tuple[str, str], list[float]] = {}
        for round_ in range(15):
            for label, cache in list(caches.items())[:: -1 if round_ % 2 else 1]:
                for api in ("aget", "get"):
                    driver.setdefault((api, label), []).append(driver_us(cache, api))
    finally:
        server.stop()
    print("what the drivers add per call, with no server (median of 15 rounds):\n")
    print("| call | variant | µs per call | added µs | added / a local hit |")
    print("| --- | --- | ---: | ---: | ---: |")
    for api in ("aget", "get"):
        base = statistics.median(driver[api, "off"])
        whole = statistics.median(wall for wall, _ in times[api, "off"])
        for label in VARIANTS:
            own = statistics.median(driver[api, label])
            print(
                f"| `{api}` | {label} | {own:.2f} | {own - base:.2f} | {(own - base) / whole:.1%} |"
            )
    print()
    print(
        f"one hit per call, {CALLS} calls per variant per round, {ROUNDS} interleaved "
        "rounds (ratios: median of the rounds' ratios):\n"
    )
    print(
        "| call | variant | median µs per call | ratio to off | client CPU µs per call "
        "| CPU ratio to off |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for api in ("aget", "get"):
        off = times[api, "off"]
        for label in VARIANTS:
            own = times[api, label]
            walls = [mine[0] / base[0] for mine, base in zip(own, off, strict=True)]
            cpus = [mine[1] / base[1] for mine, base in zip(own, off, strict=True)]
            print(
                f"| `{api}` | {label} | {statistics.median(w for w, _ in own):.1f} "
                f"| {statistics.median(walls):.3f} "
                f"| {statistics.median(c for _, c in own):.1f} "
                f"| {statistics.median(cpus):.3f} |"
            )

    print()
    print(
        f"`aget` hits by {TASKS} tasks on one loop, {TASKS * TASK_CALLS} calls per variant per "
        f"slice, {SLICES} interleaved slices (ratios: median of the slices' ratios):\n"
    )
    print("| variant | client CPU µs per call | CPU ratio to off |")
    print("| --- | ---: | ---: |")
    for label in VARIANTS:
        ratios = [mine / base for mine, base in zip(loaded[label], loaded["off"], strict=True)]
        print(
            f"| {label} | {statistics.median(loaded[label]):.2f} "
            f"| {statistics.median(ratios):.3f} |"
        )


if __name__ == "__main__":
    main()
