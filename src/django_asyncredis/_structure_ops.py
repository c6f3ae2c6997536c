"""The hash, set and sorted-set operations, written once for both APIs (see ``_operations``).

Members of sets and sorted sets and values of hashes go through the codec like
cache values (ints raw, the rest serialized; ``dumps_member``: never bound to
their key, even under the signed serializer, since set operations compare
members across keys). Members are compared by their bytes, not by Python
equality: two values are the same member only when they serialize to the same
bytes. Ints, strings, bytes and floats do, each to one encoding; containers may
not (pickle's output for equal dicts or sets can differ with insertion order
and history), so ``sadd({"a": 1, "b": 2})`` and ``sadd({"b": 2, "a": 1})`` can
make two members.
Hash field names are text, like keys: sent as given, returned as ``str``.
Scores are numbers, never encoded.

Replies have RESP2's shapes: the connections pin protocol 2 (see ``_pools``).

Each public method has its own named generator here, even when it is a one-line
delegation, so a failure ignored in IGNORE_EXCEPTIONS mode is logged under the
method's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any

from django_asyncredis._codec import Codec
from django_asyncredis._operations import Emit, Operation, Request, encode_member

ScoreCast = Callable[[Any], Any]


def _encode_all(codec: Codec, values: Iterable[Any]) -> Generator[Request, Any, list[bytes | int]]:
    encoded = []
    for value in values:
        encoded.append((yield from encode_member(codec, value)))
    return encoded


def _decoded(codec: Codec, key: str, raws: Iterable[bytes]) -> list[Any]:
    return [codec.loads_member(raw, key) for raw in raws]


def _pairs(reply: Sequence[Any]) -> list[tuple[Any, Any]]:
    """Member-score pairs from a flat [member, score, member, score, ...] reply."""
    return list(zip(reply[::2], reply[1::2], strict=True))


def _scored(
    codec: Codec, key: str, reply: Sequence[Any], cast: ScoreCast = float
) -> list[tuple[Any, Any]]:
    """[(member, score), ...]; a score (text on the wire) becomes a float, then goes
    through ``cast`` if it is not ``float``."""
    loads = codec.loads_member
    if cast is float:
        return [(loads(member, key), float(score)) for member, score in _pairs(reply)]
    return [(loads(member, key), cast(float(score))) for member, score in _pairs(reply)]


def _int(*command: Any) -> Operation[int]:
    reply = yield command
    return int(reply)


def _members(codec: Codec, command: str, keys: Sequence[str]) -> Operation[set[Any]]:
    raws = yield (command, *keys)
    return set(_decoded(codec, keys[0] if keys else "", raws))


# Sets


def sadd(codec: Codec, key: str, members: Sequence[Any]) -> Operation[int]:
    if not members:
        return 0
    stored = yield from _encode_all(codec, members)
    added = yield ("SADD", key, *stored)
    return int(added)


def srem(codec: Codec, key: str, members: Sequence[Any]) -> Operation[int]:
    if not members:
        return 0
    stored = yield from _encode_all(codec, members)
    removed = yield ("SREM", key, *stored)
    return int(removed)


def scard(key: str) -> Operation[int]:
    return (yield from _int("SCARD", key))


def smembers(codec: Codec, key: str) -> Operation[set[Any]]:
    return (yield from _members(codec, "SMEMBERS", [key]))


def sdiff(codec: Codec, keys: Sequence[str]) -> Operation[set[Any]]:
    return (yield from _members(codec, "SDIFF", keys))


def sinter(codec: Codec, keys: Sequence[str]) -> Operation[set[Any]]:
    return (yield from _members(codec, "SINTER", keys))


def sunion(codec: Codec, keys: Sequence[str]) -> Operation[set[Any]]:
    return (yield from _members(codec, "SUNION", keys))


def sdiffstore(destination: str, keys: Sequence[str]) -> Operation[int]:
    return (yield from _int("SDIFFSTORE", destination, *keys))


def sinterstore(destination: str, keys: Sequence[str]) -> Operation[int]:
    return (yield from _int("SINTERSTORE", destination, *keys))


def sunionstore(destination: str, keys: Sequence[str]) -> Operation[int]:
    return (yield from _int("SUNIONSTORE", destination, *keys))


def sismember(codec: Codec, key: str, member: Any) -> Operation[bool]:
    stored = yield from encode_member(codec, member)
    found = yield ("SISMEMBER", key, stored)
    return bool(found)


def smismember(codec: Codec, key: str, members: Sequence[Any]) -> Operation[list[bool]]:
    if not members:
        return []
    stored = yield from _encode_all(codec, members)
    found = yield ("SMISMEMBER", key, *stored)
    return [bool(each) for each in found]


def smove(codec: Codec, source: str, destination: str, member: Any) -> Operation[bool]:
    stored = yield from encode_member(codec, member)
    moved = yield ("SMOVE", source, destination, stored)
    return bool(moved)


def spop(codec: Codec, key: str, count: int | None) -> Operation[Any]:
    """One member (None for an empty set), or a set of up to ``count``."""
    if count is None:
        raw = yield ("SPOP", key)
        return None if raw is None else codec.loads_member(raw, key)
    raws = yield ("SPOP", key, count)
    return set(_decoded(codec, key, raws))


def srandmember(codec: Codec, key: str, count: int | None) -> Operation[Any]:
    """One member (None for an empty set), or a list of ``count`` (negative: with repeats)."""
    if count is None:
        raw = yield ("SRANDMEMBER", key)
        return None if raw is None else codec.loads_member(raw, key)
    raws = yield ("SRANDMEMBER", key, count)
    return _decoded(codec, key, raws)


def sscan(codec: Codec, key: str, match: str | None, count: int | None) -> Operation[set[Any]]:
    """Every member (matching ``match``), SSCAN page by page."""
    found: set[Any] = set()
    cursor: Any = 0
    matches = _matcher(match)
    while True:
        cursor, raws = yield ("SSCAN", key, cursor, *_count(count))
        found.update(_matching(codec, key, raws, matches))
        if int(cursor) == 0:
            return found


def sscan_iter(codec: Codec, key: str, match: str | None, count: int | None) -> Operation[None]:
    """Like ``sscan``, emitting the members page by page (a member may come twice
    if the set is resized during the scan, as with SSCAN itself)."""
    cursor: Any = 0
    matches = _matcher(match)
    while True:
        cursor, raws = yield ("SSCAN", key, cursor, *_count(count))
        page = _matching(codec, key, raws, matches)
        if page:
            yield Emit(page)
        if int(cursor) == 0:
            return


def _count(count: int | None) -> tuple[Any, ...]:
    return () if count is None else ("COUNT", count)


def _matching(
    codec: Codec, key: str, raws: Iterable[bytes], matches: Callable[[Any], bool] | None
) -> list[Any]:
    decoded = _decoded(codec, key, raws)
    return decoded if matches is None else [member for member in decoded if matches(member)]


def _matcher(pattern: str | None) -> Callable[[Any], bool] | None:
    """``match`` is a Redis glob applied here to the decoded string members: the
    server's MATCH would see serialized bytes, not the caller's strings."""
    if pattern is None:
        return None
    compiled = re.compile(_glob_regex(pattern), re.DOTALL)
    return lambda member: isinstance(member, str) and compiled.fullmatch(member) is not None


def _glob_regex(pattern: str) -> str:
    """Redis's glob syntax (``*``, ``?``, ``[abc]``, ``[^a-z]``, ``\\`` escapes) as a regex."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif char == "[":
            negate = pattern[i : i + 1] == "^"
            start = j = i + negate
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            body = _class_body(pattern[start:j])  # unterminated: the class runs to the end
            if body:
                out.append(f"[{'^' if negate else ''}{body}]")
            else:
                out.append("." if negate else "(?!)")  # "[]" matches nothing, as in Redis
            i = j + 1
        else:
            out.append(re.escape(char))
    return "".join(out)


