"""``django_asyncredis.middleware.SessionMiddleware``: Django's behaviour, with no thread hop.

Most tests run three ways (the ``browser`` fixture): Django's test ``Client``
(a sync chain) on sync views, its ``AsyncClient`` (an async chain) on async
views, and ``AsyncClient`` on sync views (Django runs them in a thread, our
middleware saves on the loop). The views are in tests/session_urls.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from http.cookies import Morsel
from typing import Any

import django
import pytest
from django.conf import settings
from django.contrib.sessions.exceptions import SessionInterrupted
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings

from django_asyncredis.middleware import SessionMiddleware
from django_asyncredis.sessions import KEY_PREFIX, SessionStore
from tests.servers import ServerProcess
from tests.thread_hops import hops_of

OURS = "django_asyncredis.middleware.SessionMiddleware"
DJANGOS = "django.contrib.sessions.middleware.SessionMiddleware"
ALIAS = "sessions"
#: (client, views): the three ways a request reaches a view.
#: Whether Django's own session engines have the async API (Django 5.1+).
ASYNC_SESSION_API = django.VERSION >= (5, 1)
MODES = {
    "sync": ("sync", ""),
    "async": ("async", "a"),
    "async-client-sync-view": ("async", ""),
}


def site_settings(server_url: str, middleware: str = OURS, **overrides: Any) -> override_settings:
    return override_settings(
        **{
            "CACHES": {
                "default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
                ALIAS: {"BACKEND": "django_asyncredis.RedisCache", "LOCATION": server_url},
            },
            "SESSION_ENGINE": "django_asyncredis.sessions",
            "SESSION_CACHE_ALIAS": ALIAS,
            "ROOT_URLCONF": "tests.session_urls",
            "MIDDLEWARE": [middleware],
            "ALLOWED_HOSTS": ["testserver"],
            **overrides,
        }
    )


class Browser:
    """One client, sync or async, on the sync or the async twin of each view."""

    def __init__(self, mode: str, runner: asyncio.Runner | None) -> None:
        client_kind, self.prefix = MODES[mode]
        self.client: Client | AsyncClient = AsyncClient() if client_kind == "async" else Client()
        self._runner = runner

    def get(self, view: str, query: str = "") -> HttpResponse:
        path = f"/{self.prefix}{view}/" + (f"?{query}" if query else "")
        response = self.client.get(path)
        if self._runner is not None:
            response = self._runner.run(response)
        return response  # type: ignore[return-value]

    @property
    def cookie(self) -> str:
        return self.client.cookies[settings.SESSION_COOKIE_NAME].value

    def send_cookie(self, value: str) -> None:
        self.client.cookies[settings.SESSION_COOKIE_NAME] = value


@pytest.fixture(params=list(MODES))
def browser(request: pytest.FixtureRequest, redis_server: ServerProcess) -> Iterator[Browser]:
    runner = asyncio.Runner() if MODES[request.param][0] == "async" else None
    try:
        with site_settings(redis_server.url):
            yield Browser(request.param, runner)
    finally:
        if runner is not None:
            runner.close()
        redis_server.flush()


def session_cookie(response: HttpResponse) -> Morsel[str]:
    return response.cookies[settings.SESSION_COOKIE_NAME]


def varies_on_cookie(response: HttpResponse) -> bool:
    return "Cookie" in [v.strip() for v in response.get("Vary", "").split(",")]


def visits(response: HttpResponse) -> int:
    return json.loads(response.content)["visits"]  # type: ignore[no-any-return]


def stored(raw: Any, key: str) -> bool:
    return bool(raw.keys(f"*{KEY_PREFIX}{key}"))


def ttl_ms(raw: Any, key: str) -> int:
    (server_key,) = raw.keys(f"*{KEY_PREFIX}{key}")
    return raw.pttl(server_key)  # type: ignore[no-any-return]


# Saving, and the cookie.


def test_a_modified_session_is_saved_and_gets_a_cookie(browser: Browser, raw: Any) -> None:
    response = browser.get("count")
    assert visits(response) == 1
    cookie = session_cookie(response)
    assert SessionStore(cookie.value).load() == {"visits": 1}
    assert cookie["max-age"] == settings.SESSION_COOKIE_AGE
    assert cookie["expires"]  # matching max-age, for old browsers
    assert cookie["path"] == "/"
    assert cookie["domain"] == ""
    assert cookie["httponly"] is True
    assert cookie["secure"] == ""
    assert cookie["samesite"] == "Lax"
    assert varies_on_cookie(response)


def test_the_next_request_continues_the_session(browser: Browser) -> None:
    first = browser.get("count")
    second = browser.get("count")
    assert visits(second) == 2
    assert session_cookie(second).value == session_cookie(first).value


def test_reading_saves_nothing_but_varies_on_cookie(browser: Browser, raw: Any) -> None:
    browser.get("count")
    key = browser.cookie
    raw.pexpire(raw.keys(f"*{KEY_PREFIX}{key}")[0], 50_000)
    response = browser.get("look")
    assert visits(response) == 1
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert varies_on_cookie(response)
    assert ttl_ms(raw, key) <= 50_000  # not written


def test_an_untouched_session_is_not_read_saved_or_varied_on(browser: Browser, raw: Any) -> None:
    """Lazy, as Django's: a request that never uses its session costs no round trip."""
    browser.get("count")
    gets = raw.info("commandstats").get("cmdstat_get", {}).get("calls", 0)
    response = browser.get("untouched")
    assert raw.info("commandstats").get("cmdstat_get", {}).get("calls", 0) == gets
    assert response.content == b"untouched"
    assert not response.cookies
    assert not response.has_header("Vary")


