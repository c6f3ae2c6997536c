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

from django_asyncredis import (  # noqa: E402
    ConnectionInterrupted,
    RedisCache,
    ServerTimeoutError,
    _pools,
)
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


def _kill_idle(admin: redis.Redis, how: str) -> None:
    """Have the server close every connection but the admin's, and wait until it has."""
    if how == "CLIENT KILL":
        admin.client_kill_filter(_type="normal", skipme=True)
    else:
        admin.config_set("timeout", 1)
    while len(admin.client_list()) > 1:
        time.sleep(0.02)
    admin.config_set("timeout", 0)


def _dead_connection_errors(server: ServerProcess, admin: redis.Redis, how: str) -> str:
    """Idle connections closed by the server, then calls: the errors they get."""
    sync_cache = RedisCache(server.url, {"KEY_PREFIX": "dead-sync"})
    sync_cache.set("k", 1)
    pool = _pools.sync_pool(sync_cache._config.servers[0])
    args = ("_",) if _pools.SYNC_GET_CONNECTION_NEEDS_NAME else ()
    held = [pool.get_connection(*args) for _ in range(8)]
    for connection in held:
        pool.release(connection)
    _kill_idle(admin, how)
    sync_errors = 0
    for _ in range(10):
        try:
            sync_cache.get("k")
        except ConnectionInterrupted:
            sync_errors += 1

    async def async_calls(warm: int, rounds: int, concurrency: int) -> tuple[int, int]:
        cache = RedisCache(server.url, {"KEY_PREFIX": "dead-async"})
        await cache.aset("k", 1)
        async_pool = _pools.async_pool(cache._config.servers[0])
        taken = [await async_pool.acquire() for _ in range(warm)]
        for connection in taken:
            async_pool.release(connection)
        _kill_idle(admin, how)  # blocking the loop: the closes are not read yet
        errors = calls = 0
        for _ in range(rounds):
            results = await asyncio.gather(
                *(cache.aget("k") for _ in range(concurrency)), return_exceptions=True
            )
            calls += len(results)
            errors += sum(isinstance(result, BaseException) for result in results)
        return errors, calls

    sequential = asyncio.run(async_calls(8, 10, 1))
    concurrent = asyncio.run(async_calls(16, 1, 8))
    default_pool = asyncio.run(async_calls(100, 25, 8))
    return (
        f"sync 10 calls: {sync_errors} errors; async 10 sequential: {sequential[0]} errors, "
        f"8 concurrent (16 idle killed): {concurrent[0]} errors, 100 idle killed then "
        f"{default_pool[1]} calls 8 at a time: {default_pool[0]} errors"
    )


def dead_connections(server: ServerProcess, admin: redis.Redis) -> None:
    for how in ("CLIENT KILL", "idle timeout 1 s"):
        print(f"dead idle connections ({how}): {_dead_connection_errors(server, admin, how)}")
    checkout = _pools.peer_is_open
    _pools.peer_is_open = lambda connection: bool(connection.is_connected)
    try:
        for how in ("CLIENT KILL", "idle timeout 1 s"):
            errors = _dead_connection_errors(server, admin, how)
            print(f"  without the checkout test ({how}): {errors}")
    finally:
        _pools.peer_is_open = checkout