def _class_body(body: str) -> str:
    parts: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            parts.append(re.escape(body[i + 1]))
            i += 2
        elif i + 2 < len(body) and body[i + 1] == "-":
            low, high = sorted((body[i], body[i + 2]))
            parts.append(f"{re.escape(low)}-{re.escape(high)}")
            i += 3
        else:
            parts.append(re.escape(body[i]))
            i += 1
    return "".join(parts)


# Hashes


def hset(codec: Codec, key: str, pairs: Sequence[tuple[Any, Any]]) -> Operation[int]:
    """Store fields; how many were new."""
    if not pairs:
        return 0
    flat: list[Any] = []
    for field, value in pairs:
        flat.append(field)
        flat.append((yield from encode_member(codec, value)))
    added = yield ("HSET", key, *flat)
    return int(added)


def hget(codec: Codec, key: str, field: Any, default: Any) -> Operation[Any]:
    raw = yield ("HGET", key, field)
    return default if raw is None else codec.loads_member(raw, key)


def hgetall(codec: Codec, key: str) -> Operation[dict[str, Any]]:
    reply = yield ("HGETALL", key)  # [field, value, field, value, ...]
    return {field.decode(): codec.loads_member(raw, key) for field, raw in _pairs(reply)}


def hkeys(key: str) -> Operation[list[str]]:
    fields = yield ("HKEYS", key)
    return [field.decode() for field in fields]


def hdel(key: str, field: Any) -> Operation[int]:
    return (yield from _int("HDEL", key, field))