def test_cookie_settings_are_applied(browser: Browser) -> None:
    with override_settings(
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_DOMAIN="example.com",
        SESSION_COOKIE_PATH="/app",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_AGE=120,
    ):
        first = browser.get("count")
        cookie = first.cookies["sid"]
        assert (cookie["domain"], cookie["path"], cookie["secure"], cookie["httponly"]) == (
            "example.com",
            "/app",
            True,
            "",
        )
        assert (cookie["samesite"], cookie["max-age"]) == ("Strict", 120)
        assert visits(browser.get("count")) == 2  # read from the "sid" cookie
    assert "sessionid" not in first.cookies


def test_expire_at_browser_close_gives_a_cookie_without_expiry(browser: Browser) -> None:
    with override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True):
        cookie = session_cookie(browser.get("count"))
    assert cookie["max-age"] == ""
    assert cookie["expires"] == ""


def test_set_expiry_zero_gives_a_cookie_without_expiry(browser: Browser) -> None:
    cookie = session_cookie(browser.get("expire", "seconds=0"))
    assert (cookie["max-age"], cookie["expires"]) == ("", "")


def test_set_expiry_sets_the_cookie_and_server_expiry(browser: Browser, raw: Any) -> None:
    cookie = session_cookie(browser.get("expire", "seconds=60"))
    assert cookie["max-age"] == 60
    assert 55_000 < ttl_ms(raw, cookie.value) <= 60_000


def test_save_every_request_refreshes_an_untouched_session(browser: Browser, raw: Any) -> None:
    """The session is loaded to be saved; as on Django 5.2+, the response varies on Cookie."""
    browser.get("count")
    key = browser.cookie
    raw.pexpire(raw.keys(f"*{KEY_PREFIX}{key}")[0], 50_000)
    with override_settings(SESSION_SAVE_EVERY_REQUEST=True):
        response = browser.get("untouched")
    assert session_cookie(response).value == key
    assert session_cookie(response)["max-age"] == settings.SESSION_COOKIE_AGE
    assert ttl_ms(raw, key) > settings.SESSION_COOKIE_AGE * 1000 - 5000
    assert SessionStore(key).load() == {"visits": 1}
    assert varies_on_cookie(response)


