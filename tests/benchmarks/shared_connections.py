"""Does more than one shared connection help? ``aget`` throughput by ``shared_connections``.

Run ``python tests/benchmarks/shared_connections.py``: it starts a throwaway
server, stores a 100-byte value, then, interleaved round by round, has 64 and
256 concurrent tasks ``aget`` it on caches that differ only in
``shared_connections`` (1, 2, 4; callers take the least-loaded connection), plus
2 and 4 spread round-robin (a variant defined here, to compare the two ways of
spreading). Each round's throughput is divided by the same round's with 1
connection; the median ratio over the rounds is printed (> 1: faster than one
connection), with the CPU each get cost this process and the server (medians,
µs): on a machine shared with other work, throughput swings with the load, CPU
per get much less. ``--rounds N`` sets the rounds. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.conftest import pytest_configure

pytest_configure(None)  # type: ignore[arg-type]  # Django settings as the tests have them

from django_asyncredis import RedisCache, _multiplex, _pools  # noqa: E402
from tests.servers import ServerProcess  # noqa: E402

VALUE = "x" * 100
TASKS = (64, 256)
#: gets per task per measurement, so that every measurement makes ~16k gets.
GETS = {64: 256, 256: 64}


class RoundRobin(_multiplex.Multiplexer):
    """The other way to spread: each call takes the next usable connection in turn
    (a further one opened, as by the real one, when the one it lands on is busy)."""

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self._turn = itertools.count()

    def _least_loaded(self) -> tuple[_multiplex.SharedConnection | None, bool]:
        usable = [connection for connection in self._connections if connection.usable]
        if not usable:
            return None, False
        chosen = usable[next(self._turn) % len(usable)]
        grow = bool(chosen._waiting) and len(usable) + self._pending < self._limit
        return chosen, grow


#: name -> (shared_connections, how callers are spread)
VARIANTS: dict[str, tuple[int, str]] = {
    "1": (1, "least-loaded"),
    "2": (2, "least-loaded"),
    "4": (4, "least-loaded"),
    "2 round-robin": (2, "round-robin"),
    "4 round-robin": (4, "round-robin"),
}


async def build(server: ServerProcess, count: int, spread: str, salt: int) -> RedisCache:
    """A cache with ``count`` shared connections, all open (each variant its own pool:
    ``client_name`` tells the servers, hence the pools, apart)."""
    options = {"transport": "multiplexed", "shared_connections": count, "client_name": f"v{salt}"}
    cache = RedisCache(server.url, {"OPTIONS": options})
    pool = _pools.async_pool(cache._config.servers[0])
    if spread == "round-robin":
        pool.shared = RoundRobin(pool)
    for _ in range(200):
        await asyncio.gather(*(cache.aget("key") for _ in range(256)))
        if pool.shared.open_count() == count:
            return cache
        await asyncio.sleep(0.01)
    raise RuntimeError(f"only {pool.shared.open_count()} of {count} connections opened")


async def server_cpu(admin: redis.asyncio.Redis) -> float:
    """CPU seconds the server has used so far."""
    info = await admin.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measure(
    cache: RedisCache, tasks: int, admin: redis.asyncio.Redis
) -> tuple[float, float, float]:
    """(gets per second, this process's CPU µs per get, the server's CPU µs per get)
    with ``tasks`` concurrent tasks."""

    async def worker() -> None:
        for _ in range(GETS[tasks]):
            await cache.aget("key")

    gets = tasks * GETS[tasks]
    served = await server_cpu(admin)
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    served = await server_cpu(admin) - served
    return gets / wall, cpu / gets * 1e6, served / gets * 1e6


async def main(rounds: int) -> None:
    server = ServerProcess().start()
    try:
        caches = {}
        for salt, (name, (count, spread)) in enumerate(VARIANTS.items()):
            caches[name] = await build(server, count, spread, salt)
        await caches["1"].aset("key", VALUE)
        admin = redis.asyncio.Redis(port=server.port)
        #: (variant, tasks) -> each round's (throughput ratio to 1, client µs, server µs)
        results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
        base: dict[int, list[float]] = {tasks: [] for tasks in TASKS}
        for round_ in range(rounds):
            for tasks in TASKS:
                # Each round in a rotated order, so no variant always runs first.
                names = list(VARIANTS)
                names = names[round_ % len(names) :] + names[: round_ % len(names)]
                measured = {name: await measure(caches[name], tasks, admin) for name in names}
                base[tasks].append(measured["1"][0])
                for name, (rate, client, served) in measured.items():
                    ratio = rate / measured["1"][0]
                    results.setdefault((name, tasks), []).append((ratio, client, served))
        await admin.aclose()
        cpus = os.cpu_count()
        print(f"aget of 100 B, {rounds} interleaved rounds, {cpus} CPUs (server included)")
        for tasks in TASKS:
            print(f"{tasks} tasks: 1 connection {statistics.median(base[tasks]):,.0f} gets/s")
            for name in VARIANTS:
                rows = results[(name, tasks)]
                columns = zip(*rows, strict=True)
                ratio, client, served = (statistics.median(column) for column in columns)
                print(
                    f"  shared_connections {name:<14} {ratio:.2f}x the gets/s of 1, "
                    f"CPU per get: client {client:.1f} µs, server {served:.1f} µs"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    asyncio.run(main(parser.parse_args().rounds))
