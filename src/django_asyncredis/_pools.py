"""Connection pools, shared process-wide and never across event loops or processes.

Why a registry and not a pool per backend: Django's cache handler builds a new
backend instance per async context under ASGI (an asgiref ``Local``), so a pool
owned by the backend would open connections on every request. Pools are kept
here instead, keyed by server settings (and, for asyncio, by event loop: an
asyncio connection belongs to the loop that opened it).

Lifecycle:

- When a loop shuts down through ``asyncio.run``, ``asyncio.Runner``, uvicorn,
  pytest-asyncio or asgiref's ``async_to_sync`` (all of which call
  ``loop.shutdown_asyncgens()``), the loop's pools are closed cleanly by a
  watcher registered as an async generator of that loop.
- A loop closed without ``shutdown_asyncgens()`` (``new_event_loop()`` /
  ``run_until_complete()`` / ``close()``, as Celery tasks and older code do) never
  runs its watcher: its pools are closed the next time any loop registers here,
  without that loop (see ``_close_abandoned``). Until then they are at most the
  pools of the loops closed since the last registration.
- After ``os.fork()`` the child forgets the parent's pools (without touching
  their sockets, which the parent still uses), re-creates the registry's locks
  (another thread may have held one at the fork) and opens its own.
- ``aclose_all()`` closes the running loop's pools and the sync pools, for an
  ASGI lifespan shutdown hook.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import inspect
import os
import queue
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import redis
import redis.asyncio
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from django_asyncredis._config import CacheConfig, Server
from django_asyncredis.errors import PoolTimeoutError

#: The connections a pool holds (SSLConnection is a Connection): the classes
#: ``redis.asyncio`` exports, rather than their undocumented common base.
AsyncConnection = redis.asyncio.Connection | redis.asyncio.UnixDomainSocketConnection

# redis-py connects once per attempt; retrying is the driver's job (bounded,
# documented), not redis-py's default of several attempts with backoff.
_NO_RETRY_ARGS = {"retry": Retry(NoBackoff(), 0)}
# The operations decode RESP2 replies, whatever redis-py's default protocol
# (RESP3 since redis-py 8): pinned, so reply shapes never depend on its version.
_CORE_ARGS = {**_NO_RETRY_ARGS, "protocol": 2}


def _parser_kwargs(server: Server, *, asynchronous: bool) -> dict[str, Any]:
    if server.parser == "default":
        return {}
    from redis._parsers import (  # private module, but the only home of these classes
        _AsyncHiredisParser,
        _AsyncRESP2Parser,
        _HiredisParser,
        _RESP2Parser,
    )

    if server.parser == "hiredis":
        return {"parser_class": _AsyncHiredisParser if asynchronous else _HiredisParser}
    return {"parser_class": _AsyncRESP2Parser if asynchronous else _RESP2Parser}


def peer_is_open(connection: AsyncConnection) -> bool:
    """Whether a connection may still carry a command: connected, and the server
    has not closed it (idle ``timeout``, ``CLIENT KILL``, a proxy's idle cut).

    No system call: the event loop has already fed the server's FIN (or reset) to
    the connection's ``asyncio.StreamReader``, whose public ``at_eof()`` and
    ``exception()`` tell it. redis-py keeps that reader in the private
    ``_reader`` (documented in docs/design.md; ``test_connections.py`` fails
    clearly if it disappears). A FIN that arrived in the loop iteration now
    running is not seen yet: ``_send`` covers that case.
    """
    reader: asyncio.StreamReader | None = connection._reader  # None once disconnected
    return reader is not None and not reader.at_eof() and reader.exception() is None


class AsyncConnectionPool:
    """A pool of ``redis.asyncio`` connections for one server on one event loop.

    Lean on purpose: taking and returning a connection are plain list
    operations with no lock (one loop, one thread), returning never awaits (so
    it cannot be interrupted by a cancellation), and a caller that finds every
    connection busy waits in line for one, up to ``pool_timeout``, instead of
    failing with "Too many connections".

    A connection interrupted mid-command (cancelled, timed out) is closed by
    redis-py before the exception leaves it; ``release`` then drops it, so its
    pending reply can never be read by the next caller.
    """

    def __init__(self, server: Server, counts: PoolCounts | None = None) -> None:
        self.server = server
        #: Gauge counters (``pool_gauges``): kept by the loop per server, so they
        #: outlive a pool closed by CLOSE_CONNECTION and go on in its successor.
        self.counts = PoolCounts() if counts is None else counts
        kwargs = server.connection_kwargs()
        kwargs.update(_CORE_ARGS)
        kwargs.update(_parser_kwargs(server, asynchronous=True))
        # The core enforces the reply timeout once per round trip (see _core._send).
        self.command_timeout: float | None = kwargs.get("socket_timeout")
        kwargs["socket_timeout"] = None  # explicitly: absent, redis-py 8 applies its own 5 s
        connect = kwargs.get("socket_connect_timeout")
        self._connect_deadline = (
            None
            if connect is None or self.command_timeout is None
            else connect + self.command_timeout
        )
        if server.scheme == "unix":
            self._connection_class: type[AsyncConnection] = redis.asyncio.UnixDomainSocketConnection
        elif server.scheme == "rediss":
            self._connection_class = redis.asyncio.SSLConnection
        else:
            self._connection_class = redis.asyncio.Connection
        self._kwargs = kwargs
        self._idle: list[AsyncConnection] = []
        self._opened = 0
        self._waiters: collections.deque[asyncio.Future[AsyncConnection | None]] = (
            collections.deque()
        )
        #: Closed (CLOSE_CONNECTION, the loop's end): connections given back are
        #: closed. (An attribute, not a property: read on every async call.)
        self.closed = False
        #: The multiplexed transport's shared connections (``_multiplex.Multiplexer``), if used.
        self.shared: Any = None

    async def acquire(self) -> AsyncConnection:
        idle = self._idle
        while idle:
            connection = idle.pop()
            if peer_is_open(connection):
                return connection
            self._opened -= 1  # the server closed it while idle (timeout, CLIENT KILL...)
            self.counts.closed_total += 1
            if connection.is_connected:
                connection._close()  # type: ignore[no-untyped-call]
        if self._opened < self.server.max_connections:
            return await self._open()
        return await self._wait()

    async def _open(self) -> AsyncConnection:
        self._opened += 1
        try:
            return await self.open_unpooled()
        except BaseException:
            self._opened -= 1
            self._hand_over(None)
            raise

    async def open_unpooled(self) -> AsyncConnection:
        """A connection opened with the pool's settings, not counted in it (the
        multiplexed transport's shared connection)."""
        connection = self._connection_class(**self._kwargs)
        try:
            # The handshake (AUTH, SELECT, CLIENT SETINFO) waits for replies too.
            async with asyncio.timeout(self._connect_deadline):
                await connection.connect()  # type: ignore[no-untyped-call]
        except TimeoutError:
            await connection.disconnect(nowait=True)
            raise redis.exceptions.TimeoutError(f"Timeout connecting to {self.server}") from None
        except BaseException:
            await connection.disconnect(nowait=True)
            raise
        self.counts.opened_total += 1
        return connection

    async def _wait(self) -> AsyncConnection:
        waiter: asyncio.Future[AsyncConnection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.server.pool_timeout):
                connection = await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                # Interrupted just after a connection (or a slot) was handed to us:
                # pass it on rather than lose it.
                handed = waiter.result()
                if handed is not None:
                    self.release(handed)
                else:
                    self._opened -= 1
                    self._hand_over(None)
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):  # _hand_over may have dropped it
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise PoolTimeoutError(
                    f"No connection to {self.server} became free within "
                    f"{self.server.pool_timeout} s "
                    f"(max_connections={self.server.max_connections})."
                ) from None
            raise
        finally:
            self.counts.waited_total += 1
            self.counts.wait_seconds_total += time.perf_counter() - started
        if connection is None:  # a slot freed up: open a connection in it
            return await self._open_in_freed_slot()
        return connection

    async def _open_in_freed_slot(self) -> AsyncConnection:
        self._opened -= 1  # the slot was reserved for us by _hand_over
        return await self._open()

    def _hand_over(self, connection: AsyncConnection | None) -> bool:
        """Give a connection (or, with None, a free slot) to the first live waiter."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                if connection is None:
                    self._opened += 1  # reserve the slot until the waiter opens it
                waiter.set_result(connection)
                return True
        return False

    def release(self, connection: AsyncConnection) -> None:
        """Return a connection; synchronous, so a cancellation cannot interrupt it."""
        if self.closed or not connection.is_connected:
            self._opened -= 1
            self.counts.closed_total += 1
            if connection.is_connected:
                connection._close()  # type: ignore[no-untyped-call]
            self._hand_over(None)
        elif not self._hand_over(connection):
            self._idle.append(connection)

    async def aclose(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        self._opened -= len(idle)
        self.counts.closed_total += len(idle)
        for connection in idle:
            await connection.disconnect()  # waits until closed: aclose() means closed
        shared, self.shared = self.shared, None
        if shared is not None:
            await shared.aclose()  # once the callers waiting on it have their replies

    def abandon(self) -> None:
        """Close the idle connections of a pool whose event loop is closed."""
        self.closed = True
        idle, self._idle = self._idle, []
        self._opened -= len(idle)
        self.counts.closed_total += len(idle)
        for connection in idle:
            _close_abandoned(connection)
        shared, self.shared = self.shared, None
        if shared is not None:
            for transport in shared.transports():
                _close_abandoned_transport(transport)

    def gauges(self) -> PoolGauges:
        """A snapshot of this pool's gauges (the shared connections counted in use)."""
        idle = len(self._idle)
        shared = 0 if self.shared is None else self.shared.open_count()
        return self.counts.gauges(
            self.server, self._opened - idle + shared, idle, len(self._waiters), shared
        )


