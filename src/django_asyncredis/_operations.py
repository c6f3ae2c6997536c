"""Every cache operation, written once, with no I/O.

An operation is a generator: it yields the Redis commands it needs and receives
their replies, and its return value is the result of the cache call. All the
logic lives here: command choice, encoding of values, decoding of replies, the
fallbacks. Two drivers run these generators: ``_core`` over ``redis.asyncio``
and ``_sync`` over sync redis-py, so both APIs have exactly the same behaviour.

What an operation may yield:

- a ``tuple`` of command arguments, e.g. ``("GET", key)``: the reply comes back;
- a ``Batch`` of such tuples: they are pipelined in one round trip and the list
  of replies comes back;
- an ``Offload``: a CPU-only call that the async driver may run off the event
  loop (only when Django forbids it on the loop, see ``encode``);
- a ``Sleep``: wait before the next command (``time.sleep`` or ``asyncio.sleep``);
- an ``Emit``: items for the caller of an iterating driver (``iter_keys``);
- ``PRIMARIES``: the servers that hold the keyspace (one, or each primary of a
  Redis Cluster), then ``OnServer(server, command)`` to send a command to one of
  them: for what concerns every key rather than one (SCAN, FLUSHDB);
- an ``OnPrimary`` command: a read that must not be answered by a replica,
  because it decides a write or a lock;
- a ``Pinned(key, operation)``: run a nested operation on one connection of its
  own to the primary holding ``key`` (WATCH ... MULTI ... EXEC); its result
  comes back. Never re-sent: see ``Pinned``.

A Redis error reply (``ResponseError``) is thrown into the generator at the
yield, so an operation can catch it and take another path.

Keys arrive already made and validated by the backend; ``ttl_ms`` is the
normalised timeout: None for "forever", <= 0 for "expire now", else milliseconds.
"""

from __future__ import annotations

import operator
import random
import re
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, TypeVar

from django.core.exceptions import SynchronousOnlyOperation
from redis.exceptions import (
    AskError,
    ClusterCrossSlotError,
    LockError,
    LockNotOwnedError,
    MovedError,
    NoPermissionError,
    ResponseError,
    TryAgainError,
    WatchError,
)

from django_asyncredis._codec import Codec

T = TypeVar("T")

Command = tuple[Any, ...]


class Batch(tuple[Command, ...]):
    """Commands sent together in one round trip (a pipeline, not a transaction)."""

    __slots__ = ()


def raise_batch_errors(replies: list[Any]) -> list[Any]:
    """The replies, or the first error reply raised carrying all of them
    (``batch_replies``, as the drivers' batches do), so that one failed command
    does not hide the others' replies from the cache pipeline."""
    for reply in replies:  # a loop, not next(...): no generator per batch
        if isinstance(reply, ResponseError):
            reply.batch_replies = replies  # type: ignore[attr-defined]
            raise reply
    return replies


class Offload:
    """A CPU-bound call to run where blocking is allowed (see ``encode``)."""

    __slots__ = ("args", "function")

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.function = function
        self.args = args


class Sleep:
    """Wait this many seconds before going on (lock retries)."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Emit:
    """Hand these items to the caller now, then go on (a streaming SCAN)."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


class OnServer:
    """Send ``command`` to this server (one of those ``PRIMARIES`` returned)."""

    __slots__ = ("command", "server")

    def __init__(self, server: Any, command: Command) -> None:
        self.server = server
        self.command = command


class OnPrimary(tuple[Any, ...]):
    """One command answered by the primary, never by a replica, even when it only
    reads: the read decides a write or a lock (``lock.owned()``, a session load).

    A tuple, so every driver path that takes a command takes it; the replica
    choice (``_routing.pick``, and Sentinel's) only considers plain tuples.
    """

    __slots__ = ()


class Pinned:
    """Run ``operation`` on one connection of its own, to the primary holding ``key``.

    For what spans several round trips on one connection: WATCH, GET, then
    MULTI ... EXEC. The nested operation yields only commands and ``Batch``es
    (Redis errors are thrown into it, as usual) and its return value is the reply
    to this request. The driver takes the connection out of the pool for the
    whole operation and:

    - never re-sends anything of it: a connection error ends it with
      ``ConnectionInterrupted`` (a transaction that may have reached the server
      is not repeated; the operation decides whether to start a new one);
    - when it ends by an exception or a cancellation, closes the connection
      instead of pooling it, so no WATCH or MULTI state outlives it. A nested
      operation that returns has left none (it ended with EXEC or UNWATCH).
    """

    __slots__ = ("key", "operation")

    #: Read by the drivers' retry logic: a pinned exchange is never repeated.
    resendable = False

    def __init__(self, key: str, operation: Operation[Any]) -> None:
        self.key = key
        self.operation = operation


