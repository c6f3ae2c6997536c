"""The near-cache: hot values served from process memory, kept coherent by the server.

Opt-in per alias (``OPTIONS["NEAR_CACHE"]``, docs/near-cache.md). Three parts:

- ``NearStore``: the process-wide store of one alias's raw bytes (LRU, bounded
  by entries and bytes, each entry with a local deadline), shared by the sync
  API, every event loop and every thread, behind one short ``threading.Lock``.
- ``Listener``: a daemon thread with one sync redis-py connection per store, to
  the server the reads go to (``_near_primary``: the one server, or the current
  primary of a Sentinel service, followed across failovers). It
  enables server-assisted client-side caching on that very connection,
  ``CLIENT TRACKING ON REDIRECT <its own id> BCAST [PREFIX <key prefix>]``,
  then ``SUBSCRIBE __redis__:invalidate`` (RESP2, so Redis 6.2+ and Valkey
  7.2+). BCAST: the server announces every write, expiry and eviction of a key
  under the prefix, whoever made it, so the data connections need no tracking
  of their own and a read never has to be "registered" before it is safe.
  A thread, not a task: the store serves the sync API too, and event loops
  come and go; a blocking read with a timeout costs no loop anything.
- the read operations ``get``, ``get_many`` and ``has_key`` (sans-IO, run by
  either driver) and ``watched``, which drops the local copy of every key a
  write operation names once the write is answered (read-your-writes).

The races, and what wins:

- An invalidation that arrives while a read of that key is in flight wins: a
  read takes a ``Ticket`` (the flush generation and the invalidation sequence)
  before it sends; its reply is stored only if neither a flush nor an
  invalidation of one of its keys happened since.
- The listener's connection drops: the store stops serving hits and is flushed
  at once, and again when tracking is back on (invalidations in between were
  lost); only then are hits served again.
- Sentinel: the primary changes (a failover, heard by the data path or by the
  listener asking the sentinels): the store is flushed at once and serves no
  hit until the listener tracks the new primary.
- ``os.fork()``: the child's stores are emptied and stop serving; each starts
  its own listener on first use (the parent's thread does not exist there).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import redis.exceptions

from django_asyncredis._codec import Codec
from django_asyncredis._near_primary import (
    ANSWER_DEADLINE,
    FixedServer,
    Idle,
    PrimaryMoved,
    SentinelPrimary,
    SentinelWatch,
    connect,
)
from django_asyncredis._operations import READ_ONLY, Batch, OnServer, Operation, Pinned, Request
from django_asyncredis._topology import SentinelState

#: The channel the server publishes invalidations on (RESP2 redirect).
INVALIDATE_CHANNEL = "__redis__:invalidate"
#: Bytes counted per entry on top of its key and value (dict slot, tuple, floats).
ENTRY_OVERHEAD = 96
#: The listener pings after this much silence, and gives the connection up when
#: a ping stays unanswered this long: a dead peer is noticed within seconds.
PING_AFTER_SILENCE = 1.0
PING_DEADLINE = ANSWER_DEADLINE
#: Invalidations remembered for the reads in flight (``NearStore._dirty``): a
#: read takes one round trip, so only those of the last moments matter.
DIRTY_LOG = 4096
#: Reconnect pauses, doubling up to the maximum.
RECONNECT_FIRST_PAUSE = 0.05
RECONNECT_MAX_PAUSE = 1.0


@dataclass(frozen=True)
class NearSettings:
    """The near-cache options of one alias (``_config``)."""

    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024
    #: Seconds an entry is served at most, invalidation or not (a safety net).
    max_lifetime: float = 300.0
    #: Glob patterns of the caller's keys that are near-cached; empty: all.
    keys: tuple[str, ...] = ()
    #: Read each missed key's PTTL with it, so no value is served locally past
    #: its timeout even when the server's expiry invalidation is late.
    check_ttl: bool = True

    def eligibility(self) -> re.Pattern[str] | None:
        if not self.keys:
            return None
        return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in self.keys))


#: What a read saw before it sent, (flush generation, invalidation sequence): a
#: reply is stored only if still current. A tuple: an object cost a miss 0.3 µs.
Ticket = tuple[int, int]


class NearStore:
    """One alias's near-cache in this process (see the module docstring)."""

    def __init__(self, settings: NearSettings, server: Any, tracking_prefix: str) -> None:
        self.settings = settings
        #: The one Server, or the SentinelState of the service.
        self.server = server
        self.source: FixedServer | SentinelPrimary = (
            SentinelPrimary(server) if isinstance(server, SentinelState) else FixedServer(server)
        )
        self.tracking_prefix = tracking_prefix
        self._eligible = settings.eligibility()
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        #: Bumped by every flush: a read begun before it stores nothing.
        self._generation = 0
        #: Bumped by every invalidation; ``_dirty`` keeps, for the keys invalidated
        #: lately, the sequence of their last invalidation: a read whose ticket
        #: is older than that stores nothing. Bounded by ``DIRTY_LOG``: when full,
        #: it is emptied and ``_floor`` raised to the sequence then, so every read
        #: begun before (whose invalidations are forgotten) stores nothing either.
        #: (Counting the reads in flight per key instead, to keep only their
        #: keys, cost a miss two dictionary updates and an error handler.)
        self._sequence = 0
        self._dirty: dict[str, int] = {}
        self._floor = 0
        #: True only while the listener is subscribed with tracking on.
        self._ready = False
        self._listener: Listener | None = None
        self._pid = os.getpid()
        self.hits = self.misses = self.invalidations = self.write_drops = 0
        self.flushes = self.refused = 0
        # A new primary: what was read from the old one is not covered by the
        # invalidations to come. The listener follows (``SentinelWatch.poll``).
        self.source.observe(lambda primary: self.flush(ready=False))

    # Reads.

    def eligible(self, key: Any) -> bool:
        """Whether the caller's ``key`` is near-cached (NEAR_CACHE_KEYS)."""
        pattern = self._eligible
        return pattern is None or (isinstance(key, str) and pattern.match(key) is not None)

    def lookup(self, key: str) -> bytes | None:
        """The raw bytes held for ``key`` (a hit), or None (a miss, counted)."""
        held = self.lookup_or_begin(key)
        return held if isinstance(held, bytes) else None

    def begin(self) -> Ticket | None:
        """Before sending a read: its Ticket, or None if its reply may not be stored."""
        with self._lock:
            return (self._generation, self._sequence) if self._ready else None

    def lookup_or_begin(self, key: str) -> bytes | Ticket | None:
        """``get``'s look, under one lock: the raw bytes held for ``key`` (a hit);
        else the miss is counted and its read from the server begun, as by
        ``begin``: its Ticket, or None if its reply may not be stored. The
        caller hands that to ``get``, which stores the reply (``finish_one``).
        (A Ticket holds nothing: a read that never finishes leaves nothing behind.)"""
        if self._listener is None:  # first use, or a forked child (``_after_fork``)
            self._start_listening()
        with self._lock:
            if not self._ready:
                self.misses += 1
                return None
            entry = self._entries.get(key)
            if entry is not None:
                if entry[1] > time.monotonic():
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return entry[0]
                self._forget(key)
            self.misses += 1
            return (self._generation, self._sequence)

    def finish(self, ticket: Ticket | None, replies: Mapping[str, tuple[Any, Any]]) -> None:
        """After the reply: store each (raw, pttl) that is still current."""
        if ticket is None:
            return
        now = time.monotonic()
        with self._lock:
            for key, (raw, pttl) in replies.items():
                self._keep(ticket, key, raw, pttl, now)

    def finish_one(self, ticket: Ticket | None, key: str, raw: Any, pttl: Any) -> None:
        """``finish`` of a single key (``get``'s miss)."""
        if ticket is None:
            return
        now = time.monotonic()
        with self._lock:
            self._keep(ticket, key, raw, pttl, now)

    def _keep(self, ticket: Ticket, key: str, raw: Any, pttl: Any, now: float) -> None:
        """Store one reply (raw, pttl) of the read ``ticket`` began, evicting the
        least recently used entries past the bounds, unless the read is not
        current: a flush came since, or an invalidation of ``key``, or so many
        invalidations that some of those are forgotten (``_floor``). Then it is
        counted refused. With the lock held; one call, as every miss runs it."""
        sequence = ticket[1]
        if (
            ticket[0] != self._generation
            or sequence < self._floor
            or not self._ready
            or self._dirty.get(key, -1) > sequence
        ):
            self.refused += 1
            return
        if not (isinstance(raw, bytes) and isinstance(pttl, int)) or pttl == -2:
            return  # no such key (a None, or -2: gone between the two commands)
        settings = self.settings
        size = len(raw) + len(key) + ENTRY_OVERHEAD
        if size > settings.max_bytes:
            return
        lifetime = settings.max_lifetime
        self._forget(key)
        entries = self._entries
        entries[key] = (raw, now + (lifetime if pttl < 0 else min(lifetime, pttl / 1000)))
        self._bytes += size
        while len(entries) > settings.max_entries or self._bytes > settings.max_bytes:
            oldest, (old_raw, _) = entries.popitem(last=False)
            self._bytes -= len(old_raw) + len(oldest) + ENTRY_OVERHEAD

    def _forget(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[0]) + len(key) + ENTRY_OVERHEAD

    # Invalidation.

    def invalidate(self, keys: Iterable[str], *, from_server: bool = False) -> None:
        """Drop ``keys`` and refuse the replies of reads of them now in flight
        (an invalidation from the server, or a write of this process)."""
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
            dirty = self._dirty
            for key in keys:
                self._forget(key)
                dirty[key] = sequence
                if from_server:
                    self.invalidations += 1
                else:
                    self.write_drops += 1
            if len(dirty) > DIRTY_LOG:
                dirty.clear()
                self._floor = sequence

    def flush(self, *, ready: bool | None = None) -> None:
        """Drop everything and refuse every reply in flight; ``ready`` sets whether
        hits are served from now on."""
        with self._lock:
            self._flush_locked()
            if ready is not None:
                self._ready = ready

    def tracking_on(self, server: Any) -> bool:
        """The listener tracks ``server`` now: flush (invalidations before were
        lost), and serve hits if the reads still go there; else False (the
        primary changed meantime: the listener must move)."""
        with self._lock:
            self._flush_locked()
            # A primary change records the new one, then calls flush(ready=False):
            # in whichever order those two fall against this, hits end up off.
            self._ready = self.source.is_current(server)
            return self._ready

    def _flush_locked(self) -> None:
        self._generation += 1  # every read in flight is refused: no invalidation to keep
        self._dirty.clear()
        self._entries.clear()
        self._bytes = 0
        self.flushes += 1

    def stats(self) -> dict[str, int | bool]:
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "invalidations": self.invalidations,
                "write_drops": self.write_drops,
                "flushes": self.flushes,
                "refused_stale": self.refused,
                "entries": len(self._entries),
                "bytes": self._bytes,
                "ready": self._ready,
            }

    # The listener.

    def _start_listening(self) -> None:
        with _registry_lock:
            if self._listener is not None and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._listener = Listener(self)
            self._listener.start()

    def wait_ready(self, timeout: float) -> bool:
        """Start the listener if needed and wait until hits may be served (tests, warm-up)."""
        if self._listener is None or self._pid != os.getpid():
            self._start_listening()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready:
                return True
            time.sleep(0.005)
        return self._ready

    def listener_client_id(self) -> int | None:
        """The server's id of the invalidation connection (for CLIENT KILL in tests)."""
        listener = self._listener
        return None if listener is None else listener.client_id

    def stop(self) -> None:
        """Stop the listener and serve no more hits (tests; the thread is a daemon)."""
        listener = self._listener
        self._listener = None
        self.flush(ready=False)
        if listener is not None:
            listener.stop()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._listener = None
        self._dirty.clear()
        self._entries.clear()
        self._bytes = 0
        self._generation += 1
        self._ready = False
        # The counters are this process's: the child's start at zero.
        self.hits = self.misses = self.invalidations = self.write_drops = 0
        self.flushes = self.refused = 0


