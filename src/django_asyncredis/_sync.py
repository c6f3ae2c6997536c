"""The sync adapter: runs the same operations over sync redis-py connections.

No event loop and no thread: the operation generator is driven with ``send()``
right here, in the caller's thread. Called on an event loop's thread it blocks
that loop for one round trip, as Django's built-in backend does, and cannot
deadlock because it never waits for the loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from redis.exceptions import AskError, ConnectionError, MovedError, ResponseError, TimeoutError

from django_asyncredis import _routing
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
)
from django_asyncredis._pools import SYNC_GET_CONNECTION_NEEDS_NAME, sync_pool
from django_asyncredis._routing import Route, Send, SendEach
from django_asyncredis._topology import SentinelState
from django_asyncredis._wire import chunks, chunks_many
from django_asyncredis.errors import (
    CONNECTION_ERRORS,
    ConnectionInterrupted,
    raise_translated,
)

if TYPE_CHECKING:
    from django_asyncredis._stats import Meter

T = TypeVar("T")

_CONNECTION_ARGS: tuple[str, ...] = ("_",) if SYNC_GET_CONNECTION_NEEDS_NAME else ()


class SyncAdapter:
    """Drives operations for one cache configuration in the calling thread.

    Where a request goes is decided by ``_routing`` (pure), as for the async
    core; this driver only knows how to wait in a thread: ``_send`` (one round
    trip), ``time.sleep``, a fan-out sent node after node, and ``_pinned``.
    """

    __slots__ = ("_config", "_meter", "_single")

    def __init__(self, config: CacheConfig, meter: Meter | None = None) -> None:
        self._config = config
        #: Counts and traces each call (``_stats``); None when both are off.
        self._meter = meter
        #: The one server of a plain configuration (no replicas, no topology):
        #: its commands skip the routing generator, the hot path of a cache.
        self._single: Server | None = (
            config.servers[0] if config.topology is None and len(config.servers) == 1 else None
        )

    @property
    def meter(self) -> Meter | None:
        """What counts (and traces) this driver's calls (``_stats``), if anything."""
        return self._meter

    def run(self, operation: Operation[T], fallback: Any = None) -> T:
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
                            reply = _send(single, request)
                        except CONNECTION_ERRORS as exc:
                            raise_translated(exc, single)
                    elif kind is tuple:
                        reply = self._execute(request)
                    else:
                        reply = self._step(request)
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

    def iterate(self, operation: Operation[None]) -> Iterator[Any]:
        """Run an operation that emits items, yielding them as they come."""
        meter = self._meter
        started: Any = meter.begin(operation) if meter is not None else None
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

    def _step(self, request: Request) -> Any:
        if isinstance(request, Offload):
            return request.function(*request.args)
        if isinstance(request, Sleep):
            return time.sleep(request.seconds)
        if isinstance(request, Emit):
            raise TypeError("An operation that emits items must be run with iterate().")
        if request is PRIMARIES:
            return _drive(_routing.primaries(self._config))
        if isinstance(request, OnServer):
            return _drive(_routing.on_server(self._config, request.server, request.command))
        if isinstance(request, Pinned):
            return self._pinned(request)
        return self._execute(request)

    def _execute(self, request: Request) -> Any:
        """A command, an ``OnPrimary`` command or a ``Batch``, routed to its reply."""
        return _drive(_routing.execute(self._config, request))

    def _pinned(self, request: Pinned) -> Any:
        """Run a nested operation on one connection to the key's primary, taken out
        of the pool for its duration; nothing is re-sent. Ended by an exception,
        the connection is closed rather than pooled, so no WATCH or MULTI state
        reaches the next caller."""
        server = _drive(_routing.primary_for(self._config, request.key))
        pool = sync_pool(server)
        connection: Any = pool.get_connection(*_CONNECTION_ARGS)
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
                    reply = _exchange(connection, step)
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
                connection.disconnect()
            pool.release(connection)

    def _resolve_primary(self, state: SentinelState) -> Server:
        """Where a Sentinel service's primary is now (for the raw clients)."""
        return _drive(_routing.resolve_primary(state))


def _drive(route: Route[T]) -> T:
    """Run a routing generator: its sends go through ``_send``, a fan-out's one
    after the other; each reply or error goes back into it."""
    try:
        step = route.send(None)
        while True:
            try:
                if type(step) is Send:
                    reply: Any = _send(step.server, step.request)
                elif type(step) is SendEach:
                    reply = [_send_or_error(each) for each in step.sends]
                else:
                    assert type(step) is Sleep
                    time.sleep(step.seconds)
                    reply = None
            except Exception as exc:
                step = route.throw(exc)
            else:
                step = route.send(reply)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def _send_or_error(each: Send) -> Any:
    """One round trip of a fan-out: its error is its answer, the others still run."""
    try:
        return _send(each.server, each.request)
    except Exception as exc:
        return exc


def _send(server: Server, request: Any) -> Any:
    """One round trip to ``server``: the sync driver's one way to reach a server
    outside ``Pinned``, with the same contract and retry rule as the async
    core's ``_send``.

    redis-py's pool checks each connection at checkout (``can_read()``: one
    ``poll`` on the socket) and reconnects one the server closed while idle,
    before anything is written.
    """
    pool: redis.ConnectionPool = sync_pool(server)
    attempt = 0
    while True:
        connection: Any = pool.get_connection(*_CONNECTION_ARGS)
        try:
            if type(request) is Batch:
                connection.send_packed_command(chunks_many(connection, request))
                return _read_replies(connection, len(request))
            connection.send_packed_command(chunks(connection, request))
            return connection.read_response()
        except (ConnectionError, TimeoutError) as exc:
            attempt += 1
            if isinstance(exc, TimeoutError) and not server.retry_on_timeout:
                raise_unanswered(server, request, exc)
            if attempt > server.retries or not may_resend(request):
                raise_unanswered(server, request, exc)
        finally:
            pool.release(connection)


def _exchange(connection: Any, request: Any) -> Any:
    """One round trip on a connection the caller holds (``Pinned``): no retry."""
    if type(request) is Batch:
        connection.send_packed_command(chunks_many(connection, request))
        return _read_replies(connection, len(request))
    connection.send_packed_command(chunks(connection, request))
    return connection.read_response()


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
        # Every reply, errors in place, for the cache pipeline (one failed call
        # must not hide the others' results).
        first_error.batch_replies = replies  # type: ignore[attr-defined]
        raise first_error
    return replies
