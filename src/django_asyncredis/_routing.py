"""Where each request goes, and what happens when a server says no: pure, no I/O.

The operations (``_operations.py``) decide *what* to send; this module decides
*where*, as generators the drivers run the way they run operations. A routing
generator yields only:

- ``Send(server, request)``: one round trip; the driver sends back the reply or
  throws in the error it raised (a connection error, a Redis error reply, our
  ``ReplyLostError``);
- ``SendEach(sends)``: round trips to several servers at once (the per-node
  fan-out of a cluster); the driver sends back, in order, each one's reply or
  the exception it raised, never raising itself;
- ``Sleep(seconds)``: a pause between attempts while a topology changes.

Even the topology's own upkeep is expressed that way: refreshing a cluster's
slot map is a ``Send`` of ``CLUSTER SLOTS``, finding a Sentinel service's
primary a ``Send`` of ``SENTINEL GET-MASTER-ADDR-BY-NAME``. So every rule of
routing, replica fallback, cluster split and merge, MOVED/ASK, bounded retries
and Sentinel failover is written once, here, and the async and the sync driver
differ only in how they wait for a server.

What is resent is decided by the drivers' ``send`` (``_idempotency.may_resend``):
a request that may have reached the server raises ``ReplyLostError``, which
passes through the topology retry loop below untouched.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

from redis.exceptions import (
    AskError,
    ClusterCrossSlotError,
    ClusterDownError,
    MovedError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)

from django_asyncredis._config import CacheConfig, Server
from django_asyncredis._operations import (
    READ_ONLY,
    Batch,
    Command,
    OnPrimary,
    Sleep,
    raise_batch_errors,
)
from django_asyncredis._topology import (
    ClusterIncomplete,
    ClusterMap,
    SentinelState,
    ShardMap,
    merge,
    merge_batch,
)
from django_asyncredis.errors import (
    CONNECTION_ERRORS,
    ConnectionInterrupted,
    ReplyLostError,
    raise_translated,
)

T = TypeVar("T")

#: Attempts of a call on a cluster or sentinel topology that is changing, and the
#: first pause between them (doubling): about 1.5 s in all, then the error.
ATTEMPTS = 5
BACKOFF = 0.05


class Send:
    """One round trip of ``request`` (a command or a ``Batch``) to ``server``."""

    __slots__ = ("request", "server")

    def __init__(self, server: Server, request: Any) -> None:
        self.server = server
        self.request = request


class SendEach:
    """Several round trips at once; answered with each one's reply or exception."""

    __slots__ = ("sends",)

    def __init__(self, sends: list[Send]) -> None:
        self.sends = sends


Step = Send | SendEach | Sleep
Route = Generator[Step, Any, T]


def pick(servers: Sequence[Server], request: Any) -> Server:
    """The server a request goes to without a topology: a random replica for a
    single read-only command when replicas are configured, else the leader
    (``servers[0]``). An ``OnPrimary`` command is not a plain tuple, so it always
    gets the leader."""
    if len(servers) > 1 and type(request) is tuple and request[0] in READ_ONLY:
        return servers[random.randrange(1, len(servers))]
    return servers[0]


def execute(config: CacheConfig, request: Any) -> Route[Any]:
    """Route a command, an ``OnPrimary`` command or a ``Batch`` to its reply."""
    topology = config.topology
    if topology is None:
        return (yield from _on_replicated(config.servers, request))
    if type(topology) is ShardMap:
        return (yield from _on_shards(topology, request))
    return (yield from _on_distributed(config, request))


def on_server(config: CacheConfig, server: Server, command: Command) -> Route[Any]:
    """``OnServer``: one command to a server ``primaries`` named."""
    try:
        return (yield Send(server, command))
    except CONNECTION_ERRORS as exc:
        forget_topology(config)
        raise_translated(exc, server)


