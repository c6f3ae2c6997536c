"""The contenders, each reduced to "one call of operation X" for the harness.

Every contender caches the same values: ``bytes`` of 100 B or 10 KB (random,
so that no compressor could shrink them), pickled. The Django backends pickle
them themselves; the raw redis-py clients are handed pre-pickled values (their
floor: no key making, no serializer dispatch), but every raw read includes
``pickle.loads`` so that it does return the value, as a cache must.

A contender turns ``(op, size)`` into a call that takes a running index ``n``
(each task counts from its own start) and picks its key with ``n % count``:
the harness knows nothing of keys, values or clients.

Contenders:

- django-asyncredis, Django's built-in ``RedisCache``, django-redis and
  django-valkey's ``AsyncValkeyCache`` are built by Django's cache handler from
  ``settings.CACHES`` (``caches.create_connection``), as a project gets them,
  each with its defaults and its own ``KEY_PREFIX``; "django-asyncredis pooled"
  is ours with ``transport: pooled`` (the default being the multiplexed one).
- redis.asyncio (raw): ``redis.asyncio.Redis`` with hiredis on a
  ``ConnectionPool`` with as many connections as the most tasks of any
  scenario, so it never raises "Too many connections": the reference of the
  async ratios, the stricter of redis.asyncio's two pools. "redis.asyncio
  blocking" is the same on a ``BlockingConnectionPool``, which, like ours,
  makes callers wait rather than fail when every connection is busy.
- redis-py (raw): ``redis.Redis`` with hiredis, the sync client stack's floor.
"""

from __future__ import annotations

import contextlib
import itertools
import pickle
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Protocol

SIZES = (100, 10 * 1024)
VALUES = {size: random.Random(size).randbytes(size) for size in SIZES}
PICKLED = {size: pickle.dumps(value, pickle.HIGHEST_PROTOCOL) for size, value in VALUES.items()}
TIMEOUT = 300  # seconds: every contender writes with an expiry, as Django's default does
MISS_TIMEOUT = 10  # seconds: the keys aget_or_set misses on are new each time; let them go
KEY_COUNTS = {100: 1000, 10 * 1024: 200}  # 10 KB: fewer keys, 2 MB per contender
MANY = 100  # keys per aget_many / aset_many
COUNTERS = 1000

#: Connections the raw asyncio clients may open: one per task at the highest
#: concurrency (each task holds at most one at a time).
RAW_MAX_CONNECTIONS = 256

ASYNCREDIS = "django-asyncredis"
#: The same backend with ``transport: pooled`` (a connection per concurrent call).
ASYNCREDIS_POOLED = "django-asyncredis pooled"
RAW_ASYNC = "redis.asyncio (raw)"
RAW_ASYNC_BLOCKING = "redis.asyncio blocking"
BUILTIN = "Django built-in"
DJANGO_REDIS = "django-redis"
VALKEY = "django-valkey"
RAW_SYNC = "redis-py (raw)"

#: CACHES aliases (and KEY_PREFIXes) of the Django backends.
ALIASES = {
    ASYNCREDIS: "asyncredis",
    ASYNCREDIS_POOLED: "asyncredis_pooled",
    BUILTIN: "builtin",
    DJANGO_REDIS: "django_redis",
    VALKEY: "valkey",
}
BACKENDS = {
    ASYNCREDIS: "django_asyncredis.RedisCache",
    ASYNCREDIS_POOLED: "django_asyncredis.RedisCache",
    BUILTIN: "django.core.cache.backends.redis.RedisCache",
    DJANGO_REDIS: "django_redis.cache.RedisCache",
    VALKEY: "django_valkey.async_cache.cache.AsyncValkeyCache",
}


