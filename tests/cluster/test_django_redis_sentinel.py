"""django-redis's Sentinel settings, unchanged but for BACKEND, on a real Sentinel
topology: our cache finds the primary, and shares its data with django-redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from django_asyncredis import RedisCache


def django_redis_options(sentinel: Any) -> dict[str, Any]:
    """OPTIONS as django-redis's documentation writes them for Sentinel."""
    return {
        "CLIENT_CLASS": "django_redis.client.SentinelClient",
        "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
        "SENTINELS": list(sentinel.sentinels),
        "SENTINEL_KWARGS": {"socket_timeout": 1},
    }


@pytest.fixture
def theirs(sentinel: Any) -> Any:
    from django_redis.cache import RedisCache as DjangoRedisCache

    yield DjangoRedisCache("redis://mymaster/0", {"OPTIONS": django_redis_options(sentinel)})
    sentinel.flush()


@pytest.fixture
def ours(sentinel: Any) -> Any:
    yield RedisCache("redis://mymaster/0", {"OPTIONS": django_redis_options(sentinel)})
    sentinel.flush()


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_what_django_redis_writes_we_read(theirs: Any, ours: Any, is_async: bool) -> None:
    """Values and counters written by django-redis are read by ours, on the primary
    (reads may go to a replica, as with django-redis: wait for it to catch up)."""
    theirs.set("value", {"a": [1, 2]})
    theirs.set("counter", 41)
    theirs.client.get_client().wait(1, 2000)
    if is_async:

        async def read() -> tuple[Any, Any]:
            return await ours.aget("value"), await ours.aincr("counter")

        assert asyncio.run(read()) == ({"a": [1, 2]}, 42)
    else:
        assert (ours.get("value"), ours.incr("counter")) == ({"a": [1, 2]}, 42)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_what_we_write_django_redis_reads(theirs: Any, ours: Any, is_async: bool) -> None:
    """And the reverse: ours writes to the primary that django-redis finds too."""
    if is_async:
        asyncio.run(ours.aset("value", "from ours"))
    else:
        ours.set("value", "from ours")
    ours.client.get_client().wait(1, 2000)
    assert theirs.get("value") == "from ours"


def test_the_primary_found_is_the_sentinels_primary(ours: Any, sentinel: Any) -> None:
    """Writes land on the primary the sentinels report, not on the LOCATION's host."""
    ours.set("key", "value")
    host, port = sentinel.primary_address()
    import redis

    with redis.Redis(host=host, port=port) as primary:
        assert primary.get(ours.make_key("key")) is not None


def test_the_caches_own_client_is_accepted_as_client(ours: Any) -> None:
    """``client=cache.client.get_client()`` (the current primary) is honoured."""
    own = ours.client.get_client(write=True)
    ours.set("key", "value", client=own)
    own.wait(1, 2000)  # reads go to the replica, as with django-redis
    assert ours.get("key", client=own) == "value"