class Listener(threading.Thread):
    """The invalidation connection of one store, in a daemon thread.

    Its own attributes avoid ``Thread``'s private names: Python 3.13's ``Thread``
    keeps its OS handle in ``_handle``, which shadowed a method of that name."""

    def __init__(self, store: NearStore) -> None:
        super().__init__(name=f"asyncredis-near-cache {store.source}", daemon=True)
        self.store = store
        self.client_id: int | None = None
        #: The server whose invalidations it hears (None while reconnecting).
        self.tracking: Any = None
        self._stop_requested = threading.Event()
        self._connection: Any = None  # a redis.Connection (untyped methods)

    def stop(self) -> None:
        self._stop_requested.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.disconnect()

    def run(self) -> None:
        pause = RECONNECT_FIRST_PAUSE
        while not self._stop_requested.is_set():
            with contextlib.suppress(Exception):  # any failure means "reconnect"
                self._serve()
            # Whatever ended the connection, invalidations may have been missed.
            self.store.flush(ready=False)
            if self.tracking is not None:  # it was serving: a fresh failure, retry soon
                pause = RECONNECT_FIRST_PAUSE
            self.client_id = self.tracking = None
            connection, self._connection = self._connection, None
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.disconnect()
            self._stop_requested.wait(pause)
            pause = min(pause * 2, RECONNECT_MAX_PAUSE)

    def _serve(self) -> None:
        source = self.store.source
        server = source.locate()
        connection = self._connection = connect(server)
        if source.primary_only:
            connection.send_command("ROLE")
            role = connection.read_response()[0]
            if role != b"master":
                raise PrimaryMoved(f"{server} is a {role!r}, not the primary")
        connection.send_command("CLIENT", "ID")
        client_id = int(connection.read_response())
        prefix = self.store.tracking_prefix
        scope = ("PREFIX", prefix) if prefix else ()
        connection.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", *scope)
        connection.read_response()
        connection.send_command("SUBSCRIBE", INVALIDATE_CHANNEL)
        connection.read_response()
        if self._stop_requested.is_set():
            return
        self.client_id, self.tracking = client_id, server
        # Tracking is on from here: nothing held before can be trusted; serve hits.
        if not self.store.tracking_on(server):
            raise PrimaryMoved(f"the primary changed while {server} was being tracked")
        watch = source.watch(server)
        try:
            self._listen(connection, watch)
        finally:
            watch.close()

    def _listen(self, connection: Any, watch: Idle | SentinelWatch) -> None:
        heard = time.monotonic()
        pinged: float | None = None
        while not self._stop_requested.is_set():
            watch.poll()
            if connection.can_read(timeout=0.25):
                message = connection.read_response()
                heard, pinged = time.monotonic(), None
                self._on_message(message)
                continue
            now = time.monotonic()
            if pinged is not None and now - pinged > PING_DEADLINE:
                raise redis.exceptions.ConnectionError("no answer to PING")
            if pinged is None and now - heard > PING_AFTER_SILENCE:
                connection.send_command("PING")
                pinged = now

    def _on_message(self, message: Any) -> None:
        if not isinstance(message, list) or len(message) < 3 or message[0] != b"message":
            return  # a PONG, or a subscription confirmation
        keys = message[2]
        if keys is None:  # FLUSHALL / FLUSHDB, or the server lost track: everything
            self.store.flush()
        else:
            self.store.invalidate(
                (key.decode("utf-8", "surrogateescape") for key in keys), from_server=True
            )