def caches_setting(url: str) -> dict[str, dict[str, Any]]:
    """Each backend with its defaults; a distinct KEY_PREFIX keeps their keys apart."""
    setting: dict[str, dict[str, Any]] = {
        "default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    }
    for name, backend in BACKENDS.items():
        setting[ALIASES[name]] = {
            "BACKEND": backend,
            "LOCATION": url,
            "KEY_PREFIX": ALIASES[name],
            "TIMEOUT": TIMEOUT,
        }
    setting[ALIASES[ASYNCREDIS_POOLED]]["OPTIONS"] = {"transport": "pooled"}
    return setting


def django_cache(name: str) -> Any:
    """A new instance, as Django's handler makes one per thread or per async context."""
    from django.core.cache import caches

    return caches.create_connection(ALIASES[name])


def names(size: int) -> list[str]:
    return [f"bench:{size}:{number}" for number in range(KEY_COUNTS[size])]


def many_groups() -> list[list[str]]:
    """Disjoint groups of MANY keys among the 100 B keys."""
    keys = names(100)
    return [keys[start : start + MANY] for start in range(0, len(keys) - MANY + 1, MANY)]


COUNTER_NAMES = [f"bench:counter:{number}" for number in range(COUNTERS)]


def raw_key(name: str) -> str:
    """The raw clients' keys, spelled as Django makes them ("prefix:version:key")."""
    return f"raw:1:{name}"


def miss_names() -> Callable[[], str]:
    """A source of keys never used before (aget_or_set misses), unique to each call."""
    prefix = f"bench:miss:{uuid.uuid4().hex[:12]}:"
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter)}"


AsyncCall = Callable[[int], Awaitable[Any]]
SyncCall = Callable[[int], Any]

ASYNC_OPS = (
    "aget",
    "aset",
    "aget_many",
    "aset_many",
    "aincr",
    "aget_or_set hit",
    "aget_or_set miss",
)


def check(op: str, size: int, result: Any) -> None:
    """A contender's first call must return what was stored: a get that finds
    nothing skips the decoding, and nothing is timed reading nothing."""
    value = VALUES[size]
    if op in ("aget", "get", "aget_or_set hit", "aget_or_set miss"):
        ok = result == value
    elif op == "aget_many":
        ok = len(result) == MANY and all(item == value for item in result.values())
    elif op == "aincr":
        ok = type(result) is int
    else:
        ok = True
    if not ok:
        raise RuntimeError(f"{op} ({size} B) returned {result!r:.60}, not the stored value")


class AsyncContender(Protocol):
    def call(self, op: str, size: int) -> AsyncCall: ...


class SyncContender(Protocol):
    def call(self, op: str, size: int) -> SyncCall: ...


AsyncFactory = Callable[[str], contextlib.AbstractAsyncContextManager[AsyncContender]]
#: Sync factories are called once per thread that will use the contender.
SyncFactory = Callable[[str], contextlib.AbstractContextManager[SyncContender]]


# Async contenders: entered inside the event loop of one measurement.


class DjangoAsync:
    """Django's async cache API, whichever backend implements it."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache

    def call(self, op: str, size: int) -> AsyncCall:
        cache = self.cache
        value = VALUES[size]
        keys = names(size)
        count = len(keys)
        if op == "aget":
            return lambda n: cache.aget(keys[n % count])
        if op == "aset":
            return lambda n: cache.aset(keys[n % count], value)
        if op == "aget_many":
            groups = many_groups()
            return lambda n: cache.aget_many(groups[n % len(groups)])
        if op == "aset_many":
            mappings = [dict.fromkeys(group, value) for group in many_groups()]
            return lambda n: cache.aset_many(mappings[n % len(mappings)])
        if op == "aincr":
            return lambda n: cache.aincr(COUNTER_NAMES[n % COUNTERS])
        if op == "aget_or_set hit":
            return lambda n: cache.aget_or_set(keys[n % count], value)
        if op == "aget_or_set miss":
            fresh = miss_names()
            return lambda n: cache.aget_or_set(fresh(), value, MISS_TIMEOUT)
        raise ValueError(op)


@contextlib.asynccontextmanager
async def asyncredis_async(url: str) -> AsyncIterator[AsyncContender]:
    """Native: the pool for this loop is made on first use and closed with the loop."""
    yield DjangoAsync(django_cache(ASYNCREDIS))


@contextlib.asynccontextmanager
async def builtin_async(url: str) -> AsyncIterator[AsyncContender]:
    """BaseCache's a-methods: ``sync_to_async(self.get)``, i.e. one thread for all tasks."""
    yield DjangoAsync(django_cache(BUILTIN))


