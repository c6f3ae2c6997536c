"""django-redis's ways of configuring Sentinel, read into our own settings.

Parsing only (no server): the live behaviour is tested on a real Sentinel
topology in tests/cluster/test_django_redis_sentinel.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_asyncredis._config import parse

SENTINEL_OPTIONS: dict[str, Any] = {
    "CLIENT_CLASS": "django_redis.client.SentinelClient",
    "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
    "SENTINELS": [("10.0.0.1", 26379), ("10.0.0.2", 26380)],
}


def test_sentinel_client_settings_mean_the_same_as_sentinel_urls() -> None:
    """SentinelClient + SENTINELS + ``redis://mymaster/2`` is
    ``redis+sentinel://<each sentinel>/mymaster/2``."""
    theirs = parse("redis://mymaster/2", SENTINEL_OPTIONS)
    ours = parse(
        [
            "redis+sentinel://10.0.0.1:26379/mymaster/2",
            "redis+sentinel://10.0.0.2:26380/mymaster/2",
        ],
        {"READ_FROM_REPLICAS": True},
    )
    assert theirs.mode == ours.mode == "sentinel"
    assert theirs.service == ours.service == "mymaster"
    assert theirs.servers == ours.servers
    assert theirs.template == ours.template
    assert dict(theirs.template.connection)["db"] == 2  # type: ignore[union-attr]


def test_sentinel_client_reads_from_replicas_as_django_redis_does() -> None:
    """django-redis's SentinelClient sends reads to a replica; so do we, unless told not to."""
    assert parse("redis://mymaster/0", SENTINEL_OPTIONS).read_from_replicas is True
    options = {**SENTINEL_OPTIONS, "READ_FROM_REPLICAS": False}
    assert parse("redis://mymaster/0", options).read_from_replicas is False


def test_explicit_primary_and_replica_urls_are_understood() -> None:
    """The two-URL form (``?is_master=1`` / ``?is_master=0``) names one service;
    with only the primary's URL, reads stay on the primary."""
    both = ["redis://mymaster/0?is_master=1", "redis://mymaster/0?is_master=0"]
    assert parse(both, SENTINEL_OPTIONS).read_from_replicas is True
    only_primary = ["redis://mymaster/0?is_master=1", "redis://mymaster/0?is_master=1"]
    assert parse(only_primary, SENTINEL_OPTIONS).read_from_replicas is False


def test_sentinel_kwargs_reach_the_sentinels_and_passwords_the_data_servers() -> None:
    """SENTINEL_KWARGS configures the sentinels; the URL's password the data servers."""
    options = {**SENTINEL_OPTIONS, "SENTINEL_KWARGS": {"password": "sentinel-secret"}}
    config = parse("redis://:data-secret@mymaster/0", options)
    assert all(dict(s.connection)["password"] == "sentinel-secret" for s in config.servers)
    assert dict(config.template.connection)["password"] == "data-secret"  # type: ignore[union-attr]


def test_sentinel_connection_pool_class_is_not_used_for_our_pools() -> None:
    """CONNECTION_POOL_CLASS SentinelConnectionPool is django-redis's way to follow
    the primary: our routing does that, with our own pools."""
    options = {**SENTINEL_OPTIONS, "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool"}
    config = parse("redis://mymaster/0", options)
    assert config.template.sync_pool_class is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("location", "options", "message"),
    [
        (
            "redis://mymaster/0",
            {"CLIENT_CLASS": "django_redis.client.SentinelClient"},
            "needs OPTIONS\\['SENTINELS'\\]",
        ),
        ("redis://mymaster/0", {"SENTINELS": "10.0.0.1:26379"}, "list of \\(host, port\\)"),
        ("redis://mymaster/0", {"SENTINELS": []}, "list of \\(host, port\\)"),
        (
            ["redis://mymaster/0", "redis://other/0"],
            {"SENTINELS": [("h", 1)]},
            "same service and db",
        ),
        ("redis+cluster://h:1", {"SENTINELS": [("h", 1)]}, "redis://<service>/<db>"),
        ("redis://mymaster/0", {"CONNECTION_FACTORY": "my.Factory"}, "is not supported"),
    ],
)
def test_bad_sentinel_settings_are_named(location: Any, options: Any, message: str) -> None:
    """Each mistake is an ImproperlyConfigured that says what to write."""
    with pytest.raises(ImproperlyConfigured, match=message):
        parse(location, options)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        (["redis+cluster://a:1", "redis+cluster://b:2"], "redis\\+cluster:// URLs instead"),
        (["redis://a:1", "redis://a:1"], "listed twice"),
        ("redis://a:1;redis://b:2", "','-separated"),
    ],
)
def test_bad_shard_settings_are_named(location: Any, message: str) -> None:
    """ShardClient takes plain server URLs, each once, as django-redis reads them."""
    with pytest.raises(ImproperlyConfigured, match=message):
        parse(location, {"CLIENT_CLASS": "django_redis.client.ShardClient"})


def test_shard_names_are_the_location_strings_as_written() -> None:
    """They place the keys, so they are kept exactly as django-redis sees them."""
    config = parse(
        "redis://a:1/0,redis://b:2/0", {"CLIENT_CLASS": "django_redis.client.ShardClient"}
    )
    assert config.mode == "shard"
    assert config.shard_names == ("redis://a:1/0", "redis://b:2/0")
