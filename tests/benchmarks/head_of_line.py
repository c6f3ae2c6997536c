"""Head-of-line blocking on each transport: small gets while a large value moves.

Run ``python tests/benchmarks/head_of_line.py``: it starts a throwaway server,
stores a 20 MB value, then, on each transport, starts a large ``aget`` (or
``aset``) and at once 64 concurrent small ``aget``, and prints how many of the
small ones were answered before the large call completed, and their median
latency. A large *write* takes a dedicated connection on the multiplexed
transport (docs/design.md, Transport); a large *reply* cannot be known in advance
and rides the shared connection, so the small gets queued behind it wait for it.
Not a test: it asserts nothing.
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
from tests.servers import ServerProcess  # noqa: E402

LARGE = b"x" * 20_000_000
SMALL_CALLS = 64
ROUNDS = 5


async def one_round(cache: RedisCache, large_op: str) -> tuple[int, float]:
    """Small gets answered before the large call ended, and their median latency (ms)."""
    large = asyncio.create_task(
        cache.aget("large") if large_op == "aget" else cache.aset("large", LARGE)
    )
    await asyncio.sleep(0)  # the large call is under way
    before = 0
    latencies = []

    async def small() -> None:
        nonlocal before
        start = time.perf_counter()
        await cache.aget("small")
        latencies.append(time.perf_counter() - start)
        before += not large.done()

    await asyncio.gather(*(small() for _ in range(SMALL_CALLS)))
    await large
    return before, statistics.median(latencies) * 1e3


async def main() -> None:
    server = ServerProcess().start()
    try:
        for transport in ("multiplexed", "pooled"):
            cache = RedisCache(server.url, {"OPTIONS": {"transport": transport}})
            await cache.aset_many({"small": "value", "large": LARGE})
            for large_op in ("aget", "aset"):
                rounds = [await one_round(cache, large_op) for _ in range(ROUNDS)]
                answered = statistics.median(r[0] for r in rounds)
                latency = statistics.median(r[1] for r in rounds)
                print(
                    f"{transport:<12} during a 20 MB {large_op}: {answered:.0f} of {SMALL_CALLS} "
                    f"small gets answered first, median latency {latency:.2f} ms"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