def primaries(config: CacheConfig) -> Route[list[Server]]:
    """``PRIMARIES``: the servers that hold the keyspace."""
    topology = config.topology
    if isinstance(topology, ClusterMap):
        if topology.stale:
            yield from _refresh_cluster(topology)
        return topology.primaries
    if isinstance(topology, ShardMap):
        return topology.primaries
    if isinstance(topology, SentinelState):
        return [topology.primary or (yield from resolve_primary(topology))]
    return [config.servers[0]]


def primary_for(config: CacheConfig, key: str) -> Route[Server]:
    """The primary holding ``key``: where a ``Pinned`` operation runs."""
    topology = config.topology
    if isinstance(topology, ClusterMap):
        if topology.stale:
            yield from _refresh_cluster(topology)
        return topology.server_for_key(key)
    if isinstance(topology, ShardMap):
        return topology.server_for_key(key)
    if isinstance(topology, SentinelState):
        return topology.primary or (yield from resolve_primary(topology))
    return config.servers[0]


def forget_topology(config: CacheConfig) -> None:
    """A server failed or redirected us: look the topology up again next time."""
    topology = config.topology
    if isinstance(topology, ClusterMap):
        topology.stale = True
    elif isinstance(topology, SentinelState):
        topology.forget()


def stray_guard(config: CacheConfig, server: Server) -> Callable[[Any], bool] | None:
    """For a ``Pinned`` operation on client-side shards: a function telling
    whether a step names a key of another shard (not to be sent); else None."""
    topology = config.topology
    if isinstance(topology, ShardMap):
        return lambda step: bool(topology.strays_from(server, step))
    return None


def cross_shard_error() -> ClusterCrossSlotError:
    """What a pinned step that strays onto another shard is answered with."""
    return ClusterCrossSlotError("the keys live on different shards")


def resolve_primary(state: SentinelState) -> Route[Server]:
    """Ask the sentinels, in turn, where the service's primary is now."""
    for sentinel in state.sentinels:
        try:
            address = yield Send(sentinel, state.address_request())
            replicas = None
            if state.read_replicas:
                replicas = yield Send(sentinel, state.replicas_request())
        except CONNECTION_ERRORS:
            continue
        primary = state.update(address, replicas)
        if primary is not None:
            return primary
    raise ConnectionInterrupted(
        f"No sentinel knows a primary for service {state.service!r} "
        f"(asked {', '.join(str(s) for s in state.sentinels)})."
    )


def _on_replicated(servers: Sequence[Server], request: Any) -> Route[Any]:
    """One server, or a leader and its replicas: a replica that fails a read
    hands it to the leader."""
    server = pick(servers, request)
    leader = servers[0]
    if server is not leader:
        try:
            return (yield Send(server, request))
        except CONNECTION_ERRORS:
            pass  # the replica is down or slow: the leader answers reads too
    try:
        return (yield Send(leader, request))
    except CONNECTION_ERRORS as exc:
        raise_translated(exc, leader)


def _on_distributed(config: CacheConfig, request: Any) -> Route[Any]:
    """Cluster or Sentinel: route, and follow the topology when it changes
    (MOVED, failover), with a bounded number of attempts."""
    topology = config.topology
    assert isinstance(topology, ClusterMap | SentinelState)
    last: Exception | None = None
    for attempt in range(ATTEMPTS):
        try:
            if isinstance(topology, SentinelState):
                return (yield from _on_primary(topology, request))
            if topology.stale:
                yield from _refresh_cluster(topology)
            return (yield from _on_cluster(topology, request))
        except ReplyLostError:
            raise  # it may have run: asking again elsewhere could run it twice
        except MovedError as exc:
            last = exc
            assert isinstance(topology, ClusterMap)
            topology.stale = True
            continue  # the map changed: refresh and go again at once
        except AskError as exc:
            if type(request) in (tuple, OnPrimary):  # a slot migrating: ask its new node
                assert isinstance(topology, ClusterMap)
                target = topology.node(exc.host, exc.port)
                return (yield Send(target, Batch((("ASKING",), request))))[1]
            last = exc
        except (TryAgainError, ClusterDownError, ReadOnlyError, ClusterIncomplete) as exc:
            last = exc
        except CONNECTION_ERRORS as exc:
            last = exc
        if isinstance(topology, SentinelState):
            topology.forget()
        else:
            topology.stale = True
        yield Sleep(BACKOFF * 2**attempt)
    assert last is not None
    if isinstance(last, CONNECTION_ERRORS):
        raise_translated(last, config.servers[0])
    # The topology kept changing (a failover still under way): an outage.
    kind = "Redis Cluster" if isinstance(topology, ClusterMap) else "The Sentinel service"
    raise ConnectionInterrupted(f"{kind} is unavailable: {last}") from last


