"""Retries after a broken connection: never a second execution the caller can see.

Through a proxy that forwards a command to the real server and then cuts the
connection before the reply comes back, the one case where the client cannot
know whether the command ran. A command whose second execution cannot be told
from one (GET, plain SET...) is sent again, up to the ``retries`` option; any
other fails with ``ConnectionInterrupted`` and ran exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from django_asyncredis import ConnectionInterrupted, RedisCache, ServerTimeoutError
from django_asyncredis._config import DEFAULT_RETRIES, parse
from django_asyncredis._idempotency import may_resend
from django_asyncredis._operations import Batch
from django_asyncredis.errors import ReplyLostError, ReplyTimeoutError
from tests.proxy import ReplyDroppingProxy, reply_dropping_proxy
from tests.servers import ServerProcess


@pytest.fixture
def proxy(redis_server: ServerProcess) -> Iterator[ReplyDroppingProxy]:
    with reply_dropping_proxy(redis_server.port) as running:
        yield running
    redis_server.flush()


@pytest.fixture
def admin(redis_server: ServerProcess) -> Iterator[redis.Redis]:
    client = redis.Redis(port=redis_server.port)
    yield client
    client.close()


def call(path: str, cache: RedisCache, name: str, *args: Any) -> Any:
    """``cache.name(*args)`` through the sync or the async API."""
    if path == "sync":
        return getattr(cache, name)(*args)
    return asyncio.run(getattr(cache, "a" + name)(*args))


def resp(word: str) -> bytes:
    """How a command name appears on the wire (RESP bulk string)."""
    return b"$%d\r\n%s\r\n" % (len(word), word.encode())


PATHS = pytest.mark.parametrize("path", ["sync", "async"])


@PATHS
def test_incr_whose_reply_was_lost_fails_and_counted_once(
    proxy: ReplyDroppingProxy, admin: redis.Redis, path: str
) -> None:
    """incr from 10, reply lost after the server counted: ConnectionInterrupted, and 11."""
    cache = RedisCache(proxy.url, {})
    call(path, cache, "set", "n", 10)
    proxy.drop_reply_to(b"INCRBY")
    with pytest.raises(ReplyLostError, match="may have run and was not sent again"):
        call(path, cache, "incr", "n")
    assert int(admin.get(":1:n") or 0) == 11
    assert proxy.count(b"INCRBY") == 1


@PATHS
def test_add_whose_reply_was_lost_is_not_sent_again(
    proxy: ReplyDroppingProxy, admin: redis.Redis, path: str
) -> None:
    """A second SET NX would answer "not added" to the caller who added it."""
    cache = RedisCache(proxy.url, {})
    call(path, cache, "get", "warm")
    proxy.drop_reply_to(b"NX")
    with pytest.raises(ReplyLostError):
        call(path, cache, "add", "key", "value")
    assert call(path, cache, "get", "key") == "value"
    assert proxy.count(b"NX") == 1


@PATHS
def test_delete_whose_reply_was_lost_is_not_sent_again(
    proxy: ReplyDroppingProxy, path: str
) -> None:
    """A second DEL would answer 0: "there was nothing to delete"."""
    cache = RedisCache(proxy.url, {})
    call(path, cache, "set", "key", "value")
    proxy.drop_reply_to(resp("DEL"))
    with pytest.raises(ReplyLostError):
        call(path, cache, "delete", "key")
    assert call(path, cache, "get", "key") is None
    assert proxy.count(resp("DEL")) == 1


@PATHS
def test_a_read_whose_reply_was_lost_is_sent_again(proxy: ReplyDroppingProxy, path: str) -> None:
    """GET is repeatable: the caller gets its value, the retry is invisible."""
    cache = RedisCache(proxy.url, {})
    call(path, cache, "set", "key", "value")
    proxy.drop_reply_to(resp("GET"))
    assert call(path, cache, "get", "key") == "value"
    assert proxy.count(resp("GET")) == 2


@PATHS
def test_retries_zero_turns_retrying_off(proxy: ReplyDroppingProxy, path: str) -> None:
    """retries=0: even a GET whose reply was lost fails, after one send."""
    cache = RedisCache(proxy.url, {"OPTIONS": {"retries": 0}})
    call(path, cache, "set", "key", "value")
    proxy.drop_reply_to(resp("GET"))
    with pytest.raises(ConnectionInterrupted) as caught:
        call(path, cache, "get", "key")
    assert not isinstance(caught.value, ReplyLostError)  # a GET's outcome is never in doubt
    assert proxy.count(resp("GET")) == 1


@PATHS
def test_retries_bounds_the_attempts(proxy: ReplyDroppingProxy, path: str) -> None:
    """retries=2: three replies lost in a row fail the call after exactly 3 sends."""
    cache = RedisCache(proxy.url, {"OPTIONS": {"RETRIES": 2}})
    call(path, cache, "set", "key", "value")
    for _ in range(3):
        proxy.drop_reply_to(resp("GET"))
    with pytest.raises(ConnectionInterrupted):
        call(path, cache, "get", "key")
    assert proxy.count(resp("GET")) == 3


@PATHS
def test_under_sentinel_a_lost_incr_is_not_sent_again_after_asking_the_sentinel(
    proxy: ReplyDroppingProxy, admin: redis.Redis, path: str
) -> None:
    """The topology's retry loop (ask the sentinel, try again) must not re-send it either."""
    from tests.servers import free_port
    from tests.topologies import SentinelProcess

    sentinel = SentinelProcess("mymaster", proxy.port, free_port(), "").start()
    try:
        cache = RedisCache(f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster", {})
        call(path, cache, "set", "n", 10)
        proxy.drop_reply_to(b"INCRBY")
        with pytest.raises(ReplyLostError):
            call(path, cache, "incr", "n")
        assert int(admin.get(":1:n") or 0) == 11
        assert proxy.count(b"INCRBY") == 1
    finally:
        sentinel.stop()


@PATHS
def test_an_incr_that_timed_out_is_reported_as_possibly_run(
    redis_server: ServerProcess, admin: redis.Redis, path: str
) -> None:
    """A timeout on an incr: ReplyTimeoutError (a ServerTimeoutError), never re-sent,
    even with retry_on_timeout and retries=3 (a re-send would land after the pause)."""
    options = {"socket_timeout": 0.2, "retry_on_timeout": True, "retries": 3}
    cache = RedisCache(redis_server.url, {"OPTIONS": options})
    call(path, cache, "set", "n", 10)
    admin.execute_command("CLIENT", "PAUSE", 500, "WRITE")
    try:
        with pytest.raises(ReplyTimeoutError) as caught:
            call(path, cache, "incr", "n")
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
    assert isinstance(caught.value, ServerTimeoutError)
    # The timed-out connection was closed while the server held the command, so it
    # was dropped unrun; nothing was sent again.
    assert int(admin.get(":1:n") or 0) == 10


# The option


@pytest.mark.parametrize("name", ["retries", "RETRIES"])
def test_retries_option_in_either_spelling(name: str) -> None:
    """Django-style lower case or django-redis-style upper case, as every option."""
    config = parse("redis://127.0.0.1:6379", {name: 3})
    assert {server.retries for server in config.servers} == {3}


def test_retries_default() -> None:
    """One retry unless configured."""
    assert parse("redis://127.0.0.1:6379", {}).servers[0].retries == DEFAULT_RETRIES == 1


def test_retries_inside_connection_pool_kwargs() -> None:
    """Where django-redis users put pool options."""
    config = parse("redis://127.0.0.1:6379", {"CONNECTION_POOL_KWARGS": {"retries": 0}})
    assert config.servers[0].retries == 0


@pytest.mark.parametrize("value", [-1, 11, 1.5, "2", True, None])
def test_retries_must_be_a_small_int(value: Any) -> None:
    """A clear error naming the option, for anything but an int from 0 to 10."""
    with pytest.raises(ImproperlyConfigured, match=r"\['retries'\] must be an int from 0 to 10"):
        parse("redis://127.0.0.1:6379", {"retries": value})


# The rule, decided in the sans-IO layer


REPEATABLE: list[Any] = [
    ("GET", "k"),
    ("MGET", "a", "b"),
    ("EXISTS", "k"),
    ("TTL", "k"),
    ("PTTL", "k"),
    ("SCAN", 0, "MATCH", "*"),
    ("SET", "k", b"v"),
    ("SET", "k", b"v", "PX", 1000),
    ("SET", "k", b"v", "KEEPTTL"),
    ("SETEX", "k", 10, b"v"),
    ("MSET", "a", b"1", "b", b"2"),
    ("PEXPIRE", "k", 1000),
    ("CLUSTER", "SLOTS"),
    ("SENTINEL", "get-master-addr-by-name", "mymaster"),
    Batch((("ASKING",), ("GET", "k"))),
    Batch((("SET", "k", b"v", "PX", 5), ("SET", "j", b"w", "PX", 5))),
]
NOT_REPEATABLE: list[Any] = [
    ("INCRBY", "k", 1),
    ("HINCRBY", "h", "f", 1),
    ("DEL", "k"),
    ("UNLINK", "k"),
    ("SET", "k", b"v", "NX"),
    ("SET", "k", b"v", "PX", 1000, "XX"),
    ("SET", "k", b"v", "GET"),
    ("SET", "k", b"v", "nx"),
    ("EVAL", "return 1", 0),
    ("EVALSHA", "abc", 0),
    ("RENAME", "a", "b"),
    ("LPUSH", "l", b"x"),
    ("SADD", "s", b"x"),
    ("HSET", "h", "f", b"v"),
    ("PERSIST", "k"),
    ("PEXPIRE", "k", 1000, "NX"),
    ("RESTORE", "k", 0, b"dump"),
    ("CLUSTER", "RESET"),
    ("FLUSHALL_UNKNOWN",),
    Batch((("SET", "k", b"v", "NX"), ("GET", "k"))),
    Batch((("MULTI",), ("INCRBY", "k", 1), ("EXEC",))),
]


@pytest.mark.parametrize("request_", REPEATABLE, ids=repr)
def test_repeatable_requests_may_be_resent(request_: Any) -> None:
    """Executing these twice cannot be told from once."""
    assert may_resend(request_)


@pytest.mark.parametrize("request_", NOT_REPEATABLE, ids=repr)
def test_other_requests_are_never_resent(request_: Any) -> None:
    """A second execution would change the data or the reply."""
    assert not may_resend(request_)


def test_a_command_name_in_bytes_is_read_alike() -> None:
    """Raw clients and scripts may spell commands in bytes."""
    assert may_resend((b"GET", b"k"))
    assert not may_resend((b"SET", b"k", b"v", b"NX"))
