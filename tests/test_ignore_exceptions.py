"""IGNORE_EXCEPTIONS: a cache that is down behaves like an empty cache, fast."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from django_asyncredis import ConnectionInterrupted, RedisCache
from tests.servers import ServerProcess

FAST = {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}


@pytest.fixture
def stopped_server() -> Iterator[ServerProcess]:
    """A server that served once and was then stopped, as in an outage."""
    server = ServerProcess().start()
    yield server
    server.stop()


def down_cache(server: ServerProcess, **options: Any) -> RedisCache:
    cache = RedisCache(server.url, {"OPTIONS": {**FAST, **options}})
    cache.set("warm", 1)  # connections exist, then the server goes away
    asyncio.run(cache.aset("warm", 1))
    server.stop()
    return cache


CALLS: list[tuple[str, tuple[Any, ...], Any]] = [
    ("get", ("key",), None),
    ("get", ("key", "default"), "default"),
    ("get_many", (["a", "b"],), {}),
    ("has_key", ("key",), False),
    ("add", ("key", 1), False),
    ("set", ("key", 1), None),
    ("touch", ("key",), False),
    ("delete", ("key",), False),
    ("set_many", ({"a": 1, "b": 2},), ["a", "b"]),
    ("delete_many", (["a"],), None),
    ("ttl", ("key",), 0),
    ("expire", ("key", 5), False),
    ("persist", ("key",), False),
    ("keys", ("*",), []),
    ("delete_pattern", ("*",), 0),
    ("get_or_set", ("key", "computed"), "computed"),
    ("get_or_set", ("key", lambda: "called"), "called"),
    ("incr", ("key",), None),
    ("incr_version", ("key",), None),
]


@pytest.mark.parametrize(
    ("method", "args", "expected"), CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CALLS)]
)
@pytest.mark.parametrize("path", ["sync", "async"])
def test_reads_give_the_default_and_writes_false_when_down(
    stopped_server: ServerProcess, method: str, args: Any, expected: Any, path: str
) -> None:
    cache = down_cache(stopped_server, IGNORE_EXCEPTIONS=True)
    start = time.monotonic()
    if path == "sync":
        result = getattr(cache, method)(*args)
    else:
        result = asyncio.run(getattr(cache, "a" + method)(*args))
    assert result == expected
    assert time.monotonic() - start < 1.5  # two connect attempts of 0.2 s at most, and slack


def test_without_the_option_the_error_is_raised(stopped_server: ServerProcess) -> None:
    cache = down_cache(stopped_server)
    with pytest.raises(ConnectionInterrupted):
        cache.get("key")


def test_global_setting_in_django_redis_spelling(stopped_server: ServerProcess) -> None:
    with override_settings(DJANGO_REDIS_IGNORE_EXCEPTIONS=True):
        cache = down_cache(stopped_server)
        assert cache.get("key", "default") == "default"


def test_iter_keys_of_a_down_server_is_empty(stopped_server: ServerProcess) -> None:
    cache = down_cache(stopped_server, IGNORE_EXCEPTIONS=True)
    assert list(cache.iter_keys("*")) == []


def test_ignored_exceptions_are_logged_once_per_call_without_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = ServerProcess().start()
    location = f"redis://user:t0psecret@127.0.0.1:{server.port}"
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
        "sessions": {
            "BACKEND": "django_asyncredis.RedisCache",
            "LOCATION": location,
            "OPTIONS": {"IGNORE_EXCEPTIONS": True, **FAST},
        },
    }
    server.stop()
    with override_settings(
        CACHES=caches,
        DJANGO_ASYNCREDIS_LOG_IGNORED_EXCEPTIONS=True,
        DJANGO_ASYNCREDIS_LOGGER="cache.errors",
    ):
        cache = RedisCache(location, {"OPTIONS": caches["sessions"]["OPTIONS"]})
        with caplog.at_level(logging.WARNING, logger="cache.errors"):
            assert cache.get("key") is None
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "'sessions'" in message
    assert "get" in message
    assert "t0psecret" not in caplog.text


def test_cache_serves_again_once_the_server_is_back(stopped_server: ServerProcess) -> None:
    cache = down_cache(stopped_server, IGNORE_EXCEPTIONS=True)
    assert cache.get("warm") is None
    stopped_server.start()
    cache.set("key", "back")
    assert cache.get("key") == "back"
    assert asyncio.run(cache.aget("key")) == "back"
