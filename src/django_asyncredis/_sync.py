"""The sync adapter: runs the same operations over sync redis-py connections.

No event loop and no thread: the operation generator is driven with ``send()``
right here, in the caller's thread. Called on an event loop's thread it blocks
that loop for one round trip, as Django's built-in backend does, and cannot
deadlock because it never waits for the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import redis
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from django_asyncredis._config import Server
from django_asyncredis._operations import Batch, Offload, Operation, Request, route
from django_asyncredis._pools import SYNC_GET_CONNECTION_NEEDS_NAME, sync_pool
from django_asyncredis.errors import CONNECTION_ERRORS, translate

T = TypeVar("T")

_CONNECTION_ARGS: tuple[str, ...] = ("_",) if SYNC_GET_CONNECTION_NEEDS_NAME else ()


class SyncAdapter:
    """Drives operations for one cache configuration in the calling thread."""

    __slots__ = ("_servers",)

    def __init__(self, servers: Sequence[Server]) -> None:
        self._servers = servers

    def run(self, operation: Operation[T]) -> T:
        try:
            request = operation.send(None)
            while True:
                try:
                    if type(request) is Offload:
                        reply = request.function(*request.args)
                    else:
                        reply = self._execute(request)
                except ResponseError as exc:
                    request = operation.throw(exc)
                else:
                    request = operation.send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

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
