"""Credentials: ACL users, wrong passwords, and secrets kept out of every message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import checks

from django_asyncredis import ConnectionInterrupted, RedisCache

PASSWORD = "s3cr3t-p4ss"


@pytest.fixture
def acl_user(raw: Any) -> Iterator[str]:
    """An ACL user allowed every command on every key."""
    raw.execute_command("ACL", "SETUSER", "app", "on", f">{PASSWORD}", "~*", "+@all")
    yield "app"
    raw.execute_command("ACL", "DELUSER", "app")


def whoami(cache: RedisCache) -> Any:
    from django_asyncredis import _operations as ops

    def operation() -> ops.Operation[Any]:
        return (yield ("ACL", "WHOAMI"))

    return cache._sync.run(operation())


@pytest.mark.parametrize("path", ["sync", "async"])
def test_acl_user_in_the_url(redis_server: Any, acl_user: str, path: str) -> None:
    url = redis_server.url.replace("redis://", f"redis://{acl_user}:{PASSWORD}@")
    cache = RedisCache(url, {})
    if path == "sync":
        cache.set("key", "value")
        assert cache.get("key") == "value"
    else:
        asyncio.run(cache.aset("key", "value"))
        assert asyncio.run(cache.aget("key")) == "value"
    assert whoami(cache) == b"app"


def test_acl_user_in_options(redis_server: Any, acl_user: str) -> None:
    cache = RedisCache(redis_server.url, {"OPTIONS": {"USERNAME": acl_user, "PASSWORD": PASSWORD}})
    assert whoami(cache) == b"app"


@pytest.mark.parametrize("path", ["sync", "async"])
def test_wrong_password_fails_clearly_without_showing_it(
    redis_server: Any, acl_user: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = redis_server.url.replace("redis://", f"redis://{acl_user}:wrong-{PASSWORD}@")
    cache = RedisCache(url, {})
    caplog.set_level(logging.DEBUG)
    get = cache.get if path == "sync" else lambda key: asyncio.run(cache.aget(key))
    with pytest.raises(ConnectionInterrupted) as caught:
        get("key")
    message = str(caught.value)
    assert "invalid username-password pair" in message or "WRONGPASS" in message
    for text in (
        message,
        repr(caught.value),
        repr(cache),
        caplog.text,
        str(caught.value.__cause__),
    ):
        assert PASSWORD not in text


def test_system_checks_do_not_show_the_password(redis_server: Any) -> None:
    from django.test import override_settings

    url = redis_server.url.replace("redis://", f"redis://u:{PASSWORD}@")
    caches = {"default": {"BACKEND": "django_asyncredis.RedisCache", "LOCATION": url}}
    with override_settings(CACHES=caches):
        messages = checks.run_checks(include_deployment_checks=True)
    assert all(PASSWORD not in str(message) for message in messages)