@contextlib.asynccontextmanager
async def valkey_async(url: str) -> AsyncIterator[AsyncContender]:
    """django-valkey's native async backend over valkey-py's asyncio client (libvalkey).

    It keeps its connection pools in a process-wide dict, which suits a server's
    single event loop; every measurement here runs on a new loop, so the pool is
    closed and forgotten at the end of each (what a project never needs to do).
    """
    from django_valkey.base_pool import BaseConnectionFactory

    try:
        yield DjangoAsync(django_cache(VALKEY))
    finally:
        pools = list(BaseConnectionFactory._pools.values())
        BaseConnectionFactory._pools.clear()
        for pool in pools:
            await pool.disconnect()


class RawAsync:
    """redis.asyncio with hiredis: what a hand-written cache layer would do."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def call(self, op: str, size: int) -> AsyncCall:
        client = self.client
        loads = pickle.loads
        value = VALUES[size]
        pickled = PICKLED[size]
        keys = [raw_key(name) for name in names(size)]
        count = len(keys)
        if op in ("aget", "aget_or_set hit"):

            async def aget(n: int) -> Any:
                return loads(await client.get(keys[n % count]))

            return aget
        if op == "aset":
            return lambda n: client.set(keys[n % count], pickled, ex=TIMEOUT)
        if op == "aget_many":
            groups = [[raw_key(name) for name in group] for group in many_groups()]

            async def aget_many(n: int) -> dict[str, Any]:
                group = groups[n % len(groups)]
                raws = await client.mget(group)
                return {
                    k: loads(raw) for k, raw in zip(group, raws, strict=True) if raw is not None
                }

            return aget_many
        if op == "aset_many":
            groups = [[raw_key(name) for name in group] for group in many_groups()]

            async def aset_many(n: int) -> None:
                async with client.pipeline(transaction=False) as pipe:
                    for key in groups[n % len(groups)]:
                        pipe.set(key, pickled, ex=TIMEOUT)
                    await pipe.execute()

            return aset_many
        if op == "aincr":
            counters = [raw_key(name) for name in COUNTER_NAMES]
            return lambda n: client.incr(counters[n % COUNTERS])
        if op == "aget_or_set miss":
            fresh = miss_names()

            async def aget_or_set(n: int) -> Any:
                key = fresh()
                raw = await client.get(key)
                if raw is not None:
                    return loads(raw)
                await client.set(key, pickled, ex=MISS_TIMEOUT, nx=True)
                return value

            return aget_or_set
        raise ValueError(op)


def _raw_async(pool_class_name: str) -> AsyncFactory:
    @contextlib.asynccontextmanager
    async def factory(url: str) -> AsyncIterator[AsyncContender]:
        import redis.asyncio

        pool_class = getattr(redis.asyncio, pool_class_name)
        pool = pool_class.from_url(url, max_connections=RAW_MAX_CONNECTIONS)
        client = redis.asyncio.Redis(connection_pool=pool)
        try:
            yield RawAsync(client)
        finally:
            await client.aclose()
            await pool.aclose()

    return factory


@contextlib.asynccontextmanager
async def asyncredis_pooled_async(url: str) -> AsyncIterator[AsyncContender]:
    """The same backend on its pooled transport."""
    yield DjangoAsync(django_cache(ASYNCREDIS_POOLED))


ASYNC_CONTENDERS: dict[str, AsyncFactory] = {
    ASYNCREDIS: asyncredis_async,
    ASYNCREDIS_POOLED: asyncredis_pooled_async,
    RAW_ASYNC: _raw_async("ConnectionPool"),
    RAW_ASYNC_BLOCKING: _raw_async("BlockingConnectionPool"),
    VALKEY: valkey_async,
    BUILTIN: builtin_async,
}


# Sync contenders: no event loop in the calling thread.


class DjangoSync:
    def __init__(self, cache: Any) -> None:
        self.cache = cache

    def call(self, op: str, size: int) -> SyncCall:
        cache = self.cache
        value = VALUES[size]
        keys = names(size)
        count = len(keys)
        if op == "get":
            return lambda n: cache.get(keys[n % count])
        if op == "set":
            return lambda n: cache.set(keys[n % count], value)
        raise ValueError(op)


class RawSync:
    """A reference line, not a target: the sync client stack's floor."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def call(self, op: str, size: int) -> SyncCall:
        client = self.client
        loads = pickle.loads
        pickled = PICKLED[size]
        keys = [raw_key(name) for name in names(size)]
        count = len(keys)
        if op == "get":
            return lambda n: loads(client.get(keys[n % count]))
        if op == "set":
            return lambda n: client.set(keys[n % count], pickled, ex=TIMEOUT)
        raise ValueError(op)


