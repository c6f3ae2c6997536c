"""The test rig: a real server per test session, and a cache reached through either API."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import django
import pytest
import redis
from django.conf import settings

from tests.servers import ServerProcess
from tests.thread_hops import count_hops


def pytest_configure(config: pytest.Config) -> None:
    # ASYNCREDIS_TRANSPORT=pooled|multiplexed: the async transport caches get when
    # their OPTIONS do not choose (nox runs the connection tests under both).
    transport = os.environ.get("ASYNCREDIS_TRANSPORT")
    if transport:
        from django_asyncredis import _config

        assert transport in _config.TRANSPORTS, transport
        _config.DEFAULT_TRANSPORT = transport
    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=[
                "django.contrib.contenttypes",
                "django.contrib.auth",
                "django_asyncredis",  # its system checks and manage.py asyncredis
                "tests",
            ],
            # A file, not :memory:, so threads (sync_to_async) see the same tables.
            DATABASES={
                "default": {
                    "ENGINE": "django.db.backends.sqlite3",
                    "NAME": os.path.join(tempfile.mkdtemp(prefix="asyncredis-db-"), "db.sqlite3"),
                }
            },
            CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}},
            USE_TZ=True,
            SECRET_KEY="tests-only-secret-key",
        )
        django.setup()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ServerProcess]:
    server = ServerProcess().start()
    yield server
    server.stop()


@pytest.fixture
def own_server() -> Iterator[ServerProcess]:
    """A server of this test's own, free to pause, kill and restart."""
    server = ServerProcess().start()
    yield server
    server.stop()


@pytest.fixture
def admin(own_server: ServerProcess) -> Iterator[redis.Redis]:
    """A plain client of ``own_server``, to inspect and kill its connections."""
    client = redis.Redis(port=own_server.port)
    yield client
    client.close()


@pytest.fixture
def make_cache(redis_server: ServerProcess) -> Iterator[Callable[..., Any]]:
    """Build a backend like Django does: ``make_cache(OPTIONS={...}, KEY_PREFIX=...)``."""
    from django_asyncredis import RedisCache

    def make(location: Any = None, **params: Any) -> RedisCache:
        return RedisCache(location or redis_server.url, params)

    yield make
    redis_server.flush()


@pytest.fixture
def raw(redis_server: ServerProcess) -> Iterator[Any]:
    """A plain redis-py client on the test server, to look at what the cache stored."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


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


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every thread hop made from now on (tests/thread_hops.py): ``hops.clear()``, act, read."""
    return count_hops(monkeypatch)


@pytest.fixture
def django_db_tables() -> Iterator[None]:
    """Create the test models' tables in the in-memory database (no pytest-django needed)."""
    from django.db import connection

    from tests.models import Poll

    with connection.schema_editor() as editor:
        editor.create_model(Poll)
    try:
        yield
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(Poll)