_registry_lock = threading.Lock()
_stores: dict[tuple[Any, ...], NearStore] = {}


def store_for(settings: NearSettings, server: Any, tracking_prefix: str) -> NearStore:
    """The process-wide store of these settings on ``server``."""
    key = (settings, server, tracking_prefix)
    store = _stores.get(key)
    if store is None:
        with _registry_lock:
            store = _stores.setdefault(key, NearStore(settings, server, tracking_prefix))
    return store


def all_stores() -> list[NearStore]:
    return list(_stores.values())


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for store in _stores.values():
        store._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


# The operations.


def get(
    store: NearStore, codec: Codec, key: str, default: Any, ticket: Ticket | None
) -> Operation[Any]:
    """``ops.get`` of a key the near-cache does not hold (``NearStore.lookup_or_begin``
    said so, in ``RedisCache._read``, and began the read: ``ticket``): read the
    value and its remaining TTL in one round trip, and keep the bytes."""
    if store.settings.check_ttl:
        raw, pttl = yield Batch((("GET", key), ("PTTL", key)))
    else:  # the drivers' single-command fast path; expiry left to invalidation
        raw, pttl = (yield ("GET", key)), -1
    store.finish_one(ticket, key, raw, pttl)  # not reached by a failed read: nothing to end
    return default if raw is None else codec.loads(raw, key)