def test_save_every_request_does_not_create_empty_sessions(browser: Browser, raw: Any) -> None:
    with override_settings(SESSION_SAVE_EVERY_REQUEST=True):
        response = browser.get("untouched")
    assert not response.cookies
    assert raw.dbsize() == 0


# Emptied sessions, errors.


def test_a_flushed_session_loses_its_cookie(browser: Browser, raw: Any) -> None:
    browser.get("count")
    key = browser.cookie
    response = browser.get("flush")
    cookie = session_cookie(response)
    assert cookie.value == ""
    assert cookie["max-age"] == 0
    assert cookie["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert varies_on_cookie(response)
    assert not stored(raw, key)


def test_a_stale_cookie_is_deleted_once_read(browser: Browser, raw: Any) -> None:
    """An expired or forged key loads as an empty session, which has no cookie to keep."""
    browser.send_cookie("c" * 32)
    response = browser.get("look")
    assert visits(response) == 0
    assert session_cookie(response).value == ""
    assert raw.dbsize() == 0


def test_a_stale_cookie_is_never_reused(browser: Browser) -> None:
    browser.send_cookie("c" * 32)
    assert visits(browser.get("count")) == 1
    assert browser.cookie not in ("c" * 32, "")


def test_a_server_error_response_saves_nothing(browser: Browser) -> None:
    browser.get("count")
    key = browser.cookie
    response = browser.get("fail")
    assert response.status_code == 500
    assert not response.cookies
    assert varies_on_cookie(response)  # the view read the session
    assert SessionStore(key).load() == {"visits": 1}


def test_a_server_error_response_creates_no_session(browser: Browser, raw: Any) -> None:
    response = browser.get("fail")
    assert response.status_code == 500
    assert not response.cookies
    assert raw.dbsize() == 0


def test_a_concurrent_logout_is_a_bad_request(browser: Browser) -> None:
    """The session deleted while the request modified it is not brought back."""
    browser.get("count")
    key = browser.cookie
    response = browser.get("vanish")
    assert response.status_code == 400
    assert not response.cookies
    assert not SessionStore().exists(key)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_concurrent_logout_raises_session_interrupted(
    mode: str, redis_server: ServerProcess
) -> None:
    """What Django's handler turns into that 400."""
    with site_settings(redis_server.url):
        key = SessionStore()
        key["visits"] = 1
        key.save()
        request = RequestFactory().get("/")
        request.COOKIES[settings.SESSION_COOKIE_NAME] = key.session_key or ""

        def view(request: HttpRequest) -> HttpResponse:
            request.session["visits"] = 2
            SessionStore().delete(request.session.session_key)
            return HttpResponse()

        async def aview(request: HttpRequest) -> HttpResponse:
            return view(request)

        def respond() -> Any:
            if mode == "sync":
                return SessionMiddleware(view)(request)
            return asyncio.run(SessionMiddleware(aview)(request))  # type: ignore[arg-type]

        with pytest.raises(SessionInterrupted, match="logout in a concurrent request"):
            respond()
    redis_server.flush()


def test_a_view_that_removes_the_session_gets_its_response_untouched(
    redis_server: ServerProcess,
) -> None:
    def view(request: HttpRequest) -> HttpResponse:
        del request.session
        return HttpResponse(b"no session")

    async def aview(request: HttpRequest) -> HttpResponse:
        return view(request)

    with site_settings(redis_server.url):
        response = SessionMiddleware(view)(RequestFactory().get("/"))
        aresponse = asyncio.run(SessionMiddleware(aview)(RequestFactory().get("/")))  # type: ignore[arg-type]
    for each in (response, aresponse):
        assert each.content == b"no session"
        assert not each.cookies
        assert not each.has_header("Vary")


# The same responses as Django's middleware.

#: Request sequences, each from a fresh client; "stale" sends an unknown cookie first.
SCENARIOS = {
    "count, look, flush, look": ["count", "count", "look", "untouched", "flush", "look"],
    "stale cookie": ["stale", "look", "count"],
    "expiry": ["expire?seconds=0", "expire?seconds=60", "look"],
    "errors": ["fail", "count", "fail", "look"],
}
SETTINGS = {
    "defaults": {},
    "save every request": {"SESSION_SAVE_EVERY_REQUEST": True},
    "browser close": {"SESSION_EXPIRE_AT_BROWSER_CLOSE": True},
    "cookie settings": {
        "SESSION_COOKIE_NAME": "sid",
        "SESSION_COOKIE_DOMAIN": ".example.com",
        "SESSION_COOKIE_PATH": "/",
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_SAMESITE": "None",
    },
}


def transcript(browser: Browser, steps: list[str]) -> list[Any]:
    """What a client sees, minus what is random (the key) or moves (Expires)."""
    seen = []
    for step in steps:
        if step == "stale":
            browser.client.cookies[settings.SESSION_COOKIE_NAME] = "s" * 32
            continue
        view, _, query = step.partition("?")
        response = browser.get(view, query)
        cookies = {
            name: {
                attribute: bool(value) if attribute in ("expires", "value") else value
                for attribute, value in [*morsel.items(), ("value", morsel.value)]
            }
            for name, morsel in response.cookies.items()
        }
        seen.append((step, response.status_code, cookies, response.get("Vary")))
    return seen


@pytest.mark.parametrize("overrides", list(SETTINGS.values()), ids=list(SETTINGS))
@pytest.mark.parametrize("steps", list(SCENARIOS.values()), ids=list(SCENARIOS))
@pytest.mark.parametrize("mode", list(MODES))
def test_responses_are_djangos(
    mode: str, steps: list[str], overrides: dict[str, Any], redis_server: ServerProcess
) -> None:
    """Status, cookies (every attribute) and Vary, request after request, under each setting."""
    transcripts = []
    for middleware in (DJANGOS, OURS):
        runner = asyncio.Runner() if MODES[mode][0] == "async" else None
        try:
            with site_settings(redis_server.url, middleware, **overrides):
                transcripts.append(transcript(Browser(mode, runner), steps))
        finally:
            if runner is not None:
                runner.close()
            redis_server.flush()
    theirs, ours = transcripts
    # The one difference: Django 4.2 sets the cookie of a session nobody accessed
    # (SESSION_SAVE_EVERY_REQUEST) without Vary: Cookie; 5.2 and ours add it. (On
    # 5.2 Django's responses have no such case, so this changes nothing there.)
    theirs = [
        (step, status, cookies, "Cookie" if cookies and vary is None else vary)
        for step, status, cookies, vary in theirs
    ]
    assert ours == theirs


# Other engines, and sync access from async views.


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(
    "engine",
    ["django.contrib.sessions.backends.signed_cookies", "django.contrib.sessions.backends.cache"],
)
def test_djangos_engines_work_too(mode: str, engine: str, redis_server: ServerProcess) -> None:
    """On Django 4.2 they have no async API: the response phase then runs in a thread."""
    if mode == "async" and not ASYNC_SESSION_API:
        pytest.skip("Django's engines have no async API for async views before Django 5.1")
    runner = asyncio.Runner() if MODES[mode][0] == "async" else None
    try:
        with site_settings(redis_server.url, SESSION_ENGINE=engine):
            browser = Browser(mode, runner)
            assert visits(browser.get("count")) == 1
            assert visits(browser.get("count")) == 2
            assert session_cookie(browser.get("flush")).value == ""
    finally:
        if runner is not None:
            runner.close()
        redis_server.flush()


async def test_an_async_view_may_use_the_sync_api(redis_server: ServerProcess) -> None:
    """It works (with this engine, a sync load on the loop, blocking it for a round trip)."""
    with site_settings(redis_server.url):
        client = AsyncClient()
        assert visits(await client.get("/ablocking/")) == 1
        assert visits(await client.get("/ablocking/")) == 2
    redis_server.flush()


# Thread hops under ASGI.


async def _hops_of_a_session_request(
    middleware: str | None, view: str, hops: list[str], server_url: str
) -> list[str]:
    """The hops of one request that reads and writes an existing session."""
    with site_settings(server_url, MIDDLEWARE=[middleware] if middleware else []):
        session = SessionStore()
        session["visits"] = 1
        await session.asave()
        cookie = [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode())]
        body, seen = await hops_of(ASGIHandler(), f"/{view}/", hops, cookie)
        if middleware:
            assert json.loads(body)["visits"] == 2
            assert await SessionStore(session.session_key).aload() == {"visits": 2}
    return seen


