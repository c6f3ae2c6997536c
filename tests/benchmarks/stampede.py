"""Stampede protection, measured: the figures of docs/stampede.md.

Run ``python tests/benchmarks/stampede.py`` (``--hot-path`` for the last part
only); it starts its own server. Not a test: it reports and asserts nothing.

1. A herd of misses: N concurrent callers miss one key whose computation takes
   50 ms; how many computations run. Ours (1,000 tasks; 200 threads) against
   Django's ``get_or_set`` pattern as django-redis runs it (``get``, compute,
   ``add``; 200 threads).
2. A hot key under continuous load: a closed loop of 64 tasks calls
   ``aget_or_set`` on one key (timeout 2 s, computation 100 ms) for 8 s, so the
   key expires 4 times. Per tool: requests, computations per expiry, requests
   that waited for a computation (over 50 ms), p50/p99/max latency.
3. Across processes: 4 processes x 250 concurrent misses (computation 200 ms),
   with and without the cross-process lock; and a lock holder killed
   mid-computation (lock TTL 1 s): how long its 20 waiters take to get a value.
4. The hot path: a ``get_or_set`` hit as a ratio to a ``get``, both APIs.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.conftest import pytest_configure

pytest_configure(None)  # type: ignore[arg-type]  # Django settings as the tests have them

from django_asyncredis import RedisCache  # noqa: E402
from tests.servers import ServerProcess  # noqa: E402

TASKS = 64
TIMEOUT = 2.0
COMPUTE = 0.1
DURATION = 8.5  # the key expires 4 times: at about 2, 4.1, 6.2 and 8.3 s
#: Requests started this long before a computation count as during it (they
#: were reading the key when it expired).
WINDOW_BEFORE = 0.05
WAITED = 0.09  # a request this slow waited for a computation (or for the machine)


class Computation:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0
        self.started: list[float] = []  # perf_counter at each computation's start
        self._lock = threading.Lock()

    def sync(self) -> str:
        with self._lock:
            self.calls += 1
        time.sleep(self.seconds)
        return "value"

    async def async_(self) -> str:
        self.calls += 1
        self.started.append(time.perf_counter())
        await asyncio.sleep(self.seconds)
        return "value"


def threads(count: int, target: Callable[[], Any]) -> None:
    barrier = threading.Barrier(count)

    def run() -> None:
        barrier.wait()
        target()

    started = [threading.Thread(target=run) for _ in range(count)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()


def herd(url: str) -> None:
    from django_redis.cache import RedisCache as DjangoRedisCache

    print("1. A herd of misses on one key, computation 50 ms: computations run")
    ours = RedisCache(url, {"OPTIONS": {"max_connections": 500}})
    computation = Computation(0.05)

    async def tasks() -> None:
        await asyncio.gather(
            *(ours.aget_or_set("herd-a", computation.async_, 60) for _ in range(1000))
        )

    asyncio.run(tasks())
    print(f"  django-asyncredis aget_or_set, 1,000 tasks         {computation.calls:5d}")
    computation = Computation(0.05)
    threads(200, lambda: ours.get_or_set("herd-s", computation.sync, 60))
    print(f"  django-asyncredis get_or_set, 200 threads          {computation.calls:5d}")
    theirs = DjangoRedisCache(
        url, {"OPTIONS": {"CONNECTION_POOL_KWARGS": {"max_connections": 500}}}
    )
    computation = Computation(0.05)
    threads(200, lambda: theirs.get_or_set("herd-d", computation.sync, 60))
    print(f"  django-redis get_or_set, 200 threads               {computation.calls:5d}")


async def closed_loop(cache: RedisCache, call: Callable[[Computation], Any]) -> dict[str, Any]:
    """64 tasks call in a closed loop; latencies overall, and of the requests
    started while a computation ran (the expiries' windows)."""
    computation = Computation(COMPUTE)
    await call(computation)  # the key exists before the clock starts
    # and the loop's pool has its connections open (64 connects are no stampede)
    await asyncio.gather(*(call(computation) for _ in range(TASKS)))
    requests: list[tuple[float, float]] = []  # (start, latency)
    clock_start = time.perf_counter()
    deadline = clock_start + DURATION

    async def task() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await call(computation)
            requests.append((start, time.perf_counter() - start))

    computation.started.clear()
    start_calls = computation.calls
    await asyncio.gather(*(task() for _ in range(TASKS)))
    windows = [(t - WINDOW_BEFORE, t + computation.seconds) for t in computation.started]
    in_windows = sorted(
        latency for start, latency in requests if any(a <= start <= b for a, b in windows)
    )
    latencies = sorted(latency for _, latency in requests)
    return {
        "requests": len(latencies),
        "computations": computation.calls - start_calls,
        "waited": sum(1 for latency in in_windows if latency >= WAITED),
        "p50": latencies[len(latencies) // 2],
        "p99": _percentile(latencies, 0.99),
        "p99 window": _percentile(in_windows, 0.99),
        "max": latencies[-1],
    }


def _percentile(values: list[float], fraction: float) -> float:
    return values[int(len(values) * fraction)] if values else 0.0


def continuous_load(url: str) -> None:
    cache = RedisCache(url, {})

    def django_pattern(key: str) -> Callable[[Computation], Any]:
        async def call(computation: Computation) -> Any:
            value = await cache.aget(key)
            if value is None:
                value = await computation.async_()
                await cache.aadd(key, value, TIMEOUT)
            return value

        return call

    def ours(key: str, **options: Any) -> Callable[[Computation], Any]:
        return lambda computation: cache.aget_or_set(key, computation.async_, TIMEOUT, **options)

    tools = {
        "Django's pattern (get, compute, add), no protection": django_pattern("load-d"),
        "aget_or_set (single-flight only)": ours("load-p"),
        "aget_or_set(stale=10)": ours("load-s", stale=10),
        "aget_or_set(xfetch=1.0)": ours("load-x", xfetch=1.0),
        "aget_or_set(xfetch=0.2)": ours("load-y", xfetch=0.2),
    }
    expiries = int(DURATION // (TIMEOUT + COMPUTE))
    print(
        f"2. Closed loop of {TASKS} tasks for {DURATION:.1f} s on one key, timeout "
        f"{TIMEOUT:.0f} s ({expiries:.0f} expiries), computation {COMPUTE * 1000:.0f} ms"
    )
    print(
        "  comp/expiry: computations per expiry; during: the requests started while a "
        f"computation ran (or 50 ms before); waited: of those, the ones over {WAITED * 1000:.0f} ms"
    )
    print(
        f"  {'tool':54} {'requests':>8} {'comp/expiry':>11} {'waited':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'p99 during':>10} {'max ms':>7}"
    )
    for name, call in tools.items():
        row = asyncio.run(closed_loop(cache, call))
        print(
            f"  {name:54} {row['requests']:8d} {row['computations'] / expiries:11.2f} "
            f"{row['waited']:7d} {row['p50'] * 1000:7.2f} {row['p99'] * 1000:7.2f} "
            f"{row['p99 window'] * 1000:10.2f} {row['max'] * 1000:7.1f}"
        )


def hot_path(url: str) -> None:
    """A hit of get_or_set against a get: one GET each, so the ratio is the
    overhead. CPU time of this process (``process_time``), not wall time: the
    server's and the other processes' share of a loaded machine stays out."""
    cache = RedisCache(url, {})
    cache.set("hot", "value", None)
    count, rounds = 3000, 9

    def sync_us(call: Callable[[], Any]) -> float:
        start = time.process_time()
        for _ in range(count):
            call()
        return (time.process_time() - start) / count * 1e6

    async def async_us(call: Callable[[], Any]) -> float:
        await call()
        start = time.process_time()
        for _ in range(count):
            await call()
        return (time.process_time() - start) / count * 1e6

    def compute() -> str:
        return "value"

    print(
        "4. The hot path (CPU time per call): a hit, one caller, "
        f"median of {rounds} interleaved rounds of {count}"
    )
    timings: dict[str, list[float]] = {"get": [], "hit": [], "aget": [], "ahit": []}
    for _ in range(rounds):
        timings["get"].append(sync_us(lambda: cache.get("hot")))
        timings["hit"].append(sync_us(lambda: cache.get_or_set("hot", compute)))
        timings["aget"].append(asyncio.run(async_us(lambda: cache.aget("hot"))))
        timings["ahit"].append(asyncio.run(async_us(lambda: cache.aget_or_set("hot", compute))))
    get, hit, aget, ahit = (statistics.median(timings[name]) for name in timings)
    calls = {
        "get": _function_calls(lambda: cache.get("hot")),
        "hit": _function_calls(lambda: cache.get_or_set("hot", compute)),
    }
    print(f"  sync:  get {get:6.1f} us CPU, get_or_set hit {hit:6.1f} us: {hit / get:5.2f}x get")
    print(
        f"  async: aget {aget:6.1f} us CPU, aget_or_set hit {ahit:6.1f} us: "
        f"{ahit / aget:5.2f}x aget"
    )
    print(
        f"  function calls (Python and C, sys.setprofile), sync: get {calls['get']}, "
        f"get_or_set hit {calls['hit']} (deterministic, unlike the times)"
    )


def _function_calls(call: Callable[[], Any]) -> int:
    """How many functions one call of ``call`` enters: a cost measure free of noise."""
    count = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    call()  # warm
    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return count - 1  # the setprofile(None) call itself


def _process(url: str, lock: bool, ready: Any, go: Any) -> None:
    import redis

    cache = RedisCache(url, {"OPTIONS": {"max_connections": 20, "socket_connect_timeout": 10}})
    counter = redis.Redis.from_url(url)

    async def compute() -> str:
        counter.incr("calls")
        await asyncio.sleep(0.2)
        return "value"

    async def misses() -> None:
        await asyncio.gather(
            *(cache.aget_or_set("procs", compute, 60, lock=lock or False) for _ in range(250))
        )

    ready.set()
    go.wait(10)
    asyncio.run(misses())


def _holder(url: str, holding: Any) -> None:
    def compute() -> str:
        holding.set()
        time.sleep(60)
        return "holder"

    RedisCache(url, {}).get_or_set("killed", compute, 60, lock=1)


def processes(url: str) -> None:
    import multiprocessing
    import os
    import signal

    import redis

    context = multiprocessing.get_context("fork")
    admin = redis.Redis.from_url(url)
    print("3. Across processes, 4 processes x 250 concurrent misses, computation 200 ms")
    for lock in (True, False):
        admin.delete("calls", ":1:procs")
        go = context.Event()
        readies = [context.Event() for _ in range(4)]
        started = [context.Process(target=_process, args=(url, lock, r, go)) for r in readies]
        for process in started:
            process.start()
        for ready in readies:
            ready.wait(10)
        go.set()
        for process in started:
            process.join(60)
        name = "with lock=True" if lock else "without the lock"
        print(f"  {name:20} computations: {int(admin.get('calls') or 0)}")
    holding = context.Event()
    holder = context.Process(target=_holder, args=(url, holding))
    holder.start()
    holding.wait(10)
    assert holder.pid is not None
    killed = time.perf_counter()
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    cache = RedisCache(url, {})
    counter = Computation(0.05)
    threads(20, lambda: cache.get_or_set("killed", counter.sync, 60, lock=1))
    print(
        f"  holder killed (lock TTL 1 s): 20 sync waiters had the value "
        f"{time.perf_counter() - killed:.2f} s after the kill; computations by them: "
        f"{counter.calls}"
    )
    admin.close()


def main() -> None:
    server = ServerProcess().start()
    try:
        if "--hot-path" not in sys.argv:
            herd(server.url)
            continuous_load(server.url)
            processes(server.url)
        hot_path(server.url)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
