"""Settings as users write them for Django's built-in backend or for django-redis."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_asyncredis import RedisCache
from django_asyncredis._config import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_SOCKET_CONNECT_TIMEOUT,
    DEFAULT_SOCKET_TIMEOUT,
    parse,
)


def connection(location: Any, **options: Any) -> dict[str, Any]:
    return dict(parse(location, options).servers[0].connection)


@pytest.mark.parametrize(
    ("location", "addresses"),
    [
        ("redis://127.0.0.1:6379", ["redis://127.0.0.1:6379/0"]),
        ("redis://a:1,redis://b:2", ["redis://a:1/0", "redis://b:2/0"]),
        ("redis://a:1; redis://b:2", ["redis://a:1/0", "redis://b:2/0"]),
        (
            ["redis://a:1", "redis://b:2", "redis://c:3"],
            ["redis://a:1/0", "redis://b:2/0", "redis://c:3/0"],
        ),
        ("rediss://secure:6380/2", ["rediss://secure:6380/2"]),
        ("unix:///run/redis.sock?db=3", ["unix:///run/redis.sock?db=3"]),
        ("redis://", ["redis://localhost:6379/0"]),
    ],
)
def test_location_forms(location: Any, addresses: list[str]) -> None:
    """A URL, a list, or a ',' / ';' separated string; the first server is the leader."""
    assert [str(server) for server in parse(location, {}).servers] == addresses


@pytest.mark.parametrize(
    ("location", "options", "db"),
    [
        ("redis://h/4", {}, 4),
        ("redis://h?db=5", {}, 5),
        ("redis://h", {"db": 6}, 6),
        ("redis://h", {"db": "7"}, 7),
        ("redis://h/1", {"db": 6}, 1),
    ],
)
def test_database_number_from_path_query_or_options(location: str, options: Any, db: int) -> None:
    """The URL wins over OPTIONS, as in redis-py and django-redis."""
    assert connection(location, **options)["db"] == db


def test_credentials_from_the_url_are_unquoted() -> None:
    conn = connection("redis://django:p%40ss@h:1")
    assert (conn["username"], conn["password"]) == ("django", "p@ss")


def test_password_option_does_not_override_the_urls() -> None:
    assert connection("redis://:fromurl@h", PASSWORD="fromoptions")["password"] == "fromurl"


def test_cache_friendly_defaults() -> None:
    server = parse("redis://h", {}).servers[0]
    conn = dict(server.connection)
    assert conn["socket_connect_timeout"] == DEFAULT_SOCKET_CONNECT_TIMEOUT
    assert conn["socket_timeout"] == DEFAULT_SOCKET_TIMEOUT
    assert server.max_connections == DEFAULT_MAX_CONNECTIONS
    assert server.retries == 1


def test_djangos_builtin_option_names() -> None:
    config = parse(
        "redis://h",
        {
            "db": "1",
            "max_connections": 2**12,
            "socket_connect_timeout": 3.5,
            "socket_timeout": 5.5,
            "health_check_interval": 5,
            "retry_on_timeout": True,
            "parser_class": "redis.connection.PythonParser",
            "pool_class": "redis.BlockingConnectionPool",
            "serializer": "django.core.cache.backends.redis.RedisSerializer",
        },
    )
    server = config.servers[0]
    conn = dict(server.connection)
    assert (conn["db"], conn["socket_connect_timeout"], conn["socket_timeout"]) == (1, 3.5, 5.5)
    assert conn["health_check_interval"] == 5
    assert (server.max_connections, server.retry_on_timeout, server.parser) == (
        4096,
        True,
        "python",
    )


def test_django_redis_option_names() -> None:
    config = parse(
        "redis://127.0.0.1:6379/1",
        {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "PASSWORD": "xxx",
            "CONNECTION_POOL_KWARGS": {"max_connections": 100, "retry_on_timeout": True},
            "PICKLE_VERSION": 4,
            "SOCKET_CONNECT_TIMEOUT": 3.5,
            "SOCKET_TIMEOUT": 6,
            "IGNORE_EXCEPTIONS": False,
            "PARSER_CLASS": "redis.connection.HiredisParser",
            "MAX_ENTRIES": 100000,
        },
    )
    server = config.servers[0]
    conn = dict(server.connection)
    assert (conn["password"], conn["socket_connect_timeout"], conn["socket_timeout"]) == (
        "xxx",
        3.5,
        6,
    )
    assert (server.max_connections, server.retry_on_timeout, server.parser) == (
        100,
        True,
        "hiredis",
    )
    assert config.serializer.protocol == 4  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"socket_timout": 1}, "socket_timout"),
        ({"SOCKET_TIMEOUT": "5"}, "SOCKET_TIMEOUT"),
        ({"max_connections": 0}, "max_connections"),
        ({"max_connections": True}, "max_connections"),
        ({"retry_on_timeout": "yes"}, "retry_on_timeout"),
        ({"CONNECTION_POOL_KWARGS": {"max_conections": 5}}, "max_conections"),
        ({"CONNECTION_POOL_KWARGS": []}, "CONNECTION_POOL_KWARGS"),
        ({"CLIENT_CLASS": "django_redis.client.FancyClient"}, "CLIENT_CLASS"),
        ({"STAMPEDE_STALE": 0}, "STAMPEDE_STALE"),
        ({"stampede_lock": "10"}, "stampede_lock"),
        ({"PICKLE_VERSION": 99}, "PICKLE_VERSION"),
        ({"parser_class": "my.FancyParser"}, "parser_class"),
        ({"pool_class": "collections.OrderedDict"}, "pool_class"),
        ({"COMPRESSOR": "collections.OrderedDict"}, "COMPRESSOR"),
        ({"COMPRESSOR": "no.such.Compressor"}, "COMPRESSOR"),
        ({"SERIALIZER": "no.such.Serializer"}, "SERIALIZER"),
        ({"REDIS_CLIENT_CLASS": "collections.OrderedDict"}, "REDIS_CLIENT_CLASS"),
        ({"db": -1}, "db"),
        ({"socket_timeout": 1, "SOCKET_TIMEOUT": 2}, "SOCKET_TIMEOUT"),
    ],
)
def test_wrong_options_are_improperly_configured_and_named(options: Any, named: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=named):
        parse("redis://h", options)


@pytest.mark.parametrize(
    "location",
    ["http://h", "redis://h:notaport", "redis://h?timeout=5", "", "unix://", 42],
)
def test_wrong_locations_are_improperly_configured(location: Any) -> None:
    with pytest.raises(ImproperlyConfigured):
        parse(location, {})


def test_ill_typed_password_error_does_not_echo_it() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        parse("redis://h", {"password": 123456789})
    assert "123456789" not in str(caught.value)


def test_password_never_appears_in_repr_or_str(caplog: pytest.LogCaptureFixture) -> None:
    cache = RedisCache("redis://user:hunter2@h:1/0", {"OPTIONS": {"PASSWORD": "other"}})
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").info("cache: %r %s", cache, cache._config.servers)
    for text in (repr(cache), str(cache._config.servers[0]), repr(cache._config), caplog.text):
        assert "hunter2" not in text
        assert "other" not in text


def test_parsed_settings_are_reused_across_backend_instances() -> None:
    """Django builds a backend per async context: parsing must not happen per request."""
    params = {"OPTIONS": {"max_connections": 7}}
    first = RedisCache("redis://h", dict(params))
    second = RedisCache("redis://h", dict(params))
    assert first._config is second._config


def test_threads_building_backends_at_once_share_one_configuration() -> None:
    """50 threads build the same cache at once from cold settings: one configuration
    object for all, since single-flight and pools are keyed by it."""
    import threading

    from django.test.signals import setting_changed

    setting_changed.send(sender=None, setting="CACHES", value=None, enter=True)  # cold memo
    barrier = threading.Barrier(50)
    configs: list[Any] = []

    def build() -> None:
        barrier.wait()
        configs.append(RedisCache("redis://h", {"OPTIONS": {"max_connections": 9}})._config)

    threads = [threading.Thread(target=build) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(configs) == 50
    assert len({id(config) for config in configs}) == 1
