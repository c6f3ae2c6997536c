"""The cost of a multi-key operation on Redis Cluster versus one server (docs/scaling.md).

Run ``python tests/benchmarks/cluster_cost.py`` with the package and its dev extra
installed: it starts a single server and a local 3-primary cluster itself, then
times get_many / set_many of 100 keys on each, interleaved, and prints medians
and ratios. Not a test: it reports, it asserts nothing.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.conftest import pytest_configure

pytest_configure(None)  # type: ignore[arg-type]  # Django settings as the tests have them

from django_asyncredis import RedisCache  # noqa: E402
from tests.servers import ServerProcess  # noqa: E402
from tests.topologies import Cluster  # noqa: E402

KEYS = [f"key-{i}" for i in range(100)]
ROUNDS = 7
CALLS = 300


def per_call_us(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    for _ in range(CALLS):
        call()
    return (time.perf_counter() - start) / CALLS * 1e6


def per_call_async_us(cache: RedisCache, name: str) -> float:
    async def run() -> float:
        data = dict.fromkeys(KEYS, "x" * 100)
        call = (
            (lambda: cache.aget_many(KEYS))
            if name == "get_many"
            else (lambda: cache.aset_many(data))
        )
        await call()
        start = time.perf_counter()
        for _ in range(CALLS):
            await call()
        return (time.perf_counter() - start) / CALLS * 1e6

    return asyncio.run(run())


def main() -> None:
    server = ServerProcess().start()
    with Cluster(primaries=3, replicas_per_primary=0) as cluster:
        single = RedisCache(server.url, {})
        clustered = RedisCache([f"redis+cluster://{h}:{p}" for h, p in cluster.startup_nodes], {})
        data = dict.fromkeys(KEYS, "x" * 100)
        for cache in (single, clustered):
            cache.set_many(data)
        results: dict[str, list[float]] = {}
        for _ in range(ROUNDS):
            for label, cache in (("single", single), ("cluster", clustered)):
                results.setdefault(f"{label} sync get_many", []).append(
                    per_call_us(lambda c=cache: c.get_many(KEYS))  # type: ignore[misc]
                )
                results.setdefault(f"{label} sync set_many", []).append(
                    per_call_us(lambda c=cache: c.set_many(data))  # type: ignore[misc]
                )
                results.setdefault(f"{label} async get_many", []).append(
                    per_call_async_us(cache, "get_many")
                )
                results.setdefault(f"{label} async set_many", []).append(
                    per_call_async_us(cache, "set_many")
                )
    server.stop()
    for operation in ("sync get_many", "sync set_many", "async get_many", "async set_many"):
        one = statistics.median(results[f"single {operation}"])
        many = statistics.median(results[f"cluster {operation}"])
        ratio = many / one
        print(f"{operation}, 100 keys: single {one:.0f} us, cluster {many:.0f} us: {ratio:.2f}x")


if __name__ == "__main__":
    main()
