"""The async core: runs operations over ``redis.asyncio`` connections.

No thread, no ``sync_to_async`` on the path of a command. The one exception is
``Offload``: a value Django refuses to serialize on the event loop (a lazy
QuerySet) is serialized in a thread, as Django itself would require.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeVar

from asgiref.sync import sync_to_async
from redis.exceptions import AskError, ConnectionError, MovedError, ResponseError, TimeoutError

from django_asyncredis import _multiplex, _routing
from django_asyncredis._config import CacheConfig, Server, log_ignored
from django_asyncredis._idempotency import may_resend, raise_unanswered
from django_asyncredis._operations import (
    PRIMARIES,
    Batch,
    Emit,
    Offload,
    OnServer,
    Operation,
    Pinned,
    Request,
    Sleep,
    raise_batch_errors,
)
from django_asyncredis._pools import AsyncConnectionPool, async_pool
from django_asyncredis._routing import Route, Send, SendEach
from django_asyncredis._topology import SentinelState
from django_asyncredis._wire import pack as _pack
from django_asyncredis._wire import pack_many as _pack_many
from django_asyncredis.errors import (
    CONNECTION_ERRORS,
    ConnectionInterrupted,
    raise_translated,
)

if TYPE_CHECKING:
    from django_asyncredis._stats import Meter

T = TypeVar("T")


class AsyncCore:
    """Drives operations for one cache configuration on the running event loop.

    Where a request goes is decided by ``_routing`` (pure); this driver only
    knows how to wait on asyncio: ``_send`` (one round trip to a server),
    ``asyncio.sleep``, ``asyncio.gather`` for a per-node fan-out, and ``_pinned``
    (a nested operation on one dedicated connection).
    """

    __slots__ = ("_config", "_meter", "_multiplexed", "_single", "_single_pool")

    def __init__(self, config: CacheConfig, meter: Meter | None = None) -> None:
        self._config = config
        #: Counts and traces each call (``_stats``); None when both are off.
        self._meter = meter
        #: The one server of a plain configuration (no replicas, no topology):
        #: its commands skip the routing generator, the hot path of a cache.
        self._single: Server | None = (
            config.servers[0] if config.topology is None and len(config.servers) == 1 else None
        )
        self._multiplexed = self._single is not None and self._single.transport == "multiplexed"
        #: (loop, pool) of the single server last used: the registry lookup
        #: (``async_pool``) was a sixth of a ``get``'s cost at 64 tasks.
        self._single_pool: tuple[asyncio.AbstractEventLoop, AsyncConnectionPool] | None = None

    @property
    def meter(self) -> Meter | None:
        """What counts (and traces) this driver's calls (``_stats``), if anything."""
        return self._meter

    async def run(self, operation: Operation[T], fallback: Any = None) -> T:
        """Run an operation to its result. In ignore-exceptions mode, a server that
        is down or slow gives ``fallback`` instead of an error."""
        meter = self._meter
        started: Any = meter.begin(operation) if meter is not None else None
        single = self._single
        try:
            request = operation.send(None)
            while True:
                try:
                    kind = type(request)
                    if single is not None and (kind is tuple or kind is Batch):
                        try:  # the common case, without a detour
                            loop = asyncio.get_running_loop()
                            last = self._single_pool
                            if last is not None and last[0] is loop and not last[1].closed:
                                pool = last[1]  # (inline: a method call was 1% of a get)
                            else:
                                pool = self._pool_of_single(loop)
                            if self._multiplexed:
                                # A command put on the shared connection is awaited
                                # right here, without a coroutine of its own; ``send``
                                # otherwise, and to retry a failure by its rule.
                                sent = _multiplex.submit_now(pool, request)
                                try:
                                    reply = await (
                                        sent or _multiplex.send(pool, request, _send_pooled)
                                    )
                                except _multiplex.SEND_FAILURES as exc:
                                    if sent is None:
                                        raise
                                    reply = await _multiplex.send(pool, request, _send_pooled, exc)
                                else:
                                    if sent is not None and kind is Batch:
                                        raise_batch_errors(reply)
                            else:
                                reply = await _send_pooled(pool, request)
                        except CONNECTION_ERRORS as exc:
                            raise_translated(exc, single)
                    elif kind is tuple:
                        reply = await self._execute(request)
                    else:
                        reply = await self._step(request)
                except ResponseError as exc:
                    request = operation.throw(exc)
                else:
                    request = operation.send(reply)
        except StopIteration as stop:
            if meter is not None:
                meter.end(started, stop.value, fallback)
            return stop.value  # type: ignore[no-any-return]
        except ConnectionInterrupted as exc:
            if not self._config.ignore_exceptions:
                if meter is not None:
                    meter.failed(started, exc)
                raise
            log_ignored(self._config, operation, exc)
            if meter is not None:
                meter.ignored(started)
            return fallback  # type: ignore[no-any-return]
        except BaseException as exc:
            if meter is not None:
                meter.failed(started, exc)
            raise

    def _pool_of_single(self, loop: asyncio.AbstractEventLoop) -> AsyncConnectionPool:
        """The single server's pool on the running ``loop``, remembered in
        ``_single_pool`` (which ``run`` reads first) until the loop changes or the
        pool is closed: ``aclose_all``, the loop's end."""
        assert self._single is not None
        pool = async_pool(self._single)
        self._single_pool = (loop, pool)
        return pool

    async def iterate(self, operation: Operation[None]) -> AsyncIterator[Any]:
        """Run an operation that emits items, yielding them as they come."""
        meter = self._meter
        started: Any = meter.begin(operation) if meter is not None else None
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
            pass
        except ConnectionInterrupted as exc:
            if not self._config.ignore_exceptions:
                if meter is not None:
                    meter.failed(started, exc)
                raise
            log_ignored(self._config, operation, exc)
        except BaseException as exc:
            if meter is not None:
                meter.failed(started, exc)
            raise
        if meter is not None:
            meter.end(started, None, None)

    async def _step(self, request: Request) -> Any:
        if isinstance(request, Offload):
            return await sync_to_async(request.function)(*request.args)
        if isinstance(request, Sleep):
            return await asyncio.sleep(request.seconds)
        if isinstance(request, Emit):
            raise TypeError("An operation that emits items must be run with iterate().")
        if request is PRIMARIES:
            return await _drive(_routing.primaries(self._config))
        if isinstance(request, OnServer):
            return await _drive(_routing.on_server(self._config, request.server, request.command))
        if isinstance(request, Pinned):
            return await self._pinned(request)
        return await self._execute(request)

    async def _execute(self, request: Request) -> Any:
        """A command, an ``OnPrimary`` command or a ``Batch``, routed to its reply."""
        return await _drive(_routing.execute(self._config, request))

    async def _pinned(self, request: Pinned) -> Any:
        """Run a nested operation on one connection to the key's primary, taken out
        of the pool for its duration; nothing is re-sent. Ended by an exception or
        a cancellation, the connection is closed rather than pooled, so no WATCH or
        MULTI state reaches the next caller."""
        server = await _drive(_routing.primary_for(self._config, request.key))
        pool = async_pool(server)
        connection: Any = await pool.acquire()
        operation = request.operation
        finished = stray = False
        strays = _routing.stray_guard(self._config, server)
        try:
            step = operation.send(None)
            while True:
                if strays is not None and strays(step):
                    stray = True  # the connection may hold a WATCH: not pooled again
                    step = operation.throw(_routing.cross_shard_error())
                    continue
                try:
                    reply = await _exchange(connection, step, pool.command_timeout)
                except ResponseError as exc:
                    step = operation.throw(exc)
                else:
                    step = operation.send(reply)
        except StopIteration as stop:
            finished = not stray
            return stop.value
        except CONNECTION_ERRORS as exc:
            _routing.forget_topology(self._config)
            raise_translated(exc, server)
        except (MovedError, AskError):
            _routing.forget_topology(self._config)  # the operation may start over
            raise
        finally:
            if not finished:
                await connection.disconnect(nowait=True)  # closes at once, cannot be interrupted
            pool.release(connection)

    async def _resolve_primary(self, state: SentinelState) -> Server:
        """Where a Sentinel service's primary is now (for the raw clients)."""
        return await _drive(_routing.resolve_primary(state))


