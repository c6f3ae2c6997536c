"""The session engine ``django_asyncredis.sessions``: every method through both APIs,
key compatibility with Django's cache engine, and whole requests through
``SessionMiddleware`` with ``Client`` and ``AsyncClient``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.backends.cache import SessionStore as DjangoCacheStore
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient, Client, override_settings
from django.utils import timezone

from django_asyncredis import ConnectionInterrupted
from django_asyncredis.sessions import CREATE_ATTEMPTS, KEY_PREFIX, SessionStore
from tests.servers import ServerProcess, free_port

ALIAS = "sessions"
BACKEND = "django_asyncredis.RedisCache"


def session_caches(url: str, **params: Any) -> dict[str, Any]:
    return {
        "default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
        ALIAS: {"BACKEND": BACKEND, "LOCATION": url, "KEY_PREFIX": "site", **params},
    }


@pytest.fixture
def configured(redis_server: ServerProcess) -> Iterator[None]:
    """The engine on a dedicated cache alias, as docs/sessions.md recommends."""
    with override_settings(
        CACHES=session_caches(redis_server.url),
        SESSION_ENGINE="django_asyncredis.sessions",
        SESSION_CACHE_ALIAS=ALIAS,
    ):
        yield
    redis_server.flush()


#: The sync twin of an async session method whose name is not "a" + it.
SYNC_NAMES = {"set": "__setitem__"}

Call = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest, configured: None) -> Iterator[Call]:
    """``call(session, "save", ...)``: ``session.save(...)``, then, for the async
    parameter, ``session.asave(...)`` run to completion on one loop per test."""
    if request.param == "sync":
        yield lambda target, name, *args, **kwargs: getattr(target, SYNC_NAMES.get(name, name))(
            *args, **kwargs
        )
        return
    with asyncio.Runner() as runner:
        yield lambda target, name, *args, **kwargs: runner.run(
            getattr(target, "a" + name)(*args, **kwargs)
        )


def server_key(session_key: str, alias: str = ALIAS) -> str:
    """Where a session lives on the server: Django's cache engine's key, through
    the cache's KEY_PREFIX and VERSION."""
    return caches[alias].make_key(KEY_PREFIX + session_key)


def saved(**data: Any) -> str:
    """The key of a new session holding ``data``, saved with the sync API."""
    session = SessionStore()
    session.update(data)
    session.save()
    assert session.session_key is not None
    return session.session_key


# Creating and saving.


def test_create_stores_an_empty_session_that_expires_with_the_cookie(call: Call, raw: Any) -> None:
    session = SessionStore()
    call(session, "create")
    assert session.session_key is not None
    assert len(session.session_key) == 32
    assert session.modified
    assert SessionStore(session.session_key).load() == {}
    age_ms = settings.SESSION_COOKIE_AGE * 1000
    assert age_ms - 5000 < raw.pttl(server_key(session.session_key)) <= age_ms


def test_saving_a_new_session_creates_it(call: Call) -> None:
    session = SessionStore()
    session["user"] = 7
    call(session, "save")
    assert session.session_key is not None
    assert SessionStore(session.session_key).load() == {"user": 7}


def test_saving_updates_the_session_and_its_expiry(call: Call, raw: Any) -> None:
    key = saved(user=7)
    session = SessionStore(key)
    call(session, "set", "cart", [1, 2])
    call(session, "set_expiry", 60)
    call(session, "save")
    assert session.session_key == key
    assert SessionStore(key).load() == {"user": 7, "cart": [1, 2], "_session_expiry": 60}
    assert 55_000 < raw.pttl(server_key(key)) <= 60_000


def test_create_never_overwrites_an_existing_session(call: Call) -> None:
    existing = saved(owner="alice")
    fresh = "f" * 32
    with mock.patch("django_asyncredis.sessions.get_random_string", side_effect=[existing, fresh]):
        session = SessionStore()
        session["owner"] = "mallory"
        call(session, "create")
    assert session.session_key == fresh
    assert SessionStore(existing).load() == {"owner": "alice"}
    assert SessionStore(fresh).load() == {"owner": "mallory"}


def test_create_gives_up_when_no_key_can_be_stored(call: Call) -> None:
    existing = saved(owner="alice")
    random_key = mock.patch("django_asyncredis.sessions.get_random_string", return_value=existing)
    with random_key as patched, pytest.raises(RuntimeError, match="likely unavailable"):
        call(SessionStore(), "create")
    assert patched.call_count == CREATE_ATTEMPTS
    assert SessionStore(existing).load() == {"owner": "alice"}


