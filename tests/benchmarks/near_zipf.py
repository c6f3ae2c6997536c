"""The near-cache on a skewed read-mostly load: the ``near`` part of ``run.py``.

90% reads, 10% writes, over ZIPF_KEYS keys drawn from a Zipf distribution
(exponent ZIPF_S: a few keys take most reads, a long tail is read now and then),
the same precomputed sequence for both contenders: django-asyncredis with
``NEAR_CACHE`` against the same backend without it, each on its own key prefix
holding the same 100 B values. Async: ASYNC_TASKS tasks on one loop; sync: one
thread. Measured by the harness like the other parts (warm-up, then the two
contenders alternating in slices, every round), so the ratio is per round.

A write drops the writer's local copy at once and its echo (BCAST announces this
process's own writes too) a little later, so the near-cache pays a miss on the
next read of every written key: the price of coherence that this scenario shows.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

from tests.benchmarks.contenders import TIMEOUT, VALUES, AsyncCall, SyncCall

ZIPF_KEYS = 10_000
ZIPF_S = 1.1
WRITE_SHARE = 0.10
ASYNC_TASKS = 64
#: Calls in the precomputed sequence, cycled (each task starts elsewhere in it).
SEQUENCE = 100_003
SIZE = 100

NEAR = "django-asyncredis near-cache"
PLAIN = "django-asyncredis"
CONTENDERS = (NEAR, PLAIN)
ASYNC_SCENARIO = f"zipf 90/10 x{ASYNC_TASKS}"
SYNC_SCENARIO = "zipf 90/10 1 thread"
OP = "zipf 90/10"  # the harness's op name; ``contenders.check`` accepts any result

_prefixes = itertools.count()


def sequence(seed: int = 1) -> list[tuple[str, bool]]:
    """SEQUENCE calls: (key, whether it is a write), keys of Zipf rank ``k`` with
    probability proportional to ``1 / k ** ZIPF_S``."""
    rng = random.Random(seed)
    cumulative = list(itertools.accumulate(1 / rank**ZIPF_S for rank in range(1, ZIPF_KEYS + 1)))
    total = cumulative[-1]
    calls = []
    for _ in range(SEQUENCE):
        rank = bisect.bisect_left(cumulative, rng.random() * total)
        calls.append((f"zipf:{min(rank, ZIPF_KEYS - 1)}", rng.random() < WRITE_SHARE))
    return calls


CALLS = sequence()


def backend(url: str, name: str) -> Any:
    """A django-asyncredis backend (near-cached or not) on a fresh prefix, holding
    every key of the key set; the near-cache's listener is up before timing."""
    from django_asyncredis import RedisCache

    options = {"NEAR_CACHE": True} if name == NEAR else {}
    prefix = f"zipf-{'near' if name == NEAR else 'plain'}-{next(_prefixes)}"
    cache = RedisCache(url, {"KEY_PREFIX": prefix, "TIMEOUT": TIMEOUT, "OPTIONS": options})
    keys = [f"zipf:{index}" for index in range(ZIPF_KEYS)]
    for start in range(0, ZIPF_KEYS, 1_000):
        cache.set_many(dict.fromkeys(keys[start : start + 1_000], VALUES[SIZE]))
    if cache._near is not None and not cache._near.wait_ready(10):
        raise RuntimeError("the near-cache's listener did not start")
    return cache


#: The near-cache's hit ratio (%) of the last measurement closed, warm-up included:
#: each measurement has a store of its own (a fresh prefix), so its whole count.
last_hit_percent = float("nan")


def _close(cache: Any) -> None:
    global last_hit_percent
    if cache._near is not None:
        counts = cache._near.stats()
        last_hit_percent = 100 * counts["hits"] / max(1, counts["hits"] + counts["misses"])
        cache._near.stop()
    cache.delete_many([f"zipf:{index}" for index in range(ZIPF_KEYS)])


class AsyncContender:
    def __init__(self, cache: Any) -> None:
        self.cache = cache

    def call(self, op: str, size: int) -> AsyncCall:
        cache, calls, count, value = self.cache, CALLS, len(CALLS), VALUES[SIZE]

        async def one(n: int) -> Any:
            key, write = calls[n % count]
            if write:
                return await cache.aset(key, value)
            return await cache.aget(key)

        return one


class SyncContender:
    def __init__(self, cache: Any) -> None:
        self.cache = cache

    def call(self, op: str, size: int) -> SyncCall:
        cache, calls, count, value = self.cache, CALLS, len(CALLS), VALUES[SIZE]

        def one(n: int) -> Any:
            key, write = calls[n % count]
            if write:
                return cache.set(key, value)
            return cache.get(key)

        return one


def async_factory(name: str) -> Any:
    @contextlib.asynccontextmanager
    async def make(url: str) -> AsyncIterator[AsyncContender]:
        cache = backend(url, name)  # blocking set-up, before the timed phases
        try:
            yield AsyncContender(cache)
        finally:
            _close(cache)

    return make


def sync_factory(name: str) -> Any:
    @contextlib.contextmanager
    def make(url: str) -> Iterator[SyncContender]:
        cache = backend(url, name)
        try:
            yield SyncContender(cache)
        finally:
            _close(cache)

    return make


ASYNC_FACTORIES = {name: async_factory(name) for name in CONTENDERS}
SYNC_FACTORIES = {name: sync_factory(name) for name in CONTENDERS}
