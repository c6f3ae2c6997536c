"""The cost of each ``incr`` path, as ratios to the plain one (EVAL on the server).

Run ``python tests/benchmarks/incr_paths.py``; it starts its own server. Not a
test: it reports and asserts nothing. Single caller, sync and async, median of 5
rounds of 2,000 increments per path.
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

SIGNED = "django_asyncredis.serializers.signed.SignedPickleSerializer"
COUNT = 2000
ROUNDS = 5


def per_call_us(cache: RedisCache, key: str, path: str) -> float:
    if path == "sync":
        start = time.perf_counter()
        for _ in range(COUNT):
            cache.incr(key)
        return (time.perf_counter() - start) / COUNT * 1e6

    async def run() -> float:
        await cache.aincr(key)  # the pool is warm before timing
        start = time.perf_counter()
        for _ in range(COUNT):
            await cache.aincr(key)
        return (time.perf_counter() - start) / COUNT * 1e6

    return asyncio.run(run())


def main() -> None:
    server = ServerProcess().start()
    try:
        import redis

        with redis.Redis(port=server.port) as admin:
            admin.execute_command(
                "ACL", "SETUSER", "noscript", "on", ">pw", "~*", "+@all", "-@scripting"
            )
        url = server.url.replace("redis://", "redis://noscript:pw@")
        caches: dict[str, tuple[RedisCache, Any]] = {
            "plain (EVAL)": (RedisCache(server.url, {}), 0),
            "EVAL denied (NOPERM, then WATCH/MULTI/EXEC)": (RedisCache(url, {}), 0),
            "beyond 64 bits (transaction)": (RedisCache(server.url, {}), 2**64),
            "signed serializer (transaction)": (
                RedisCache(server.url, {"OPTIONS": {"SERIALIZER": SIGNED, "SIGNING_KEY": "k"}}),
                0,
            ),
        }
        for path in ("sync", "async"):
            medians = {}
            for number, (name, (cache, start)) in enumerate(caches.items()):
                key = f"counter{number}"
                cache.set(key, start)
                cache.incr(key)
                medians[name] = statistics.median(
                    per_call_us(cache, key, path) for _ in range(ROUNDS)
                )
            base = medians["plain (EVAL)"]
            print(f"{path}: one caller, {COUNT} incr x {ROUNDS} rounds (median)")
            for name, us in medians.items():
                print(f"  {name:48} {us:8.1f} us/call  {us / base:5.2f}x plain")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
