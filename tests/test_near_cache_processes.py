"""The near-cache against writers in other processes: once a write is acknowledged
and its invalidation delivered here, no reader of this process returns the old value.

The writers are separate Python processes (redis-py, no near-cache), each writing
on its own connection and answering once the server acknowledged the write. The
readers are this process's sync API or async API, with background readers of the
same key hammering it meanwhile, so that reads in flight straddle every write (the
race the read tickets settle). Delivery is detected, not waited out: the store's
count of server invalidations must move past its value from before the write,
within a bounded time, or the test fails. How long delivery takes (the staleness
window) is measured by ``tests/benchmarks/near_cache.py``, not asserted here.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_asyncredis import RedisCache
from tests.near import Writer, listening
from tests.servers import ServerProcess

pytestmark = pytest.mark.filterwarnings("error")

WRITES = 600
#: Reads checked after each delivered invalidation (the first is the miss that
#: fetches the new value, the others hits of what it stored).
CHECKS = 3
WRITERS = 2
BACKGROUND_READERS = 2
DELIVERY_DEADLINE = 5.0  # seconds: far beyond any loopback delivery, never a timing claim


@pytest.fixture
def writers(redis_server: ServerProcess) -> Iterator[list[Writer]]:
    started = [Writer(redis_server.url) for _ in range(WRITERS)]
    try:
        yield started
    finally:
        for writer in started:
            writer.close()


@pytest.fixture
def near(redis_server: ServerProcess) -> Iterator[RedisCache]:
    """A near-cached backend on a key prefix of its own (so a store of its own), listening."""
    with listening(redis_server.url, "near-processes") as cache:
        yield cache
    redis_server.flush()


def delivered(cache: RedisCache, before: int) -> None:
    """Wait until the store counted a server invalidation past ``before``; fail the
    test if that takes longer than DELIVERY_DEADLINE."""
    store = cache._near
    assert store is not None
    deadline = time.monotonic() + DELIVERY_DEADLINE
    while store.invalidations <= before:
        assert time.monotonic() < deadline, "the invalidation was not delivered"
        time.sleep(0.0001)


class Background:
    """Readers of ``key`` in threads of their own (sync ``get``, or ``aget`` by tasks
    on a loop of the thread's own), counting their reads, until stopped."""

    def __init__(self, url: str, prefix: str, key: str, api: str) -> None:
        self.stop = threading.Event()
        self.reads = [0] * BACKGROUND_READERS
        # A backend per thread, as Django builds them: the same store underneath.
        params = {"KEY_PREFIX": prefix, "OPTIONS": {"NEAR_CACHE": True}}
        target = self._sync if api == "sync" else self._async
        self.threads = [
            threading.Thread(target=target, args=(RedisCache(url, params), key, index))
            for index in range(BACKGROUND_READERS)
        ]

    def _sync(self, cache: RedisCache, key: str, index: int) -> None:
        while not self.stop.is_set():
            cache.get(key)
            self.reads[index] += 1

    def _async(self, cache: RedisCache, key: str, index: int) -> None:
        async def task() -> None:
            while not self.stop.is_set():
                await cache.aget(key)
                self.reads[index] += 1

        async def tasks() -> None:
            await asyncio.gather(*(task() for _ in range(4)))

        asyncio.run(tasks())

    def __enter__(self) -> Background:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)
            assert not thread.is_alive()


@pytest.fixture
def fine_switching() -> Iterator[None]:
    """Threads take turns every 0.1 ms rather than 5 ms: the foreground reader does
    not queue behind the background ones, and their reads interleave more finely."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0001)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@pytest.mark.usefixtures("fine_switching")
@pytest.mark.parametrize("api", ["sync", "async"])
def test_no_reader_sees_the_old_value_once_the_invalidation_is_delivered(
    api: str, near: RedisCache, writers: list[Writer], redis_server: ServerProcess
) -> None:
    """Over WRITES writes by other processes, each of a value held locally, no read
    begun after the write's invalidation reached this process returns an older value."""
    store = near._near
    assert store is not None
    key = "shared"
    made = near.make_key(key)
    with asyncio.Runner() as runner:
        read: Callable[[], Any] = (
            (lambda: near.get(key)) if api == "sync" else (lambda: runner.run(near.aget(key)))
        )
        before = store.invalidations
        writers[0].set(made, 0)
        delivered(near, before)
        stale = held = 0
        with Background(redis_server.url, near.key_prefix, key, api) as background:
            for value in range(1, WRITES + 1):
                # The previous write is delivered and nothing wrote since: that value,
                # which this read leaves held locally for the next write to invalidate.
                stale += read() != value - 1
                held += store.stats()["entries"] == 1
                before = store.invalidations
                writers[value % WRITERS].set(made, value)
                delivered(near, before)
                stale += sum(read() != value for _ in range(CHECKS))
    assert (stale, held) == (0, WRITES), f"{stale} stale of {WRITES * (CHECKS + 1)} reads"
    assert min(background.reads) > 0  # reads were in flight all along