def _on_shards(topology: ShardMap, request: Any) -> Route[Any]:
    """Client-side shards: a fixed map, so no redirection to follow; the split
    per server is the cluster's."""
    if type(request) is tuple and topology.crosses_shards(request):
        raise cross_shard_error()
    try:
        return (yield from _on_cluster(topology, request))
    except CONNECTION_ERRORS as exc:
        raise_translated(exc, topology.server_for(request) if type(request) is tuple else "a shard")


def _on_cluster(topology: ClusterMap | ShardMap, request: Any) -> Route[Any]:
    if type(request) is Batch:
        return (yield from _batch_on_cluster(topology, request))
    if topology.needs_split(request):
        plan = list(topology.split(request).items())
        answers = yield SendEach(
            [Send(server, Batch(tuple(c for c, _ in commands))) for server, commands in plan]
        )
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        parts = [
            (positions, reply)
            for (_, commands), answer in zip(plan, answers, strict=True)
            for (_, positions), reply in zip(commands, answer, strict=True)
        ]
        return merge(request, parts)
    return (yield Send(topology.server_for(request), request))


def _batch_on_cluster(topology: ClusterMap | ShardMap, request: Batch) -> Route[Any]:
    """A batch split per node; the commands a node redirects (MOVED, ...) are
    sent again, alone, once the map is refreshed: the others never run twice."""
    replies: list[Any] = [None] * len(request)
    todo = list(range(len(request)))
    for attempt in range(ATTEMPTS):
        batch = Batch(tuple(request[p] for p in todo))
        groups = list(topology.group_batch(batch).items())
        sends = [
            Send(server, Batch(tuple(batch[p] for p in positions))) for server, positions in groups
        ]
        answers = yield SendEach(sends)
        part, again = merge_batch(len(batch), groups, answers)
        for index, position in enumerate(todo):
            replies[position] = part[index]
        if not again or not isinstance(topology, ClusterMap):
            break
        todo = [todo[index] for index in again]
        topology.stale = True
        if not all(isinstance(part[index], MovedError) for index in again):
            yield Sleep(BACKOFF * 2**attempt)  # the cluster is changing
        yield from _refresh_cluster(topology)
    return raise_batch_errors(replies)


def _refresh_cluster(topology: ClusterMap) -> Route[None]:
    """Ask the known nodes, in turn, for the slot map."""
    last: Exception | None = None
    for server in topology.refresh_candidates():
        try:
            reply = yield Send(server, ("CLUSTER", "SLOTS"))
            topology.update(server, reply)
            return
        except (*CONNECTION_ERRORS, ResponseError, ClusterIncomplete) as exc:
            last = exc
    assert last is not None
    raise last


def _on_primary(state: SentinelState, request: Any) -> Route[Any]:
    primary = state.primary or (yield from resolve_primary(state))
    reads_elsewhere = state.read_replicas and state.replicas
    if reads_elsewhere and type(request) is tuple and request[0] in READ_ONLY:
        replica = random.choice(state.replicas)
        try:
            return (yield Send(replica, request))
        except CONNECTION_ERRORS:
            pass  # the replica is down: the primary answers reads too
    return (yield Send(primary, request))