def get_many(
    store: NearStore, codec: Codec, keys: Mapping[str, Any], eligible: frozenset[str]
) -> Operation[dict[Any, Any]]:
    """``ops.get_many`` through the near-cache: only the misses go to the server.
    ``eligible`` holds the made keys that may be near-cached."""
    found: dict[str, bytes] = {}
    missing: list[str] = []
    for made in keys:
        raw = store.lookup(made) if made in eligible else None
        if raw is None:
            missing.append(made)
        else:
            found[made] = raw
    if missing:
        kept = [made for made in missing if made in eligible]
        ticket = store.begin() if kept else None
        timed = kept if store.settings.check_ttl else []
        replies = yield Batch((("MGET", *missing), *(("PTTL", made) for made in timed)))
        by_key = dict(zip(missing, replies[0], strict=True))
        ttls = dict(zip(timed, replies[1:], strict=True)) if timed else dict.fromkeys(kept, -1)
        store.finish(ticket, {made: (by_key[made], ttls[made]) for made in kept})
        found.update((made, raw) for made, raw in by_key.items() if raw is not None)
    return {
        original: codec.loads(found[made], made) for made, original in keys.items() if made in found
    }


def has_key(store: NearStore, key: str) -> Operation[bool]:
    """``ops.has_key``: a key held locally exists; else ask the server."""
    if store.lookup(key) is not None:
        return True
    exists = yield ("EXISTS", key)
    return bool(exists)


