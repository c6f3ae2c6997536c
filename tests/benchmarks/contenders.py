"""The contenders, each reduced to "a get and a set of one key" for the harness.

Every contender caches the same thing: a 100-byte ``bytes`` value, pickled.
The Django backends pickle it themselves; the raw redis-py clients are handed
a pre-pickled value (their floor: no key making, no serializer dispatch), but
their get includes ``pickle.loads`` so that they do return the value, as a
cache must.

The raw asyncio client runs twice: on redis.asyncio's ``ConnectionPool`` (with
``max_connections=64``, enough for 64 tasks that each hold one connection) and
on its ``BlockingConnectionPool``. The plain pool is the faster of the two, so
it is the reference of the ratios: the stricter one. The blocking pool is the
one that behaves like ours when every connection is busy (callers wait rather
than fail), so it is shown too.

Django backends are built by Django's cache handler from ``settings.CACHES``
(``caches.create_connection``), which is how a project gets them. One instance
per contender is made up front and reused in every round: under ASGI Django
makes one per request, but then django-asyncredis and Django's built-in both
keep their pools outside the instance anyway (our registry; the built-in's
``RedisCacheClient`` is per instance, so reusing it is the kind choice for it).
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

VALUE = b"x" * 100
PICKLED = pickle.dumps(VALUE, pickle.HIGHEST_PROTOCOL)
TIMEOUT = 300  # seconds: every contender writes with an expiry, as Django's default does
KEY_COUNT = 1000
NAMES = [f"bench:{number}" for number in range(KEY_COUNT)]

#: Connections the raw asyncio clients may open: one per task at the highest
#: concurrency, so the plain ConnectionPool never raises "Too many connections"
#: (each task holds at most one connection at a time).
RAW_MAX_CONNECTIONS = 64

ASYNCREDIS = "django-asyncredis"
RAW_ASYNC = "redis.asyncio (raw)"
RAW_ASYNC_BLOCKING = "redis.asyncio blocking"
BUILTIN = "Django built-in"
DJANGO_REDIS = "django-redis"
RAW_SYNC = "redis-py (raw)"

#: CACHES aliases of the Django backends.
ALIASES = {ASYNCREDIS: "asyncredis", BUILTIN: "builtin", DJANGO_REDIS: "django_redis"}


def caches_setting(url: str) -> dict[str, dict[str, Any]]:
    """Each backend with its defaults; a distinct KEY_PREFIX keeps their keys apart."""
    backends = {
        ASYNCREDIS: "django_asyncredis.RedisCache",
        BUILTIN: "django.core.cache.backends.redis.RedisCache",
        DJANGO_REDIS: "django_redis.cache.RedisCache",
    }
    setting: dict[str, dict[str, Any]] = {
        "default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    }
    for name, backend in backends.items():
        setting[ALIASES[name]] = {
            "BACKEND": backend,
            "LOCATION": url,
            "KEY_PREFIX": ALIASES[name],
            "TIMEOUT": TIMEOUT,
        }
    return setting


def django_cache(name: str) -> Any:
    from django.core.cache import caches

    return caches.create_connection(ALIASES[name])


def raw_keys() -> list[str]:
    """The raw clients' keys, spelled as Django makes them ("prefix:version:key")."""
    return [f"raw:1:{name}" for name in NAMES]


@dataclass(frozen=True)
class AsyncOps:
    get: Callable[[str], Awaitable[Any]]
    set: Callable[[str], Awaitable[Any]]
    keys: list[str]


@dataclass(frozen=True)
class SyncOps:
    get: Callable[[str], Any]
    set: Callable[[str], Any]
    keys: list[str]


AsyncFactory = Callable[[str], contextlib.AbstractAsyncContextManager[AsyncOps]]
SyncFactory = Callable[[str], contextlib.AbstractContextManager[SyncOps]]


# Async contenders: entered inside the event loop of one measurement.


@contextlib.asynccontextmanager
async def asyncredis_async(url: str) -> AsyncIterator[AsyncOps]:
    """Native: the pool for this loop is made on first use and closed with the loop."""
    cache = django_cache(ASYNCREDIS)

    def aset(key: str) -> Awaitable[None]:
        return cache.aset(key, VALUE)  # type: ignore[no-any-return]

    yield AsyncOps(cache.aget, aset, NAMES)


@contextlib.asynccontextmanager
async def builtin_async(url: str) -> AsyncIterator[AsyncOps]:
    """BaseCache's aget/aset: ``sync_to_async(self.get)``, i.e. one thread for all tasks."""
    cache = django_cache(BUILTIN)

    def aset(key: str) -> Awaitable[None]:
        return cache.aset(key, VALUE)  # type: ignore[no-any-return]

    yield AsyncOps(cache.aget, aset, NAMES)


def _raw_async(pool_class_name: str) -> AsyncFactory:
    """redis.asyncio with hiredis: the client stack's floor, on either of its pools."""

    @contextlib.asynccontextmanager
    async def factory(url: str) -> AsyncIterator[AsyncOps]:
        import redis.asyncio

        pool_class = getattr(redis.asyncio, pool_class_name)
        pool = pool_class.from_url(url, max_connections=RAW_MAX_CONNECTIONS)
        client = redis.asyncio.Redis(connection_pool=pool)
        loads = pickle.loads

        async def aget(key: str) -> Any:
            return loads(await client.get(key))  # type: ignore[arg-type]

        async def aset(key: str) -> None:
            await client.set(key, PICKLED, ex=TIMEOUT)

        try:
            yield AsyncOps(aget, aset, raw_keys())
        finally:
            await client.aclose()
            await pool.aclose()

    return factory


ASYNC_CONTENDERS: dict[str, AsyncFactory] = {
    ASYNCREDIS: asyncredis_async,
    RAW_ASYNC: _raw_async("ConnectionPool"),
    RAW_ASYNC_BLOCKING: _raw_async("BlockingConnectionPool"),
    BUILTIN: builtin_async,
}


# Sync contenders: single thread, no event loop.


@contextlib.contextmanager
def django_sync(name: str) -> Iterator[SyncOps]:
    cache = django_cache(name)

    def set_(key: str) -> None:
        cache.set(key, VALUE)

    yield SyncOps(cache.get, set_, NAMES)


@contextlib.contextmanager
def raw_sync(url: str) -> Iterator[SyncOps]:
    """A reference line, not a target: the sync client stack's floor."""
    import redis

    client = redis.Redis.from_url(url)
    loads = pickle.loads

    def get(key: str) -> Any:
        return loads(client.get(key))  # type: ignore[arg-type]

    def set_(key: str) -> None:
        client.set(key, PICKLED, ex=TIMEOUT)

    try:
        yield SyncOps(get, set_, raw_keys())
    finally:
        client.close()


SYNC_CONTENDERS: dict[str, SyncFactory] = {
    ASYNCREDIS: lambda url: django_sync(ASYNCREDIS),
    DJANGO_REDIS: lambda url: django_sync(DJANGO_REDIS),
    BUILTIN: lambda url: django_sync(BUILTIN),
    RAW_SYNC: raw_sync,
}


def populate(url: str) -> None:
    """Write every key each contender will read, through its own sync API, so a
    get always finds (and decodes) a value in the contender's own format."""
    for name in (ASYNCREDIS, BUILTIN, DJANGO_REDIS):
        with django_sync(name) as ops:
            for key in ops.keys:
                ops.set(key)
    with raw_sync(url) as ops:
        for key in ops.keys:
            ops.set(key)