def test_must_create_refuses_an_existing_key(call: Call) -> None:
    key = saved(owner="alice")
    session = SessionStore(key)
    with pytest.raises(CreateError):
        call(session, "save", must_create=True)
    assert SessionStore(key).load() == {"owner": "alice"}


def test_saving_a_session_deleted_meanwhile_raises_update_error(call: Call) -> None:
    """A concurrent logout wins: the session is not brought back (Django 4.2 and 5.2 alike)."""
    key = saved(user=7)
    session = SessionStore(key)
    session["cart"] = [1]  # loaded
    SessionStore().delete(key)
    with pytest.raises(UpdateError):
        call(session, "save")
    assert not SessionStore().exists(key)


def test_saving_an_unloaded_session_deleted_meanwhile_raises_update_error(call: Call) -> None:
    key = saved(user=7)
    session = SessionStore(key)
    SessionStore().delete(key)
    with pytest.raises(UpdateError):
        call(session, "save")
    assert not SessionStore().exists(key)


def test_saving_with_an_expiry_in_the_past_removes_the_session(call: Call) -> None:
    key = saved(user=7)
    session = SessionStore(key)
    call(session, "set_expiry", timezone.now() - timedelta(seconds=10))
    call(session, "save")
    assert not SessionStore().exists(key)


# Loading.


def test_load_reads_the_stored_session(call: Call) -> None:
    key = saved(user=7)
    session = SessionStore(key)
    assert call(session, "load") == {"user": 7}
    assert session.session_key == key


def test_an_unknown_key_loads_empty_and_is_never_reused(call: Call) -> None:
    """The client chose the key (session fixation) or it expired: saving makes a new one."""
    chosen = "a" * 32
    session = SessionStore(chosen)
    assert call(session, "load") == {}
    assert session.session_key is None
    session["user"] = 7
    call(session, "save")
    assert session.session_key not in (None, chosen)
    assert not SessionStore().exists(chosen)


