"""The multiplexed transport: many callers, one connection, each reply to its caller.

Each test uses a server of its own, so the server's connection count is exact.
The sync API keeps its pooled connections (``transport`` selects the async one).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from django_asyncredis import RedisCache, ServerTimeoutError, _config, _multiplex
from django_asyncredis.errors import ReplyLostError
from tests.servers import ServerProcess, clients

MULTIPLEXED = {"OPTIONS": {"transport": "multiplexed"}}


async def test_64_concurrent_calls_share_one_connection(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """64 concurrent gets on a multiplexed cache: 64 right answers over 1 connection."""
    cache = RedisCache(own_server.url, MULTIPLEXED)
    await cache.aset("key", "value")
    assert await asyncio.gather(*(cache.aget("key") for _ in range(64))) == ["value"] * 64
    assert clients(admin) == 1


async def test_the_pooled_transport_takes_a_connection_per_concurrent_call(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """The same 64 gets on ``transport: pooled``: one pooled connection each."""
    cache = RedisCache(own_server.url, {"OPTIONS": {"transport": "pooled"}})
    await cache.aset("key", "value")
    assert await asyncio.gather(*(cache.aget("key") for _ in range(64))) == ["value"] * 64
    assert clients(admin) == 64


async def test_each_concurrent_caller_gets_its_own_reply(own_server: ServerProcess) -> None:
    """300 concurrent calls of three shapes (get, get_many, incr) on distinct keys,
    issued in a random order: every caller receives exactly its own answer."""
    cache = RedisCache(own_server.url, MULTIPLEXED)
    await cache.aset_many({f"k{i}": i for i in range(100)})
    calls: list[tuple[str, int]] = [
        (shape, i) for shape in ("get", "many", "incr") for i in range(100)
    ]
    random.Random(7).shuffle(calls)

    async def call(shape: str, i: int) -> Any:
        if shape == "get":
            return await cache.aget(f"k{i}")
        if shape == "many":
            return await cache.aget_many([f"k{i}", f"k{(i + 1) % 100}", "absent"])
        return await cache.aincr(f"n{i}", i, ignore_key_check=True)

    results = await asyncio.gather(*(call(shape, i) for shape, i in calls))
    expected = {
        "get": lambda i: i,
        "many": lambda i: {f"k{i}": i, f"k{(i + 1) % 100}": (i + 1) % 100},
        "incr": lambda i: i,
    }
    assert results == [expected[shape](i) for shape, i in calls]


async def test_small_reads_are_not_held_up_by_a_large_write(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """A 20 MB set goes to a dedicated connection: a small get issued after it
    completes before it, on the shared connection."""
    cache = RedisCache(own_server.url, MULTIPLEXED)
    await cache.aset("small", "value")
    large = asyncio.create_task(cache.aset("large", b"x" * 20_000_000))
    await asyncio.sleep(0)  # the large set is under way
    assert await cache.aget("small") == "value"
    assert not large.done()  # the small get was answered first
    await large
    assert clients(admin) == 2  # the shared one, and the pooled one the large set used
    assert len(await cache.aget("large")) == 20_000_000


def test_a_request_above_the_threshold_takes_a_dedicated_connection() -> None:
    """The rule in numbers: a set of a value just past ``LARGE_REQUEST_BYTES`` does not
    ride the shared connection; transactions' and blocking commands never do."""
    small = ("SET", "k", b"x" * 100)
    assert _multiplex.rides_shared(small)
    assert len(_multiplex._pack(small)) <= _multiplex.LARGE_REQUEST_BYTES
    large = ("SET", "k", b"x" * _multiplex.LARGE_REQUEST_BYTES)
    assert len(_multiplex._pack(large)) > _multiplex.LARGE_REQUEST_BYTES
    for command in (
        ("WATCH", "k"),
        ("MULTI",),
        ("BLPOP", "k", 0),
        ("SELECT", 1),
        ("CLIENT", "TRACKING", "on"),
    ):
        assert not _multiplex.rides_shared(command)