def checkout_cost(server: ServerProcess) -> None:
    """What testing an idle connection for the server's close costs at checkout."""
    import statistics

    async def identity_only(self: Any) -> Any:  # the checkout before the test existed
        idle = self._idle
        while idle:
            connection = idle.pop()
            if connection.is_connected:
                return connection
            self._opened -= 1
        return await self._open()

    async def cycle(pool: Any, count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            pool.release(await pool.acquire())
        return (time.perf_counter() - start) / count * 1e9

    async def measure() -> tuple[float, float]:
        cache = RedisCache(server.url, {"KEY_PREFIX": "checkout"})
        await cache.aget("k")
        pool = _pools.async_pool(cache._config.servers[0])
        tested = _pools.AsyncConnectionPool.acquire
        before, after = [], []
        try:
            for _ in range(9):
                _pools.AsyncConnectionPool.acquire = identity_only  # type: ignore[method-assign]
                before.append(await cycle(pool, 200_000))
                _pools.AsyncConnectionPool.acquire = tested  # type: ignore[method-assign]
                after.append(await cycle(pool, 200_000))
        finally:
            _pools.AsyncConnectionPool.acquire = tested  # type: ignore[method-assign]
        return statistics.median(before), statistics.median(after)

    before, after = asyncio.run(measure())
    print(
        f"checkout + return of an idle connection (median of 9 x 200k): {before:.0f} ns "
        f"without the close test, {after:.0f} ns with it ({after / before:.2f}x)"
    )


def loops_without_shutdown(server: ServerProcess, clients: Callable[[], int]) -> None:
    """Celery-style loops: new_event_loop(), run_until_complete(), close()."""

    def run(count: int) -> tuple[int, int, int]:
        cache = RedisCache(server.url, {"KEY_PREFIX": "celery"})
        before = clients()
        most = 0
        for i in range(count):

            async def use(i: int = i) -> None:
                await asyncio.gather(*(cache.aset(f"k{j}", i) for j in range(4)))

            loop = asyncio.new_event_loop()
            loop.run_until_complete(use())
            loop.close()
            most = max(most, clients() - before)
        registered = sum(loop.is_closed() for loop in list(_pools._async_pools))
        return most, clients() - before, registered

    base = clients()
    most, after, registered = run(30)
    asyncio.run(RedisCache(server.url, {}).aget("k"))  # a clean loop: sweeps the last one
    gc.collect()
    time.sleep(0.1)  # the server counts a close once it has read it
    print(
        f"30 loops closed without shutdown_asyncgens, 4 connections each: at most +{most} "
        f"connections, +{after} after the last, {registered} closed loops registered; "
        f"after one clean loop: +{clients() - base}"
    )
    sweep = _pools._abandon_closed_loops
    _pools._abandon_closed_loops = lambda: None
    try:
        most, after, registered = run(30)
    finally:
        _pools._abandon_closed_loops = sweep
    print(
        f"  without the sweep: at most +{most} connections, +{after} after the last, "
        f"{registered} closed loops registered"
    )
    asyncio.run(RedisCache(server.url, {}).aget("k"))


def lost_replies(server: ServerProcess) -> None:
    """incr from 10 through a proxy that loses the reply after the server counted."""
    from django_asyncredis import _core, _sync
    from tests.proxy import reply_dropping_proxy

    def once(path: str) -> tuple[str, int]:
        with reply_dropping_proxy(server.port) as proxy:
            cache = RedisCache(proxy.url, {"KEY_PREFIX": "lost"})
            cache.set("n", 10)
            proxy.drop_reply_to(b"INCRBY")
            try:
                if path == "sync":
                    outcome = str(cache.incr("n"))
                else:
                    outcome = str(asyncio.run(cache.aincr("n")))
            except ConnectionInterrupted:
                outcome = "ConnectionInterrupted"
            stored = int(cache.get("n"))
            asyncio.run(_pools.aclose_all())
            return outcome, stored

    for path in ("sync", "async"):
        outcome, stored = once(path)
        print(f"lost reply to incr from 10, {path}: {outcome}, stored {stored}")
    resend = _core.may_resend, _sync.may_resend
    _core.may_resend = _sync.may_resend = lambda request: True  # type: ignore[assignment]
    try:
        for path in ("sync", "async"):
            outcome, stored = once(path)
            print(f"  re-sending every command ({path}): returned {outcome}, stored {stored}")
    finally:
        _core.may_resend, _sync.may_resend = resend  # type: ignore[assignment]


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

    scenarios: dict[str, Callable[[], None]] = {
        "cancellation": lambda: cancellation(server),
        "slow_server": lambda: slow_server(server, admin),
        "server_down": server_down,
        "restart": lambda: restart(server),
        "pool_exhaustion": lambda: pool_exhaustion(server, clients),
        "many_loops": lambda: many_loops(server, clients),
        "loops_without_shutdown": lambda: loops_without_shutdown(server, clients),
        "dead_connections": lambda: dead_connections(server, admin),
        "checkout_cost": lambda: checkout_cost(server),
        "lost_replies": lambda: lost_replies(server),
        "soak": lambda: soak(server, clients),
        "without": lambda: without_the_guarantees(server, admin),
    }
    chosen = sys.argv[1:] or list(scenarios)  # e.g. `guarantees.py dead_connections`
    try:
        print("server:", admin.info("server")["redis_version"], server.binary)
        for name in chosen:
            scenarios[name]()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
