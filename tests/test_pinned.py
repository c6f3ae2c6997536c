"""``Pinned``: a transaction on a connection of its own, which never leaks its state.

A pooled connection left inside MULTI would answer the next caller's GET with
``QUEUED``; one left with a WATCH would make a later transaction fail at random.
So a pinned operation that ends by an exception or a cancellation closes its
connection instead of pooling it, and nothing of it is ever sent twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from django_asyncredis import ConnectionInterrupted, RedisCache
from django_asyncredis import _operations as ops


def run(cache: RedisCache, path: str, operation: ops.Operation[Any]) -> Any:
    if path == "sync":
        return cache._sync.run(operation)
    return asyncio.run(cache._async.run(operation))


def pinned(key: str, nested: ops.Operation[Any]) -> ops.Operation[Any]:
    return (yield ops.Pinned(key, nested))


def clients_inside_multi(raw: Any) -> list[dict[str, Any]]:
    """Connections in a MULTI (flag ``x``) or, where the server reports it (Redis
    7.4+, Valkey), holding a WATCH."""
    return [
        client
        for client in raw.client_list()
        if "x" in client["flags"] or int(client.get("watch", 0)) > 0
    ]


def reads_after(cache: RedisCache, path: str, raw: Any) -> list[Any]:
    """Many reads on the pool the pinned operation used: each must see its own key."""
    raw.mset({f":1:read{i}": i for i in range(20)})

    async def reads() -> list[Any]:
        return [await cache.aget(f"read{i}") for i in range(20)]

    if path == "sync":
        return [cache.get(f"read{i}") for i in range(20)]
    return asyncio.run(reads())


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize("failure", [RuntimeError, asyncio.CancelledError, KeyboardInterrupt])
def test_a_transaction_that_fails_inside_multi_leaves_no_state_on_a_pooled_connection(
    cache: RedisCache, raw: Any, path: str, failure: type[BaseException]
) -> None:
    """An error, a cancellation or an interrupt inside MULTI: the connection is closed."""

    def nested() -> ops.Operation[Any]:
        yield ("WATCH", ":1:x")
        yield ("MULTI",)
        yield ("SET", ":1:x", "queued, never executed")
        raise failure("stopped inside MULTI")

    with pytest.raises(failure):
        run(cache, path, pinned(":1:x", nested()))
    assert clients_inside_multi(raw) == []
    assert reads_after(cache, path, raw) == list(range(20))
    assert raw.exists(":1:x") == 0


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_finished_transaction_keeps_its_connection_for_the_pool(
    cache: RedisCache, raw: Any, path: str
) -> None:
    """The common case costs no reconnect: one connection, reused."""

    def nested() -> ops.Operation[Any]:
        yield ops.Batch((("WATCH", ":1:x"), ("GET", ":1:x")))
        *_, done = yield ops.Batch((("MULTI",), ("SET", ":1:x", 1), ("EXEC",)))
        return done

    async def three_async() -> list[Any]:
        results = [await cache._async.run(pinned(":1:x", nested()))]
        opened = raw.info("stats")["total_connections_received"]
        results += [await cache._async.run(pinned(":1:x", nested())) for _ in range(2)]
        return [*results, raw.info("stats")["total_connections_received"] - opened]

    if path == "sync":
        results = [cache._sync.run(pinned(":1:x", nested()))]
        opened = raw.info("stats")["total_connections_received"]
        results += [cache._sync.run(pinned(":1:x", nested())) for _ in range(2)]
        results.append(raw.info("stats")["total_connections_received"] - opened)
    else:
        results = asyncio.run(three_async())
    assert results == [[b"OK"], [b"OK"], [b"OK"], 0]


@pytest.mark.parametrize("path", ["sync", "async"])
def test_a_pinned_command_is_never_sent_twice(cache: RedisCache, raw: Any, path: str) -> None:
    """The connection breaks after INCR reached the server: ConnectionInterrupted,
    and the INCR applied once, never re-sent on a fresh connection."""

    def nested() -> ops.Operation[Any]:
        me = yield ("CLIENT", "ID")
        yield ("INCR", ":1:x")
        yield ("CLIENT", "KILL", "ID", me, "SKIPME", "no")
        yield ("INCR", ":1:x")

    with pytest.raises(ConnectionInterrupted):
        run(cache, path, pinned(":1:x", nested()))
    assert raw.get(":1:x") == b"1"


def test_a_cancelled_signed_incr_leaves_no_state_and_loses_nothing(
    make_cache: Callable[..., Any], raw: Any
) -> None:
    """A real cancellation, while the WATCH waits for a paused server."""
    cache = make_cache(
        OPTIONS={
            "SERIALIZER": "django_asyncredis.serializers.signed.SignedPickleSerializer",
            "SIGNING_KEY": "k",
        }
    )
    cache.set("n", 1)

    async def scenario() -> int:
        warm = await cache.aincr("n")  # a pooled connection exists
        raw.execute_command("CLIENT", "PAUSE", 300, "ALL")
        task = asyncio.create_task(cache.aincr("n"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)  # the pause ends
        return warm

    assert asyncio.run(scenario()) == 2
    assert clients_inside_multi(raw) == []
    # The cancelled increment may or may not have reached the server; never twice.
    assert cache.get("n") in (2, 3)
    assert cache.incr("n") == cache.get("n")
