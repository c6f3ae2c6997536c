"""Where a command goes when the data lives on more than one server.

Pure decisions, no I/O (the drivers do the I/O and feed replies back here):

- ``ClusterMap``: Redis Cluster. The slot map comes from the cluster itself
  (``CLUSTER SLOTS``), keys are hashed with redis-py's CRC16 (hash tags
  included); a multi-key command is split per slot, grouped per node, and its
  replies are merged back in the caller's order.
- ``ShardMap``: client-side shards, keys placed exactly where django-redis's
  ``ShardClient`` places them, so a cache switched from django-redis finds its
  data; a fixed map, nothing to follow.
- ``SentinelState``: a Sentinel-managed primary, resolved by asking the
  sentinels, forgotten when it fails or turns read-only so the next call follows
  the failover.

Both are kept per cache configuration, process-wide: the map is plain data, valid
on every event loop and thread.
"""

from __future__ import annotations

import binascii
import bisect
import dataclasses
import hashlib
import os
import random
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import AskError, ClusterDownError, MovedError, TryAgainError

from django_asyncredis._operations import Batch, Command

if TYPE_CHECKING:  # _config builds the topologies: importing it here would be a circle
    from django_asyncredis._config import Server

SLOTS = 16384

#: Commands whose every argument after the name is a key (split per slot).
_ALL_KEYS = frozenset({"MGET", "DEL", "UNLINK", "EXISTS"})
#: Commands with no key: they go to any primary.
_KEYLESS = frozenset({"FLUSHDB", "SCAN", "PING", "CLUSTER", "ACL", "INFO"})
#: Commands about the connection's transaction state, not a key.
_CONNECTION_COMMANDS = frozenset({"MULTI", "EXEC", "DISCARD", "UNWATCH"})


def _slot(key: Any) -> int:
    """The cluster hash slot of ``key``: CRC16 (XMODEM, the stdlib's ``crc_hqx``) mod 16384.

    Of a key with a non-empty ``{hash tag}``, only the tag is hashed (the first
    ``{`` and the first ``}`` after it), so keys sharing a tag share a slot.
    """
    data = key.encode() if isinstance(key, str) else bytes(key)
    start = data.find(b"{")
    if start != -1:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return binascii.crc_hqx(data, 0) % SLOTS