class PoolCounts:
    """What one server's async pools on one loop counted so far: where connections
    open and close and where callers wait, never per command (the multiplexed
    transport's shared connection included)."""

    __slots__ = ("closed_total", "opened_total", "wait_seconds_total", "waited_total")

    def __init__(self) -> None:
        self.opened_total = 0
        self.closed_total = 0
        self.waited_total = 0
        self.wait_seconds_total = 0.0

    def gauges(
        self, server: Server, in_use: int, idle: int, waiters: int, shared: int
    ) -> PoolGauges:
        return PoolGauges(
            api="async",
            server=str(server),
            in_use=in_use,
            idle=idle,
            waiters=waiters,
            waited_total=self.waited_total,
            wait_seconds_total=self.wait_seconds_total,
            opened_total=self.opened_total,
            closed_total=self.closed_total,
            shared=shared,
        )


@dataclasses.dataclass
class PoolGauges:
    """One pool's gauges at one instant (``_stats.PoolGauges``): connections in use
    and idle, callers waiting now, waits so far and their total time, connections
    opened and closed so far. ``shared`` is the multiplexed transport's connections
    open now (0 up to ``shared_connections``, counted in ``in_use``); the sync pools
    have none."""

    api: str
    server: str
    in_use: int
    idle: int
    waiters: int
    waited_total: int
    wait_seconds_total: float
    opened_total: int
    closed_total: int
    shared: int = 0


