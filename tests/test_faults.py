"""Faults on a real server: slow replies, cancellations, restarts, bad input.

Each test is bounded in count and time, and talks to loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from django_asyncredis import ConnectionInterrupted, RedisCache, ServerTimeoutError
from tests.servers import ServerProcess


@contextlib.contextmanager
def paused(server: ServerProcess, seconds: float) -> Iterator[None]:
    """CLIENT PAUSE: the server reads commands but answers none for ``seconds``."""
    with redis.Redis(port=server.port) as admin:
        admin.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "ALL")
        yield


# Slow server


def test_slow_server_times_out_on_time(own_server: ServerProcess) -> None:
    cache = RedisCache(own_server.url, {"OPTIONS": {"socket_timeout": 0.2}})
    cache.set("key", "value")  # the connection exists before the server stalls
    with paused(own_server, 1.0):
        start = time.monotonic()
        with pytest.raises(ServerTimeoutError):
            cache.get("key")
        elapsed = time.monotonic() - start
    assert 0.15 < elapsed < 0.9  # the 0.2 s timeout, not the 1 s pause (slack for a busy CI)


async def test_slow_server_times_out_on_time_async(own_server: ServerProcess) -> None:
    cache = RedisCache(own_server.url, {"OPTIONS": {"socket_timeout": 0.2}})
    await cache.aset("key", "value")  # the connection exists before the server stalls
    with paused(own_server, 1.0):
        start = time.monotonic()
        with pytest.raises(ServerTimeoutError):
            await cache.aget("key")
        elapsed = time.monotonic() - start
    assert 0.15 < elapsed < 0.9  # the 0.2 s timeout, not the 1 s pause (slack for a busy CI)
    await asyncio.sleep(1.0)


async def test_a_late_reply_never_reaches_another_caller(own_server: ServerProcess) -> None:
    """After timeouts on a paused server, every later call gets its own value."""
    cache = RedisCache(own_server.url, {"OPTIONS": {"socket_timeout": 0.1, "max_connections": 4}})
    keys = [f"k{i}" for i in range(40)]
    await cache.aset_many({key: f"value-{key}" for key in keys})
    with paused(own_server, 0.5):
        results = await asyncio.gather(*(cache.aget(key) for key in keys), return_exceptions=True)
    # Each caller got its own value, or a timeout (those queued past the pause succeed).
    assert all(
        isinstance(result, ServerTimeoutError) or result == f"value-{key}"
        for key, result in zip(keys, results, strict=True)
    )
    assert any(isinstance(result, ServerTimeoutError) for result in results)
    await asyncio.sleep(0.5)  # the server now answers the queued commands
    for _ in range(3):
        assert await asyncio.gather(*(cache.aget(key) for key in keys)) == [
            f"value-{key}" for key in keys
        ]


def test_sync_late_reply_never_reaches_another_caller(own_server: ServerProcess) -> None:
    cache = RedisCache(own_server.url, {"OPTIONS": {"socket_timeout": 0.1}})
    cache.set_many({"a": "A", "b": "B"})
    with paused(own_server, 0.4), pytest.raises(ServerTimeoutError):
        cache.get("a")
    time.sleep(0.4)
    assert [cache.get("b"), cache.get("a"), cache.get("b")] == ["B", "A", "B"]


# Cancellation


async def test_cancelling_a_call_on_a_slow_server_is_prompt(own_server: ServerProcess) -> None:
    """A cancel() is honoured at once, never swallowed (CPython gh-86296 on 3.11)."""
    cache = RedisCache(own_server.url, {"OPTIONS": {"socket_timeout": 5}})
    await cache.aset("key", "value")
    with paused(own_server, 1.0):
        task = asyncio.create_task(cache.aget("key"))
        await asyncio.sleep(0.05)
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - start < 0.5  # not the 1 s pause, nor the 5 s timeout
    await asyncio.sleep(1.0)
    assert await cache.aget("key") == "value"


async def test_timeout_around_a_call_is_prompt(own_server: ServerProcess) -> None:
    cache = RedisCache(own_server.url, {"OPTIONS": {"socket_timeout": 5}})
    await cache.aset("key", "value")
    with paused(own_server, 1.0):
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await cache.aget("key")
        assert time.monotonic() - start < 0.5  # not the 1 s pause, nor the 5 s timeout


# Restart


@pytest.mark.parametrize("path", ["sync", "async"])
def test_same_backend_serves_again_after_a_server_restart(
    own_server: ServerProcess, path: str
) -> None:
    """Under load, the server dies and comes back on the same port: documented errors
    meanwhile; then the same backend object, on the same pool (one event loop for
    the async path), serves every call begun after the server is back: 0 errors."""
    cache = RedisCache(own_server.url, {"OPTIONS": {"socket_connect_timeout": 0.2}})
    errors_during: list[BaseException] = []
    errors_after: list[BaseException] = []
    ok_after_restart: list[float] = []
    restarted_at: list[float] = []
    stop = threading.Event()

    def record(started: float, exc: BaseException | None) -> None:
        back = bool(restarted_at) and started > restarted_at[0]
        if exc is None:
            if back:
                ok_after_restart.append(time.monotonic())
        else:
            (errors_after if back else errors_during).append(exc)

    def load_sync() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            started = time.monotonic()
            try:
                cache.set(f"k{i % 50}", i)
                assert cache.get(f"k{i % 50}") == i
            except ConnectionInterrupted as exc:
                record(started, exc)
                time.sleep(0.01)
            else:
                record(started, None)

    async def load_async() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            started = time.monotonic()
            try:
                await roundtrip(cache, f"k{i % 50}", i)
            except ConnectionInterrupted as exc:
                record(started, exc)
                await asyncio.sleep(0.01)
            else:
                record(started, None)

    worker = threading.Thread(
        target=load_sync if path == "sync" else lambda: asyncio.run(load_async())
    )
    worker.start()
    try:
        time.sleep(0.2)
        own_server.stop()
        time.sleep(0.3)
        own_server.start()
        restarted_at.append(time.monotonic())
        deadline = time.monotonic() + 5
        while len(ok_after_restart) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join()
    assert errors_during, "the outage went unnoticed: the test did not test anything"
    assert errors_after == []
    assert len(ok_after_restart) >= 200, "the backend did not serve again"
    assert ok_after_restart[0] - restarted_at[0] < 2.0


async def roundtrip(cache: RedisCache, key: str, value: int) -> None:
    await cache.aset(key, value)
    assert await cache.aget(key) == value


# Bad input


def test_a_20_mb_value_round_trips(api: Any) -> None:
    value = b"x" * (20 * 1024 * 1024)
    api.set("big", value)
    assert api.get("big") == value


@pytest.mark.parametrize("key", [1, 2.5, ("a",)], ids=repr)
def test_non_str_keys_are_made_into_strings_as_django_does(api: Any, key: Any) -> None:
    api.set(key, "value")
    assert api.get(key) == "value"


def test_a_key_holding_a_list_gives_a_clear_error_and_is_left_alone(api: Any, raw: Any) -> None:
    raw.rpush(":1:list", "item")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        api.get("list")
    assert api.get_many(["list"]) == {}  # MGET answers nil for a key of another type
    assert raw.lrange(":1:list", 0, -1) == [b"item"]


def test_incr_of_a_list_is_a_type_error(api: Any, raw: Any) -> None:
    raw.rpush(":1:list", "item")
    with pytest.raises((TypeError, redis.exceptions.ResponseError)):
        api.incr("list")
    assert raw.lrange(":1:list", 0, -1) == [b"item"]


# A server that never answers the connection


@pytest.fixture
def unresponsive_port() -> Iterator[int]:
    """A loopback port whose listen queue is full: connects hang until they time out."""
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
    yield port
    for sock in [*fillers, listener]:
        sock.close()


@pytest.mark.parametrize("path", ["sync", "async"])
def test_connecting_to_an_unresponsive_server_fails_within_the_connect_timeout(
    unresponsive_port: int, path: str
) -> None:
    cache = RedisCache(
        f"redis://127.0.0.1:{unresponsive_port}", {"OPTIONS": {"socket_connect_timeout": 0.3}}
    )
    get = cache.get if path == "sync" else lambda key: asyncio.run(cache.aget(key))
    start = time.monotonic()
    with pytest.raises(ServerTimeoutError, match="connecting"):
        get("key")
    assert time.monotonic() - start < 1.5  # 0.3 s, never a hang (slack for a busy CI)


@pytest.mark.parametrize("path", ["sync", "async"])
def test_unresponsive_server_in_ignore_mode_gives_defaults(
    unresponsive_port: int, path: str
) -> None:
    options = {"socket_connect_timeout": 0.3, "IGNORE_EXCEPTIONS": True}
    cache = RedisCache(f"redis://127.0.0.1:{unresponsive_port}", {"OPTIONS": options})
    if path == "sync":
        assert cache.get("key", "default") == "default"
        assert cache.add("key", 1) is False
    else:
        assert asyncio.run(cache.aget("key", "default")) == "default"
        assert asyncio.run(cache.aadd("key", 1)) is False


async def test_opening_a_connection_to_a_paused_server_times_out(own_server: ServerProcess) -> None:
    """The handshake waits for replies too: it is bounded like any round trip."""
    options = {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}
    cache = RedisCache(own_server.url, {"OPTIONS": options, "KEY_PREFIX": "fresh"})
    with paused(own_server, 1.0):
        start = time.monotonic()
        with pytest.raises(ServerTimeoutError):
            await cache.aget("key")
        assert time.monotonic() - start < 1.0  # not the pause: 0.4 s at most, and slack