def hlen(key: str) -> Operation[int]:
    return (yield from _int("HLEN", key))


def hexists(key: str, field: Any) -> Operation[bool]:
    found = yield ("HEXISTS", key, field)
    return bool(found)


# Sorted sets


def zadd(
    codec: Codec, key: str, mapping: Iterable[tuple[Any, Any]], flags: Sequence[str]
) -> Operation[int | float | None]:
    """ZADD with its flags; with INCR, the new score (None when NX/XX/GT/LT
    prevented the change), else how many members were added (or changed, CH)."""
    flat: list[Any] = []
    for member, score in mapping:
        flat.append(score)
        flat.append((yield from encode_member(codec, member)))
    if not flat:
        return 0
    reply = yield ("ZADD", key, *flags, *flat)
    if "INCR" in flags:
        return None if reply is None else float(reply)
    return int(reply)


def zcard(key: str) -> Operation[int]:
    return (yield from _int("ZCARD", key))


def zcount(key: str, low: Any, high: Any) -> Operation[int]:
    return (yield from _int("ZCOUNT", key, low, high))


def zremrangebyscore(key: str, low: Any, high: Any) -> Operation[int]:
    return (yield from _int("ZREMRANGEBYSCORE", key, low, high))


def zincrby(codec: Codec, key: str, amount: float, member: Any) -> Operation[float]:
    stored = yield from encode_member(codec, member)
    score = yield ("ZINCRBY", key, amount, stored)
    return float(score)


def zscore(codec: Codec, key: str, member: Any) -> Operation[float | None]:
    stored = yield from encode_member(codec, member)
    score = yield ("ZSCORE", key, stored)
    return None if score is None else float(score)


def zrank(
    codec: Codec, key: str, member: Any, withscore: bool
) -> Operation[int | list[Any] | None]:
    """The 0-based rank (None for a missing member); with ``withscore``, [rank, score]."""
    stored = yield from encode_member(codec, member)
    if not withscore:
        rank = yield ("ZRANK", key, stored)
        return None if rank is None else int(rank)
    reply = yield ("ZRANK", key, stored, "WITHSCORE")
    return None if reply is None else [int(reply[0]), float(reply[1])]


def zrem(codec: Codec, key: str, members: Sequence[Any]) -> Operation[int]:
    if not members:
        return 0
    stored = yield from _encode_all(codec, members)
    removed = yield ("ZREM", key, *stored)
    return int(removed)


def _zpop(codec: Codec, command: str, key: str, count: int | None) -> Operation[Any]:
    """One (member, score), or None; with ``count``, a list of them."""
    reply = yield ((command, key) if count is None else (command, key, count))
    popped = _scored(codec, key, reply)
    if count is None:
        return popped[0] if popped else None
    return popped


def zpopmax(codec: Codec, key: str, count: int | None) -> Operation[Any]:
    return (yield from _zpop(codec, "ZPOPMAX", key, count))


def zpopmin(codec: Codec, key: str, count: int | None) -> Operation[Any]:
    return (yield from _zpop(codec, "ZPOPMIN", key, count))


def _range(
    codec: Codec,
    key: str,
    command: tuple[Any, ...],
    withscores: bool,
    cast: ScoreCast,
    limit: tuple[int, int] | None = None,
) -> Operation[list[Any]]:
    """Members, or (member, score) pairs with ``withscores``."""
    if withscores:
        command += ("WITHSCORES",)
    if limit is not None:
        command += ("LIMIT", *limit)
    reply = yield command
    if withscores:
        return _scored(codec, key, reply, cast)
    return _decoded(codec, key, reply)


def zrange(
    codec: Codec, key: str, start: int, end: int, withscores: bool, cast: ScoreCast
) -> Operation[list[Any]]:
    return (yield from _range(codec, key, ("ZRANGE", key, start, end), withscores, cast))


def zrevrange(
    codec: Codec, key: str, start: int, end: int, withscores: bool, cast: ScoreCast
) -> Operation[list[Any]]:
    return (yield from _range(codec, key, ("ZREVRANGE", key, start, end), withscores, cast))


def zrangebyscore(
    codec: Codec,
    key: str,
    low: Any,
    high: Any,
    limit: tuple[int, int] | None,
    withscores: bool,
    cast: ScoreCast,
) -> Operation[list[Any]]:
    command = ("ZRANGEBYSCORE", key, low, high)
    return (yield from _range(codec, key, command, withscores, cast, limit))


def zrevrangebyscore(
    codec: Codec,
    key: str,
    high: Any,
    low: Any,
    limit: tuple[int, int] | None,
    withscores: bool,
    cast: ScoreCast,
) -> Operation[list[Any]]:
    command = ("ZREVRANGEBYSCORE", key, high, low)
    return (yield from _range(codec, key, command, withscores, cast, limit))