async def _drive(route: Route[T]) -> T:
    """Run a routing generator: its sends go through ``_send``, all at once for a
    fan-out; each reply or error goes back into it."""
    try:
        step = route.send(None)
        while True:
            try:
                if type(step) is Send:
                    reply: Any = await _send(step.server, step.request)
                elif type(step) is SendEach:
                    reply = await asyncio.gather(
                        *(_send(each.server, each.request) for each in step.sends),
                        return_exceptions=True,
                    )
                else:
                    assert type(step) is Sleep
                    await asyncio.sleep(step.seconds)
                    reply = None
            except Exception as exc:
                step = route.throw(exc)
            else:
                step = route.send(reply)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def _send(server: Server, request: Any) -> Any:
    """One round trip to ``server``; a connection that turns out broken is
    replaced, boundedly.

    The seam between routing and transport: every request of the async driver
    that is not ``Pinned`` goes through here, and only here, on the transport the
    server's ``transport`` option selects (``_multiplex``, or a pooled connection).
    Each keeps the same contract: it returns the reply (a list of replies for a ``Batch``);
    raises redis-py's ``ConnectionError``/``TimeoutError`` for a round trip that
    failed, ``ResponseError`` for an error reply (for a ``Batch``, the first one,
    carrying every reply as ``batch_replies``), and our ``ReplyLostError`` when a
    request that may have reached the server cannot be sent again; and it
    enforces ``socket_timeout`` once per round trip.
    """
    pool = async_pool(server)
    if server.transport == "multiplexed":
        return await _multiplex.send(pool, request, _send_pooled)
    return await _send_pooled(pool, request)