class ClusterMap:
    """The slot map of a Redis Cluster, refreshed after MOVED or a node failure."""

    def __init__(self, startup: Sequence[Server]) -> None:
        self.startup = tuple(startup)
        self._lock = threading.Lock()
        self._slots: list[Server] | None = None
        self._primaries: list[Server] = []
        #: Set by the drivers when a reply says the map is out of date.
        self.stale = True

    @property
    def primaries(self) -> list[Server]:
        return list(self._primaries)

    def refresh_candidates(self) -> list[Server]:
        """Who to ask for the map: the known primaries first, then the startup nodes."""
        seen = [*self._primaries, *self.startup]
        return list(dict.fromkeys(seen))

    def update(self, asked: Server, reply: Any) -> None:
        """Load a ``CLUSTER SLOTS`` reply (RESP2)."""
        slots: list[Server | None] = [None] * SLOTS
        primaries: dict[tuple[str, int], Server] = {}
        for entry in reply:
            start, end, primary = int(entry[0]), int(entry[1]), entry[2]
            host = primary[0].decode() if primary[0] else asked.host  # "" means: the one asked
            port = int(primary[1])
            server = primaries.get((host, port))
            if server is None:
                server = primaries[(host, port)] = dataclasses.replace(
                    self.startup[0], host=host, port=port
                )
            for slot in range(start, end + 1):
                slots[slot] = server
        if any(server is None for server in slots):
            raise ClusterIncomplete("the cluster does not cover every slot yet")
        with self._lock:
            self._slots = slots  # type: ignore[assignment]
            self._primaries = list(primaries.values())
            self.stale = False

    def node(self, host: str, port: int) -> Server:
        """The server at an address a redirection named."""
        for server in self._primaries:
            if (server.host, server.port) == (host, port):
                return server
        return dataclasses.replace(self.startup[0], host=host, port=port)

    def server_for_key(self, key: Any) -> Server:
        assert self._slots is not None
        return self._slots[_slot(key)]

    def server_for(self, command: Command) -> Server:
        """The node for a single-slot command."""
        name = command[0]
        if name in _KEYLESS:
            return random.choice(self._primaries)
        if name in ("EVAL", "EVALSHA"):
            return self.server_for_key(command[3]) if int(command[2]) else self._primaries[0]
        return self.server_for_key(command[1])

    def needs_split(self, command: Command) -> bool:
        name = command[0]
        if name in _ALL_KEYS:
            keys = command[1:]
        elif name == "MSET":
            keys = command[1::2]
        else:
            return False
        first = _slot(keys[0]) if keys else 0
        return any(_slot(key) != first for key in keys[1:])

    def split(self, command: Command) -> dict[Server, list[tuple[Command, list[int]]]]:
        """Per node: the per-slot commands, with the positions of their keys in
        the original command (to put MGET's replies back in order)."""
        name = command[0]
        step = 2 if name == "MSET" else 1
        arguments = command[1:]
        per_slot: dict[int, list[int]] = {}
        for position in range(0, len(arguments), step):
            per_slot.setdefault(_slot(arguments[position]), []).append(position // step)
        plan: dict[Server, list[tuple[Command, list[int]]]] = {}
        assert self._slots is not None
        for slot, positions in per_slot.items():
            parts: list[Any] = []
            for index in positions:
                parts.extend(arguments[index * step : index * step + step])
            plan.setdefault(self._slots[slot], []).append(((name, *parts), positions))
        return plan

    def group_batch(self, batch: Batch) -> dict[Server, list[int]]:
        """Per node, the positions of a batch's commands (each a single-slot one)."""
        groups: dict[Server, list[int]] = {}
        for position, command in enumerate(batch):
            groups.setdefault(self.server_for(command), []).append(position)
        return groups


def merge(command: Command, parts: list[tuple[list[int], Any]]) -> Any:
    """Put the replies of a split command back together."""
    name = command[0]
    if name == "MGET":
        values: list[Any] = [None] * (len(command) - 1)
        for positions, reply in parts:
            for position, value in zip(positions, reply, strict=True):
                values[position] = value
        return values
    if name == "MSET":
        return b"OK"
    return sum(int(reply) for _, reply in parts)  # DEL, UNLINK, EXISTS: counts


#: Error replies that say the map is out of date or the cluster is changing: the
#: command they answer is sent again once the map is refreshed.
_TOPOLOGY_ERRORS = (MovedError, AskError, TryAgainError, ClusterDownError)


def merge_batch(
    size: int, groups: list[tuple[Server, list[int]]], answers: list[Any]
) -> tuple[list[Any], list[int]]:
    """Put a batch's per-node replies back in order. ``answers`` holds each node's
    replies, or the exception its round trip raised (a connection error is raised
    here). Returns the replies, error replies in place, and the positions answered
    with a redirection (MOVED, ASK, TRYAGAIN, CLUSTERDOWN): only those are to be
    sent again, so that a batch is never executed twice."""
    replies: list[Any] = [None] * size
    again: list[int] = []
    for (_, positions), answer in zip(groups, answers, strict=True):
        if isinstance(answer, BaseException):
            part = getattr(answer, "batch_replies", None)
            if part is None:
                raise answer  # a connection error: the whole batch is retried or fails
            answer = part
        for position, reply in zip(positions, answer, strict=True):
            replies[position] = reply
            if isinstance(reply, _TOPOLOGY_ERRORS):
                again.append(position)
    return replies, again


#: django-redis's ShardClient hashes only the part of a key between the last "{"
#: that has a "}" after it and the last "}" (greedy on both sides), when present.
_SHARD_TAG = re.compile(r".*\{(.*)\}.*")
#: Points per server on django-redis's hash ring.
SHARD_POINTS = 128


class ShardMap:
    """Client-side sharding over independent servers, placed as django-redis's
    ``ShardClient`` does (its ``HashRing``): each server, named by its LOCATION
    string exactly as written, has 128 points on a ring, the SHA-256 hex digests
    of ``"<name>:<i>"``; a key goes to the point at or before its own digest
    (sorted as text), wrapping round to the last point.

    It offers the cluster map's routing interface (``server_for``, ``split``, ...)
    so the drivers split multi-key commands per server the same way."""

    def __init__(self, nodes: Sequence[tuple[str, Server]]) -> None:
        ring: dict[str, Server] = {}
        for name, server in nodes:
            for point in range(SHARD_POINTS):
                ring[hashlib.sha256(f"{name}:{point}".encode()).hexdigest()] = server
        self._points = sorted(ring)
        self._owners = [ring[point] for point in self._points]
        self._servers = list(dict.fromkeys(server for _, server in nodes))

    @property
    def primaries(self) -> list[Server]:
        return list(self._servers)

    def server_for_key(self, key: Any) -> Server:
        text = key.decode() if isinstance(key, bytes) else str(key)
        tagged = _SHARD_TAG.match(text)
        if tagged is not None:
            text = tagged.group(1)
        digest = hashlib.sha256(text.encode()).hexdigest()
        return self._owners[bisect.bisect_right(self._points, digest) - 1]

    def server_for(self, command: Command) -> Server:
        name = command[0]
        if name in _KEYLESS:
            return random.choice(self._servers)
        if name in ("EVAL", "EVALSHA"):
            return self.server_for_key(command[3]) if int(command[2]) else self._servers[0]
        return self.server_for_key(command[1])

    def crosses_shards(self, command: Command) -> bool:
        """A RENAME whose two keys live on different servers cannot be sent: the
        operation is told so as on a cluster (and copies the value instead)."""
        return command[0] == "RENAME" and (
            self.server_for_key(command[1]) != self.server_for_key(command[2])
        )

    def strays_from(self, server: Server, request: Any) -> bool:
        """Whether a step of a pinned transaction names a key of another server.
        Such a step is not sent: the operation is told so as a cluster would tell
        it (CROSSSLOT), and takes its cross-server path instead of writing a key
        onto the wrong shard."""
        if not isinstance(request, tuple):
            return False
        commands = request if type(request) is Batch else (request,)
        for command in commands:
            if command[0] in _KEYLESS or command[0] in _CONNECTION_COMMANDS:
                continue
            keys = _keys_of(command) or command[1:2]
            if any(self.server_for_key(key) != server for key in keys):
                return True
        return False

    def needs_split(self, command: Command) -> bool:
        keys = _keys_of(command)
        if keys is None or not keys:
            return False
        first = self.server_for_key(keys[0])
        return any(self.server_for_key(key) != first for key in keys[1:])

    def split(self, command: Command) -> dict[Server, list[tuple[Command, list[int]]]]:
        """Per server, one command with its keys, and their positions in the original."""
        name = command[0]
        step = 2 if name == "MSET" else 1
        arguments = command[1:]
        positions: dict[Server, list[int]] = {}
        for position in range(0, len(arguments), step):
            server = self.server_for_key(arguments[position])
            positions.setdefault(server, []).append(position // step)
        plan: dict[Server, list[tuple[Command, list[int]]]] = {}
        for server, indexes in positions.items():
            parts: list[Any] = []
            for index in indexes:
                parts.extend(arguments[index * step : index * step + step])
            plan[server] = [((name, *parts), indexes)]
        return plan

    def group_batch(self, batch: Batch) -> dict[Server, list[int]]:
        groups: dict[Server, list[int]] = {}
        for position, command in enumerate(batch):
            groups.setdefault(self.server_for(command), []).append(position)
        return groups


def _keys_of(command: Command) -> tuple[Any, ...] | None:
    """The keys of a multi-key command, None for the others."""
    if command[0] in _ALL_KEYS:
        return command[1:]
    if command[0] == "MSET":
        return command[1::2]
    return None


class ClusterIncomplete(Exception):
    """The cluster answered with a map that leaves slots unassigned."""


class SentinelState:
    """The current primary (and replicas) of a Sentinel-monitored service.

    Whoever resolves the primary (the data path, or the near-cache's listener
    polling the sentinels) records it here, and the observers hear of every
    change: the near-cache flushes what it holds from the old primary."""

    def __init__(
        self, template: Server, sentinels: Sequence[Server], service: str, read_replicas: bool
    ) -> None:
        self.template = template
        self.sentinels = tuple(sentinels)
        self.service = service
        self.read_replicas = read_replicas
        self.primary: Server | None = None
        self.replicas: list[Server] = []
        #: The last primary resolved; unlike ``primary``, not cleared by ``forget``.
        self.known: Server | None = None
        self._lock = threading.Lock()
        self._observers: list[Callable[[Server], None]] = []
        _sentinel_states.add(self)

    def observe(self, callback: Callable[[Server], None]) -> None:
        """Call ``callback(new primary)`` whenever a resolution names another primary
        than the last one (kept for the process's life: the near-cache's stores)."""
        with self._lock:
            self._observers.append(callback)

    def follow(self, address: Any) -> Server | None:
        """Record the primary a sentinel named (``GET-MASTER-ADDR-BY-NAME``'s reply);
        None if it named none."""
        if not address:
            return None
        host, port = address[0].decode(), int(address[1])
        primary = dataclasses.replace(self.template, host=host, port=port)
        with self._lock:
            self.primary = primary
            changed = primary != self.known
            self.known = primary
            observers = list(self._observers) if changed else []
        for callback in observers:
            callback(primary)
        return primary

    def address_request(self) -> Command:
        return ("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)

    def replicas_request(self) -> Command:
        return ("SENTINEL", "REPLICAS", self.service)

    def update(self, address: Any, replicas: Any) -> Server | None:
        """Record the sentinels' answers: the primary, and the replicas in good health."""
        primary = self.follow(address)
        if primary is None:
            return None
        healthy = []
        for flat in replicas or ():
            fields = dict(zip(flat[::2], flat[1::2], strict=False))
            flags = fields.get(b"flags", b"").decode()
            if any(bad in flags for bad in ("s_down", "o_down", "disconnected")):
                continue
            healthy.append(
                dataclasses.replace(
                    self.template, host=fields[b"ip"].decode(), port=int(fields[b"port"])
                )
            )
        self.replicas = healthy
        return primary

    def forget(self) -> None:
        """The primary failed or became a replica: ask the sentinels again next time."""
        self.primary = None


_sentinel_states: weakref.WeakSet[SentinelState] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A lock held by another thread at fork would stay held in the child: new ones."""
    for state in list(_sentinel_states):
        state._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
