"""The async core: runs operations over ``redis.asyncio`` connections.

No thread, no ``sync_to_async`` on the path of a command. The one exception is
``Offload``: a value Django refuses to serialize on the event loop (a lazy
QuerySet) is serialized in a thread, as Django itself would require.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from django_asyncredis._config import CacheConfig
from django_asyncredis._operations import Batch, Emit, Offload, Operation, Request, Sleep, route
from django_asyncredis._pools import AsyncConnectionPool, async_pool
from django_asyncredis.errors import (
    CONNECTION_ERRORS,
    ConnectionInterrupted,
    log_ignored,
    translate,
)

T = TypeVar("T")


class AsyncCore:
    """Drives operations for one cache configuration on the running event loop."""

    __slots__ = ("_config", "_servers")

    def __init__(self, config: CacheConfig) -> None:
        self._config = config
        self._servers = config.servers

    async def run(self, operation: Operation[T], fallback: Any = None) -> T:
        """Run an operation to its result. In ignore-exceptions mode, a server that
        is down or slow gives ``fallback`` instead of an error."""
        try:
            request = operation.send(None)
            while True:
                try:
                    if type(request) is tuple:  # the common case, without a detour
                        reply = await self._execute(request)
                    else:
                        reply = await self._step(request)
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

    async def iterate(self, operation: Operation[None]) -> AsyncIterator[Any]:
        """Run an operation that emits items, yielding them as they come."""
        try:
            request = operation.send(None)
            while True:
                if type(request) is Emit:
                    for item in request.items:
                        yield item
                    reply = None
                else:
                    try:
                        reply = await self._step(request)
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

    async def _step(self, request: Request) -> Any:
        if isinstance(request, Offload):
            return await sync_to_async(request.function)(*request.args)
        if isinstance(request, Sleep):
            return await asyncio.sleep(request.seconds)
        if isinstance(request, Emit):
            raise TypeError("An operation that emits items must be run with iterate().")
        return await self._execute(request)

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
