"""The async core: runs operations over ``redis.asyncio`` connections.

No thread, no ``sync_to_async`` on the path of a command. The one exception is
``Offload``: a value Django refuses to serialize on the event loop (a lazy
QuerySet) is serialized in a thread, as Django itself would require.
"""

from __future__ import annotations

import asyncio
import builtins
import random
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from redis.exceptions import (
    AskError,
    ClusterCrossSlotError,
    ClusterDownError,
    ConnectionError,
    MovedError,
    ReadOnlyError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

from django_asyncredis import _multiplex
from django_asyncredis._config import CacheConfig, Server
from django_asyncredis._idempotency import may_resend, raise_unanswered
from django_asyncredis._operations import (
    PRIMARIES,
    READ_ONLY,
    Batch,
    Command,
    Emit,
    Offload,
    OnPrimary,
    OnServer,
    Operation,
    Pinned,
    Request,
    Sleep,
    route,
)
from django_asyncredis._pools import AsyncConnectionPool, async_pool
from django_asyncredis._topology import (
    ClusterIncomplete,
    ClusterMap,
    SentinelState,
    ShardMap,
    merge,
    merge_batch,
    raise_batch_errors,
)
from django_asyncredis.errors import (
    CONNECTION_ERRORS,
    ConnectionInterrupted,
    ReplyLostError,
    log_ignored,
    raise_translated,
)

T = TypeVar("T")

#: Attempts of a call on a cluster or sentinel topology that is changing, and the
#: first pause between them (doubling): about 1.5 s in all, then the error.
_ATTEMPTS = 5
_BACKOFF = 0.05


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
        if request is PRIMARIES:
            return await self._primaries()
        if isinstance(request, OnServer):
            return await self._on_server(request.server, request.command)
        if isinstance(request, Pinned):
            return await self._pinned(request)
        return await self._execute(request)

    async def _pinned(self, request: Pinned) -> Any:
        """Run a nested operation on one connection to the key's primary, taken out
        of the pool for its duration; nothing is re-sent. Ended by an exception or
        a cancellation, the connection is closed rather than pooled, so no WATCH or
        MULTI state reaches the next caller."""
        server = await self._primary_for(request.key)
        pool = async_pool(server)
        connection: Any = await pool.acquire()
        operation = request.operation
        finished = stray = False
        shards = topology if isinstance(topology := self._config.topology, ShardMap) else None
        try:
            step = operation.send(None)
            while True:
                if shards is not None and shards.strays_from(server, step):
                    stray = True  # the connection may hold a WATCH: not pooled again
                    step = operation.throw(
                        ClusterCrossSlotError("the keys live on different shards")
                    )
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
            self._forget_topology()
            raise_translated(exc, server)
        except (MovedError, AskError):
            self._forget_topology()  # the operation may start over on the right node
            raise
        finally:
            if not finished:
                await connection.disconnect(nowait=True)  # closes at once, cannot be interrupted
            pool.release(connection)

    async def _primary_for(self, key: str) -> Server:
        topology = self._config.topology
        if isinstance(topology, ClusterMap):
            if topology.stale:
                await self._refresh_cluster(topology)
            return topology.server_for_key(key)
        if isinstance(topology, ShardMap):
            return topology.server_for_key(key)
        if isinstance(topology, SentinelState):
            return topology.primary or await self._resolve_primary(topology)
        return self._servers[0]

    def _forget_topology(self) -> None:
        topology = self._config.topology
        if isinstance(topology, ClusterMap):
            topology.stale = True
        elif isinstance(topology, SentinelState):
            topology.forget()

    async def _primaries(self) -> list[Server]:
        topology = self._config.topology
        if isinstance(topology, ClusterMap):
            if topology.stale:
                await self._refresh_cluster(topology)
            return topology.primaries
        if isinstance(topology, ShardMap):
            return topology.primaries
        if isinstance(topology, SentinelState):
            return [topology.primary or await self._resolve_primary(topology)]
        return [self._servers[0]]

    async def _on_server(self, server: Server, command: Command) -> Any:
        try:
            return await _send(async_pool(server), command)
        except CONNECTION_ERRORS as exc:
            topology = self._config.topology
            if isinstance(topology, ClusterMap):
                topology.stale = True
            elif isinstance(topology, SentinelState):
                topology.forget()
            raise_translated(exc, server)

    async def _execute(self, request: Request) -> Any:
        if self._config.topology is not None:
            if type(self._config.topology) is ShardMap:
                return await self._execute_on_shards(self._config.topology, request)
            return await self._execute_distributed(request)
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
            raise_translated(exc, leader)

    async def _execute_distributed(self, request: Any) -> Any:
        """Cluster or Sentinel: route, and follow the topology when it changes
        (MOVED, failover), with a bounded number of attempts."""
        topology = self._config.topology
        last: Exception | None = None
        for attempt in range(_ATTEMPTS):
            try:
                if isinstance(topology, SentinelState):
                    return await self._execute_on_primary(topology, request)
                if topology.stale:
                    await self._refresh_cluster(topology)
                return await self._execute_on_cluster(topology, request)
            except ReplyLostError:
                raise  # it may have run: asking again elsewhere could run it twice
            except MovedError as exc:
                last = exc
                topology.stale = True
                continue  # the map changed: refresh and go again at once
            except AskError as exc:
                if type(request) in (tuple, OnPrimary):  # a slot migrating: ask its new node
                    target = topology.node(exc.host, exc.port)
                    asking = Batch((("ASKING",), request))
                    return (await _send(async_pool(target), asking))[1]
                last = exc
            except (TryAgainError, ClusterDownError, ReadOnlyError, ClusterIncomplete) as exc:
                last = exc
            except CONNECTION_ERRORS as exc:
                last = exc
            if isinstance(topology, SentinelState):
                topology.forget()
            else:
                topology.stale = True
            await asyncio.sleep(_BACKOFF * 2**attempt)
        assert last is not None
        if isinstance(last, CONNECTION_ERRORS):
            raise_translated(last, self._servers[0])
        # The topology kept changing (a failover still under way): an outage.
        kind = "Redis Cluster" if isinstance(topology, ClusterMap) else "The Sentinel service"
        raise ConnectionInterrupted(f"{kind} is unavailable: {last}") from last

    async def _execute_on_shards(self, topology: ShardMap, request: Any) -> Any:
        """Client-side shards: a fixed map, so no redirection to follow; the split
        per server is the cluster's."""
        if type(request) is tuple and topology.crosses_shards(request):
            raise ClusterCrossSlotError("the keys live on different shards")
        try:
            return await self._execute_on_cluster(topology, request)
        except CONNECTION_ERRORS as exc:
            raise_translated(
                exc, topology.server_for(request) if type(request) is tuple else "a shard"
            )

    async def _batch_on_cluster(self, topology: ClusterMap | ShardMap, request: Batch) -> Any:
        """A batch split per node; the commands a node redirects (MOVED, ...) are
        sent again, alone, once the map is refreshed: the others never run twice."""
        replies: list[Any] = [None] * len(request)
        todo = list(range(len(request)))
        for attempt in range(_ATTEMPTS):
            batch = Batch(tuple(request[p] for p in todo))
            groups = list(topology.group_batch(batch).items())
            answers = await asyncio.gather(
                *(
                    _send(async_pool(server), Batch(tuple(batch[p] for p in positions)))
                    for server, positions in groups
                ),
                return_exceptions=True,
            )
            part, again = merge_batch(len(batch), groups, answers)
            for index, position in enumerate(todo):
                replies[position] = part[index]
            if not again or not isinstance(topology, ClusterMap):
                break
            todo = [todo[index] for index in again]
            topology.stale = True
            if not all(isinstance(part[index], MovedError) for index in again):
                await asyncio.sleep(_BACKOFF * 2**attempt)  # the cluster is changing
            await self._refresh_cluster(topology)
        return raise_batch_errors(replies)

    async def _execute_on_cluster(self, topology: ClusterMap | ShardMap, request: Any) -> Any:
        if type(request) is Batch:
            return await self._batch_on_cluster(topology, request)
        if topology.needs_split(request):
            plan = list(topology.split(request).items())
            answers = await asyncio.gather(
                *(
                    _send(async_pool(server), Batch(tuple(c for c, _ in commands)))
                    for server, commands in plan
                )
            )
            parts = [
                (positions, reply)
                for (_, commands), answer in zip(plan, answers, strict=True)
                for (_, positions), reply in zip(commands, answer, strict=True)
            ]
            return merge(request, parts)
        return await _send(async_pool(topology.server_for(request)), request)

    async def _refresh_cluster(self, topology: ClusterMap) -> None:
        last: Exception | None = None
        for server in topology.refresh_candidates():
            try:
                reply = await _send(async_pool(server), ("CLUSTER", "SLOTS"))
                topology.update(server, reply)
                return
            except (*CONNECTION_ERRORS, ResponseError, ClusterIncomplete) as exc:
                last = exc
        assert last is not None
        raise last

    async def _execute_on_primary(self, state: SentinelState, request: Any) -> Any:
        primary = state.primary or await self._resolve_primary(state)
        reads_elsewhere = state.read_replicas and state.replicas
        if reads_elsewhere and type(request) is tuple and request[0] in READ_ONLY:
            replica = random.choice(state.replicas)
            try:
                return await _send(async_pool(replica), request)
            except CONNECTION_ERRORS:
                pass  # the replica is down: the primary answers reads too
        return await _send(async_pool(primary), request)

    async def _resolve_primary(self, state: SentinelState) -> Server:
        """Ask the sentinels, in turn, where the service's primary is now."""
        for sentinel in state.sentinels:
            try:
                address = await _send(async_pool(sentinel), state.address_request())
                replicas = None
                if state.read_replicas:
                    replicas = await _send(async_pool(sentinel), state.replicas_request())
            except CONNECTION_ERRORS:
                continue
            primary = state.update(address, replicas)
            if primary is not None:
                return primary
        raise ConnectionInterrupted(
            f"No sentinel knows a primary for service {state.service!r} "
            f"(asked {', '.join(str(s) for s in state.sentinels)})."
        )


async def _send(pool: AsyncConnectionPool, request: Any) -> Any:
    """One round trip, on the transport the server's ``transport`` option selects."""
    if pool.server.transport == "multiplexed":
        return await _multiplex.send(pool, request, _send_pooled)
    return await _send_pooled(pool, request)


async def _send_pooled(pool: AsyncConnectionPool, request: Any) -> Any:
    """One round trip on a pooled connection; one that turns out broken is replaced, boundedly.

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


def _pack_python(connection: Any, command: Command) -> Any:
    return connection.pack_command(*command)


def _pack_many_python(connection: Any, commands: Batch) -> Any:
    return connection.pack_commands(commands)


def _pack_hiredis(connection: Any, command: Command) -> bytes:
    return hiredis.pack_command(command)  # type: ignore[no-any-return]


def _pack_many_hiredis(connection: Any, commands: Batch) -> bytes:
    return b"".join([hiredis.pack_command(command) for command in commands])


# redis-py packs commands in C (hiredis) on its sync connections but in Python on
# its asyncio ones; with hiredis installed the core packs them in C too: a third
# of an aget_many of 100 keys was redis-py's Python packer.
try:
    import hiredis

    _pack, _pack_many = _pack_hiredis, _pack_many_hiredis
except ImportError:  # pragma: no cover - hiredis is an extra
    _pack, _pack_many = _pack_python, _pack_many_python


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