@pytest.mark.parametrize(
    "stored", [b"garbage", b"\x80\x05broken pickle"], ids=["foreign", "truncated"]
)
def test_undecodable_data_loads_as_an_empty_session(
    call: Call, raw: Any, stored: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    key = saved(user=7)
    raw.set(server_key(key), stored)
    session = SessionStore(key)
    with caplog.at_level(logging.WARNING, "django_asyncredis.sessions"):
        assert call(session, "load") == {}
    assert session.session_key is None
    assert "Undecodable session data" in caplog.text
    assert key not in caplog.text  # the session key is a credential


def test_a_value_that_is_not_a_session_loads_empty(call: Call) -> None:
    key = saved(user=7)
    caches[ALIAS].set(KEY_PREFIX + key, "not a dict")
    session = SessionStore(key)
    assert call(session, "load") == {}
    assert session.session_key is None


@pytest.mark.parametrize(
    "cookie",
    ["short", "x" * 41, "x" * 300, "has space inside", "control\x00chars", "ünïcödekey01"],
)
def test_a_cookie_no_engine_could_have_issued_is_no_session(call: Call, cookie: str) -> None:
    """It never reaches the cache: a key that long or with such characters would make
    Django's key check warn (an error under this suite's filterwarnings)."""
    session = SessionStore(cookie)
    assert session.session_key is None
    assert call(session, "get", "user") is None


def test_a_server_error_is_not_mistaken_for_a_missing_session(call: Call) -> None:
    """Unlike Django's engine, which would log everyone out during an outage."""
    dead = f"redis://127.0.0.1:{free_port()}"
    with override_settings(CACHES=session_caches(dead, OPTIONS={"socket_connect_timeout": 0.2})):
        session = SessionStore("a" * 32)
        with pytest.raises(ConnectionInterrupted):
            call(session, "load")


def test_with_ignore_exceptions_an_unreachable_server_reads_as_no_session(call: Call) -> None:
    dead = f"redis://127.0.0.1:{free_port()}"
    options = {"socket_connect_timeout": 0.2, "ignore_exceptions": True}
    with override_settings(CACHES=session_caches(dead, OPTIONS=options)):
        session = SessionStore("a" * 32)
        assert call(session, "load") == {}
        assert session.session_key is None
        with pytest.raises(RuntimeError, match="unavailable"):
            call(session, "create")


# exists, delete, clear_expired.


def test_exists(call: Call) -> None:
    key = saved(user=7)
    assert call(SessionStore(), "exists", key) is True
    assert call(SessionStore(), "exists", "b" * 32) is False
    assert call(SessionStore(), "exists", "") is False


def test_delete_by_key_and_the_current_session(call: Call) -> None:
    first, second = saved(n=1), saved(n=2)
    call(SessionStore(), "delete", first)
    assert not SessionStore().exists(first)
    call(SessionStore(second), "delete")
    assert not SessionStore().exists(second)
    call(SessionStore(), "delete")  # no key: nothing to do


def test_clear_expired_has_nothing_to_do(call: Call) -> None:
    key = saved(n=1)
    assert call(SessionStore, "clear_expired") is None
    assert SessionStore().exists(key)


# The dictionary API, loading lazily.


def test_reading_methods(call: Call) -> None:
    session = SessionStore(saved(a=1, b=2))
    assert call(session, "get", "a") == 1
    assert session.accessed
    assert call(session, "get", "missing") is None
    assert call(session, "get", "missing", 9) == 9
    assert call(session, "has_key", "a") is True
    assert call(session, "has_key", "missing") is False
    assert list(call(session, "keys")) == ["a", "b"]
    assert list(call(session, "values")) == [1, 2]
    assert list(call(session, "items")) == [("a", 1), ("b", 2)]
    assert not session.modified


def test_writing_methods(call: Call) -> None:
    key = saved(a=1)
    session = SessionStore(key)
    assert call(session, "setdefault", "a", 5) == 1
    assert not session.modified
    assert call(session, "setdefault", "c", 3) == 3
    assert session.modified
    call(session, "set", "d", 4)
    call(session, "update", {"e": 5})
    assert call(session, "pop", "e") == 5
    assert call(session, "pop", "missing", None) is None
    with pytest.raises(KeyError):
        call(session, "pop", "missing")
    call(session, "save")
    assert SessionStore(key).load() == {"a": 1, "c": 3, "d": 4}


def test_pop_of_a_missing_key_does_not_modify(call: Call) -> None:
    session = SessionStore(saved(a=1))
    assert call(session, "pop", "missing", "default") == "default"
    assert not session.modified


def test_test_cookie(call: Call) -> None:
    session = SessionStore(saved(a=1))
    assert call(session, "test_cookie_worked") is False
    call(session, "set_test_cookie")
    assert call(session, "test_cookie_worked") is True
    call(session, "delete_test_cookie")
    assert call(session, "test_cookie_worked") is False


# Expiry.


def test_expiry_defaults_to_the_settings(call: Call) -> None:
    session = SessionStore(saved(a=1))
    assert call(session, "get_expiry_age") == settings.SESSION_COOKIE_AGE
    expected = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert abs(call(session, "get_expiry_date") - expected) < timedelta(seconds=5)
    assert call(session, "get_expire_at_browser_close") is settings.SESSION_EXPIRE_AT_BROWSER_CLOSE


def test_expiry_in_seconds(call: Call) -> None:
    session = SessionStore(saved(a=1))
    call(session, "set_expiry", 60)
    assert call(session, "get_expiry_age") == 60
    assert call(session, "get_expire_at_browser_close") is False


def test_expiry_as_timedelta_and_datetime(call: Call) -> None:
    session = SessionStore(saved(a=1))
    call(session, "set_expiry", timedelta(minutes=2))
    assert 115 <= call(session, "get_expiry_age") <= 120
    when = timezone.now() + timedelta(hours=1)
    call(session, "set_expiry", when)
    assert call(session, "get_expiry_date") == when
    assert isinstance(call(session, "get_expiry_date"), datetime)


def test_expiry_at_browser_close_and_reset(call: Call) -> None:
    session = SessionStore(saved(a=1))
    call(session, "set_expiry", 0)
    assert call(session, "get_expire_at_browser_close") is True
    assert call(session, "get_expiry_age") == settings.SESSION_COOKIE_AGE
    call(session, "set_expiry", None)
    assert "_session_expiry" not in session
    call(session, "set_expiry", None)  # already reset: no error


def test_expiry_given_explicitly_does_not_load_the_session(call: Call) -> None:
    session = SessionStore(saved(a=1))
    modification = timezone.now()
    assert call(session, "get_expiry_age", modification=modification, expiry=30) == 30
    assert call(
        session, "get_expiry_date", modification=modification, expiry=30
    ) == modification + timedelta(seconds=30)
    assert not session.accessed


# flush and cycle_key: what logout and login do.


def test_flush(call: Call) -> None:
    key = saved(user=7)
    session = SessionStore(key)
    call(session, "flush")
    assert session.session_key is None
    assert session.is_empty()
    assert not SessionStore().exists(key)


def test_cycle_key_keeps_the_data_under_a_new_key(call: Call) -> None:
    old = saved(user=7)
    session = SessionStore(old)
    call(session, "cycle_key")
    new = session.session_key
    assert new not in (None, old)
    assert not SessionStore().exists(old)
    assert SessionStore(new).load() == {"user": 7}
    assert session["user"] == 7


def test_cycle_key_of_a_new_session_creates_it(call: Call) -> None:
    session = SessionStore()
    session["user"] = 7
    call(session, "cycle_key")
    assert session.session_key is not None
    assert SessionStore(session.session_key).load() == {"user": 7}


# Keys: Django's cache engine's, and never shared across prefixes or versions.


def test_djangos_cache_engine_reads_our_sessions(call: Call) -> None:
    ours = SessionStore()
    ours["user"] = 7
    call(ours, "save")
    theirs = DjangoCacheStore(ours.session_key)
    assert theirs.cache_key == ours.cache_key
    assert theirs.load() == {"user": 7}


def test_we_read_djangos_cache_engine_sessions(call: Call) -> None:
    theirs = DjangoCacheStore()
    theirs["user"] = 7
    theirs.save()
    ours = SessionStore(theirs.session_key)
    assert call(ours, "get", "user") == 7
    call(ours, "set", "cart", [1])
    call(ours, "save")
    assert DjangoCacheStore(theirs.session_key).load() == {"user": 7, "cart": [1]}


@pytest.mark.parametrize("other", [{"KEY_PREFIX": "other"}, {"VERSION": 2}], ids=str)
def test_caches_with_another_prefix_or_version_do_not_share_sessions(
    call: Call, redis_server: ServerProcess, other: dict[str, Any]
) -> None:
    aliases = {
        "a": {"BACKEND": BACKEND, "LOCATION": redis_server.url, "KEY_PREFIX": "site"},
        "b": {"BACKEND": BACKEND, "LOCATION": redis_server.url, "KEY_PREFIX": "site", **other},
    }
    with override_settings(CACHES=aliases, SESSION_CACHE_ALIAS="a"):
        session = SessionStore()
        session["on"] = "a"
        call(session, "save")
        key = session.session_key
    with override_settings(CACHES=aliases, SESSION_CACHE_ALIAS="b"):
        assert call(SessionStore(), "exists", key) is False
        assert call(SessionStore(key), "load") == {}
        theirs = SessionStore(key)
        theirs["on"] = "b"
        call(theirs, "save", must_create=True)  # the key is free on b: no CreateError
    with override_settings(CACHES=aliases, SESSION_CACHE_ALIAS="a"):
        assert SessionStore(key).load() == {"on": "a"}


def test_another_cache_backend_is_refused(configured: None) -> None:
    with (
        override_settings(SESSION_CACHE_ALIAS="default"),
        pytest.raises(ImproperlyConfigured, match="DummyCache"),
    ):
        SessionStore()


# No thread hop: the async API runs on the event loop.


async def test_the_async_api_never_leaves_the_event_loop(
    configured: None, monkeypatch: pytest.MonkeyPatch, hops: list[str]
) -> None:
    await caches[ALIAS].aget("warm-up")  # connecting is the cache's business, not the engine's
    for sync_method in ("load", "save", "create", "exists", "delete"):  # and never the sync path
        monkeypatch.setattr(SessionStore, sync_method, mock.Mock(side_effect=AssertionError))
    await sync_to_async(lambda: None)()
    assert len(hops) == 2  # the patches do see a hop
    hops.clear()

    session = SessionStore()
    await session.aset("a", 1)
    await session.asave()
    key = session.session_key
    assert key is not None
    assert await session.aexists(key)

    loaded = SessionStore(key)
    assert await loaded.aget("a") == 1
    assert await loaded.ahas_key("a")
    await loaded.aupdate({"b": 2})
    assert await loaded.asetdefault("c", 3) == 3
    assert await loaded.apop("c") == 3
    assert list(await loaded.akeys()) == ["a", "b"]
    assert list(await loaded.avalues()) == [1, 2]
    assert list(await loaded.aitems()) == [("a", 1), ("b", 2)]
    await loaded.aset_test_cookie()
    assert await loaded.atest_cookie_worked()
    await loaded.adelete_test_cookie()
    await loaded.aset_expiry(60)
    assert await loaded.aget_expiry_age() == 60
    assert await loaded.aget_expiry_date() > timezone.now()
    assert not await loaded.aget_expire_at_browser_close()
    await loaded.asave()
    assert await SessionStore(key).aload() == {"a": 1, "b": 2, "_session_expiry": 60}

    await loaded.acycle_key()
    assert not await loaded.aexists(key)
    cycled = loaded.session_key
    await loaded.aflush()
    assert cycled is not None
    assert not await loaded.aexists(cycled)

    fresh = SessionStore()
    await fresh.acreate()
    await SessionStore(fresh.session_key).adelete()
    await fresh.adelete()
    await SessionStore.aclear_expired()
    with pytest.raises(UpdateError):
        await fresh.asave()
    assert hops == []


# Whole requests through SessionMiddleware.


@pytest.fixture
def site(configured: None) -> Iterator[None]:
    with override_settings(
        ROOT_URLCONF="tests.session_urls",
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        ALLOWED_HOSTS=["testserver"],
    ):
        yield


def session_cookie(client: Client | AsyncClient) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_client_sync_and_async_views_share_the_session(site: None, raw: Any) -> None:
    client = Client()
    assert client.get("/count/").json()["visits"] == 1
    key = session_cookie(client)
    assert client.get("/acount/").json() == {"visits": 2, "key": key}
    assert client.get("/count/").json()["visits"] == 3
    assert SessionStore(key).load() == {"visits": 3}
    age_ms = settings.SESSION_COOKIE_AGE * 1000
    assert age_ms - 5000 < raw.pttl(server_key(key)) <= age_ms


def test_client_session_property_uses_the_engine(site: None) -> None:
    client = Client()
    session = client.session
    assert isinstance(session, SessionStore)
    session["visits"] = 41
    session.save()
    assert client.get("/acount/").json()["visits"] == 42


def test_client_cycle_and_flush(site: None) -> None:
    client = Client()
    client.get("/count/")
    old = session_cookie(client)
    response = client.get("/acycle/")
    new = session_cookie(client)
    assert response.json() == {"visits": 1, "key": new}
    assert new != old
    assert not SessionStore().exists(old)
    client.get("/aflush/")
    assert session_cookie(client) == ""
    assert not SessionStore().exists(new)


def test_client_session_deleted_during_the_request_is_a_bad_request(site: None) -> None:
    client = Client()
    client.get("/count/")
    key = session_cookie(client)
    response = client.get("/vanish/")
    assert response.status_code == 400
    assert not SessionStore().exists(key)


async def test_async_client_sync_and_async_views_share_the_session(site: None) -> None:
    client = AsyncClient()
    assert (await client.get("/acount/")).json()["visits"] == 1
    key = session_cookie(client)
    assert (await client.get("/count/")).json() == {"visits": 2, "key": key}
    assert (await client.get("/acount/")).json()["visits"] == 3
    assert await SessionStore(key).aload() == {"visits": 3}


async def test_async_client_reading_does_not_save(site: None) -> None:
    client = AsyncClient()
    await client.get("/acount/")
    response = await client.get("/alook/")
    assert response.json()["visits"] == 1
    assert settings.SESSION_COOKIE_NAME not in response.cookies


async def test_async_client_unknown_cookie_gets_a_fresh_session(site: None) -> None:
    client = AsyncClient()
    client.cookies[settings.SESSION_COOKIE_NAME] = "c" * 32
    response = await client.get("/acount/")
    assert response.json()["visits"] == 1
    assert session_cookie(client) not in ("c" * 32, "")


async def test_async_client_cycle_and_flush(site: None) -> None:
    client = AsyncClient()
    await client.get("/acount/")
    old = session_cookie(client)
    response = await client.get("/acycle/")
    new = session_cookie(client)
    assert response.json() == {"visits": 1, "key": new}
    assert new != old
    assert not await SessionStore().aexists(old)
    await client.get("/aflush/")
    assert session_cookie(client) == ""
    assert not await SessionStore().aexists(new)
