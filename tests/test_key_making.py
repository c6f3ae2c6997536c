"""How keys are made: Django's rules, whichever way a project changes them.

``RedisCache._key`` makes a key in one call when nobody changed how keys are
made; a subclass's ``make_key`` (Django's documented alternative to
KEY_FUNCTION) or ``validate_key`` must still be used on every path. Single
server only: the subclass is built here, not by the topology's ``make_cache``.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
from django.core.cache.backends.base import CacheKeyWarning

from django_asyncredis import RedisCache
from tests.conftest import AsyncAPI
from tests.servers import ServerProcess


class TenantCache(RedisCache):
    """Django's other documented way to make keys: a subclass's make_key."""

    def make_key(self, key: Any, version: int | None = None) -> str:
        return f"tenant-7:{super().make_key(key, version)}"


@pytest.mark.parametrize("api_name", ["sync", "async"])
def test_a_subclass_make_key_is_used_by_every_key_making_path(
    api_name: str, redis_server: ServerProcess, raw: Any
) -> None:
    """get, set, get_many, set_many and has_key all make keys with the subclass's
    make_key (the fast key making applies only where nobody overrode it)."""
    cache = TenantCache(redis_server.url, {"KEY_PREFIX": "p"})
    with asyncio.Runner() as runner:
        api: Any = cache if api_name == "sync" else AsyncAPI(cache, runner)
        api.set("a", 1)
        api.set_many({"b": 2})
        assert (raw.get("tenant-7:p:1:a"), raw.get("tenant-7:p:1:b")) == (b"1", b"2")
        assert api.get("a") == 1
        assert api.get_many(["a", "b"]) == {"a": 1, "b": 2}
        assert api.has_key("b")


def test_an_invalid_key_warns_on_the_fast_key_making_path(cache: Any) -> None:
    """Django's memcached-portability warning, from _key's own check."""
    with pytest.warns(CacheKeyWarning, match="characters that will cause errors"):
        cache.get("with space")


@pytest.mark.parametrize("api_name", ["sync", "async"])
def test_a_key_func_set_on_the_instance_is_used(api_name: str, cache: Any, raw: Any) -> None:
    """Django's own cache tests replace ``key_func`` on a built cache: every call
    after that makes keys with it, the warnings included."""

    def bare(key: Any, prefix: str, version: int) -> str:
        return f"bare-{key}"

    cache.key_func = bare
    with asyncio.Runner() as runner:
        api: Any = cache if api_name == "sync" else AsyncAPI(cache, runner)
        api.set("a", 1)
        assert raw.get("bare-a") == b"1"
        assert api.get("a") == 1
        assert api.get_many(["a"]) == {"a": 1}
        with pytest.warns(CacheKeyWarning, match="'bare-with space'"):
            api.get("with space")


@pytest.mark.parametrize(
    "key",
    ["tab\there", "bell\x07", "del\x7f", "x" * 251],
    ids=["control character", "another control character", "DEL", "too long"],
)
def test_every_kind_of_unsafe_key_warns_on_the_fast_path(cache: Any, key: str) -> None:
    """The fast check hands Django every key it might warn about: each kind of
    memcached-unsafe key still gets Django's warning."""
    with pytest.warns(CacheKeyWarning):
        cache.get(key)


@pytest.mark.parametrize("key", ["ключ", "café-naïve", "键:值", "x" * 240])
def test_a_safe_key_warns_of_nothing(cache: Any, key: str) -> None:
    """Printable keys without spaces, non-ASCII ones included, within the length:
    no warning (and the value round-trips)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheKeyWarning)
        cache.set(key, 1)
        assert cache.get(key) == 1
