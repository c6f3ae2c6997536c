"""get_redis_connection / aget_redis_connection: redis-py clients on the cache's pools."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_asyncredis import aget_redis_connection, get_redis_connection


@pytest.fixture
def configured(redis_server: Any) -> Iterator[None]:
    caches = {
        "default": {"BACKEND": "django_asyncredis.RedisCache", "LOCATION": redis_server.url},
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    with override_settings(CACHES=caches):  # Django resets its cache handler for us
        yield
    redis_server.flush()


def test_sync_client_sees_what_the_cache_stored(configured: None) -> None:
    from django.core.cache import cache

    cache.set("key", 5)
    client = get_redis_connection("default")
    assert isinstance(client, redis.Redis)
    assert client.get(":1:key") == b"5"


def test_sync_client_shares_the_caches_pool(configured: None) -> None:
    from django.core.cache import cache

    cache.get("key")
    first = get_redis_connection()
    second = get_redis_connection()
    assert first.connection_pool is second.connection_pool


async def test_async_client_is_bound_to_the_running_loop(configured: None) -> None:
    from django.core.cache import cache

    await cache.aset("key", 7)
    client = await aget_redis_connection("default")
    assert isinstance(client, redis.asyncio.Redis)
    assert await client.get(":1:key") == b"7"
    assert (await aget_redis_connection()).connection_pool is client.connection_pool


def test_another_backend_is_a_clear_error(configured: None) -> None:
    with pytest.raises(ImproperlyConfigured, match="LocMemCache"):
        get_redis_connection("local")
