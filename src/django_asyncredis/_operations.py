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
  them: for what concerns every key rather than one (SCAN, FLUSHDB).

A Redis error reply (``ResponseError``) is thrown into the generator at the
yield, so an operation can catch it and take another path.

Keys arrive already made and validated by the backend; ``ttl_ms`` is the
normalised timeout: None for "forever", <= 0 for "expire now", else milliseconds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, TypeVar

from django.core.exceptions import SynchronousOnlyOperation
from redis.exceptions import ClusterCrossSlotError, LockError, LockNotOwnedError, ResponseError

from django_asyncredis._codec import Codec

T = TypeVar("T")

Command = tuple[Any, ...]


class Batch(tuple[Command, ...]):
    """Commands sent together in one round trip (a pipeline, not a transaction)."""

    __slots__ = ()


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


class _Primaries:
    __slots__ = ()


PRIMARIES = _Primaries()

Request = Command | Batch | Offload | Sleep | Emit | OnServer | _Primaries
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


def encode(codec: Codec, value: Any) -> Generator[Request, Any, bytes | int]:
    """Serialize inline; if Django refuses (a lazy QuerySet that must hit the
    database from the event loop), hand that one value to the driver to
    serialize where synchronous code may run."""
    try:
        return codec.dumps(value)
    except SynchronousOnlyOperation:
        encoded: bytes | int = yield Offload(codec.dumps, value)
        return encoded


def _expiry(ttl_ms: int | None) -> tuple[Any, ...]:
    return () if ttl_ms is None else ("PX", ttl_ms)


def get(codec: Codec, key: str, default: Any) -> Operation[Any]:
    raw = yield ("GET", key)
    return default if raw is None else codec.loads(raw, key)


def set(
    codec: Codec, key: str, value: Any, ttl_ms: int | None, condition: str | None = None
) -> Operation[bool]:
    """SET; ``condition`` "NX" stores only an absent key (``add``), "XX" only a
    present one. Returns whether the value was stored (or, for a timeout <= 0,
    would have been before expiring at once)."""
    stored = yield from encode(codec, value)
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
    stored = yield from encode(codec, default)
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
        flat.append((yield from encode(codec, value)))
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


def incr(codec: Codec, key: str, delta: int, name: Any) -> Operation[int]:
    """Atomic on the server; beyond 64-bit integers, a read-modify-write fallback."""
    try:
        value = yield ("EVAL", INCR_IF_EXISTS, 1, key, delta)
    except ResponseError:
        # The stored value is not a 64-bit integer, or the result would overflow.
        value = None
        raw = yield ("GET", key)
        if raw is not None:
            current = codec.loads(raw, key)
            if type(current) is not int:
                raise TypeError(
                    f"Cannot increment the value of key {name!r}: it is not an integer."
                ) from None
            value = current + delta
            yield ("SET", key, value, "KEEPTTL")
    if value is None:
        raise ValueError(f"Key {name!r} not found.")
    return int(value)


def rename(source: str, target: str, name: Any) -> Operation[bool]:
    """Move a value to another version, keeping its expiry: one atomic RENAME, or,
    when the two keys live in different Redis Cluster slots, DUMP + RESTORE + DEL."""
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
    stored = yield ("GET", name)
    return token is not None and stored == token


def route(servers: Sequence[Any], request: Request) -> Any:
    """The server a request goes to: a random replica for a single read-only
    command when replicas are configured, else the leader (``servers[0]``)."""
    if len(servers) > 1 and type(request) is tuple and request[0] in READ_ONLY:
        return servers[random.randrange(1, len(servers))]
    return servers[0]