#: Operations that only read: run as they are, with nothing to drop afterwards.
READS = frozenset({"get", "get_many", "has_key", "get_from_primary", "ttl", "scan"})


def watched(store: NearStore, operation: Operation[Any]) -> Operation[Any]:
    """Run ``operation``, dropping the local copy of every key its writes name as
    soon as each write is answered (or failed: it may have been applied)."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            request = operation.send(reply) if error is None else operation.throw(error)
        except StopIteration as stop:
            return stop.value
        reply, error = None, None
        if isinstance(request, Pinned):  # its nested operation's writes too
            request = Pinned(request.key, watched(store, request.operation))
        try:
            reply = yield request
        except BaseException as exc:  # handed back to the operation
            error = exc
        finally:
            _drop_written(store, request)


def _watched(store: NearStore, operation: Operation[Any]) -> Operation[Any]:
    if operation.__name__ in READS:  # type: ignore[attr-defined]  # a generator
        return operation
    wrapped = watched(store, operation)
    wrapped.__name__ = operation.__name__  # type: ignore[attr-defined]  # the stats read it
    return wrapped


class WatchingSync:
    """A sync driver whose writes drop their keys' local copies (read-your-writes)."""

    def __init__(self, inner: Any, store: NearStore) -> None:
        self._inner = inner
        self._store = store

    def run(self, operation: Operation[Any], fallback: Any = None) -> Any:
        return self._inner.run(_watched(self._store, operation), fallback)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class WatchingAsync:
    """The async twin of ``WatchingSync``."""

    def __init__(self, inner: Any, store: NearStore) -> None:
        self._inner = inner
        self._store = store

    def run(self, operation: Operation[Any], fallback: Any = None) -> Awaitable[Any]:
        """The inner driver's coroutine, returned rather than awaited: no extra frame."""
        return self._inner.run(_watched(self._store, operation), fallback)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _drop_written(store: NearStore, request: Request) -> None:
    if isinstance(request, Pinned):
        store.invalidate((request.key,))
        return
    if isinstance(request, OnServer):
        request = request.command
    commands: Iterator[Any] = iter(request) if isinstance(request, Batch) else iter((request,))
    for command in commands:
        if not isinstance(command, tuple) or not command:
            continue
        name = str(command[0]).upper()
        if name in READ_ONLY:
            continue
        if name in ("FLUSHDB", "FLUSHALL"):
            store.flush()
            continue
        # Keys are the str arguments (values reach the wire encoded, as bytes or int).
        store.invalidate(arg for arg in command[1:] if isinstance(arg, str))
