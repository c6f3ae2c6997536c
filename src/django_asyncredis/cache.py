"""The Django cache backend: ``CACHES = {"default": {"BACKEND": "django_asyncredis.RedisCache"}}``.

It translates and does not talk to Redis: each method makes and validates the
key, normalises the timeout, builds the operation (``_operations``) and hands it
to the async core (``a``-methods) or to the sync adapter (the others). Both run
the very same operation, so the two APIs cannot drift apart.

Beyond Django's API it has django-redis's extensions (``ttl``, ``expire``,
``persist``, ``lock``, ``keys``, ``iter_keys``, ``delete_pattern``, ``set(nx=,
xx=)``), each with an async twin named with an ``a`` in front.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.client
import redis.asyncio.cluster
import redis.client
import redis.cluster
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache, default_key_func
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from django_asyncredis import _near, _raw, _stampede, _stats
from django_asyncredis import _operations as ops
from django_asyncredis._config import CacheConfig, parse_cached
from django_asyncredis._lock import AsyncLock, Lock
from django_asyncredis._pipeline import AsyncPipeline, Pipeline
from django_asyncredis._pools import aclose_async_pools, close_sync_pools, servers_in_use
from django_asyncredis._structures import StructuresMixin

Key = Any  # whatever the KEY_FUNCTION accepts; Django's default takes str
Timeout = float | int | None | object
Expiry = float | int | timedelta
When = datetime | float | int

_NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})
_GLOB_SPECIALS = re.compile(r"([*?\[\]\\])")
_MEMCACHED_MAX_KEY_LENGTH = 250
#: redis-py's pipelines: refused as ``client=`` (see ``_check_client``).
_PIPELINES = (
    redis.client.Pipeline,
    redis.asyncio.client.Pipeline,
    redis.cluster.ClusterPipeline,
    redis.asyncio.cluster.ClusterPipeline,
)


class RedisCache(StructuresMixin, BaseCache):
    """Django's cache API on Redis or Valkey, natively async, with a sync twin of every method."""

    def __new__(cls, server: Any = None, params: dict[str, Any] | None = None) -> RedisCache:
        """Bad LOCATION or OPTIONS give a ``MisconfiguredCache`` when the system checks
        report them: Django's own cache checks build every cache before ours can say
        E001, and that cache raises the error at first use instead (``_misconfigured``).
        (No arguments: ``copy.copy``, which fills the instance itself.)"""
        if params is None:
            return super().__new__(cls)
        try:
            parse_cached(server, params.get("OPTIONS") or _NO_OPTIONS)
        except ImproperlyConfigured as error:
            from django_asyncredis import _misconfigured

            if not _misconfigured.reported_by_checks():
                raise
            return _misconfigured.MisconfiguredCache.refusing(error, params)
        return super().__new__(cls)

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(params)
        # One shared empty mapping when there are no OPTIONS, so the settings memo
        # recognises it by identity on every request.
        self._config: CacheConfig = parse_cached(server, params.get("OPTIONS") or _NO_OPTIONS)
        self._codec = self._config.codec
        # The drivers, measured for the stats and traced unless both are off (_stats).
        self._sync, self._async, self._stats = _stats.drivers(self._config)
        self._reverse_key_func = _reverse_key_function(params.get("REVERSE_KEY_FUNCTION"))
        self._custom_key_func = params.get("KEY_FUNCTION") is not None
        #: Keys are made by Django's rules as BaseCache spells them (a subclass may
        #: override make_key or validate_key, as Django's docs suggest): ``_key``
        #: may make them itself, without the method calls. (Those methods replaced
        #: later, as by ``mock.patch.object``, are not seen: docs/api.md.)
        kind = type(self)
        self._plain_keys = (
            kind.make_key is BaseCache.make_key
            and kind.make_and_validate_key is BaseCache.make_and_validate_key
            and kind.validate_key is RedisCache.validate_key
        )
        config = self._config
        self._herd_seconds = config.herd_timeout
        self._stampede_policy = _stampede.default_policy(
            config.stampede_stale, config.stampede_xfetch, config.stampede_lock, config.herd_timeout
        )
        # The near-cache (NEAR_CACHE): reads look there first, writes drop their keys.
        self._near: _near.NearStore | None = None
        #: The drivers of get, get_many and has_key (the unwatched ones: see below).
        self._sync_reads, self._async_reads = self._sync, self._async
        if config.near_cache is not None:
            tracked = "" if self._custom_key_func else f"{self.key_prefix}:"
            # Under Sentinel, the service's state: the listener follows its primary.
            listened = config.topology if config.mode == "sentinel" else config.servers[0]
            self._near = _near.store_for(config.near_cache, listened, tracked)
            # Writes drop their keys' local copies; get, get_many and has_key keep
            # the unwatched drivers (they write nothing): the hot path of a hit.
            self._sync = _near.WatchingSync(self._sync, self._near)  # type: ignore[assignment]
            self._async = _near.WatchingAsync(self._async, self._near)  # type: ignore[assignment]
            # Its counters are read by cache.stats and the exporters (the registered
            # stats; with STATS off and OpenTelemetry on, self._stats is another).
            self._stats.near.watch(self._near)
            _stats.stats_of(config).near.watch(self._near)
        #: What counts a near-cache hit, answered here without a driver (it sends
        #: nothing): the meter of the driver that would have run the call.
        self._sync_meter = self._sync_reads.meter
        self._async_meter = self._async_reads.meter

    def __repr__(self) -> str:
        servers = ", ".join(str(server) for server in self._config.servers)
        return f"<{type(self).__qualname__} {servers}>"

    def get_backend_timeout(self, timeout: Timeout = DEFAULT_TIMEOUT) -> int | None:
        """The timeout in milliseconds (None: forever; <= 0: expire now).

        Milliseconds, so a timeout of 0.5 s means half a second rather than
        Django's built-in rounding down to "expire now".
        """
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return None
        return int(timeout * 1000)  # type: ignore[operator]

    def _key(self, key: Key, version: int | None) -> str:
        """``make_and_validate_key`` in one call rather than five, unless a subclass
        changed how keys are made (then its methods are called): a fifth of a
        near-cache hit's cost. ``key_func`` is read on each call, as Django's own
        tests replace it on the instance."""
        if not self._plain_keys:
            return self.make_and_validate_key(key, version=version)
        if version is None:
            version = self.version
        key_func = self.key_func
        if key_func is default_key_func:
            made = "%s:%s:%s" % (self.key_prefix, version, key)  # noqa: UP031  # as Django's
        else:
            made = key_func(key, self.key_prefix, version)
        if len(made) > _MEMCACHED_MAX_KEY_LENGTH or not made.isprintable() or " " in made:
            BaseCache.validate_key(self, made)  # Django's warnings, if any is due
        return made

    def _made_keys(self, keys: Iterable[Key], version: int | None) -> dict[str, Key]:
        """``_key`` for many keys, without a method call per key (it was 40% of an
        ``aget_many`` of 100 keys): stored key -> caller's key."""
        if not self._plain_keys:
            return {self.make_and_validate_key(key, version=version): key for key in keys}
        if version is None:
            version = self.version
        make, prefix, validate = self.key_func, self.key_prefix, self.validate_key
        made: dict[str, Key] = {}
        for key in keys:
            stored = make(key, prefix, version)
            validate(stored)
            made[stored] = key
        return made

    def validate_key(self, key: str) -> None:
        """Django's memcached-portability warnings (a key too long, a control
        character or a space), with the common case decided without Django's loop
        over the key's characters: a printable key without a space and short
        enough warns of nothing. (Other keys, printable or not, Django checks.)"""
        if len(key) > _MEMCACHED_MAX_KEY_LENGTH or not key.isprintable() or " " in key:
            super().validate_key(key)

    # django-redis's ways to reach the redis-py client.

    def get_client(self, write: bool = True) -> redis.Redis:
        """django-redis's ``get_client``: an alias of ``get_redis_connection`` for
        this cache (the leader, or a replica for ``write=False``)."""
        return _raw.client_of(self, write)

    async def aget_client(self, write: bool = True) -> redis.asyncio.Redis:
        """``aget_redis_connection`` for this cache, bound to the running loop."""
        return await _raw.aclient_of(self, write)

    @property
    def stats(self) -> _stats.CacheStats:
        """This cache alias's counters, shared by every instance in the process:
        ``cache.stats.as_dict()``, ``cache.stats.reset()`` (see docs/observability.md)."""
        return self._stats

    @property
    def client(self) -> RedisCache:
        """django-redis code says ``cache.client.get_client()``: the backend is its
        own client, so this is the cache itself."""
        return self

    def pipeline(self) -> Pipeline:
        """``with cache.pipeline() as p: p.set(...); p.get(...)``: the calls run
        together on leaving the block, one round trip per step; ``p.results``
        then holds each call's result (see ``_pipeline``)."""
        return Pipeline(self)

    def apipeline(self) -> AsyncPipeline:
        """``async with cache.apipeline() as p:``: the async API's pipeline."""
        return AsyncPipeline(self)

    def _check_client(self, client: Any) -> None:
        """django-redis's ``client=`` keyword. This cache's own client is honoured
        (the call goes where that client points anyway); a pipeline cannot be,
        because each cache call needs its reply to give Django's result."""
        if isinstance(client, _PIPELINES):
            raise TypeError(
                "client= cannot be a redis-py pipeline: each cache call needs its own "
                "reply to return Django's result. Batch cache calls with "
                "`with cache.pipeline() as p:` (or `async with cache.apipeline() as p:`)."
            )
        address = _raw.address_of_client(client)
        if address is None or address not in _raw.addresses_of(self._config):
            raise ValueError(
                "client= must be None or a client of this cache's own servers "
                "(cache.get_client()): the cache routes each call itself. To batch "
                "calls, use `with cache.pipeline() as p:`."
            )

    # The operations, each built once for both APIs.

    def _read(
        self,
        near: _near.NearStore,
        key: Key,
        default: Any,
        version: int | None,
        meter: _stats.Meter | None,
    ) -> tuple[Any, ops.Operation[Any] | None]:
        """``get`` with a near-cache: (the value, None) when it holds the key, else
        (None, the operation that reads it from the server, its read begun). (A
        cache without one calls ``_get`` directly: a frame less on its hot path.)

        A hit needs no driver at all: no generator, no coroutine (a fifth of a
        hit's time went there); it is decoded afresh and counted as a ``get`` by
        ``meter``. A miss is counted by the driver that runs the operation."""
        if not near.eligible(key):
            return None, self._get(key, default, version)
        made = self._key(key, version)
        start = _stats.clock() if meter is not None else 0.0
        held = near.lookup_or_begin(made)
        if not isinstance(held, bytes):  # a miss: its Ticket, or None
            return None, _near.get(near, self._codec, made, default, held)
        if meter is None:
            return self._codec.loads(held, made), None
        started = meter.start("get", start)  # a span, if traced, opens after the lookup
        try:
            value = self._codec.loads(held, made)
        except BaseException as exc:
            meter.failed(started, exc)
            raise
        meter.end(started, value, default)
        return value, None

    def _get(self, key: Key, default: Any, version: int | None) -> ops.Operation[Any]:
        if self._herd_seconds is not None:
            made = self._key(key, version)
            return _stampede.herd_get(self._codec, made, default, self._herd_seconds)
        return ops.get(self._codec, self._key(key, version), default)

    def _set(
        self,
        key: Key,
        value: Any,
        timeout: Timeout,
        version: int | None,
        nx: bool = False,
        xx: bool = False,
    ) -> ops.Operation[bool]:
        if nx and xx:
            raise ValueError("set() takes nx=True or xx=True, not both.")
        condition = "NX" if nx else "XX" if xx else None
        if self._herd_seconds is not None:
            return _stampede.herd_set(
                self._codec,
                self._key(key, version),
                value,
                self.get_backend_timeout(timeout),
                self._herd_seconds,
                condition,
            )
        return ops.set(
            self._codec,
            self._key(key, version),
            value,
            self.get_backend_timeout(timeout),
            condition,
        )

    def _get_or_set(
        self, key: Key, default: Any, timeout: Timeout, version: int | None
    ) -> ops.Operation[Any]:
        """The one-operation ``get_or_set`` of a pipeline step (Django's semantics)."""
        return ops.get_or_set(
            self._codec, self._key(key, version), default, self.get_backend_timeout(timeout)
        )

    def _stampede_call(
        self,
        key: Key,
        default: Any,
        timeout: Timeout,
        version: int | None,
        stale: float | bool | None,
        xfetch: float | bool | None,
        lock: float | bool | None,
    ) -> _stampede.Call:
        policy = self._stampede_policy
        if stale is not None or xfetch is not None or lock is not None:
            policy = policy.merged(stale, xfetch, lock)
        return _stampede.Call(
            id(self._config),
            self._codec,
            self._key(key, version),
            default,
            self.get_backend_timeout(timeout),
            policy,
        )

    def _touch(self, key: Key, timeout: Timeout, version: int | None) -> ops.Operation[bool]:
        return ops.touch(self._key(key, version), self.get_backend_timeout(timeout))

    def _get_many(self, keys: Iterable[Key], version: int | None) -> ops.Operation[dict[Any, Any]]:
        made = self._made_keys(keys, version)
        near = self._near
        if near is None:
            return ops.get_many(self._codec, made)
        eligible = frozenset(stored for stored, key in made.items() if near.eligible(key))
        return _near.get_many(near, self._codec, made, eligible)

    def _has_key(self, key: Key, version: int | None) -> ops.Operation[bool]:
        near = self._near
        if near is not None and near.eligible(key):
            return _near.has_key(near, self._key(key, version))
        return ops.has_key(self._key(key, version))

    def near_cache_stats(self) -> dict[str, int | bool] | None:
        """The near-cache's counters and size in this process (docs/near-cache.md):
        hits, misses, invalidations (from the server), write_drops (by this
        process's writes), flushes, refused_stale, entries, bytes, ready;
        None when NEAR_CACHE is off."""
        return None if self._near is None else self._near.stats()

    def _set_many(
        self, data: Mapping[Key, Any], timeout: Timeout, version: int | None
    ) -> ops.Operation[list[Any]]:
        made = self._made_keys(data, version)
        items = {stored: data[key] for stored, key in made.items()}
        return ops.set_many(self._codec, items, self.get_backend_timeout(timeout))

    def _delete_many(self, keys: Iterable[Key], version: int | None) -> ops.Operation[None]:
        return ops.delete_many(list(self._made_keys(keys, version)))

    def _incr(
        self, key: Key, delta: int, version: int | None, negate: bool, ignore_key_check: bool
    ) -> ops.Operation[int]:
        return ops.incr(
            self._codec, self._key(key, version), delta, key, negate, create=ignore_key_check
        )

    def _incr_version(
        self, key: Key, delta: int, version: int | None
    ) -> tuple[ops.Operation[bool], int]:
        if version is None:
            version = self.version
        source = self._key(key, version)
        target = self._key(key, version + delta)
        return ops.rename(self._codec, source, target, key), version + delta

    def _expire_in(
        self, key: Key, timeout: Expiry | object | None, unit_ms: int, version: int | None
    ) -> ops.Operation[bool]:
        """A relative expiry, as django-redis reads it: ``DEFAULT_TIMEOUT`` is the
        cache's TIMEOUT (in seconds, whatever the unit), and ``None`` (or a TIMEOUT of
        None) means no expiry, as for ``set``: the key is persisted."""
        if timeout is DEFAULT_TIMEOUT:
            timeout, unit_ms = self.default_timeout, 1000
        if timeout is None:
            return ops.persist(self._key(key, version))
        ms = _ms(timeout, unit_ms)  # type: ignore[arg-type]
        return ops.expire(self._key(key, version), "PEXPIRE", ms)

    def _expire_at(
        self, key: Key, when: When, unit_ms: int, version: int | None
    ) -> ops.Operation[bool]:
        return ops.expire(self._key(key, version), "PEXPIREAT", _ms_at(when, unit_ms))

    def _scan(self, search: str, itersize: int | None, version: int | None) -> ops.Operation[None]:
        count = itersize or self._config.scan_itersize
        return ops.scan(self.make_pattern(search, version), count, self._reverse(version))

    def _delete_pattern(
        self, pattern: str, version: int | None, prefix: str | None, itersize: int | None
    ) -> ops.Operation[int]:
        count = itersize or self._config.scan_itersize
        return ops.delete_pattern(self.make_pattern(pattern, version, prefix), count)

    def make_pattern(
        self, pattern: str, version: int | None = None, prefix: str | None = None
    ) -> str:
        """The server-side glob for the caller's ``pattern``: prefix and version
        added like ``make_key`` does, glob characters in the prefix escaped."""
        prefix = self.key_prefix if prefix is None else prefix
        version = self.version if version is None else version
        return self.key_func(pattern, _GLOB_SPECIALS.sub(r"\\\1", prefix), version)  # type: ignore[no-any-return]

    def _reverse(self, version: int | None) -> Callable[[str], Any]:
        """Turn a stored key back into the caller's key."""
        if self._reverse_key_func is not None:
            return self._reverse_key_func
        if self._custom_key_func:
            return str  # without REVERSE_KEY_FUNCTION we cannot know: keys as stored
        head = len(self.make_key("", version))
        return lambda stored: stored[head:]

    # The sync API (Django's contract), driven by the sync adapter.

    def get(
        self, key: Key, default: Any = None, version: int | None = None, client: Any = None
    ) -> Any:
        if client is not None:
            self._check_client(client)
        near = self._near
        if near is None:
            return self._sync_reads.run(self._get(key, default, version), default)
        value, operation = self._read(near, key, default, version, self._sync_meter)
        return value if operation is None else self._sync_reads.run(operation, default)

    def set(  # type: ignore[override]
        self,
        key: Key,
        value: Any,
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
        nx: bool = False,
        xx: bool = False,
        client: Any = None,
    ) -> bool | None:
        """Store a value. With ``nx`` (only if absent) or ``xx`` (only if present),
        return whether it was stored; else None, as Django's contract says."""
        if client is not None:
            self._check_client(client)
        stored = self._sync.run(self._set(key, value, timeout, version, nx, xx), False)
        return stored if nx or xx else None

    def add(
        self,
        key: Key,
        value: Any,
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> bool:
        if client is not None:
            self._check_client(client)
        return self._sync.run(self._set(key, value, timeout, version, nx=True), False)

    def get_or_set(
        self,
        key: Key,
        default: Any | Callable[[], Any],
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
        *,
        stale: float | bool | None = None,
        xfetch: float | bool | None = None,
        lock: float | bool | None = None,
    ) -> Any:
        """Django's ``get_or_set`` with stampede protection (docs/stampede.md):
        concurrent misses of the key in this process run ``default`` once;
        ``stale``, ``xfetch`` and ``lock`` (None: the alias's OPTIONS; False:
        off) refresh ahead of expiry and coalesce across processes."""
        if client is not None:
            self._check_client(client)
        call = self._stampede_call(key, default, timeout, version, stale, xfetch, lock)
        return _stampede.get_or_set(call, self._sync)

    def touch(
        self,
        key: Key,
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> bool:
        if client is not None:
            self._check_client(client)
        return self._sync.run(self._touch(key, timeout, version), False)

    def delete(self, key: Key, version: int | None = None, client: Any = None) -> bool:
        if client is not None:
            self._check_client(client)
        return self._sync.run(ops.delete(self._key(key, version)), False)

    def has_key(self, key: Key, version: int | None = None, client: Any = None) -> bool:
        if client is not None:
            self._check_client(client)
        return self._sync_reads.run(self._has_key(key, version), False)

    def get_many(
        self, keys: Iterable[Key], version: int | None = None, client: Any = None
    ) -> dict[Any, Any]:
        if client is not None:
            self._check_client(client)
        return self._sync_reads.run(self._get_many(keys, version), {})

    def set_many(
        self,
        data: Mapping[Key, Any],
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> list[Any]:
        if client is not None:
            self._check_client(client)
        return self._sync.run(self._set_many(data, timeout, version), list(data))

    def delete_many(
        self, keys: Iterable[Key], version: int | None = None, client: Any = None
    ) -> None:
        if client is not None:
            self._check_client(client)
        self._sync.run(self._delete_many(keys, version))

    def incr(
        self,
        key: Key,
        delta: int = 1,
        version: int | None = None,
        ignore_key_check: bool = False,
        client: Any = None,
    ) -> int:
        """Add ``delta`` atomically. A missing key raises ``ValueError`` (Django's
        contract) or, with ``ignore_key_check`` (django-redis's), is created
        holding ``delta``; a delta that is not an integer raises ``TypeError``."""
        if client is not None:
            self._check_client(client)
        return self._sync.run(self._incr(key, delta, version, False, ignore_key_check))

    def decr(
        self,
        key: Key,
        delta: int = 1,
        version: int | None = None,
        ignore_key_check: bool = False,
        client: Any = None,
    ) -> int:
        if client is not None:
            self._check_client(client)
        return self._sync.run(self._incr(key, delta, version, True, ignore_key_check))

    def incr_version(
        self, key: Key, delta: int = 1, version: int | None = None, client: Any = None
    ) -> int:
        if client is not None:
            self._check_client(client)
        operation, new_version = self._incr_version(key, delta, version)
        moved = self._sync.run(operation, False)
        return new_version if moved else None  # type: ignore[return-value]  # ignore-exceptions

    def decr_version(
        self, key: Key, delta: int = 1, version: int | None = None, client: Any = None
    ) -> int:
        if client is not None:
            self._check_client(client)
        return self.incr_version(key, -delta, version)

    def clear(self, client: Any = None) -> None:
        """FLUSHDB: empties the whole database, as Django's built-in backend does."""
        if client is not None:
            self._check_client(client)
        self._sync.run(ops.clear())

    def close(self, **kwargs: Any) -> None:
        """Django calls this at the end of every request: free unless CLOSE_CONNECTION is set."""
        if self._config.close_connection:
            close_sync_pools(servers_in_use(self._config))

    def ttl(self, key: Key, version: int | None = None, client: Any = None) -> int | None:
        """Seconds left: 0 for a missing or expired key, None for one without expiry."""
        if client is not None:
            self._check_client(client)
        return self._sync.run(ops.ttl(self._key(key, version), "TTL"), 0)

    def pttl(self, key: Key, version: int | None = None, client: Any = None) -> int | None:
        """Milliseconds left: 0 for a missing or expired key, None for one without expiry."""
        if client is not None:
            self._check_client(client)
        return self._sync.run(ops.ttl(self._key(key, version), "PTTL"), 0)

    def expire(
        self, key: Key, timeout: Expiry | None, version: int | None = None, client: Any = None
    ) -> bool:
        """Expire in ``timeout`` seconds (or a timedelta; ``DEFAULT_TIMEOUT``: the cache's
        TIMEOUT; ``None``: never); whether the key existed."""
        if client is not None:
            self._check_client(client)
        return self._sync.run(self._expire_in(key, timeout, 1000, version), False)

    def pexpire(
        self, key: Key, timeout: Expiry | None, version: int | None = None, client: Any = None
    ) -> bool:
        """Expire in ``timeout`` milliseconds (or a timedelta; ``DEFAULT_TIMEOUT``: the
        cache's TIMEOUT; ``None``: never); whether the key existed."""
        if client is not None:
            self._check_client(client)
        return self._sync.run(self._expire_in(key, timeout, 1, version), False)

    def expire_at(
        self, key: Key, when: When, version: int | None = None, client: Any = None
    ) -> bool:
        """Expire at a datetime or a Unix timestamp in seconds; whether the key existed."""
        if client is not None:
            self._check_client(client)
        return self._sync.run(self._expire_at(key, when, 1000, version), False)

    def pexpire_at(
        self, key: Key, when: When, version: int | None = None, client: Any = None
    ) -> bool:
        """Expire at a datetime or a Unix timestamp in milliseconds; whether the key existed."""
        if client is not None:
            self._check_client(client)
        return self._sync.run(self._expire_at(key, when, 1, version), False)

    def persist(self, key: Key, version: int | None = None, client: Any = None) -> bool:
        """Remove the expiry; whether the key exists."""
        if client is not None:
            self._check_client(client)
        return self._sync.run(ops.persist(self._key(key, version)), False)

    def keys(self, search: str, version: int | None = None, client: Any = None) -> list[Any]:
        """The caller's keys matching a glob ``search``, found with SCAN (never KEYS)."""
        if client is not None:
            self._check_client(client)
        return list(self._sync.iterate(self._scan(search, None, version)))

    def iter_keys(
        self,
        search: str,
        itersize: int | None = None,
        version: int | None = None,
        client: Any = None,
    ) -> Iterator[Any]:
        """Like ``keys``, as a generator: one SCAN page of ``itersize`` at a time."""
        if client is not None:
            self._check_client(client)
        return self._sync.iterate(self._scan(search, itersize, version))

    def delete_pattern(
        self,
        pattern: str,
        version: int | None = None,
        prefix: str | None = None,
        itersize: int | None = None,
        client: Any = None,
    ) -> int:
        """Delete the keys matching a glob ``pattern`` (SCAN + UNLINK); how many."""
        if client is not None:
            self._check_client(client)
        return self._sync.run(self._delete_pattern(pattern, version, prefix, itersize), 0)

    def lock(
        self,
        key: Key,
        version: int | None = None,
        timeout: float | None = None,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        thread_local: bool = True,
        client: Any = None,
    ) -> Lock:
        """A distributed lock on the server: ``with cache.lock("name"): ...``."""
        if client is not None:
            self._check_client(client)
        return Lock(
            self._sync,
            self._key(key, version),
            timeout=timeout,
            sleep=sleep,
            blocking=blocking,
            blocking_timeout=blocking_timeout,
            thread_local=thread_local,
        )

    # The async API, driven natively by the async core: no thread, no sync_to_async.

    async def aget(
        self, key: Key, default: Any = None, version: int | None = None, client: Any = None
    ) -> Any:
        if client is not None:
            self._check_client(client)
        near = self._near
        if near is None:
            return await self._async_reads.run(self._get(key, default, version), default)
        value, operation = self._read(near, key, default, version, self._async_meter)
        return value if operation is None else await self._async_reads.run(operation, default)

    async def aset(  # type: ignore[override]
        self,
        key: Key,
        value: Any,
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
        nx: bool = False,
        xx: bool = False,
        client: Any = None,
    ) -> bool | None:
        if client is not None:
            self._check_client(client)
        stored = await self._async.run(self._set(key, value, timeout, version, nx, xx), False)
        return stored if nx or xx else None

    async def aadd(
        self,
        key: Key,
        value: Any,
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> bool:
        if client is not None:
            self._check_client(client)
        return await self._async.run(self._set(key, value, timeout, version, nx=True), False)

    async def aget_or_set(
        self,
        key: Key,
        default: Any | Callable[[], Any],
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
        *,
        stale: float | bool | None = None,
        xfetch: float | bool | None = None,
        lock: float | bool | None = None,
    ) -> Any:
        """``get_or_set`` whose ``default`` may also be an async callable (or
        return an awaitable): it is awaited."""
        if client is not None:
            self._check_client(client)
        call = self._stampede_call(key, default, timeout, version, stale, xfetch, lock)
        return await _stampede.aget_or_set(call, self._async)

    async def atouch(
        self,
        key: Key,
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> bool:
        if client is not None:
            self._check_client(client)
        return await self._async.run(self._touch(key, timeout, version), False)

    async def adelete(self, key: Key, version: int | None = None, client: Any = None) -> bool:
        if client is not None:
            self._check_client(client)
        return await self._async.run(ops.delete(self._key(key, version)), False)

    async def ahas_key(self, key: Key, version: int | None = None, client: Any = None) -> bool:
        if client is not None:
            self._check_client(client)
        return await self._async_reads.run(self._has_key(key, version), False)

    async def aget_many(
        self, keys: Iterable[Key], version: int | None = None, client: Any = None
    ) -> dict[Any, Any]:
        if client is not None:
            self._check_client(client)
        return await self._async_reads.run(self._get_many(keys, version), {})

    async def aset_many(
        self,
        data: Mapping[Key, Any],
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> list[Any]:
        if client is not None:
            self._check_client(client)
        return await self._async.run(self._set_many(data, timeout, version), list(data))

    async def adelete_many(
        self, keys: Iterable[Key], version: int | None = None, client: Any = None
    ) -> None:
        if client is not None:
            self._check_client(client)
        await self._async.run(self._delete_many(keys, version))

    async def aincr(
        self,
        key: Key,
        delta: int = 1,
        version: int | None = None,
        ignore_key_check: bool = False,
        client: Any = None,
    ) -> int:
        if client is not None:
            self._check_client(client)
        return await self._async.run(self._incr(key, delta, version, False, ignore_key_check))

    async def adecr(
        self,
        key: Key,
        delta: int = 1,
        version: int | None = None,
        ignore_key_check: bool = False,
        client: Any = None,
    ) -> int:
        if client is not None:
            self._check_client(client)
        return await self._async.run(self._incr(key, delta, version, True, ignore_key_check))

    async def aincr_version(
        self, key: Key, delta: int = 1, version: int | None = None, client: Any = None
    ) -> int:
        if client is not None:
            self._check_client(client)
        operation, new_version = self._incr_version(key, delta, version)
        moved = await self._async.run(operation, False)
        return new_version if moved else None  # type: ignore[return-value]  # ignore-exceptions

    async def adecr_version(
        self, key: Key, delta: int = 1, version: int | None = None, client: Any = None
    ) -> int:
        if client is not None:
            self._check_client(client)
        return await self.aincr_version(key, -delta, version)

    async def aclear(self, client: Any = None) -> None:
        if client is not None:
            self._check_client(client)
        await self._async.run(ops.clear())

    async def aclose(self, **kwargs: Any) -> None:
        """With CLOSE_CONNECTION, close this cache's connections on the running loop."""
        if self._config.close_connection:
            await aclose_async_pools(servers_in_use(self._config))

    async def attl(self, key: Key, version: int | None = None, client: Any = None) -> int | None:
        if client is not None:
            self._check_client(client)
        return await self._async.run(ops.ttl(self._key(key, version), "TTL"), 0)

    async def apttl(self, key: Key, version: int | None = None, client: Any = None) -> int | None:
        if client is not None:
            self._check_client(client)
        return await self._async.run(ops.ttl(self._key(key, version), "PTTL"), 0)

    async def aexpire(
        self, key: Key, timeout: Expiry | None, version: int | None = None, client: Any = None
    ) -> bool:
        if client is not None:
            self._check_client(client)
        operation = self._expire_in(key, timeout, 1000, version)
        return await self._async.run(operation, False)

    async def apexpire(
        self, key: Key, timeout: Expiry | None, version: int | None = None, client: Any = None
    ) -> bool:
        if client is not None:
            self._check_client(client)
        operation = self._expire_in(key, timeout, 1, version)
        return await self._async.run(operation, False)

    async def aexpire_at(
        self, key: Key, when: When, version: int | None = None, client: Any = None
    ) -> bool:
        if client is not None:
            self._check_client(client)
        operation = self._expire_at(key, when, 1000, version)
        return await self._async.run(operation, False)

    async def apexpire_at(
        self, key: Key, when: When, version: int | None = None, client: Any = None
    ) -> bool:
        if client is not None:
            self._check_client(client)
        operation = self._expire_at(key, when, 1, version)
        return await self._async.run(operation, False)

    async def apersist(self, key: Key, version: int | None = None, client: Any = None) -> bool:
        if client is not None:
            self._check_client(client)
        return await self._async.run(ops.persist(self._key(key, version)), False)

    async def akeys(self, search: str, version: int | None = None, client: Any = None) -> list[Any]:
        if client is not None:
            self._check_client(client)
        return [key async for key in self._async.iterate(self._scan(search, None, version))]

    def aiter_keys(
        self,
        search: str,
        itersize: int | None = None,
        version: int | None = None,
        client: Any = None,
    ) -> AsyncIterator[Any]:
        """``async for key in cache.aiter_keys("pattern*")``: one SCAN page at a time."""
        if client is not None:
            self._check_client(client)
        return self._async.iterate(self._scan(search, itersize, version))

    async def adelete_pattern(
        self,
        pattern: str,
        version: int | None = None,
        prefix: str | None = None,
        itersize: int | None = None,
        client: Any = None,
    ) -> int:
        if client is not None:
            self._check_client(client)
        return await self._async.run(self._delete_pattern(pattern, version, prefix, itersize), 0)

    def alock(
        self,
        key: Key,
        version: int | None = None,
        timeout: float | None = None,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        thread_local: bool = True,
        client: Any = None,
    ) -> AsyncLock:
        """``async with cache.alock("name"): ...``; the same lock as ``lock()``."""
        if client is not None:
            self._check_client(client)
        return AsyncLock(
            self._async,
            self._key(key, version),
            timeout=timeout,
            sleep=sleep,
            blocking=blocking,
            blocking_timeout=blocking_timeout,
            thread_local=thread_local,
        )


def _reverse_key_function(setting: Any) -> Callable[[str], Any] | None:
    """REVERSE_KEY_FUNCTION (django-redis's setting): stored key -> caller's key."""
    if setting is None or setting == "django_redis.util.default_reverse_key":
        return None  # ours strips the exact prefix, even one that contains ':'
    function = import_string(setting) if isinstance(setting, str) else setting
    if not callable(function):
        raise ImproperlyConfigured("REVERSE_KEY_FUNCTION must be a function or its dotted path.")
    return function  # type: ignore[no-any-return]


def _ms(duration: Expiry, unit_ms: int) -> int:
    """A relative expiry in ms, from a number of units or a timedelta."""
    if isinstance(duration, timedelta):
        return int(duration.total_seconds() * 1000)
    return int(duration * unit_ms)


def _ms_at(when: When, unit_ms: int) -> int:
    """An absolute expiry as a Unix time in ms, from a datetime or a timestamp."""
    if isinstance(when, datetime):
        return int(when.timestamp() * 1000)
    return int(when * unit_ms)
