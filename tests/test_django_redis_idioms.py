"""django-redis code keeps working after the BACKEND change: its idioms, on both APIs.

Each test is a line of code a django-redis user writes, run against a real
server through the sync API and its async twin.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio
from django.core.cache.backends.base import DEFAULT_TIMEOUT

from django_asyncredis import RedisCache

# expire / pexpire with DEFAULT_TIMEOUT or None


@pytest.fixture
def timeout_100(make_cache: Any) -> Any:
    return make_cache(TIMEOUT=100)


@pytest.mark.parametrize("method", ["expire", "pexpire"])
def test_expire_with_default_timeout_uses_the_caches_timeout(
    timeout_100: Any, method: str, is_async: bool
) -> None:
    """``expire(k, DEFAULT_TIMEOUT)`` means the cache's TIMEOUT in seconds, for pexpire too."""
    timeout_100.set("key", "value", timeout=None)
    assert call(timeout_100, method, is_async, "key", DEFAULT_TIMEOUT) is True
    assert 99_000 < timeout_100.pttl("key") <= 100_000


@pytest.mark.parametrize("method", ["expire", "pexpire"])
def test_expire_with_none_removes_the_expiry(cache: Any, method: str, is_async: bool) -> None:
    """``expire(k, None)`` means "never expire", as ``timeout=None`` does for ``set``."""
    cache.set("key", "value", timeout=30)
    assert call(cache, method, is_async, "key", None) is True
    assert cache.ttl("key") is None


def test_expire_with_default_timeout_of_none_persists(make_cache: Any, is_async: bool) -> None:
    """With ``TIMEOUT: None`` the cache's default is "forever": the expiry is removed."""
    cache = make_cache(TIMEOUT=None)
    cache.set("key", "value", timeout=30)
    assert call(cache, "expire", is_async, "key", DEFAULT_TIMEOUT) is True
    assert cache.ttl("key") is None


def test_expire_with_default_timeout_on_a_missing_key_is_false(cache: Any, is_async: bool) -> None:
    """Like any expire, on a key that does not exist it says False and creates nothing."""
    assert call(cache, "expire", is_async, "missing", DEFAULT_TIMEOUT) is False
    assert cache.has_key("missing") is False


# get_client, client.get_client


def test_get_client_is_get_redis_connection_for_this_cache(cache: Any) -> None:
    """``cache.get_client()`` and ``cache.client.get_client(write=True)`` are redis-py
    clients on the cache's own pool."""
    cache.set("key", 5)
    for client in (cache.get_client(), cache.client.get_client(write=True)):
        assert isinstance(client, redis.Redis)
        assert client.get(cache.make_key("key")) == b"5"
    assert cache.get_client().connection_pool is cache.client.get_client().connection_pool


def test_aget_client_is_the_async_twin(cache: Any) -> None:
    """``await cache.aget_client()`` is a ``redis.asyncio`` client on this loop's pool."""

    async def main() -> bytes | None:
        await cache.aset("key", 7)
        client = await cache.aget_client()
        assert isinstance(client, redis.asyncio.Redis)
        return await client.get(cache.make_key("key"))  # type: ignore[no-any-return]

    assert asyncio.run(main()) == b"7"


# client=


def test_client_keyword_with_the_caches_own_client_is_honoured(cache: Any, api: Any) -> None:
    """``client=cache.get_client()`` (django-redis's idiom) works on every method."""
    own = cache.get_client()
    api.set("key", 1, client=own)
    assert api.get("key", client=own) == 1
    assert api.expire("key", 10, client=own) is True
    assert 0 < api.ttl("key", client=own) <= 10
    assert api.delete("key", client=own) is True


def test_client_keyword_with_the_caches_own_async_client_is_honoured(cache: Any) -> None:
    """``client=await cache.aget_client()`` works on the async methods too."""

    async def main() -> Any:
        own = await cache.aget_client()
        await cache.aset("key", 1, client=own)
        return await cache.aget("key", client=own)

    assert asyncio.run(main()) == 1


def test_client_keyword_with_an_async_pipeline_is_a_clear_error(cache: Any) -> None:
    """A ``redis.asyncio`` pipeline is refused the same way, naming ``cache.apipeline()``."""

    async def main() -> None:
        pipe = (await cache.aget_client()).pipeline()
        await cache.aset("key", 1, client=pipe)

    with pytest.raises(TypeError, match=r"cache\.apipeline\(\)"):
        asyncio.run(main())
    assert cache.has_key("key") is False


def test_client_keyword_with_a_pipeline_is_a_clear_error(cache: Any, api: Any) -> None:
    """A redis-py pipeline cannot be honoured: the error names the cache pipeline,
    and nothing is sent."""
    pipe = cache.get_client().pipeline()
    with pytest.raises(TypeError, match=r"cache\.pipeline\(\)"):
        api.set("key", 1, client=pipe)
    assert len(pipe) == 0
    assert cache.has_key("key") is False


def test_client_keyword_for_another_server_is_refused(cache: Any, api: Any) -> None:
    """A client of another server would be silently ignored: it is an error instead."""
    other = redis.Redis(host="127.0.0.1", port=1)
    with pytest.raises(ValueError, match="this cache's own servers"):
        api.get("key", client=other)


# helpers


@pytest.fixture(params=["sync", "async"])
def is_async(request: pytest.FixtureRequest) -> bool:
    return request.param == "async"


def call(cache: RedisCache, method: str, is_async: bool, *args: Any) -> Any:
    """``cache.method(*args)``, or ``await cache.amethod(*args)`` on a fresh loop."""
    if is_async:
        return asyncio.run(getattr(cache, "a" + method)(*args))
    return getattr(cache, method)(*args)