class _Primaries:
    __slots__ = ()


PRIMARIES = _Primaries()

Request = Command | Batch | Offload | Sleep | Emit | OnServer | _Primaries | Pinned
Operation = Generator[Request, Any, T]

#: Commands that only read: with replicas configured they may go to one of them.
#: (Not SCAN: its cursor only means something on the server that issued it.)
READ_ONLY = frozenset(
    {
        "GET", "MGET", "EXISTS", "PTTL", "TTL",
        "SCARD", "SISMEMBER", "SMISMEMBER", "SMEMBERS", "SDIFF", "SINTER", "SUNION",
        "SRANDMEMBER", "HGET", "HGETALL", "HLEN", "HKEYS", "HEXISTS", "ZCARD", "ZCOUNT",
        "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYSCORE", "ZRANK", "ZSCORE",
    }
)  # fmt: skip

#: Increment only a key that exists, atomically, in one round trip (Django
#: requires ValueError for a missing key; a bare INCRBY would create it).
INCR_IF_EXISTS = (
    "if redis.call('EXISTS', KEYS[1]) == 1 then "
    "return redis.call('INCRBY', KEYS[1], ARGV[1]) end "
    "return false"
)


def encode(codec: Codec, value: Any, key: str) -> Generator[Request, Any, bytes | int]:
    """Serialize a cache value for ``key`` inline; if Django refuses (a lazy
    QuerySet that must hit the database from the event loop), hand that one
    value to the driver to serialize where synchronous code may run."""
    try:
        return codec.dumps(value, key)
    except SynchronousOnlyOperation:
        encoded: bytes | int = yield Offload(codec.dumps, value, key)
        return encoded


def encode_member(codec: Codec, value: Any) -> Generator[Request, Any, bytes | int]:
    """``encode`` for a member of a set or sorted set or a hash value (not bound
    to a key: see ``_codec``)."""
    try:
        return codec.dumps_member(value)
    except SynchronousOnlyOperation:
        encoded: bytes | int = yield Offload(codec.dumps_member, value)
        return encoded


def _expiry(ttl_ms: int | None) -> tuple[Any, ...]:
    return () if ttl_ms is None else ("PX", ttl_ms)


def get(codec: Codec, key: str, default: Any) -> Operation[Any]:
    raw = yield ("GET", key)
    return default if raw is None else codec.loads(raw, key)


def get_from_primary(codec: Codec, key: str, default: Any) -> Operation[Any]:
    """``get`` answered by the primary: for a read that decides a write (a session
    load, whose result is saved back), where a lagging replica would undo one."""
    raw = yield OnPrimary(("GET", key))
    return default if raw is None else codec.loads(raw, key)


def set(
    codec: Codec, key: str, value: Any, ttl_ms: int | None, condition: str | None = None
) -> Operation[bool]:
    """SET; ``condition`` "NX" stores only an absent key (``add``), "XX" only a
    present one. Returns whether the value was stored (or, for a timeout <= 0,
    would have been before expiring at once)."""
    stored = yield from encode(codec, value, key)
    if ttl_ms is not None and ttl_ms <= 0:
        # Django: a timeout of 0 or less stores nothing and removes an older value.
        if condition == "NX":
            exists = yield ("EXISTS", key)
            return not exists
        deleted = yield ("DEL", key)
        return condition is None or bool(deleted)
    if condition is None:
        yield ("SET", key, stored, *_expiry(ttl_ms))
        return True
    reply = yield ("SET", key, stored, condition, *_expiry(ttl_ms))
    return reply is not None


def get_or_set(codec: Codec, key: str, default: Any, ttl_ms: int | None) -> Operation[Any]:
    raw = yield ("GET", key)
    if raw is not None:
        return codec.loads(raw, key)
    if callable(default):
        default = default()
    if ttl_ms is not None and ttl_ms <= 0:
        return default
    stored = yield from encode(codec, default, key)
    # Add, and read back in the same round trip: if another caller added a value
    # in between, theirs wins and is returned (Django's race rule).
    added, raw = yield Batch((("SET", key, stored, "NX", *_expiry(ttl_ms)), ("GET", key)))
    if added is not None or raw is None:
        return default
    return codec.loads(raw, key)


def touch(key: str, ttl_ms: int | None) -> Operation[bool]:
    if ttl_ms is None:
        return (yield from persist(key))
    changed = yield ("PEXPIRE", key, ttl_ms)  # <= 0 deletes the key, as Django wants
    return bool(changed)