def pool_gauges(server: Server) -> Iterator[PoolGauges]:
    """The gauges of every pool open for ``server`` in this process: one per event
    loop, then the sync pool's. Safe from any thread (copies, no awaiting)."""
    with _registry_lock:
        entries = list(_async_pools.values())
    for entry in entries:
        pool = dict(entry.pools).get(server)
        counts = dict(entry.counts).get(server)
        if pool is not None:
            yield pool.gauges()
        elif counts is not None:  # closed by CLOSE_CONNECTION, not reopened yet
            yield counts.gauges(server, 0, 0, 0, 0)
    sync_counts = _sync_counts.get(server)
    if sync_counts is not None:
        yield sync_counts.gauges()


class _LoopPools:
    """The pools of one event loop, and the watcher that closes them with it."""

    def __init__(self) -> None:
        self.pools: dict[Server, AsyncConnectionPool] = {}
        self.counts: dict[Server, PoolCounts] = {}
        self.raw_pools: dict[Server, redis.asyncio.ConnectionPool] = {}
        self.watcher: AsyncGenerator[None, None] | None = None
        self.abandoned = False

    async def aclose(self) -> None:
        for pool in list(self.pools.values()):
            await pool.aclose()
        for raw in list(self.raw_pools.values()):
            await raw.aclose()

    def abandon(self) -> None:
        """The loop was closed without ``shutdown_asyncgens()``: close what it left
        here, synchronously, and finish the watcher so that its collection does
        not ask the closed loop to run it (which would fail)."""
        self.abandoned = True
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            closing = watcher.aclose()
            with contextlib.suppress(StopIteration):  # its finally sees `abandoned`
                closing.send(None)
        for pool in self.pools.values():
            pool.abandon()
        for raw in self.raw_pools.values():
            # redis-py's asyncio pool has no synchronous close: its lists, privately.
            for connection in [*raw._available_connections, *raw._in_use_connections]:
                _close_abandoned(connection)


