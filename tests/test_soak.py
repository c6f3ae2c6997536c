"""Soak: many mixed operations with key churn; memory and connections stay flat."""

from __future__ import annotations

import asyncio
import gc
import os
import random
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc")

OPERATIONS = 200_000  # per API
MEMORY_GROWTH_BOUND = 16 * 1024 * 1024  # bytes of RSS growth allowed after warm-up
CONNECTION_BOUND = 16  # server connections this test may add


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def clients(raw: Any) -> int:
    return int(raw.info("clients")["connected_clients"])


async def async_mix(cache: Any, rng: random.Random, count: int) -> None:
    async def one(i: int) -> None:
        key = f"churn-{rng.randrange(5000)}"
        choice = i % 6
        if choice == 0:
            await cache.aset(key, {"i": i, "pad": "x" * rng.randrange(200)}, rng.choice([None, 5]))
        elif choice == 1:
            await cache.aget(key)
        elif choice == 2:
            await cache.aget_many([key, f"churn-{i % 5000}"])
        elif choice == 3:
            await cache.adelete(key)
        elif choice == 4:
            await cache.aadd(f"n-{i % 100}", 0)
            await cache.aincr(f"n-{i % 100}")
        else:
            await cache.aset_many({key: i, f"{key}-b": str(i)}, 10)

    for start in range(0, count, 500):
        await asyncio.gather(*(one(i) for i in range(start, min(start + 500, count))))


def sync_mix(cache: Any, rng: random.Random, count: int) -> None:
    for i in range(count):
        key = f"churn-{rng.randrange(5000)}"
        choice = i % 4
        if choice == 0:
            cache.set(key, [i, "y" * rng.randrange(200)], rng.choice([None, 5]))
        elif choice == 1:
            cache.get(key)
        elif choice == 2:
            cache.get_many([key, f"churn-{i % 5000}"])
        else:
            cache.delete(key)


@pytest.mark.slow
def test_memory_and_connections_stay_flat_under_churn(cache: Any, raw: Any) -> None:
    rng = random.Random(7)
    base_clients = clients(raw)
    # Warm-up: pools, interned strings, allocator arenas.
    asyncio.run(async_mix(cache, rng, 10_000))
    sync_mix(cache, rng, 5_000)
    gc.collect()
    before = rss()
    asyncio.run(async_mix(cache, rng, OPERATIONS))
    sync_mix(cache, rng, OPERATIONS // 4)
    gc.collect()
    grown = rss() - before
    assert grown < MEMORY_GROWTH_BOUND, f"RSS grew by {grown / 2**20:.1f} MiB"
    assert clients(raw) - base_clients <= CONNECTION_BOUND
