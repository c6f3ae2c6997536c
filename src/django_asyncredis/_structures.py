"""Hash, set and sorted-set helpers (django-redis 7.0's, plus ``hget``/``hgetall``).

Each method makes the keys and builds an operation (``_structure_ops``), like
the backend's own methods; the sync twin runs it with the sync adapter, the
``a``-twin with the async core. The second argument of ``run`` is the result in
IGNORE_EXCEPTIONS mode when the server is down.

Members of sets and sorted sets, and hash values, are stored like cache values
(ints raw, anything else serialized); hash field names are text. These keys get
no timeout: use ``expire()`` on them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from django_asyncredis import _structure_ops as sops
from django_asyncredis._operations import Operation

if TYPE_CHECKING:
    from django_asyncredis._codec import Codec
    from django_asyncredis._core import AsyncCore
    from django_asyncredis._sync import SyncAdapter

Key = Any  # whatever the KEY_FUNCTION accepts
Field = str | bytes | int | float  # hash field names: stored as text, returned as str
Score = float | str  # a number, or a bound like "-inf", "+inf", "(1.5"
ScoreCast = Callable[[Any], Any]


def _limit(start: int | None, num: int | None) -> tuple[int, int] | None:
    """The LIMIT of a by-score range: both or neither."""
    if start is None and num is None:
        return None
    if start is None or num is None:
        raise ValueError("start and num must be given together.")
    return (start, num)


class StructuresMixin:
    """Sets, hashes and sorted sets, each method with its ``a``-twin."""

    # Provided by the backend (RedisCache).
    _codec: Codec
    _sync: SyncAdapter
    _async: AsyncCore
    _key: Callable[[Key, int | None], str]

    def _keys(self, keys: tuple[Key, ...], version: int | None) -> list[str]:
        return [self._key(key, version) for key in keys]

    # Operations that need more than making keys, built once for both twins.

    def _hset(
        self,
        key: Key,
        field: Field | None,
        value: Any,
        mapping: Mapping[Field, Any] | None,
        version: int | None,
    ) -> Operation[int]:
        if field is None and mapping is None:
            raise ValueError("hset() takes a field and a value, or a mapping.")
        pairs = [] if mapping is None else list(mapping.items())
        if field is not None:
            pairs.append((field, value))
        return sops.hset(self._codec, self._key(key, version), pairs)

    def _zadd(
        self,
        key: Key,
        mapping: Mapping[Any, float],
        nx: bool,
        xx: bool,
        ch: bool,
        incr: bool,
        gt: bool,
        lt: bool,
        version: int | None,
    ) -> Operation[int | float | None]:
        if nx and xx:
            raise ValueError("zadd() takes nx=True or xx=True, not both.")
        if gt and lt:
            raise ValueError("zadd() takes gt=True or lt=True, not both.")
        if nx and (gt or lt):
            raise ValueError("zadd() takes nx=True or gt/lt=True, not both.")
        if incr and len(mapping) != 1:
            raise ValueError("zadd(incr=True) takes exactly one member.")
        options = {"NX": nx, "XX": xx, "GT": gt, "LT": lt, "CH": ch, "INCR": incr}
        flags = [name for name, chosen in options.items() if chosen]
        return sops.zadd(self._codec, self._key(key, version), mapping.items(), flags)

    def _zrange(
        self,
        key: Key,
        start: int,
        end: int,
        desc: bool,
        withscores: bool,
        score_cast_func: ScoreCast,
        version: int | None,
    ) -> Operation[list[Any]]:
        operation = sops.zrevrange if desc else sops.zrange
        return operation(
            self._codec, self._key(key, version), start, end, withscores, score_cast_func
        )

    # The sync API.

    # Sets

    def sadd(self, key: Key, *values: Any, version: int | None = None) -> int:
        """Add members; how many were new."""
        return self._sync.run(sops.sadd(self._codec, self._key(key, version), values), 0)

    def scard(self, key: Key, version: int | None = None) -> int:
        """The number of members."""
        return self._sync.run(sops.scard(self._key(key, version)), 0)

    def sdiff(self, *keys: Key, version: int | None = None) -> set[Any]:
        """The members of the first set that are in none of the others."""
        return self._sync.run(sops.sdiff(self._codec, self._keys(keys, version)), set())

    def sdiffstore(
        self,
        dest: Key,
        *keys: Key,
        version_dest: int | None = None,
        version_keys: int | None = None,
    ) -> int:
        """Store ``sdiff(*keys)`` in ``dest``; its size."""
        return self._sync.run(
            sops.sdiffstore(self._key(dest, version_dest), self._keys(keys, version_keys)), 0
        )

    def sinter(self, *keys: Key, version: int | None = None) -> set[Any]:
        """The members found in every set."""
        return self._sync.run(sops.sinter(self._codec, self._keys(keys, version)), set())

    def sinterstore(self, dest: Key, *keys: Key, version: int | None = None) -> int:
        """Store ``sinter(*keys)`` in ``dest``; its size."""
        return self._sync.run(
            sops.sinterstore(self._key(dest, version), self._keys(keys, version)), 0
        )

    def smismember(self, key: Key, *members: Any, version: int | None = None) -> list[bool]:
        """Whether each member is in the set, in order."""
        return self._sync.run(
            sops.smismember(self._codec, self._key(key, version), members), [False] * len(members)
        )

    def sismember(self, key: Key, member: Any, version: int | None = None) -> bool:
        return self._sync.run(sops.sismember(self._codec, self._key(key, version), member), False)

    def smembers(self, key: Key, version: int | None = None) -> set[Any]:
        """All the members (they must be hashable: see ``sscan_iter`` otherwise)."""
        return self._sync.run(sops.smembers(self._codec, self._key(key, version)), set())

    def smove(self, source: Key, destination: Key, member: Any, version: int | None = None) -> bool:
        """Move a member to another set (both keys in ``version``); whether it was moved."""
        return self._sync.run(
            sops.smove(
                self._codec, self._key(source, version), self._key(destination, version), member
            ),
            False,
        )

    def spop(self, key: Key, count: int | None = None, version: int | None = None) -> Any:
        """Remove and return a random member (None if empty), or a set of up to ``count``."""
        return self._sync.run(
            sops.spop(self._codec, self._key(key, version), count), None if count is None else set()
        )

    def srandmember(self, key: Key, count: int | None = None, version: int | None = None) -> Any:
        """A random member (None if empty), or a list of ``count`` (negative: may repeat)."""
        return self._sync.run(
            sops.srandmember(self._codec, self._key(key, version), count),
            None if count is None else [],
        )

    def srem(self, key: Key, *members: Any, version: int | None = None) -> int:
        """Remove members; how many were there."""
        return self._sync.run(sops.srem(self._codec, self._key(key, version), members), 0)

    def sscan(
        self, key: Key, match: str | None = None, count: int | None = 10, version: int | None = None
    ) -> set[Any]:
        """Every member, read ``count`` at a time; ``match``: a glob on string members."""
        return self._sync.run(sops.sscan(self._codec, self._key(key, version), match, count), set())

    def sscan_iter(
        self, key: Key, match: str | None = None, count: int | None = 10, version: int | None = None
    ) -> Iterator[Any]:
        """Like ``sscan``, as a generator: one SSCAN page at a time."""
        return self._sync.iterate(
            sops.sscan_iter(self._codec, self._key(key, version), match, count)
        )

    def sunion(self, *keys: Key, version: int | None = None) -> set[Any]:
        """The members found in any of the sets."""
        return self._sync.run(sops.sunion(self._codec, self._keys(keys, version)), set())

    def sunionstore(self, destination: Key, *keys: Key, version: int | None = None) -> int:
        """Store ``sunion(*keys)`` in ``destination``; its size."""
        return self._sync.run(
            sops.sunionstore(self._key(destination, version), self._keys(keys, version)), 0
        )

    # Hashes

    def hset(
        self,
        key: Key,
        field: Field | None = None,
        value: Any = None,
        mapping: Mapping[Field, Any] | None = None,
        version: int | None = None,
    ) -> int:
        """Set ``field`` to ``value`` and/or the fields of ``mapping``; how many fields were new."""
        return self._sync.run(self._hset(key, field, value, mapping, version), 0)

    def hdel(self, key: Key, field: Field, version: int | None = None) -> int:
        """Remove a field; 1 if it was there, else 0."""
        return self._sync.run(sops.hdel(self._key(key, version), field), 0)

    def hlen(self, key: Key, version: int | None = None) -> int:
        """The number of fields."""
        return self._sync.run(sops.hlen(self._key(key, version)), 0)

    def hkeys(self, key: Key, version: int | None = None) -> list[str]:
        """The field names."""
        return self._sync.run(sops.hkeys(self._key(key, version)), [])

    def hexists(self, key: Key, field: Field, version: int | None = None) -> bool:
        return self._sync.run(sops.hexists(self._key(key, version), field), False)

    def hget(self, key: Key, field: Field, default: Any = None, version: int | None = None) -> Any:
        """The value of a field, or ``default`` when the field or the hash is missing."""
        return self._sync.run(
            sops.hget(self._codec, self._key(key, version), field, default), default
        )

    def hgetall(self, key: Key, version: int | None = None) -> dict[str, Any]:
        """Every field and its value."""
        return self._sync.run(sops.hgetall(self._codec, self._key(key, version)), {})

    # Sorted sets

    def zadd(
        self,
        key: Key,
        mapping: Mapping[Any, float],
        nx: bool = False,
        xx: bool = False,
        ch: bool = False,
        incr: bool = False,
        gt: bool = False,
        lt: bool = False,
        version: int | None = None,
    ) -> int | float | None:
        """How many members were added (or changed: ``ch``); with ``incr``, the new score."""
        return self._sync.run(
            self._zadd(key, mapping, nx, xx, ch, incr, gt, lt, version), None if incr else 0
        )

    def zcard(self, key: Key, version: int | None = None) -> int:
        """The number of members."""
        return self._sync.run(sops.zcard(self._key(key, version)), 0)

    def zcount(self, key: Key, min: Score, max: Score, version: int | None = None) -> int:
        """How many members have a score between ``min`` and ``max``."""
        return self._sync.run(sops.zcount(self._key(key, version), min, max), 0)

    def zincrby(
        self, key: Key, amount: float, value: Any, version: int | None = None
    ) -> float | None:
        """Add ``amount`` to a member's score (a missing member starts at 0); the new score."""
        return self._sync.run(
            sops.zincrby(self._codec, self._key(key, version), amount, value), None
        )

    def zpopmax(self, key: Key, count: int | None = None, version: int | None = None) -> Any:
        """Pop the highest (member, score), or None; with ``count``, a list of pairs."""
        return self._sync.run(
            sops.zpopmax(self._codec, self._key(key, version), count), None if count is None else []
        )

    def zpopmin(self, key: Key, count: int | None = None, version: int | None = None) -> Any:
        """Pop the lowest (member, score), or None; with ``count``, a list of pairs."""
        return self._sync.run(
            sops.zpopmin(self._codec, self._key(key, version), count), None if count is None else []
        )

    def zrange(
        self,
        key: Key,
        start: int,
        end: int,
        desc: bool = False,
        withscores: bool = False,
        score_cast_func: ScoreCast = float,
        version: int | None = None,
    ) -> list[Any]:
        """Members by rank, ``end`` included; (member, score) pairs with ``withscores``."""
        return self._sync.run(
            self._zrange(key, start, end, desc, withscores, score_cast_func, version), []
        )

    def zrangebyscore(
        self,
        key: Key,
        min: Score,
        max: Score,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: ScoreCast = float,
        version: int | None = None,
    ) -> list[Any]:
        """Members scored ``min``..``max``, lowest first; ``start``/``num``: a page."""
        return self._sync.run(
            sops.zrangebyscore(
                self._codec,
                self._key(key, version),
                min,
                max,
                _limit(start, num),
                withscores,
                score_cast_func,
            ),
            [],
        )

    def zrank(
        self, key: Key, value: Any, withscore: bool = False, version: int | None = None
    ) -> int | list[Any] | None:
        """A member's rank from the lowest score, or None; ``withscore``: [rank, score]."""
        return self._sync.run(
            sops.zrank(self._codec, self._key(key, version), value, withscore), None
        )

    def zrem(self, key: Key, *values: Any, version: int | None = None) -> int:
        """Remove members; how many were there."""
        return self._sync.run(sops.zrem(self._codec, self._key(key, version), values), 0)

    def zremrangebyscore(self, key: Key, min: Score, max: Score, version: int | None = None) -> int:
        """Remove the members with a score between ``min`` and ``max``; how many."""
        return self._sync.run(sops.zremrangebyscore(self._key(key, version), min, max), 0)

    def zrevrange(
        self,
        key: Key,
        start: int,
        end: int,
        withscores: bool = False,
        score_cast_func: ScoreCast = float,
        version: int | None = None,
    ) -> list[Any]:
        """Like ``zrange``, highest score first."""
        return self._sync.run(
            sops.zrevrange(
                self._codec, self._key(key, version), start, end, withscores, score_cast_func
            ),
            [],
        )

    def zrevrangebyscore(
        self,
        key: Key,
        max: Score,
        min: Score,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: ScoreCast = float,
        version: int | None = None,
    ) -> list[Any]:
        """Like ``zrangebyscore``, highest score first (note: ``max`` comes first)."""
        return self._sync.run(
            sops.zrevrangebyscore(
                self._codec,
                self._key(key, version),
                max,
                min,
                _limit(start, num),
                withscores,
                score_cast_func,
            ),
            [],
        )

    def zscore(self, key: Key, value: Any, version: int | None = None) -> float | None:
        """A member's score, or None if it is missing."""
        return self._sync.run(sops.zscore(self._codec, self._key(key, version), value), None)

    # The async API.

    # Sets

    async def asadd(self, key: Key, *values: Any, version: int | None = None) -> int:
        return await self._async.run(sops.sadd(self._codec, self._key(key, version), values), 0)

    async def ascard(self, key: Key, version: int | None = None) -> int:
        return await self._async.run(sops.scard(self._key(key, version)), 0)

    async def asdiff(self, *keys: Key, version: int | None = None) -> set[Any]:
        return await self._async.run(sops.sdiff(self._codec, self._keys(keys, version)), set())

    async def asdiffstore(
        self,
        dest: Key,
        *keys: Key,
        version_dest: int | None = None,
        version_keys: int | None = None,
    ) -> int:
        return await self._async.run(
            sops.sdiffstore(self._key(dest, version_dest), self._keys(keys, version_keys)), 0
        )

    async def asinter(self, *keys: Key, version: int | None = None) -> set[Any]:
        return await self._async.run(sops.sinter(self._codec, self._keys(keys, version)), set())

    async def asinterstore(self, dest: Key, *keys: Key, version: int | None = None) -> int:
        return await self._async.run(
            sops.sinterstore(self._key(dest, version), self._keys(keys, version)), 0
        )

    async def asmismember(self, key: Key, *members: Any, version: int | None = None) -> list[bool]:
        return await self._async.run(
            sops.smismember(self._codec, self._key(key, version), members), [False] * len(members)
        )

    async def asismember(self, key: Key, member: Any, version: int | None = None) -> bool:
        return await self._async.run(
            sops.sismember(self._codec, self._key(key, version), member), False
        )

    async def asmembers(self, key: Key, version: int | None = None) -> set[Any]:
        return await self._async.run(sops.smembers(self._codec, self._key(key, version)), set())

    async def asmove(
        self, source: Key, destination: Key, member: Any, version: int | None = None
    ) -> bool:
        return await self._async.run(
            sops.smove(
                self._codec, self._key(source, version), self._key(destination, version), member
            ),
            False,
        )

    async def aspop(self, key: Key, count: int | None = None, version: int | None = None) -> Any:
        return await self._async.run(
            sops.spop(self._codec, self._key(key, version), count), None if count is None else set()
        )

    async def asrandmember(
        self, key: Key, count: int | None = None, version: int | None = None
    ) -> Any:
        return await self._async.run(
            sops.srandmember(self._codec, self._key(key, version), count),
            None if count is None else [],
        )

    async def asrem(self, key: Key, *members: Any, version: int | None = None) -> int:
        return await self._async.run(sops.srem(self._codec, self._key(key, version), members), 0)

    async def asscan(
        self, key: Key, match: str | None = None, count: int | None = 10, version: int | None = None
    ) -> set[Any]:
        return await self._async.run(
            sops.sscan(self._codec, self._key(key, version), match, count), set()
        )

    def asscan_iter(
        self, key: Key, match: str | None = None, count: int | None = 10, version: int | None = None
    ) -> AsyncIterator[Any]:
        """``async for member in cache.asscan_iter(key)``: one SSCAN page at a time."""
        return self._async.iterate(
            sops.sscan_iter(self._codec, self._key(key, version), match, count)
        )

    async def asunion(self, *keys: Key, version: int | None = None) -> set[Any]:
        return await self._async.run(sops.sunion(self._codec, self._keys(keys, version)), set())

    async def asunionstore(self, destination: Key, *keys: Key, version: int | None = None) -> int:
        return await self._async.run(
            sops.sunionstore(self._key(destination, version), self._keys(keys, version)), 0
        )

    # Hashes

    async def ahset(
        self,
        key: Key,
        field: Field | None = None,
        value: Any = None,
        mapping: Mapping[Field, Any] | None = None,
        version: int | None = None,
    ) -> int:
        return await self._async.run(self._hset(key, field, value, mapping, version), 0)

    async def ahdel(self, key: Key, field: Field, version: int | None = None) -> int:
        return await self._async.run(sops.hdel(self._key(key, version), field), 0)

    async def ahlen(self, key: Key, version: int | None = None) -> int:
        return await self._async.run(sops.hlen(self._key(key, version)), 0)

    async def ahkeys(self, key: Key, version: int | None = None) -> list[str]:
        return await self._async.run(sops.hkeys(self._key(key, version)), [])

    async def ahexists(self, key: Key, field: Field, version: int | None = None) -> bool:
        return await self._async.run(sops.hexists(self._key(key, version), field), False)

    async def ahget(
        self, key: Key, field: Field, default: Any = None, version: int | None = None
    ) -> Any:
        return await self._async.run(
            sops.hget(self._codec, self._key(key, version), field, default), default
        )

    async def ahgetall(self, key: Key, version: int | None = None) -> dict[str, Any]:
        return await self._async.run(sops.hgetall(self._codec, self._key(key, version)), {})

    # Sorted sets

    async def azadd(
        self,
        key: Key,
        mapping: Mapping[Any, float],
        nx: bool = False,
        xx: bool = False,
        ch: bool = False,
        incr: bool = False,
        gt: bool = False,
        lt: bool = False,
        version: int | None = None,
    ) -> int | float | None:
        return await self._async.run(
            self._zadd(key, mapping, nx, xx, ch, incr, gt, lt, version), None if incr else 0
        )

    async def azcard(self, key: Key, version: int | None = None) -> int:
        return await self._async.run(sops.zcard(self._key(key, version)), 0)

    async def azcount(self, key: Key, min: Score, max: Score, version: int | None = None) -> int:
        return await self._async.run(sops.zcount(self._key(key, version), min, max), 0)

    async def azincrby(
        self, key: Key, amount: float, value: Any, version: int | None = None
    ) -> float | None:
        return await self._async.run(
            sops.zincrby(self._codec, self._key(key, version), amount, value), None
        )

    async def azpopmax(self, key: Key, count: int | None = None, version: int | None = None) -> Any:
        return await self._async.run(
            sops.zpopmax(self._codec, self._key(key, version), count), None if count is None else []
        )

    async def azpopmin(self, key: Key, count: int | None = None, version: int | None = None) -> Any:
        return await self._async.run(
            sops.zpopmin(self._codec, self._key(key, version), count), None if count is None else []
        )

    async def azrange(
        self,
        key: Key,
        start: int,
        end: int,
        desc: bool = False,
        withscores: bool = False,
        score_cast_func: ScoreCast = float,
        version: int | None = None,
    ) -> list[Any]:
        return await self._async.run(
            self._zrange(key, start, end, desc, withscores, score_cast_func, version), []
        )

    async def azrangebyscore(
        self,
        key: Key,
        min: Score,
        max: Score,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: ScoreCast = float,
        version: int | None = None,
    ) -> list[Any]:
        return await self._async.run(
            sops.zrangebyscore(
                self._codec,
                self._key(key, version),
                min,
                max,
                _limit(start, num),
                withscores,
                score_cast_func,
            ),
            [],
        )

    async def azrank(
        self, key: Key, value: Any, withscore: bool = False, version: int | None = None
    ) -> int | list[Any] | None:
        return await self._async.run(
            sops.zrank(self._codec, self._key(key, version), value, withscore), None
        )

    async def azrem(self, key: Key, *values: Any, version: int | None = None) -> int:
        return await self._async.run(sops.zrem(self._codec, self._key(key, version), values), 0)

    async def azremrangebyscore(
        self, key: Key, min: Score, max: Score, version: int | None = None
    ) -> int:
        return await self._async.run(sops.zremrangebyscore(self._key(key, version), min, max), 0)

    async def azrevrange(
        self,
        key: Key,
        start: int,
        end: int,
        withscores: bool = False,
        score_cast_func: ScoreCast = float,
        version: int | None = None,
    ) -> list[Any]:
        return await self._async.run(
            sops.zrevrange(
                self._codec, self._key(key, version), start, end, withscores, score_cast_func
            ),
            [],
        )

    async def azrevrangebyscore(
        self,
        key: Key,
        max: Score,
        min: Score,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: ScoreCast = float,
        version: int | None = None,
    ) -> list[Any]:
        return await self._async.run(
            sops.zrevrangebyscore(
                self._codec,
                self._key(key, version),
                max,
                min,
                _limit(start, num),
                withscores,
                score_cast_func,
            ),
            [],
        )

    async def azscore(self, key: Key, value: Any, version: int | None = None) -> float | None:
        return await self._async.run(sops.zscore(self._codec, self._key(key, version), value), None)