def _close_abandoned(connection: Any) -> None:
    """Close a connection whose event loop is closed, without a ResourceWarning.

    Its transport can no longer close itself: ``abort()`` marks it closing, then
    fails to schedule the rest on the closed loop. The rest (close the socket) is
    done here through asyncio's private ``_call_connection_lost``; redis-py's
    ``_reader``/``_writer`` are cleared so that its ``__del__`` finds nothing
    open. Every private name is listed in docs/design.md and exercised by
    ``test_loops.py``. A transport without that method (uvloop's, whose
    ``loop.close()`` has closed every socket of the loop already) needs nothing more.
    """
    writer = connection._writer
    connection._reader = connection._writer = None
    if writer is not None:
        _close_abandoned_transport(writer.transport)


def _close_abandoned_transport(transport: Any) -> None:
    """Close a transport whose event loop is closed (see ``_close_abandoned``)."""
    with contextlib.suppress(RuntimeError):  # "Event loop is closed"
        transport.abort()
    ssl_protocol = getattr(transport, "_ssl_protocol", None)
    socket_transport = transport if ssl_protocol is None else ssl_protocol._transport
    finish = getattr(socket_transport, "_call_connection_lost", None)
    if finish is not None and socket_transport.get_extra_info("socket") is not None:
        with contextlib.suppress(RuntimeError):  # the protocol's callbacks: same loop
            finish(None)


_async_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPools] = (
    weakref.WeakKeyDictionary()
)
_sync_pools: dict[Server, redis.ConnectionPool] = {}
_sync_counts: dict[Server, _SyncCounts] = {}
_sync_lock = threading.Lock()
#: Guards registering a loop and sweeping closed ones (rare: once per loop).
_registry_lock = threading.Lock()
_forsaken: list[Any] = []  # the parent's pools, kept alive in a child so GC won't close them


