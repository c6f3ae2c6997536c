"""The sync adapter: runs the same operations over sync redis-py connections.

No event loop and no thread: the operation generator is driven with ``send()``
right here, in the caller's thread. Called on an event loop's thread it blocks
that loop for one round trip, as Django's built-in backend does, and cannot
deadlock because it never waits for the loop.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any, TypeVar

import redis
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
from django_asyncredis._pools import SYNC_GET_CONNECTION_NEEDS_NAME, sync_pool
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
        if request is PRIMARIES:
            return self._primaries()
        if isinstance(request, OnServer):
            return self._on_server(request.server, request.command)
        if isinstance(request, Pinned):
            return self._pinned(request)
        return self._execute(request)

    def _pinned(self, request: Pinned) -> Any:
        """Run a nested operation on one connection to the key's primary, taken out
        of the pool for its duration; nothing is re-sent. Ended by an exception,
        the connection is closed rather than pooled, so no WATCH or MULTI state
        reaches the next caller."""
        server = self._primary_for(request.key)
        pool = sync_pool(server)
        connection: Any = pool.get_connection(*_CONNECTION_ARGS)
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
                    reply = _exchange(connection, step)
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
                connection.disconnect()
            pool.release(connection)

    def _primary_for(self, key: str) -> Server:
        topology = self._config.topology
        if isinstance(topology, ClusterMap):
            if topology.stale:
                self._refresh_cluster(topology)
            return topology.server_for_key(key)
        if isinstance(topology, ShardMap):
            return topology.server_for_key(key)
        if isinstance(topology, SentinelState):
            return topology.primary or self._resolve_primary(topology)
        return self._servers[0]

    def _forget_topology(self) -> None:
        topology = self._config.topology
        if isinstance(topology, ClusterMap):
            topology.stale = True
        elif isinstance(topology, SentinelState):
            topology.forget()

    def _primaries(self) -> list[Server]:
        topology = self._config.topology
        if isinstance(topology, ClusterMap):
            if topology.stale:
                self._refresh_cluster(topology)
            return topology.primaries
        if isinstance(topology, ShardMap):
            return topology.primaries
        if isinstance(topology, SentinelState):
            return [topology.primary or self._resolve_primary(topology)]
        return [self._servers[0]]

    def _on_server(self, server: Server, command: Command) -> Any:
        try:
            return _send((server), command)
        except CONNECTION_ERRORS as exc:
            topology = self._config.topology
            if isinstance(topology, ClusterMap):
                topology.stale = True
            elif isinstance(topology, SentinelState):
                topology.forget()
            raise_translated(exc, server)

    def _execute(self, request: Request) -> Any:
        if self._config.topology is not None:
            if type(self._config.topology) is ShardMap:
                return self._execute_on_shards(self._config.topology, request)
            return self._execute_distributed(request)
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
            raise_translated(exc, leader)

    def _execute_distributed(self, request: Any) -> Any:
        """Cluster or Sentinel: route, and follow the topology when it changes
        (MOVED, failover), with a bounded number of attempts."""
        topology = self._config.topology
        last: Exception | None = None
        for attempt in range(_ATTEMPTS):
            try:
                if isinstance(topology, SentinelState):
                    return self._execute_on_primary(topology, request)
                if topology.stale:
                    self._refresh_cluster(topology)
                return self._execute_on_cluster(topology, request)
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
                    return (_send((target), asking))[1]
                last = exc
            except (TryAgainError, ClusterDownError, ReadOnlyError, ClusterIncomplete) as exc:
                last = exc
            except CONNECTION_ERRORS as exc:
                last = exc
            if isinstance(topology, SentinelState):
                topology.forget()
            else:
                topology.stale = True
            time.sleep(_BACKOFF * 2**attempt)
        assert last is not None
        if isinstance(last, CONNECTION_ERRORS):
            raise_translated(last, self._servers[0])
        # The topology kept changing (a failover still under way): an outage.
        kind = "Redis Cluster" if isinstance(topology, ClusterMap) else "The Sentinel service"
        raise ConnectionInterrupted(f"{kind} is unavailable: {last}") from last

    def _execute_on_shards(self, topology: ShardMap, request: Any) -> Any:
        """Client-side shards: a fixed map, so no redirection to follow; the split
        per server is the cluster's."""
        if type(request) is tuple and topology.crosses_shards(request):
            raise ClusterCrossSlotError("the keys live on different shards")
        try:
            return self._execute_on_cluster(topology, request)
        except CONNECTION_ERRORS as exc:
            raise_translated(
                exc, topology.server_for(request) if type(request) is tuple else "a shard"
            )

    def _batch_on_cluster(self, topology: ClusterMap | ShardMap, request: Batch) -> Any:
        """A batch split per node; the commands a node redirects (MOVED, ...) are
        sent again, alone, once the map is refreshed: the others never run twice."""
        replies: list[Any] = [None] * len(request)
        todo = list(range(len(request)))
        for attempt in range(_ATTEMPTS):
            batch = Batch(tuple(request[p] for p in todo))
            groups = list(topology.group_batch(batch).items())
            answers: list[Any] = []
            for server, positions in groups:
                try:
                    answers.append(_send(server, Batch(tuple(batch[p] for p in positions))))
                except ResponseError as exc:
                    answers.append(exc)  # the other nodes' commands still run
            part, again = merge_batch(len(batch), groups, answers)
            for index, position in enumerate(todo):
                replies[position] = part[index]
            if not again or not isinstance(topology, ClusterMap):
                break
            todo = [todo[index] for index in again]
            topology.stale = True
            if not all(isinstance(part[index], MovedError) for index in again):
                time.sleep(_BACKOFF * 2**attempt)  # the cluster is changing
            self._refresh_cluster(topology)
        return raise_batch_errors(replies)

    def _execute_on_cluster(self, topology: ClusterMap | ShardMap, request: Any) -> Any:
        if type(request) is Batch:
            return self._batch_on_cluster(topology, request)
        if topology.needs_split(request):
            parts = []
            for server, commands in topology.split(request).items():
                answer = _send(server, Batch(tuple(c for c, _ in commands)))
                for (_, positions), reply in zip(commands, answer, strict=True):
                    parts.append((positions, reply))
            return merge(request, parts)
        return _send((topology.server_for(request)), request)

    def _refresh_cluster(self, topology: ClusterMap) -> None:
        last: Exception | None = None
        for server in topology.refresh_candidates():
            try:
                reply = _send((server), ("CLUSTER", "SLOTS"))
                topology.update(server, reply)
                return
            except (*CONNECTION_ERRORS, ResponseError, ClusterIncomplete) as exc:
                last = exc
        assert last is not None
        raise last

    def _execute_on_primary(self, state: SentinelState, request: Any) -> Any:
        primary = state.primary or self._resolve_primary(state)
        reads_elsewhere = state.read_replicas and state.replicas
        if reads_elsewhere and type(request) is tuple and request[0] in READ_ONLY:
            replica = random.choice(state.replicas)
            try:
                return _send((replica), request)
            except CONNECTION_ERRORS:
                pass  # the replica is down: the primary answers reads too
        return _send((primary), request)

    def _resolve_primary(self, state: SentinelState) -> Server:
        """Ask the sentinels, in turn, where the service's primary is now."""
        for sentinel in state.sentinels:
            try:
                address = _send((sentinel), state.address_request())
                replicas = None
                if state.read_replicas:
                    replicas = _send((sentinel), state.replicas_request())
            except CONNECTION_ERRORS:
                continue
            primary = state.update(address, replicas)
            if primary is not None:
                return primary
        raise ConnectionInterrupted(
            f"No sentinel knows a primary for service {state.service!r} "
            f"(asked {', '.join(str(s) for s in state.sentinels)})."
        )


def _send(server: Server, request: Any) -> Any:
    """One round trip; the same retry rule as the async core's ``_send``.

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
                connection.send_packed_command(connection.pack_commands(request))
                return _read_replies(connection, len(request))
            connection.send_packed_command(connection.pack_command(*request))
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
        connection.send_packed_command(connection.pack_commands(request))
        return _read_replies(connection, len(request))
    connection.send_packed_command(connection.pack_command(*request))
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