def delete(key: str) -> Operation[bool]:
    deleted = yield ("DEL", key)
    return bool(deleted)


def has_key(key: str) -> Operation[bool]:
    exists = yield ("EXISTS", key)
    return bool(exists)


def get_many(codec: Codec, keys: Mapping[str, Any]) -> Operation[dict[Any, Any]]:
    """``keys`` maps each made key to the caller's key, in the caller's order."""
    if not keys:
        return {}
    raws = yield ("MGET", *keys)
    return {
        original: codec.loads(raw, key)
        for (key, original), raw in zip(keys.items(), raws, strict=True)
        if raw is not None
    }


def set_many(codec: Codec, items: Mapping[str, Any], ttl_ms: int | None) -> Operation[list[Any]]:
    """Returns the keys that failed to be stored: none, as Django's contract says."""
    if not items:
        return []
    if ttl_ms is not None and ttl_ms <= 0:
        yield ("DEL", *items)
        return []
    flat: list[Any] = []
    for key, value in items.items():
        flat.append(key)
        flat.append((yield from encode(codec, value, key)))
    if ttl_ms is None:
        yield ("MSET", *flat)
    else:
        yield Batch(
            tuple(("SET", k, v, "PX", ttl_ms) for k, v in zip(flat[::2], flat[1::2], strict=True))
        )
    return []


def delete_many(keys: Sequence[str]) -> Operation[None]:
    if keys:
        yield ("DEL", *keys)


def incr(
    codec: Codec, key: str, delta: Any, name: Any, negate: bool = False, create: bool = False
) -> Operation[int]:
    """Add ``delta`` (``-delta`` with ``negate``) to an integer, atomically; never
    loses an update.

    - Plain serializers: one EVAL (INCRBY only if the key exists), or with
      ``create`` (django-redis's ``ignore_key_check``) a bare INCRBY, which
      creates a missing key holding ``delta``, without expiry.
    - Where the server cannot do it (a value beyond 64-bit integers, scripting
      denied by an ACL or a managed service) and under a key-binding serializer
      (integers are signed, the server cannot add to them): a compare-and-set
      transaction on the primary, retried on conflict (``_add_in_transaction``).

    Any other Redis error is raised as is; a value that is not an integer gives
    ``TypeError`` and a missing key ``ValueError`` (Django's contract), both with
    nothing written.
    """
    amount = _integer_delta(delta, name)
    if negate:
        amount = -amount
    if not codec.binds_keys:
        try:
            if create:
                value = yield ("INCRBY", key, amount)
            else:
                value = yield ("EVAL", INCR_IF_EXISTS, 1, key, amount)
        except ResponseError as exc:
            if not (_not_a_64_bit_integer(exc) or _scripting_denied(exc)):
                _raise_wrong_type(exc, name)
                raise
        else:
            if value is None:
                raise ValueError(f"Key {name!r} not found.")
            return int(value)
    for attempt in range(CAS_ATTEMPTS):
        try:
            result = yield Pinned(key, _add_in_transaction(codec, key, amount, name, create))
        except (MovedError, AskError, TryAgainError):
            result = _CONFLICT  # a cluster slot moving: the driver refreshes the map
        if result is _MISSING:
            raise ValueError(f"Key {name!r} not found.")
        if result is not _CONFLICT:
            return result  # type: ignore[no-any-return]
        yield Sleep(_conflict_pause(attempt))
    raise WatchError(
        f"Key {name!r} was changed by others during each of {CAS_ATTEMPTS} attempts to "
        "increment it: nothing was written."
    )


#: Attempts of a compare-and-set that keeps meeting concurrent writers, and the
#: longest pause between two (a random pause, growing, spreads the contenders).
CAS_ATTEMPTS = 100
_CAS_MAX_PAUSE = 0.01

_MISSING = object()
_CONFLICT = object()


def _conflict_pause(attempt: int) -> float:
    return random.uniform(0, min(_CAS_MAX_PAUSE, 0.0005 * (attempt + 1)))


def _add_in_transaction(
    codec: Codec, key: str, amount: int, name: Any, create: bool
) -> Operation[Any]:
    """WATCH + GET, add in Python, MULTI + SET KEEPTTL + EXEC: the value, or
    ``_CONFLICT`` when another client wrote the key in between (EXEC aborted)."""
    try:
        _, raw = yield Batch((("WATCH", key), ("GET", key)))
    except ResponseError as exc:
        _raise_wrong_type(exc, name)
        raise
    if raw is None:
        if not create:
            yield ("UNWATCH",)
            return _MISSING
        value = amount
    else:
        current = codec.loads(raw, key)
        if type(current) is not int:
            yield ("UNWATCH",)
            raise TypeError(f"Cannot increment the value of key {name!r}: it is not an integer.")
        value = current + amount
    stored = codec.dumps(value, key)
    *_, applied = yield Batch((("MULTI",), ("SET", key, stored, "KEEPTTL"), ("EXEC",)))
    return _CONFLICT if applied is None else value