@pytest.mark.parametrize("view", ["acount", "count"], ids=["async view", "sync view"])
async def test_a_session_request_makes_no_thread_hop_of_its_own(
    redis_server: ServerProcess, hops: list[str], view: str
) -> None:
    """Reading and writing the session under ASGI: ours makes exactly the hops of the
    same app without session middleware (Django's own: request_started, the sync
    view, ...); Django's middleware adds two thread hops, its two phases."""
    with site_settings(redis_server.url):
        await SessionStore().aexists("warm-up")  # connecting is the pool's business
    untouched = "auntouched" if view.startswith("a") else "untouched"
    baseline = await _hops_of_a_session_request(None, untouched, hops, redis_server.url)
    baseline = [hop.replace(f":{untouched}", f":{view}") for hop in baseline]  # the sync view's
    ours = await _hops_of_a_session_request(OURS, view, hops, redis_server.url)
    theirs = await _hops_of_a_session_request(DJANGOS, view, hops, redis_server.url)
    redis_server.flush()
    assert "run_in_executor" in baseline  # Django's own hops are seen
    assert ours == baseline
    assert len(theirs) == len(baseline) + 4  # 2 x (sync_to_async + run_in_executor)
    assert "sync_to_async:SessionMiddleware.process_request" in theirs
    assert "sync_to_async:SessionMiddleware.process_response" in theirs


