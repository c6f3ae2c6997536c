"""``manage.py asyncredis``: ping, stats, keys and clear, against a real server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from tests.servers import ServerProcess


@pytest.fixture
def configured(redis_server: ServerProcess) -> Iterator[Any]:
    """CACHES with our cache as "default" (db 0) and "other" (db 1), and Django's
    cache handler forgetting its backends afterwards."""
    base = redis_server.url
    settings = {
        "default": {"BACKEND": "django_asyncredis.RedisCache", "LOCATION": f"{base}/0"},
        "other": {"BACKEND": "django_asyncredis.RedisCache", "LOCATION": f"{base}/1"},
    }
    with override_settings(CACHES=settings):
        yield caches["default"]
    redis.Redis.from_url(f"{base}/1").flushdb()
    redis_server.flush()


def run(*args: str) -> str:
    out = StringIO()
    call_command("asyncredis", *args, stdout=out)
    return out.getvalue()


def run_json(*args: str) -> Any:
    return json.loads(run(*args, "--json"))


def test_ping_names_each_cache_with_its_version(
    configured: Any, redis_server: ServerProcess
) -> None:
    """ping answers for every alias: up, the server's version, a latency."""
    report = run_json("ping")
    version = redis.Redis.from_url(redis_server.url).info("server")["redis_version"]
    assert sorted(report) == ["default", "other"]
    assert report["default"]["ok"] is True
    assert report["default"]["version"] == version
    assert report["default"]["latency_ms"] > 0
    assert f"Redis {version}" in run("ping", "--alias", "default")


def test_ping_reports_a_server_that_is_down() -> None:
    """A stopped server is reported DOWN, not raised."""
    server = ServerProcess().start()
    server.stop()
    settings = {"default": {"BACKEND": "django_asyncredis.RedisCache", "LOCATION": server.url}}
    with override_settings(CACHES=settings):
        report = run_json("ping")
    assert report["default"]["ok"] is False


def test_stats_counts_hits_and_misses_of_both_apis(configured: Any) -> None:
    """After CONFIG RESETSTAT, one hit and one miss on each API give 2 and 2."""
    cache = configured
    cache.set("present", 1)
    client = cache.get_client()
    client.config_resetstat()
    cache.get("present")
    cache.get("absent")
    asyncio.run(cache.aget("present"))
    asyncio.run(cache.aget("absent"))
    server = run_json("stats", "--alias", "default")["default"]["server"]
    assert (server["keyspace_hits"], server["keyspace_misses"], server["hit_ratio"]) == (2, 2, 0.5)
    assert server["keys"] == 1
    assert "hit ratio         50.0% (2 hits, 2 misses)" in run("stats", "--alias", "default")


def test_stats_shows_this_process_sync_pool(configured: Any) -> None:
    """After a sync call in this process, stats lists the sync pool's gauges."""
    configured.get("absent")
    pools = run_json("stats", "--alias", "default")["default"]["pools"]
    sync = [pool for pool in pools if pool["api"] == "sync"]
    assert len(sync) == 1
    assert (sync[0]["in_use"], sync[0]["waiters"]) == (0, 0)
    assert sync[0]["opened_total"] - sync[0]["closed_total"] == sync[0]["idle"] >= 1
    assert f"pool (sync) {sync[0]['server']}: 0 in use" in run("stats", "--alias", "default")


def test_keys_counts_every_match_and_prints_a_bounded_list(configured: Any) -> None:
    """keys shows at most --limit keys and counts them all."""
    cache = configured
    cache.set("user:1", 1)
    cache.set("user:2", 2)
    asyncio.run(cache.aset("user:3", 3))
    cache.set("other", 0)
    report = run_json("keys", "user:*", "--alias", "default", "--limit", "2")["default"]
    assert report["count"] == 3
    assert report["complete"] is True
    assert len(report["keys"]) == 2
    assert set(report["keys"]) <= {"user:1", "user:2", "user:3"}


def test_clear_needs_an_alias(configured: Any) -> None:
    """clear without --alias refuses, naming the option."""
    with pytest.raises(CommandError, match="--alias"):
        run("clear", "--noinput")


def test_clear_with_noinput_empties_only_that_cache(configured: Any) -> None:
    """clear --noinput empties the alias's db and leaves the other alias's."""
    configured.set("gone", 1)
    caches["other"].set("kept", 1)
    run("clear", "--alias", "default", "--noinput")
    assert configured.get("gone") is None
    assert caches["other"].get("kept") == 1


def test_clear_asks_and_a_no_keeps_everything(
    configured: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --noinput, anything but 'yes' leaves the keys."""
    configured.set("kept", 1)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    assert run_json("clear", "--alias", "default")["default"]["cleared"] is False
    assert configured.get("kept") == 1


def test_an_unknown_alias_is_refused(configured: Any) -> None:
    """--alias names one of our caches or the command says which are."""
    with pytest.raises(CommandError, match="ours: default, other"):
        run("ping", "--alias", "nope")