def _integer_delta(delta: Any, name: Any) -> int:
    """Django's contract is an integer delta; anything int-like (``bool``, numpy's
    integers: what ``operator.index`` takes) is one, a float or a string is not."""
    try:
        return operator.index(delta)
    except TypeError:
        raise TypeError(
            f"Cannot increment key {name!r} by {delta!r}: the delta must be an integer, "
            f"not {type(delta).__name__}."
        ) from None


def _not_a_64_bit_integer(exc: ResponseError) -> bool:
    """The stored value is not a 64-bit integer, or the result would overflow."""
    text = str(exc)
    return "not an integer or out of range" in text or "would overflow" in text


def _scripting_denied(exc: ResponseError) -> bool:
    """EVAL refused: an ACL without @scripting (NOPERM), or a server that has no
    such command (renamed or removed by a managed service)."""
    text = str(exc).lower()
    denied = isinstance(exc, NoPermissionError) or text.startswith("noperm")
    return (denied or "unknown command" in text) and _NAMES_EVAL.search(text) is not None


#: The command named in the error, quoted as Redis 6 (`eval`) or 7+ ('eval') does.
_NAMES_EVAL = re.compile(r"['`]eval['`]")


def _raise_wrong_type(exc: ResponseError, name: Any) -> None:
    if "WRONGTYPE" in str(exc):
        raise TypeError(
            f"Cannot increment the value of key {name!r}: it holds a Redis list, set "
            "or hash, not an integer."
        ) from None


def rename(codec: Codec, source: str, target: str, name: Any) -> Operation[bool]:
    """Move a value to another version, keeping its expiry: one atomic RENAME, or,
    when the two keys live in different Redis Cluster slots, DUMP + RESTORE + DEL.

    Under a key-binding serializer the stored bytes are only valid under their
    old key, so the value is verified, signed for the new key and moved in one
    transaction instead (``_move_and_resign``)."""
    if codec.binds_keys:
        return (yield from _move_and_resign(codec, source, target, name))
    try:
        yield ("RENAME", source, target)
    except ClusterCrossSlotError:
        dumped, ttl_ms = yield Batch((("DUMP", source), ("PTTL", source)))
        if dumped is None:
            raise ValueError(f"Key {name!r} not found.") from None
        yield ("RESTORE", target, max(0, int(ttl_ms)), dumped, "REPLACE")
        yield ("DEL", source)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            raise ValueError(f"Key {name!r} not found.") from None
        raise
    return True


def _move_and_resign(codec: Codec, source: str, target: str, name: Any) -> Operation[bool]:
    for attempt in range(CAS_ATTEMPTS):
        try:
            result = yield Pinned(source, _resign_in_transaction(codec, source, target))
        except (MovedError, AskError, TryAgainError):
            result = _CONFLICT  # a cluster slot moving: the driver refreshes the map
        if result is _MISSING:
            raise ValueError(f"Key {name!r} not found.")
        if result is _CONFLICT:
            yield Sleep(_conflict_pause(attempt))
            continue
        if result is True:
            return True
        # The keys are in different Redis Cluster slots: no transaction spans
        # them. Write the new key, then delete the old (as DUMP + RESTORE does).
        stored, expiry = result
        yield ("SET", target, stored, *expiry)
        yield ("DEL", source)
        return True
    raise WatchError(
        f"Key {name!r} was changed by others during each of {CAS_ATTEMPTS} attempts "
        "to move it to its new version: nothing was moved."
    )


def _resign_in_transaction(codec: Codec, source: str, target: str) -> Operation[Any]:
    """WATCH + GET + PTTL the source, verify it and sign it for the target, then
    MULTI + SET target + DEL source + EXEC. A forged value is refused
    (``CorruptValueError``), never re-signed."""
    _, raw, ttl_ms = yield Batch((("WATCH", source), ("GET", source), ("PTTL", source)))
    if raw is None:
        yield ("UNWATCH",)
        return _MISSING
    stored = codec.dumps(codec.loads(raw, source), target)
    expiry = () if int(ttl_ms) < 0 else ("PX", max(1, int(ttl_ms)))
    try:
        *_, moved = yield Batch(
            (("MULTI",), ("SET", target, stored, *expiry), ("DEL", source), ("EXEC",))
        )
    except ResponseError as exc:
        # Queued in a cluster with the target on another slot: the EXEC was
        # aborted (EXECABORT), which ended the WATCH and MULTI too.
        if isinstance(exc, (MovedError, AskError, ClusterCrossSlotError)):
            return (stored, expiry)
        raise
    return _CONFLICT if moved is None else True