async def _send_pooled(pool: AsyncConnectionPool, request: Any) -> Any:
    """One round trip on a pooled connection; one that turns out broken is replaced,
    boundedly.

    A request that failed on a broken connection is sent again (up to the
    ``retries`` option) only if ``may_resend`` says a second execution cannot be
    told from one: the server may have executed it before the connection broke.
    Connections the server closed while idle are skipped at checkout, before
    anything is written, whatever the command.

    ``socket_timeout`` is enforced here, once per round trip, rather than by
    redis-py around every socket operation: on Python 3.11 its ``wait_for``
    costs a task per write (measured: up to 1.5x throughput at 64 tasks). A
    round trip cut short closes its connection (redis-py does so on any
    interruption), so its late reply is never read by anyone.
    """
    server = pool.server
    attempt = 0
    while True:
        connection: Any = await pool.acquire()
        try:
            async with asyncio.timeout(pool.command_timeout):
                if type(request) is Batch:
                    await connection.send_packed_command(_pack_many(connection, request))
                    return await _read_replies(connection, len(request))
                await connection.send_packed_command(_pack(connection, request))
                return await connection.read_response()
        except builtins.TimeoutError:
            attempt += 1
            timeout = TimeoutError(f"Timeout reading from {server}")
            if not server.retry_on_timeout:
                raise_unanswered(server, request, timeout)
            if attempt > server.retries or not may_resend(request):
                raise_unanswered(server, request, timeout)
        except (ConnectionError, TimeoutError) as exc:
            attempt += 1
            if isinstance(exc, TimeoutError) and not server.retry_on_timeout:
                raise_unanswered(server, request, exc)
            if attempt > server.retries or not may_resend(request):
                raise_unanswered(server, request, exc)
        finally:
            pool.release(connection)


async def _exchange(connection: Any, request: Any, deadline: float | None) -> Any:
    """One round trip on a connection the caller holds (``Pinned``): no retry."""
    try:
        async with asyncio.timeout(deadline):
            if type(request) is Batch:
                await connection.send_packed_command(_pack_many(connection, request))
                return await _read_replies(connection, len(request))
            await connection.send_packed_command(_pack(connection, request))
            return await connection.read_response()
    except builtins.TimeoutError:
        raise TimeoutError(f"Timeout reading from {connection.host}:{connection.port}") from None


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
        # Every reply, errors in place, for the cache pipeline (one failed call
        # must not hide the others' results).
        first_error.batch_replies = replies  # type: ignore[attr-defined]
        raise first_error
    return replies
