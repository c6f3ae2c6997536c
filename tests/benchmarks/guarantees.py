"""The figures of docs/guarantees.md: each fault scenario of the test suite, measured.

Run ``python tests/benchmarks/guarantees.py`` with the package and its dev extra
installed; it starts its own server. Not a test: it reports and asserts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import redis
import redis.asyncio.connection

from tests.conftest import pytest_configure

pytest_configure(None)  # type: ignore[arg-type]  # Django settings as the tests have them

from django_asyncredis import ConnectionInterrupted, RedisCache, ServerTimeoutError  # noqa: E402
from tests.servers import ServerProcess, free_port  # noqa: E402
from tests.test_connections import cancel_at_random  # noqa: E402
from tests.test_soak import async_mix, rss, sync_mix  # noqa: E402


def timed(call: Callable[[], Any], *expected: type[BaseException]) -> float:
    start = time.monotonic()
    with contextlib.suppress(*expected):
        call()
    return (time.monotonic() - start) * 1000


def cancellation(server: ServerProcess) -> None:
    cache = RedisCache(server.url, {"OPTIONS": {"max_connections": 8}})
    wrong, cancelled, completed = asyncio.run(cancel_at_random(cache, rounds=50))
    print(f"cancellation: {cancelled} cancelled, {completed} completed, {len(wrong)} wrong")
    connection = redis.asyncio.connection.AbstractConnection
    original = connection.read_response

    async def keep_connection(self: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["disconnect_on_error"] = False  # the CVE-2023-28858 bug class, put back
        return await original(self, *args, **kwargs)

    connection.read_response = keep_connection  # type: ignore[method-assign]
    try:
        leaky = RedisCache(server.url, {"OPTIONS": {"max_connections": 8}, "KEY_PREFIX": "leak"})
        wrong, cancelled, completed = asyncio.run(cancel_at_random(leaky, rounds=50))
    finally:
        connection.read_response = original  # type: ignore[method-assign]
    print(f"  broken variant: {cancelled} cancelled, {completed} completed, {len(wrong)} wrong")


def slow_server(server: ServerProcess, admin: redis.Redis) -> None:
    cache = RedisCache(server.url, {"OPTIONS": {"socket_timeout": 0.2}, "KEY_PREFIX": "slow"})
    cache.set("k", 1)
    for path, call in (
        ("sync", lambda: cache.get("k")),
        ("async", lambda: asyncio.run(cache.aget("k"))),
    ):
        admin.execute_command("CLIENT", "PAUSE", 1000, "ALL")
        print(f"slow server, socket_timeout=0.2, {path}: {timed(call, ServerTimeoutError):.0f} ms")
        time.sleep(1.0)


def server_down() -> None:
    for timeout in (0.2, 1.0):
        location = f"redis://127.0.0.1:{free_port()}"
        cache = RedisCache(location, {"OPTIONS": {"socket_connect_timeout": timeout}})
        elapsed = timed(lambda: cache.get("k"), ConnectionInterrupted)  # noqa: B023
        print(f"server down (refused), connect timeout {timeout}: fails in {elapsed:.1f} ms")


def restart(server: ServerProcess) -> None:
    options = {"OPTIONS": {"socket_connect_timeout": 0.2}, "KEY_PREFIX": "restart"}
    cache = RedisCache(server.url, options)
    cache.set("k", 1)
    asyncio.run(cache.aset("k", 1))
    server.stop()
    time.sleep(0.2)
    server.start()
    back = time.monotonic()
    while True:
        try:
            cache.get("k")
            break
        except ConnectionInterrupted:
            time.sleep(0.005)
    sync_ms = (time.monotonic() - back) * 1000

    async def first_success() -> None:
        while True:
            try:
                await cache.aget("k")
                return
            except ConnectionInterrupted:
                await asyncio.sleep(0.005)

    async_ms = timed(lambda: asyncio.run(first_success()))
    print(
        f"restart: sync served {sync_ms:.0f} ms after the server was back, async {async_ms:.0f} ms"
    )


def pool_exhaustion(server: ServerProcess, clients: Callable[[], int]) -> None:
    cache = RedisCache(server.url, {"OPTIONS": {"max_connections": 2}, "KEY_PREFIX": "pool"})

    async def many() -> tuple[int, float, int]:
        await cache.aset("k", "v")
        before = clients()
        start = time.monotonic()
        results = await asyncio.gather(
            *(cache.aget("k") for _ in range(500)), return_exceptions=True
        )
        errors = sum(isinstance(result, BaseException) for result in results)
        return errors, (time.monotonic() - start) * 1000, clients() - before

    errors, took, added = asyncio.run(many())
    print(
        f"pool exhaustion, 500 callers, max_connections=2: {errors} errors, "
        f"{took:.0f} ms, +{added} connections"
    )


def many_loops(server: ServerProcess, clients: Callable[[], int]) -> None:
    before = clients()
    cache = RedisCache(server.url, {"KEY_PREFIX": "loops"})
    for i in range(300):
        asyncio.run(cache.aset("k", i))
    gc.collect()
    print(f"300 consecutive asyncio.run loops: connections {before} -> {clients()}")


def soak(server: ServerProcess, clients: Callable[[], int]) -> None:
    cache = RedisCache(server.url, {"KEY_PREFIX": "soak"})
    rng = random.Random(7)
    asyncio.run(async_mix(cache, rng, 10_000))
    sync_mix(cache, rng, 5_000)
    gc.collect()
    before, connections = rss(), clients()
    start = time.monotonic()
    asyncio.run(async_mix(cache, rng, 300_000))
    sync_mix(cache, rng, 50_000)
    gc.collect()
    growth = (rss() - before) / 2**20
    print(
        f"soak: 350k mixed operations in {time.monotonic() - start:.1f} s, "
        f"RSS growth {growth:.1f} MiB, connections {connections} -> {clients()}"
    )


def without_the_guarantees(server: ServerProcess, admin: redis.Redis) -> None:
    """The same scenarios on backends without the guarantee, to show each can fail."""
    import threading

    import redis.asyncio
    from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

    # 2. One redis.asyncio client used from consecutive event loops.
    shared = redis.asyncio.Redis(port=server.port)
    failures: list[str] = []
    for _ in range(3):
        try:
            asyncio.run(shared.get("k"))
        except Exception as exc:  # reported, not handled
            failures.append(f"{type(exc).__name__}: {exc}"[:70])
    print(f"  without (2), one redis.asyncio client over 3 asyncio.run loops: {failures}")

    # 7. A redis.asyncio pool of 2 connections and 500 concurrent callers.
    async def crowd() -> int:
        client = redis.asyncio.Redis(
            connection_pool=redis.asyncio.ConnectionPool(port=server.port, max_connections=2)
        )
        results = await asyncio.gather(
            *(client.get("k") for _ in range(500)), return_exceptions=True
        )
        await client.aclose()
        return sum(isinstance(result, Exception) for result in results)

    failed = asyncio.run(crowd())
    print(f"  without (7), redis.asyncio pool of 2 connections: {failed} of 500 calls failed")

    # 6. Django's built-in backend with its defaults on a paused server.
    builtin = DjangoRedisCache(server.url, {})
    builtin.set("k", 1)
    admin.execute_command("CLIENT", "PAUSE", 1000, "ALL")
    waited = timed(lambda: builtin.get("k"))
    print(f"  without (6), Django's built-in backend, 1 s pause: {waited:.0f} ms")
    time.sleep(0.2)

    # 5. Django's built-in backend with its defaults, a server that never accepts.
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    stuck = DjangoRedisCache(f"redis://127.0.0.1:{port}", {})
    done = threading.Event()

    def try_once() -> None:
        with contextlib.suppress(Exception):
            stuck.get("k")
        done.set()

    threading.Thread(target=try_once, daemon=True).start()
    outcome = "returned" if done.wait(3.0) else "still waiting after 3 s"
    print(f"  without (5), Django's built-in backend, unresponsive server: {outcome}")
    for sock in [*fillers, listener]:
        sock.close()


def main() -> None:
    server = ServerProcess().start()
    admin = redis.Redis(port=server.port)

    def clients() -> int:
        return int(admin.info("clients")["connected_clients"]) - 1

    try:
        print("server:", admin.info("server")["redis_version"], server.binary)
        cancellation(server)
        slow_server(server, admin)
        server_down()
        restart(server)
        admin = redis.Redis(port=server.port)
        pool_exhaustion(server, clients)
        many_loops(server, clients)
        soak(server, clients)
        without_the_guarantees(server, admin)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
