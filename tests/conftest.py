"""The test rig: a real server per test session, and a cache reached through either API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import django
import pytest
from django.conf import settings

from tests.servers import ServerProcess


def pytest_configure(config: pytest.Config) -> None:
    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "tests"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}},
            USE_TZ=True,
        )
        django.setup()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ServerProcess]:
    server = ServerProcess().start()
    yield server
    server.stop()


@pytest.fixture
def make_cache(redis_server: ServerProcess) -> Iterator[Callable[..., Any]]:
    """Build a backend like Django does: ``make_cache(OPTIONS={...}, KEY_PREFIX=...)``."""
    from django_asyncredis import RedisCache

    made = []

    def make(location: Any = None, **params: Any) -> RedisCache:
        cache = RedisCache(location or redis_server.url, params)
        made.append(cache)
        return cache

    yield make
    if made:
        made[0].clear()


@pytest.fixture
def cache(make_cache: Callable[..., Any]) -> Any:
    return make_cache()


class AsyncAPI:
    """Calls ``cache.aX(...)`` for ``api.X(...)`` and runs it to completion on one
    event loop per test, so a test reads the same for both APIs."""

    def __init__(self, cache: Any, runner: asyncio.Runner) -> None:
        self._cache = cache
        self._runner = runner

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._cache, "a" + name)
        return lambda *args, **kwargs: self._runner.run(method(*args, **kwargs))


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest, cache: Any) -> Iterator[Any]:
    """The cache through its sync API, then through its async API."""
    if request.param == "sync":
        yield cache
        return
    with asyncio.Runner() as runner:
        yield AsyncAPI(cache, runner)