@contextlib.contextmanager
def paused(server: ServerProcess, seconds: float, kind: str = "ALL") -> Iterator[None]:
    with redis.Redis(port=server.port) as admin:
        admin.execute_command("CLIENT", "PAUSE", int(seconds * 1000), kind)
        yield


async def test_a_cancelled_caller_leaves_the_shared_connection_in_step(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """A get cancelled after its command was written: its reply is read and
    dropped; the next caller gets its own value, on the same single connection."""
    cache = RedisCache(own_server.url, MULTIPLEXED)
    await cache.aset_many({"first": "value of first", "second": "value of second"})
    with paused(own_server, 0.3):
        task = asyncio.create_task(cache.aget("first"))
        await asyncio.sleep(0.05)  # written; its reply waits for the pause to end
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await asyncio.sleep(0.4)  # the pause is over: the first reply arrived and was dropped
    assert await cache.aget("second") == "value of second"
    assert clients(admin) == 1


async def test_a_stuck_connection_times_out_and_is_replaced(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """No byte back within socket_timeout: the caller gets ServerTimeoutError and the
    next call, once the server answers again, succeeds on a new connection."""
    cache = RedisCache(
        own_server.url, {"OPTIONS": {"transport": "multiplexed", "socket_timeout": 0.2}}
    )
    await cache.aset("key", "value")
    with paused(own_server, 0.5), pytest.raises(ServerTimeoutError):
        await cache.aget("key")
    await asyncio.sleep(0.4)
    assert await cache.aget("key") == "value"
    assert clients(admin) == 1


#: Keeps the server busy for ARGV[1] ms (a slow command: the server answers
#: nothing else meanwhile, but answers each command in turn).
BUSY = """
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat
    local now = redis.call('TIME')
until now[1] * 1000000 + now[2] - start >= tonumber(ARGV[1]) * 1000
return ARGV[1]
"""


def busy(milliseconds: int) -> Any:
    """An operation: the server busy for ``milliseconds`` (EVAL rides the shared connection)."""
    return (yield ("EVAL", BUSY, 0, milliseconds))


async def test_each_write_keeps_its_own_deadline_on_a_busy_connection(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """Three writes on one connection, socket_timeout 0.5 s, each a command keeping
    the server busy: 0.2 s written at 0, 0.2 s at 0.1 s, 0.8 s at 0.3 s. (The
    server reads the second while the first runs, the third while the second
    does: each reply leaves on its own.) The first two are answered in time, at
    0.2 and 0.4 s. The third, due at 0.8 s, is answered at 1.2 s: it alone fails,
    with ServerTimeoutError (EVAL is not sent again); the connection received
    the second's reply after the third was written, so it is busy, not stuck,
    and kept: a get then succeeds on it."""
    cache = RedisCache(
        own_server.url, {"OPTIONS": {"transport": "multiplexed", "socket_timeout": 0.5}}
    )
    await cache.aset("key", "value")
    first = asyncio.create_task(cache._async.run(busy(200)))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(cache._async.run(busy(200)))
    await asyncio.sleep(0.2)
    loop = asyncio.get_running_loop()
    written = loop.time()
    third = asyncio.create_task(cache._async.run(busy(800)))
    assert await first == b"200"
    assert await second == b"200"
    with pytest.raises(ServerTimeoutError):
        await third
    assert loop.time() - written >= 0.5  # its own deadline, not an earlier write's
    await asyncio.sleep(0.5)  # the third's reply arrives, and is dropped
    assert await cache.aget("key") == "value"
    assert clients(admin) == 1


async def test_a_broken_connection_fails_an_incr_and_resends_the_reads(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """The shared connection is killed with an incr and 10 gets waiting on it: the
    incr fails with ReplyLostError and is not sent again (the counter stays at 10),
    the gets are sent again on a new connection and all succeed."""
    cache = RedisCache(own_server.url, MULTIPLEXED)
    await cache.aset_many({"n": 10, "key": "value"})
    with paused(own_server, 2.0, "WRITE"):  # the incr, and the gets behind it, wait
        incr = asyncio.create_task(cache.aincr("n"))
        await asyncio.sleep(0.05)
        gets = [asyncio.create_task(cache.aget("key")) for _ in range(10)]
        await asyncio.sleep(0.1)  # all written
        admin.client_kill_filter(_type="normal", skipme=True)
        with pytest.raises(ReplyLostError):
            await incr
        assert await asyncio.gather(*gets) == ["value"] * 10
    assert await cache.aget("n") == 10


def test_the_sync_api_keeps_its_pool(own_server: ServerProcess, admin: redis.Redis) -> None:
    """A multiplexed cache used through the sync API opens only its pooled connection."""
    cache = RedisCache(own_server.url, MULTIPLEXED)
    cache.set("key", "value")
    assert cache.get("key") == "value"
    assert clients(admin) == 1


def test_transport_option_is_validated() -> None:
    """Anything but "multiplexed" or "pooled" is refused, naming the option."""
    with pytest.raises(ImproperlyConfigured, match="'transport'"):
        _config.parse("redis://localhost", {"transport": "shared"})


def test_transport_default_applies_when_unset() -> None:
    """Unset, the async transport is DEFAULT_TRANSPORT (hiredis is installed here)."""
    assert _config.parse("redis://localhost", {}).servers[0].transport == _config.DEFAULT_TRANSPORT
    assert _config.DEFAULT_TRANSPORT in _config.TRANSPORTS


def test_redis_py_still_has_what_the_multiplexer_takes_over() -> None:
    """The private names the multiplexed transport relies on (docs/design.md): a
    connection's ``_reader``/``_writer`` and the hiredis parser's ``parse_error``."""
    import redis.asyncio
    from redis._parsers import _HiredisParser
    from redis.exceptions import MovedError

    connection = redis.asyncio.Connection()
    assert connection._reader is None
    assert connection._writer is None
    assert isinstance(_HiredisParser.parse_error("MOVED 1 127.0.0.1:7000"), MovedError)


async def test_close_connection_lets_waiting_callers_finish(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """CLOSE_CONNECTION closes the shared connection at a request's end, while 20
    other calls wait on it: the 20 get their values, and the connection closes."""
    cache = RedisCache(
        own_server.url, {"OPTIONS": {"transport": "multiplexed", "CLOSE_CONNECTION": True}}
    )
    await cache.aset("key", "value")
    with paused(own_server, 0.2):
        gets = [asyncio.create_task(cache.aget("key")) for _ in range(20)]
        await asyncio.sleep(0.05)  # all written, their replies held by the pause
        await cache.aclose()
    assert await asyncio.gather(*gets) == ["value"] * 20
    for _ in range(100):
        if clients(admin) == 0:
            break
        await asyncio.sleep(0.01)
    assert clients(admin) == 0


async def test_a_command_not_yet_written_when_the_connection_fails_is_sent_once(
    own_server: ServerProcess,
) -> None:
    """The connection fails with a get written and an incr still in its write
    buffer: the get is sent again (repeatable), the incr, which never reached the
    server, is sent on the new connection and counts exactly once."""
    from django_asyncredis import _pools

    cache = RedisCache(own_server.url, MULTIPLEXED)
    await cache.aset("n", 10)
    connection = _pools.async_pool(cache._config.servers[0]).shared.current
    get = asyncio.create_task(cache.aget("n"))  # written at once: the connection is idle
    incr = asyncio.create_task(cache.aincr("n"))  # buffered until the end of the iteration
    await asyncio.sleep(0)  # both ran up to their reply; the flush comes after this task
    connection.abort(redis.ConnectionError("broken for the test"))
    assert await get == 10
    assert await incr == 11
    assert await cache.aget("n") == 11


def test_without_hiredis_the_pooled_transport_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The multiplexed transport parses with hiredis (an extra): without it, a cache
    asking for it gets the pooled transport rather than an error."""
    monkeypatch.setattr(_multiplex, "AVAILABLE", False)
    config = _config.parse("redis://localhost", {"transport": "multiplexed"})
    assert config.servers[0].transport == "pooled"
