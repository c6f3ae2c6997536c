"""The async core: runs operations over ``redis.asyncio`` connections.

No thread, no ``sync_to_async`` on the path of a command. The one exception is
``Offload``: a value Django refuses to serialize on the event loop (a lazy
QuerySet) is serialized in a thread, as Django itself would require.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from django_asyncredis._config import Server
from django_asyncredis._operations import Batch, Offload, Operation, Request, route
from django_asyncredis._pools import AsyncConnectionPool, async_pool
from django_asyncredis.errors import CONNECTION_ERRORS, translate

T = TypeVar("T")


class AsyncCore:
    """Drives operations for one cache configuration on the running event loop."""

    __slots__ = ("_servers",)

    def __init__(self, servers: Sequence[Server]) -> None:
        self._servers = servers

    async def run(self, operation: Operation[T]) -> T:
        try:
            request = operation.send(None)
            while True:
                try:
                    if type(request) is Offload:
                        reply = await sync_to_async(request.function)(*request.args)
                    else:
                        reply = await self._execute(request)
                except ResponseError as exc:
                    request = operation.throw(exc)
                else:
                    request = operation.send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _execute(self, request: Request) -> Any:
        server = route(self._servers, request)
        leader = self._servers[0]
        if server is not leader:
            try:
                return await _send(async_pool(server), request)
            except CONNECTION_ERRORS:
                pass  # the replica is down or slow: the leader answers reads too
        try:
            return await _send(async_pool(leader), request)
        except CONNECTION_ERRORS as exc:
            error = translate(exc, str(leader))
            if error is exc:
                raise
            raise error from exc


async def _send(pool: AsyncConnectionPool, request: Any) -> Any:
    """One round trip; a connection that turns out broken is replaced, boundedly."""
    server = pool.server
    attempt = 0
    while True:
        connection: Any = await pool.acquire()
        try:
            if type(request) is Batch:
                await connection.send_packed_command(connection.pack_commands(request))
                return await _read_replies(connection, len(request))
            await connection.send_packed_command(connection.pack_command(*request))
            return await connection.read_response()
        except (ConnectionError, TimeoutError) as exc:
            attempt += 1
            if attempt > server.retries or (
                isinstance(exc, TimeoutError) and not server.retry_on_timeout
            ):
                raise
        finally:
            pool.release(connection)


async def _read_replies(connection: Any, count: int) -> list[Any]:
    """Read every reply of a batch, even after an error reply, so the connection
    stays in step; then raise the first error."""
    replies = []
    first_error = None
    for _ in range(count):
        try:
            replies.append(await connection.read_response())
        except ResponseError as exc:
            replies.append(exc)
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return replies