async def _close_with_loop(
    loop: asyncio.AbstractEventLoop, entry: _LoopPools
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if not entry.abandoned:  # abandoned: closed already, and the loop cannot run
            if _async_pools.get(loop) is entry:
                del _async_pools[loop]
            await entry.aclose()


def _watch(loop: asyncio.AbstractEventLoop, entry: _LoopPools) -> None:
    """Register an async generator with the running loop; its ``finally`` runs at
    ``loop.shutdown_asyncgens()`` while the loop can still close sockets."""
    watcher = _close_with_loop(loop, entry)
    step = watcher.asend(None)  # the loop's first-iteration hook registers it
    with contextlib.suppress(StopIteration):  # it ran to its first yield
        step.send(None)
    entry.watcher = watcher  # the loop only holds a weak reference


def _loop_pools() -> _LoopPools:
    loop = asyncio.get_running_loop()
    entry = _async_pools.get(loop)
    if entry is None:
        with _registry_lock:
            _abandon_closed_loops()
            entry = _async_pools[loop] = _LoopPools()
        _watch(loop, entry)
    return entry


def _abandon_closed_loops() -> None:
    """Close the pools of loops closed without ``shutdown_asyncgens()``.

    Run when a loop registers (once per loop, so nothing on the path of a
    command). Such an entry would otherwise live for ever: its watcher, an async
    generator, holds the loop's finalizer hook, hence the loop, its weak key.
    """
    for loop, entry in list(_async_pools.items()):
        if loop.is_closed():
            del _async_pools[loop]
            entry.abandon()


def async_pool(server: Server) -> AsyncConnectionPool:
    """The pool for ``server`` on the running event loop."""
    entry = _loop_pools()
    pool = entry.pools.get(server)
    if pool is None:
        counts = entry.counts.setdefault(server, PoolCounts())
        pool = entry.pools[server] = AsyncConnectionPool(server, counts)
    return pool


def raw_async_pool(server: Server) -> redis.asyncio.ConnectionPool:
    """A redis-py asyncio pool for raw clients (``aget_redis_connection``) on the
    running loop; closed with the loop like ours."""
    entry = _loop_pools()
    pool = entry.raw_pools.get(server)
    if pool is None:
        kwargs = server.connection_kwargs()
        kwargs.update(_NO_RETRY_ARGS)
        kwargs.update(_parser_kwargs(server, asynchronous=True))
        if server.scheme == "unix":
            kwargs["connection_class"] = redis.asyncio.UnixDomainSocketConnection
        elif server.scheme == "rediss":
            kwargs["connection_class"] = redis.asyncio.SSLConnection
        pool = entry.raw_pools[server] = redis.asyncio.BlockingConnectionPool(
            max_connections=server.max_connections, timeout=server.pool_timeout, **kwargs
        )
    return pool


def sync_pool(server: Server) -> redis.ConnectionPool:
    """The process-wide sync pool for ``server`` (redis-py's pools are thread-safe
    and reset themselves in a forked child)."""
    pool = _sync_pools.get(server)
    if pool is None:
        with _sync_lock:
            pool = _sync_pools.get(server)
            if pool is None:
                pool = _sync_pools[server] = _new_sync_pool(server)
    return pool


def _new_sync_pool(server: Server) -> redis.ConnectionPool:
    kwargs = server.connection_kwargs()
    kwargs.update(_CORE_ARGS)
    kwargs.update(_parser_kwargs(server, asynchronous=False))
    if server.scheme == "unix":
        kwargs["connection_class"] = redis.UnixDomainSocketConnection
    elif server.scheme == "rediss":
        kwargs["connection_class"] = redis.SSLConnection
    pool_class = server.sync_pool_class or redis.BlockingConnectionPool
    if issubclass(pool_class, redis.BlockingConnectionPool):
        counts = _sync_counts[server] = _SyncCounts(server)
        kwargs["timeout"] = server.pool_timeout
        kwargs["queue_class"] = functools.partial(_WaitLine, server, counts)
        base = kwargs.get("connection_class", redis.Connection)
        kwargs["connection_class"] = type(
            f"Counted{base.__name__}", (_CountsConnections, base), {"_counts": counts}
        )
    return pool_class(max_connections=server.max_connections, **kwargs)


class _SyncCounts:
    """The gauges of one sync pool: counted when a connection opens or closes and
    when a caller has to wait, under a lock taken on those paths only."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.opened_total = 0
        self.closed_total = 0
        self.waiters = 0
        self.waited_total = 0
        self.wait_seconds_total = 0.0
        self.line: _WaitLine | None = None

    def gauges(self) -> PoolGauges:
        line = self.line
        idle = line.idle_connected() if line is not None else 0
        with self.lock:
            open_now = self.opened_total - self.closed_total
            return PoolGauges(
                api="sync",
                server=str(self.server),
                in_use=max(open_now - idle, 0),
                idle=idle,
                waiters=self.waiters,
                waited_total=self.waited_total,
                wait_seconds_total=self.wait_seconds_total,
                opened_total=self.opened_total,
                closed_total=self.closed_total,
            )


class _CountsConnections:
    """Mixed into the sync pool's connection class: counts it opened (through
    redis-py's public connect callback) and closed (its public ``disconnect``)."""

    _counts: _SyncCounts
    _counted_open = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register_connect_callback(self._count_open)  # type: ignore[attr-defined]

    def _count_open(self, connection: Any) -> None:
        self._counted_open = True
        with self._counts.lock:
            self._counts.opened_total += 1

    def disconnect(self, *args: Any, **kwargs: Any) -> None:
        super().disconnect(*args, **kwargs)  # type: ignore[misc]
        if self._counted_open:
            self._counted_open = False
            with self._counts.lock:
                self._counts.closed_total += 1


class _WaitLine(queue.LifoQueue[Any]):
    """The queue redis-py's ``BlockingConnectionPool`` waits on for a free
    connection (its documented ``queue_class``). When that wait times out redis-py
    raises a bare ``ConnectionError``, which only its message tells apart from a
    refused connection; raising ``PoolTimeoutError`` from the wait itself lets
    everything above match the type."""

    def __init__(self, server: Server, counts: _SyncCounts, maxsize: int) -> None:
        super().__init__(maxsize)
        self._server = server
        self._counts = counts
        counts.line = self

    def idle_connected(self) -> int:
        """Connections given back and still connected (the rest are free slots)."""
        with self.mutex:
            return sum(1 for item in self.queue if item is not None and item.is_connected)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        try:
            return super().get(False)
        except queue.Empty:
            if not block:
                raise
        counts = self._counts  # every connection is busy: wait, and count it
        with counts.lock:
            counts.waiters += 1
        started = time.perf_counter()
        try:
            return super().get(True, timeout)
        except queue.Empty:
            raise PoolTimeoutError(
                f"No connection to {self._server} became free within {timeout} s "
                f"(max_connections={self._server.max_connections})."
            ) from None
        finally:
            waited = time.perf_counter() - started
            with counts.lock:
                counts.waiters -= 1
                counts.waited_total += 1
                counts.wait_seconds_total += waited


def _takes_command_name(pool_class: type[Any]) -> bool:
    """redis-py < 5.3 requires a command name in get_connection(); later ones warn on it."""
    parameter = inspect.signature(pool_class.get_connection).parameters.get("command_name")
    return parameter is not None and parameter.default is inspect.Parameter.empty


SYNC_GET_CONNECTION_NEEDS_NAME = _takes_command_name(redis.ConnectionPool)


async def aclose_all() -> None:
    """Close every connection this process can close now: the running loop's
    pools and the sync pools. Pools of other, still running loops are left to
    their loops. Call it from an ASGI lifespan shutdown hook."""
    entry = _async_pools.pop(asyncio.get_running_loop(), None)
    if entry is not None:
        await entry.aclose()
    close_sync_pools()


def close_sync_pools(servers: Any = None) -> None:
    """Disconnect the idle connections of the sync pools of ``servers`` (all when
    None); they reconnect on use. Connections other threads are using are left to
    finish their command (CLOSE_CONNECTION runs at the end of one request, while
    other threads serve theirs)."""
    with _sync_lock:
        for server, pool in list(_sync_pools.items()):
            if servers is None or server in servers:
                pool.disconnect(inuse_connections=False)


def servers_in_use(config: CacheConfig) -> set[Server]:
    """The servers a cache may hold connections to: those configured (the
    sentinels, the cluster's startup nodes) and, under Sentinel or Cluster, the
    data nodes found since."""
    from django_asyncredis._topology import ClusterMap, SentinelState

    servers = set(config.servers)
    topology = config.topology
    if isinstance(topology, ClusterMap):
        servers.update(topology.primaries)
    elif isinstance(topology, SentinelState):
        servers.update(topology.replicas)
        if topology.primary is not None:
            servers.add(topology.primary)
    return servers


async def aclose_async_pools(servers: Any) -> None:
    """Close the running loop's pools for ``servers``; the next call opens new ones."""
    entry = _async_pools.get(asyncio.get_running_loop())
    if entry is not None:
        for server in servers:
            pool = entry.pools.pop(server, None)
            if pool is not None:
                await pool.aclose()


def _forget_after_fork() -> None:
    global _sync_lock, _registry_lock
    # A thread of the parent may have held a lock at the fork; it does not exist
    # in the child, so the lock would never be released: make new ones.
    _sync_lock = threading.Lock()
    _registry_lock = threading.Lock()
    _forsaken.append((dict(_async_pools), dict(_sync_pools)))
    _async_pools.clear()
    _sync_pools.clear()
    _sync_counts.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
