"""Soak: the near-cache under key churn stays within its bounds, and so does memory.

Far more distinct keys than NEAR_CACHE_MAX_ENTRIES, of sizes from a few bytes to
a few kilobytes, are read (and now and then written) through the near-cache, on
each API. The store's entries and bytes are sampled throughout and must never
exceed the bounds; Python's traced memory (``tracemalloc``) after a warm-up that
fills the store must not grow by more than GROWTH_BOUND over many more reads.
Slow (``-k "not soak"`` skips it while iterating).
"""

from __future__ import annotations

import asyncio
import gc
import random
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from django_asyncredis import RedisCache
from tests.near import listening
from tests.servers import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("error")]

MAX_ENTRIES = 500
MAX_BYTES = 256 * 1024
KEYS = 20_000  # 40 times MAX_ENTRIES
HOT_KEYS = 100  # half of the reads: some hits among the churn
WARM_UP_READS = 20_000
READS = 60_000  # per API, after the warm-up
SAMPLE_EVERY = 250
#: Calls of each phase: all keys (the byte bound binds), then small values only
#: (the entry bound binds), and again.
PHASE = 5_000
#: Traced memory growth allowed over READS calls, measured with the store emptied
#: at both ends (what it holds is bounded by the samples, apart). What is left is
#: interpreter and event loop noise: about 1 KiB on the sync API and 25 KiB on the
#: async one (asyncio's debug-mode reprs of handles) when this was written. 256 KiB
#: is about 4 bytes per call: a leak of one small object per miss (about half the
#: calls; a 2-tuple or a ticket is 56 bytes) is caught several times over.
GROWTH_BOUND = 256 * 1024


def size_of(index: int) -> int:
    """Mostly small values, one key in five of 0.5 to 4 KiB: the entry bound binds
    on a run of small ones, the byte bound on a run of large ones."""
    return 512 + (index * 37) % 3584 if index % 5 == 0 else 1 + (index * 13) % 100


@pytest.fixture
def near(redis_server: ServerProcess) -> Iterator[RedisCache]:
    """A bounded near-cache over KEYS keys already on the server (written through
    a plain backend on the same prefix)."""
    with listening(
        redis_server.url,
        "near-soak",
        NEAR_CACHE_MAX_ENTRIES=MAX_ENTRIES,
        NEAR_CACHE_MAX_BYTES=MAX_BYTES,
    ) as cache:
        plain = RedisCache(redis_server.url, {"KEY_PREFIX": cache.key_prefix})
        for start in range(0, KEYS, 1_000):
            plain.set_many(
                {f"k{i}": "v" * size_of(i) for i in range(start, min(start + 1_000, KEYS))}, None
            )
        yield cache
    redis_server.flush()


class Churn:
    """The read mix, on one API: half hot keys, half uniform over KEYS (small values
    only, every other PHASE calls), one call in fifty a get_many of ten keys and one
    in fifty a write; the store's level sampled every SAMPLE_EVERY calls."""

    def __init__(self, cache: RedisCache, api: str) -> None:
        self.cache = cache
        self.api = api
        self.rng = random.Random(11)
        #: The most entries and bytes seen at a sample, and the samples over a bound
        #: (no list of samples: the test's own memory would grow with it).
        self.most_entries = self.most_bytes = self.over_bounds = self.sampled = 0
        self.runner = asyncio.Runner()
        self.made = 0
        self.small_only = False

    def key(self) -> str:
        while True:
            hot = self.rng.random() < 0.5
            index = self.rng.randrange(HOT_KEYS if hot else KEYS)
            if not self.small_only or size_of(index) < 512:
                return f"k{index}"

    def calls(self, count: int) -> Iterator[tuple[str, Any]]:
        for number in range(count):
            self.made += 1
            self.small_only = (self.made // PHASE) % 2 == 1
            if number % 50 == 0:
                yield "get_many", [self.key() for _ in range(10)]
            elif number % 50 == 1:
                index = self.rng.randrange(KEYS)
                yield "set", (f"k{index}", "w" * size_of(index + 1))
            else:
                yield "get", self.key()

    def run(self, count: int) -> None:
        store = self.cache._near
        assert store is not None
        for start in range(0, count, SAMPLE_EVERY):
            batch = list(self.calls(min(SAMPLE_EVERY, count - start)))
            if self.api == "sync":
                for name, argument in batch:
                    self._sync(name, argument)
            else:
                self.runner.run(self._async(batch))
            level = store.stats()
            entries, held = int(level["entries"]), int(level["bytes"])
            self.most_entries = max(self.most_entries, entries)
            self.most_bytes = max(self.most_bytes, held)
            self.over_bounds += entries > MAX_ENTRIES or held > MAX_BYTES
            self.sampled += 1

    def _sync(self, name: str, argument: Any) -> None:
        if name == "set":
            self.cache.set(*argument, None)
        else:
            getattr(self.cache, name)(argument)

    async def _async(self, batch: list[tuple[str, Any]]) -> None:
        async def one(name: str, argument: Any) -> None:
            if name == "set":
                await self.cache.aset(*argument, None)
            else:
                await getattr(self.cache, "a" + name)(argument)

        # 50 tasks at a time: reads of one key in flight together, as under load.
        for start in range(0, len(batch), 50):
            await asyncio.gather(*(one(*call) for call in batch[start : start + 50]))


def settled(cache: RedisCache) -> int:
    """Traced memory with the store emptied (what it holds is bounded and sampled
    apart) and garbage collected: what is left over from the calls made."""
    assert cache._near is not None
    cache._near.flush()
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.mark.parametrize("api", ["sync", "async"])
def test_near_cache_soak_stays_within_its_bounds_and_memory_stays_flat(
    api: str, near: RedisCache
) -> None:
    """Entries and bytes never exceed their bounds at any sample, both bounds are
    reached, and traced memory grows by less than GROWTH_BOUND once the store is full."""
    churn = Churn(near, api)
    tracemalloc.start()
    try:
        churn.run(WARM_UP_READS)
        before = settled(near)
        churn.run(READS)
        grown = settled(near) - before
    finally:
        tracemalloc.stop()
        churn.runner.close()
    assert churn.sampled == (WARM_UP_READS + READS) // SAMPLE_EVERY
    assert churn.over_bounds == 0
    # Both bounds did the evicting at some point: the test bounded something.
    assert churn.most_entries == MAX_ENTRIES
    assert churn.most_bytes > MAX_BYTES * 0.9
    assert grown < GROWTH_BOUND, f"traced memory grew by {grown} bytes"
