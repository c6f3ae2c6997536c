"""The sync adapter: runs the same operations over sync redis-py connections.

No event loop and no thread: the operation generator is driven with ``send()``
right here, in the caller's thread. Called on an event loop's thread it blocks
that loop for one round trip, as Django's built-in backend does, and cannot
deadlock because it never waits for the loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, TypeVar

import redis
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from django_asyncredis._config import CacheConfig, Server
from django_asyncredis._operations import Batch, Emit, Offload, Operation, Request, Sleep, route
from django_asyncredis._pools import SYNC_GET_CONNECTION_NEEDS_NAME, sync_pool
from django_asyncredis.errors import (
    CONNECTION_ERRORS,
    ConnectionInterrupted,
    log_ignored,
    translate,
)

T = TypeVar("T")

_CONNECTION_ARGS: tuple[str, ...] = ("_",) if SYNC_GET_CONNECTION_NEEDS_NAME else ()


class SyncAdapter:
    """Drives operations for one cache configuration in the calling thread."""

    __slots__ = ("_config", "_servers")

    def __init__(self, config: CacheConfig) -> None:
        self._config = config
        self._servers = config.servers

    def run(self, operation: Operation[T], fallback: Any = None) -> T:
        """Run an operation to its result. In ignore-exceptions mode, a server that
        is down or slow gives ``fallback`` instead of an error."""
        try:
            request = operation.send(None)
            while True:
                try:
                    if type(request) is tuple:  # the common case, without a detour
                        reply = self._execute(request)
                    else:
                        reply = self._step(request)
                except ResponseError as exc:
                    request = operation.throw(exc)
                else:
                    request = operation.send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        except ConnectionInterrupted as exc:
            if not self._config.ignore_exceptions:
                raise
            log_ignored(self._config, operation, exc)
            return fallback  # type: ignore[no-any-return]

    def iterate(self, operation: Operation[None]) -> Iterator[Any]:
        """Run an operation that emits items, yielding them as they come."""
        try:
            request = operation.send(None)
            while True:
                if type(request) is Emit:
                    yield from request.items
                    reply = None
                else:
                    try:
                        reply = self._step(request)
                    except ResponseError as exc:
                        request = operation.throw(exc)
                        continue
                request = operation.send(reply)
        except StopIteration:
            return
        except ConnectionInterrupted as exc:
            if not self._config.ignore_exceptions:
                raise
            log_ignored(self._config, operation, exc)

    def _step(self, request: Request) -> Any:
        if isinstance(request, Offload):
            return request.function(*request.args)
        if isinstance(request, Sleep):
            return time.sleep(request.seconds)
        if isinstance(request, Emit):
            raise TypeError("An operation that emits items must be run with iterate().")
        return self._execute(request)

    def _execute(self, request: Request) -> Any:
        server = route(self._servers, request)
        leader = self._servers[0]
        if server is not leader:
            try:
                return _send(server, request)
            except CONNECTION_ERRORS:
                pass  # the replica is down or slow: the leader answers reads too
        try:
            return _send(leader, request)
        except CONNECTION_ERRORS as exc:
            error = translate(exc, str(leader))
            if error is exc:
                raise
            raise error from exc


def _send(server: Server, request: Any) -> Any:
    pool: redis.ConnectionPool = sync_pool(server)
    attempt = 0
    while True:
        connection: Any = pool.get_connection(*_CONNECTION_ARGS)
        try:
            if type(request) is Batch:
                connection.send_packed_command(connection.pack_commands(request))
                return _read_replies(connection, len(request))
            connection.send_packed_command(connection.pack_command(*request))
            return connection.read_response()
        except (ConnectionError, TimeoutError) as exc:
            attempt += 1
            if attempt > server.retries or (
                isinstance(exc, TimeoutError) and not server.retry_on_timeout
            ):
                raise
        finally:
            pool.release(connection)


def _read_replies(connection: Any, count: int) -> list[Any]:
    replies = []
    first_error = None
    for _ in range(count):
        try:
            replies.append(connection.read_response())
        except ResponseError as exc:
            replies.append(exc)
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return replies