def _django_sync(name: str) -> SyncFactory:
    @contextlib.contextmanager
    def factory(url: str) -> Iterator[SyncContender]:
        yield DjangoSync(django_cache(name))

    return factory


@contextlib.contextmanager
def raw_sync(url: str) -> Iterator[SyncContender]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        yield RawSync(client)
    finally:
        client.close()


SYNC_CONTENDERS: dict[str, SyncFactory] = {
    ASYNCREDIS: _django_sync(ASYNCREDIS),
    DJANGO_REDIS: _django_sync(DJANGO_REDIS),
    BUILTIN: _django_sync(BUILTIN),
    RAW_SYNC: raw_sync,
}


# Sync code under ASGI: what a sync view does, in the thread asgiref gives it.

#: Cache calls per "request" (one sync_to_async hop into a new thread-sensitive context).
VIEW_CALLS = 4


class AsgiView(Protocol):
    def __call__(self, n: int) -> Any: ...


def asgi_view(name: str, op: str, url: str) -> AsgiView:
    """The body of a sync view that makes VIEW_CALLS cache calls.

    The Django backends are looked up in ``django.core.cache.caches`` inside the
    view, as a view does: under ASGI that gives an instance per request (the
    handler is an asgiref ``Local`` bound to the request's context). The raw
    client is a module-level global, as a project would keep it.
    """
    value = VALUES[100]
    keys = names(100)
    count = len(keys)
    if name == RAW_SYNC:
        import redis

        client = redis.Redis.from_url(url)
        loads = pickle.loads
        pickled = PICKLED[100]
        raw_keys = [raw_key(key) for key in keys]

        def raw_view(n: int) -> Any:
            result = None
            for i in range(n, n + VIEW_CALLS):
                if op == "get":
                    result = loads(client.get(raw_keys[i % count]))  # type: ignore[arg-type]
                else:
                    client.set(raw_keys[i % count], pickled, ex=TIMEOUT)
            return result

        return raw_view

    from django.core.cache import caches

    alias = ALIASES[name]

    def view(n: int) -> Any:
        cache = caches[alias]
        result = None
        for i in range(n, n + VIEW_CALLS):
            if op == "get":
                result = cache.get(keys[i % count])
            else:
                cache.set(keys[i % count], value)
        return result

    return view


def populate(url: str) -> None:
    """Write every key each contender will read, through its own API, so a get
    always finds (and decodes) a value in the contender's own format.

    Done again before every round: the keys expire after TIMEOUT seconds, which
    is shorter than a full run."""
    import asyncio

    import redis

    for name in (ASYNCREDIS, ASYNCREDIS_POOLED, BUILTIN, DJANGO_REDIS):
        cache = django_cache(name)
        for size in SIZES:
            cache.set_many(dict.fromkeys(names(size), VALUES[size]))
        cache.set_many(dict.fromkeys(COUNTER_NAMES, 0))

    async def valkey() -> None:
        async with valkey_async(url) as contender:
            assert isinstance(contender, DjangoAsync)
            for size in SIZES:
                await contender.cache.aset_many(dict.fromkeys(names(size), VALUES[size]))
            await contender.cache.aset_many(dict.fromkeys(COUNTER_NAMES, 0))

    asyncio.run(valkey())
    client = redis.Redis.from_url(url)
    try:
        with client.pipeline(transaction=False) as pipe:
            for size in SIZES:
                for name in names(size):
                    pipe.set(raw_key(name), PICKLED[size], ex=TIMEOUT)
            for name in COUNTER_NAMES:
                pipe.set(raw_key(name), 0, ex=TIMEOUT)
            pipe.execute()
    finally:
        client.close()