def clear() -> Operation[None]:
    for server in (yield PRIMARIES):
        yield OnServer(server, ("FLUSHDB",))


# Expiry


def ttl(key: str, unit: str) -> Operation[int | None]:
    """Remaining life in seconds ("TTL") or ms ("PTTL"): 0 when the key is missing
    or expired, None when it never expires (django-redis's convention)."""
    remaining = yield (unit, key)
    if remaining == -1:
        return None
    return max(0, int(remaining))


def expire(key: str, command: str, when: int) -> Operation[bool]:
    """PEXPIRE (relative ms) or PEXPIREAT (absolute ms): whether the key existed."""
    changed = yield (command, key, when)
    return bool(changed)


def persist(key: str) -> Operation[bool]:
    """Remove the expiry; True when the key exists (PERSIST alone says 0 for a key
    that had no expiry)."""
    _, exists = yield Batch((("PERSIST", key), ("EXISTS", key)))
    return bool(exists)


# Key patterns


def scan(pattern: str, count: int | None, decode_key: Callable[[str], Any]) -> Operation[None]:
    """SCAN the keyspace, emitting the caller's keys page by page; never KEYS."""
    count_args = () if count is None else ("COUNT", count)
    for server in (yield PRIMARIES):
        cursor: Any = 0
        while True:
            scan = ("SCAN", cursor, "MATCH", pattern, *count_args)
            cursor, keys = yield OnServer(server, scan)
            if keys:
                yield Emit([decode_key(key.decode()) for key in keys])
            if int(cursor) == 0:
                break


def delete_pattern(pattern: str, count: int | None) -> Operation[int]:
    """SCAN + UNLINK page by page (the server frees memory in the background)."""
    deleted = 0
    count_args = () if count is None else ("COUNT", count)
    for server in (yield PRIMARIES):
        cursor: Any = 0
        while True:
            scan = ("SCAN", cursor, "MATCH", pattern, *count_args)
            cursor, keys = yield OnServer(server, scan)
            if keys:
                deleted += yield ("UNLINK", *keys)
            if int(cursor) == 0:
                break
    return deleted


# Locks: redis-py's algorithm (SET NX PX with a random token, Lua to release and
# extend only while the token is still ours), written once for both APIs.

RELEASE_IF_OWNED = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)
EXTEND_IF_OWNED = (
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
    "local ttl = redis.call('PTTL', KEYS[1]) "
    "if ttl < 0 then return -1 end "
    "if ARGV[3] == '1' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
    "else redis.call('PEXPIRE', KEYS[1], ttl + ARGV[2]) end return 1"
)


def lock_acquire(
    name: str,
    token: bytes,
    ttl_ms: int | None,
    sleep: float,
    blocking: bool,
    blocking_timeout: float | None,
) -> Operation[bool]:
    deadline = None if blocking_timeout is None else time.monotonic() + blocking_timeout
    while True:
        reply = yield ("SET", name, token, "NX", *_expiry(ttl_ms))
        if reply is not None:
            return True
        if not blocking:
            return False
        if deadline is not None and time.monotonic() + sleep > deadline:
            return False
        yield Sleep(sleep)


def lock_release(name: str, token: bytes) -> Operation[None]:
    released = yield ("EVAL", RELEASE_IF_OWNED, 1, name, token)
    if not released:
        raise LockNotOwnedError(f"Cannot release lock {name!r}: it is no longer owned.")


def lock_extend(name: str, token: bytes, ms: int, replace: bool) -> Operation[bool]:
    """Add ``ms`` to the lock's life (or set it to ``ms`` with ``replace``)."""
    result = yield ("EVAL", EXTEND_IF_OWNED, 1, name, token, ms, "1" if replace else "0")
    if result == 0:
        raise LockNotOwnedError(f"Cannot extend lock {name!r}: it is no longer owned.")
    if result == -1:
        raise LockError(f"Cannot extend lock {name!r}: it has no timeout.")
    return True


def lock_owned(name: str, token: bytes | None) -> Operation[bool]:
    stored = yield OnPrimary(("GET", name))
    return token is not None and stored == token