async def test_an_engine_without_async_api_costs_one_hop(
    redis_server: ServerProcess, hops: list[str]
) -> None:
    """Django 4.2's signed-cookie engine: the response phase in a thread (Django's
    middleware: both phases); on 5.1+ the engine is async, and no hop is made.
    (A sync view: Django 4.2's engines cannot serve async views.)"""
    engine = "django.contrib.sessions.backends.signed_cookies"
    with site_settings(redis_server.url, MIDDLEWARE=[], SESSION_ENGINE=engine):
        _, baseline = await hops_of(ASGIHandler(), "/untouched/", hops)
    baseline = [hop.replace(":untouched", ":count") for hop in baseline]
    with site_settings(redis_server.url, SESSION_ENGINE=engine):
        _, ours = await hops_of(ASGIHandler(), "/count/", hops)
    if ASYNC_SESSION_API:
        assert ours == baseline
    else:
        assert len(ours) == len(baseline) + 2
        assert "sync_to_async:SessionMiddleware.process_response" in ours


def test_djangos_test_idiom_works(redis_server: ServerProcess) -> None:
    """Tests of other apps make a session with ``process_request`` and ``SessionStore``."""
    with site_settings(redis_server.url):
        middleware = SessionMiddleware(lambda request: HttpResponse())
        assert middleware.SessionStore is SessionStore
        request = RequestFactory().get("/")
        middleware.process_request(request)
        request.session["user"] = 7
        request.session.save()
        assert SessionStore(request.session.session_key).load() == {"user": 7}
    redis_server.flush()
