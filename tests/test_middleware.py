"""The page-cache middleware and ``cache_page``, through Django's sync and async stacks.

Most tests run twice: with Django's test ``Client`` (a sync middleware chain and
sync views) and with its ``AsyncClient`` (an async chain and async views). The
views are in tests/middleware_urls.py; each counts its calls, so a page served
from the cache is one the view was not called for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.conf import global_settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.utils.cache import get_cache_key, learn_cache_key

from django_asyncredis import RedisCache
from django_asyncredis._http_cache import aget_cache_key, alearn_cache_key
from django_asyncredis.decorators import cache_page, vary_on_cookie, vary_on_headers
from django_asyncredis.middleware import (
    CacheMiddleware,
    FetchFromCacheMiddleware,
    UpdateCacheMiddleware,
)
from tests.middleware_urls import CALLS, VIEWS
from tests.thread_hops import asgi_get, hops_of

OURS_PAIR = [
    "django_asyncredis.middleware.UpdateCacheMiddleware",
    "django_asyncredis.middleware.FetchFromCacheMiddleware",
]
OURS_SINGLE = ["django_asyncredis.middleware.CacheMiddleware"]
DJANGO_PAIR = [
    "django.middleware.cache.UpdateCacheMiddleware",
    "django.middleware.cache.FetchFromCacheMiddleware",
]
LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "middleware"}


def site_settings(server_url: str, middleware: list[str], **overrides: Any) -> override_settings:
    """The test site: our backend as "default" and as "other" (KEY_PREFIX other)."""
    options: dict[str, Any] = {
        "ROOT_URLCONF": "tests.middleware_urls",
        "ALLOWED_HOSTS": ["testserver"],
        "MIDDLEWARE": middleware,
        "CACHES": {
            "default": {"BACKEND": "django_asyncredis.RedisCache", "LOCATION": server_url},
            "other": {
                "BACKEND": "django_asyncredis.RedisCache",
                "LOCATION": server_url,
                "KEY_PREFIX": "other",
            },
        },
        "CACHE_MIDDLEWARE_ALIAS": "default",
        "CACHE_MIDDLEWARE_SECONDS": 60,
        "CACHE_MIDDLEWARE_KEY_PREFIX": "",
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "loaders": [
                        ("django.template.loaders.locmem.Loader", {"page.html": "template {{ n }}"})
                    ]
                },
            }
        ],
    }
    options.update(overrides)
    return override_settings(**options)


class Page:
    """A response with its body read, whichever client and response type."""

    def __init__(self, response: Any, body: bytes) -> None:
        self.response = response
        self.status = response.status_code
        self.body = body

    def __getitem__(self, header: str) -> str:
        return self.response[header]  # type: ignore[no-any-return]

    def __contains__(self, header: str) -> bool:
        return self.response.has_header(header)  # type: ignore[no-any-return]


class Site:
    """The site under ``site_settings``, browsed with the client of one mode.

    ``use()`` switches settings (and takes a new client, since a client loads
    the middleware once); ``get("page")`` requests /<mode>/page/.
    """

    def __init__(
        self, mode: str, server_url: str, runner: asyncio.Runner | None, urls: str | None = None
    ) -> None:
        self.mode = mode
        self.urls = urls or mode
        self._server_url = server_url
        self._runner = runner
        self._override: override_settings | None = None
        self._client: Any = None

    def use(self, middleware: list[str], **overrides: Any) -> Site:
        self.close()
        self._override = site_settings(self._server_url, middleware, **overrides)
        self._override.enable()
        self._client = AsyncClient() if self.mode == "async" else Client()
        return self

    def set_cookie(self, name: str, value: str) -> None:
        self._client.cookies[name] = value

    def close(self) -> None:
        if self._override is not None:
            self._override.disable()
            self._override = None

    def path(self, name: str, query: str = "") -> str:
        return f"/{self.urls}/{name}/" + (f"?{query}" if query else "")

    def get(self, name: str, query: str = "", **headers: str) -> Page:
        return self.request("get", self.path(name, query), headers)

    def head(self, name: str, query: str = "", **headers: str) -> Page:
        return self.request("head", self.path(name, query), headers)

    def post(self, name: str, query: str = "", **headers: str) -> Page:
        return self.request("post", self.path(name, query), headers)

    def request(self, method: str, path: str, headers: dict[str, str]) -> Page:
        headers = {name.replace("_", "-"): value for name, value in headers.items()}
        call = getattr(self._client, method)
        if self._runner is None:
            response = call(path, headers=headers)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            return Page(response, body)
        return self._runner.run(self._arequest(call, path, headers))

    @staticmethod
    async def _arequest(call: Any, path: str, headers: dict[str, str]) -> Page:
        response = await call(path, headers=headers)
        if response.streaming:
            return Page(response, b"".join([chunk async for chunk in response.streaming_content]))
        return Page(response, response.content)


@pytest.fixture(autouse=True)
def _fresh(redis_server: Any) -> Iterator[None]:
    CALLS.clear()
    yield
    redis_server.flush()


@pytest.fixture(params=["sync", "async"])
def site(request: pytest.FixtureRequest, redis_server: Any) -> Iterator[Site]:
    """The site browsed through the sync stack, then through the async stack."""
    if request.param == "sync":
        site = Site("sync", redis_server.url, None)
        try:
            yield site
        finally:
            site.close()
        return
    with asyncio.Runner() as runner:
        site = Site("async", redis_server.url, runner)
        try:
            yield site
        finally:
            site.close()


def page_keys(raw: Any) -> list[bytes]:
    return sorted(raw.keys("*cache_page*"))


# Hits and misses


@pytest.mark.parametrize("middleware", [OURS_PAIR, OURS_SINGLE], ids=["pair", "single"])
def test_second_request_is_served_from_the_cache(site: Site, middleware: list[str]) -> None:
    site.use(middleware)
    first = site.get("page")
    second = site.get("page")
    assert first.body == second.body == b"page 1 GET"
    assert CALLS["page"] == 1
    assert first["Cache-Control"] == "max-age=60"
    assert "Expires" in first
    assert "Age" not in first
    assert second["Age"] in {"0", "1"}


def test_query_strings_are_different_pages(site: Site) -> None:
    site.use(OURS_PAIR)
    assert site.get("page", "x-q=1").body == b"page 1 GET"
    assert site.get("page", "x-q=2").body == b"page 2 GET"
    assert site.get("page", "x-q=1").body == b"page 1 GET"
    assert site.get("page", "x-q=2").body == b"page 2 GET"
    assert CALLS["page"] == 2


def test_key_prefix_separates_pages(site: Site, raw: Any) -> None:
    site.use(OURS_PAIR, CACHE_MIDDLEWARE_KEY_PREFIX="one")
    site.get("page")
    assert page_keys(raw)
    assert all(b".cache_page.one.GET." in key for key in page_keys(raw))
    site.use(OURS_PAIR, CACHE_MIDDLEWARE_KEY_PREFIX="two")
    assert site.get("page").body == b"page 2 GET"
    site.use(OURS_PAIR, CACHE_MIDDLEWARE_KEY_PREFIX="one")
    assert site.get("page").body == b"page 1 GET"


def test_timeout_is_the_max_age_of_the_response(site: Site, raw: Any) -> None:
    site.use(OURS_PAIR)
    site.get("page", "Cache-Control=max-age%3D5")
    (key,) = page_keys(raw)
    assert 0 < raw.ttl(key) <= 5
    raw.flushdb()
    site.get("page")
    (key,) = page_keys(raw)
    assert 55 < raw.ttl(key) <= 60  # CACHE_MIDDLEWARE_SECONDS


def test_other_django_backends_work_as_the_alias(site: Site) -> None:
    """Any backend: Django's own a-methods hop to a thread, ours do not; both work."""
    site.use(OURS_PAIR, CACHES={"default": LOCMEM})
    assert site.get("page").body == site.get("page").body == b"page 1 GET"
    assert CALLS["page"] == 1


def test_template_responses_are_cached(site: Site) -> None:
    """Django renders them before the middleware's response phase: stored at once."""
    site.use(OURS_PAIR)
    assert site.get("template").body == site.get("template").body == b"template 1"


# Vary


def test_pages_vary_on_the_headers_in_vary(site: Site) -> None:
    site.use(OURS_PAIR)
    assert site.get("varied", X_Variant="a").body == b"varied 1 variant=a"
    assert site.get("varied", X_Variant="b").body == b"varied 2 variant=b"
    assert site.get("varied", X_Variant="a").body == b"varied 1 variant=a"
    assert site.get("varied").body == b"varied 3 variant=-"
    assert site.get("varied", X_Variant="b").body == b"varied 2 variant=b"
    assert CALLS["varied"] == 3


def test_authorization_makes_the_page_vary_on_it(site: Site) -> None:
    site.use(OURS_PAIR)
    first = site.get("page", Authorization="Bearer a")
    assert "Authorization" in first["Vary"]
    assert site.get("page", Authorization="Bearer b").body == b"page 2 GET"
    assert site.get("page", Authorization="Bearer a").body == b"page 1 GET"


def test_public_page_is_shared_across_authorizations(site: Site) -> None:
    site.use(OURS_PAIR)
    first = site.get("page", "Cache-Control=public", Authorization="Bearer a")
    assert "Vary" not in first
    assert site.get("page", "Cache-Control=public", Authorization="Bearer b").body == first.body


def test_public_as_a_directive_value_does_not_share_an_authorized_page(site: Site) -> None:
    """Only a ``public`` directive shares it: ``ext="public"`` is another directive's value."""
    site.use(OURS_PAIR)
    query = "Cache-Control=max-age%3D60%2C+ext%3D%22public%22"
    first = site.get("page", query, Authorization="Bearer a")
    assert "Authorization" in first["Vary"]
    assert site.get("page", query, Authorization="Bearer b").body == b"page 2 GET"


def test_directive_names_are_matched_whole(site: Site) -> None:
    """An extension directive that merely contains "no-store" does not stop caching."""
    site.use(OURS_PAIR)
    query = "Cache-Control=max-age%3D60%2C+x-no-store-hint"
    assert site.get("page", query).body == site.get("page", query).body == b"page 1 GET"


# What is never cached


@pytest.mark.parametrize(
    "query",
    [
        "Cache-Control=private",
        "Cache-Control=Private%2C+max-age%3D60",
        "Cache-Control=no-cache",
        "Cache-Control=no-store",
        "Cache-Control=private%3D%22Set-Cookie%22%2C+max-age%3D60",
        "Cache-Control=max-age%3D0",
        "Vary=*",
        "cookie=abc&Vary=Cookie",
        "status=201",
        "status=301",
        "status=404",
    ],
)
def test_uncacheable_responses_are_not_stored(site: Site, raw: Any, query: str) -> None:
    site.use(OURS_PAIR)
    assert site.get("page", query).body == b"page 1 GET"
    assert site.get("page", query).body == b"page 2 GET"
    assert raw.keys("*views.decorators.cache*") == []


def test_cookie_without_vary_cookie_is_cached_as_django_does(site: Site) -> None:
    site.use(OURS_PAIR)
    assert site.get("page", "cookie=abc").body == site.get("page", "cookie=abc").body
    assert CALLS["page"] == 1


def test_not_modified_gets_cache_headers_but_is_not_stored(site: Site, raw: Any) -> None:
    site.use(OURS_PAIR)
    first = site.get("page", "status=304")
    assert first.status == 304
    assert first["Cache-Control"] == "max-age=60"
    site.get("page", "status=304")
    assert CALLS["page"] == 2
    assert page_keys(raw) == []


def test_post_is_neither_served_nor_stored(site: Site) -> None:
    site.use(OURS_PAIR)
    assert site.get("page").body == b"page 1 GET"
    assert site.post("page").body == b"page 2 POST"
    assert site.post("page").body == b"page 3 POST"
    assert site.get("page").body == b"page 1 GET"


def test_head_is_served_from_the_get_page(site: Site) -> None:
    site.use(OURS_PAIR)
    site.get("page")
    head = site.head("page")
    assert head.status == 200
    assert head.body == b""
    assert head["Cache-Control"] == "max-age=60"
    assert CALLS["page"] == 1


def test_head_alone_is_cached_under_its_own_key(site: Site) -> None:
    site.use(OURS_PAIR)
    site.head("page")
    site.head("page")
    assert CALLS["page"] == 1
    assert site.get("page").body == b"page 2 GET"  # a HEAD page never answers a GET


def test_streaming_responses_are_never_cached_nor_broken(site: Site, raw: Any) -> None:
    site.use(OURS_PAIR)
    first = site.get("stream")
    second = site.get("stream")
    assert first.response.streaming
    assert first.body == b"chunk-1 stream 1"
    assert second.body == b"chunk-1 stream 2"
    assert raw.keys("*views.decorators.cache*") == []


# cache_page and the vary decorators


def test_cache_page(site: Site) -> None:
    site.use([])
    first = site.get("cached")
    assert site.get("cached").body == first.body == b"cached 1 GET"
    assert first["Cache-Control"] == "max-age=60"
    assert site.post("cached").body == b"cached 2 POST"


def test_cache_page_on_class_based_views(site: Site) -> None:
    """``cache_page(60)(View.as_view())``: an async view class gives an async view."""
    site.use([])
    assert site.get("cbv").body == site.get("cbv").body == b"cbv 1 GET"


def test_cache_page_refuses_a_sync_view_returning_a_coroutine() -> None:
    """An async class-based view's ``dispatch`` is a sync method returning a coroutine:
    decorated with ``method_decorator(..., name="dispatch")`` it fails clearly."""

    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    def dispatch(request: HttpRequest) -> Any:
        return handler(request)

    request = RequestFactory().post("/")
    with pytest.raises(TypeError, match="returned a coroutine"):
        cache_page(60)(dispatch)(request)


def test_cache_page_keeps_each_view_kind() -> None:
    sync_view, async_view = VIEWS["cached"]
    assert iscoroutinefunction(async_view)
    assert not iscoroutinefunction(sync_view)
    assert async_view.__name__ == "async_view"


def test_cache_page_timeout_wins_over_max_age(site: Site, raw: Any) -> None:
    site.use([])
    site.get("cached", "Cache-Control=max-age%3D5")
    (key,) = page_keys(raw)
    assert 55 < raw.ttl(key) <= 60


def test_cache_page_without_timeout_uses_max_age(site: Site, raw: Any) -> None:
    """Else CACHE_MIDDLEWARE_SECONDS as it was when the view was decorated (as Django):
    the default, since tests/middleware_urls.py is imported outside override_settings."""
    site.use([])
    site.get("cached-max-age", "Cache-Control=max-age%3D5")
    (key,) = page_keys(raw)
    assert 0 < raw.ttl(key) <= 5
    raw.flushdb()
    site.get("cached-max-age")
    (key,) = page_keys(raw)
    default = global_settings.CACHE_MIDDLEWARE_SECONDS
    assert default - 5 < raw.ttl(key) <= default


def test_cache_page_key_prefix_and_alias(site: Site, raw: Any) -> None:
    """``key_prefix`` goes into the key; ``cache`` picks the alias (here KEY_PREFIX "other")."""
    site.use([], CACHE_MIDDLEWARE_KEY_PREFIX="ignored", CACHE_MIDDLEWARE_ALIAS="ignored")
    assert site.get("cached-prefix").body == site.get("cached-prefix").body
    assert all(b".cache_page.site2.GET." in key for key in page_keys(raw))
    raw.flushdb()
    assert site.get("cached-other").body == site.get("cached-other").body
    assert page_keys(raw)
    assert all(key.startswith(b"other:1:views.") for key in page_keys(raw))
    assert CALLS["cached-prefix"] == CALLS["cached-other"] == 1


def test_cache_page_with_vary_on_cookie(site: Site) -> None:
    site.use([])
    site.set_cookie("user", "a")
    assert site.get("cached-cookie").body == b"cached-cookie 1 user=a variant=-"
    site.set_cookie("user", "b")
    assert site.get("cached-cookie").body == b"cached-cookie 2 user=b variant=-"
    site.set_cookie("user", "a")
    page = site.get("cached-cookie")
    assert page.body == b"cached-cookie 1 user=a variant=-"
    assert page["Vary"] == "Cookie"


def test_cache_page_with_vary_on_headers(site: Site) -> None:
    site.use([])
    assert site.get("cached-headers", X_Variant="1").body.endswith(b"variant=1")
    assert site.get("cached-headers", X_Variant="2").body.endswith(b"variant=2")
    assert site.get("cached-headers", X_Variant="1").body == b"cached-headers 1 user=- variant=1"
    assert CALLS["cached-headers"] == 2


def test_cache_page_stores_a_template_response_once_rendered(site: Site) -> None:
    site.use([])
    assert site.get("cached-template").body == b"template 1"
    assert site.get("cached-template").body == b"template 1"
    assert CALLS["cached-template"] == 1


def test_vary_decorators_keep_async_views_async() -> None:
    async def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    assert iscoroutinefunction(vary_on_headers("X-Variant")(view))
    assert iscoroutinefunction(vary_on_cookie(view))


async def test_vary_decorators_patch_async_responses() -> None:
    async def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    request = RequestFactory().get("/")
    assert (await vary_on_headers("X-A", "X-B")(view)(request))["Vary"] == "X-A, X-B"
    assert (await vary_on_cookie(view)(request))["Vary"] == "Cookie"


# Each chain uses its own cache API


def test_each_chain_uses_only_its_own_cache_api(site: Site, monkeypatch: Any) -> None:
    """The async chain never calls the sync API of our backend (which would block the
    loop), and the sync chain never the async one."""

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("wrong API for this chain")

    names = ("get", "set", "get_many", "set_many", "add", "delete")
    for name in names:
        monkeypatch.setattr(RedisCache, name if site.mode == "async" else "a" + name, forbidden)
    site.use(OURS_PAIR)
    assert site.get("page").body == site.get("page").body == b"page 1 GET"
    assert site.get("varied", X_Variant="a").body == site.get("varied", X_Variant="a").body
    assert site.get("template").body == site.get("template").body
    site.use([])
    assert site.get("cached").body == site.get("cached").body == b"cached 1 GET"
    assert CALLS == {"page": 1, "varied": 1, "template": 1, "cached": 1}


def test_middleware_takes_the_mode_of_the_chain() -> None:
    async def async_get_response(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    def sync_get_response(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    for cls in (UpdateCacheMiddleware, FetchFromCacheMiddleware, CacheMiddleware):
        assert cls.sync_capable
        assert cls.async_capable
        assert iscoroutinefunction(cls(async_get_response))
        assert not iscoroutinefunction(cls(sync_get_response))
    assert repr(CacheMiddleware(sync_get_response)) == (
        "<CacheMiddleware get_response=test_middleware_takes_the_mode_of_the_chain."
        "<locals>.sync_get_response>"
    )
    with pytest.raises(ValueError, match="get_response"):
        CacheMiddleware(None)  # type: ignore[arg-type]


def test_cache_middleware_options_as_django() -> None:
    """Given as None, key_prefix means "" and cache_alias "default"; absent, the settings."""

    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    with override_settings(CACHE_MIDDLEWARE_KEY_PREFIX="site", CACHE_MIDDLEWARE_ALIAS="other"):
        plain = CacheMiddleware(view)
        given = CacheMiddleware(view, cache_timeout=5, key_prefix=None, cache_alias=None)
    assert (plain.key_prefix, plain.cache_alias, plain.page_timeout) == ("site", "other", None)
    assert (given.key_prefix, given.cache_alias, given.cache_timeout) == ("", "default", 5)


# Compatibility with Django's own middleware


@pytest.mark.parametrize("use_i18n", [True, False])
async def test_keys_are_django_keys(cache: Any, use_i18n: bool) -> None:
    factory = RequestFactory()
    with override_settings(USE_I18N=use_i18n, ALLOWED_HOSTS=["testserver"]):
        for vary in (None, "Accept-Language, X-Variant", "cookie,accept-encoding"):
            request = factory.get("/path/?q=1", headers={"X-Variant": "v", "Accept-Language": "de"})
            response = HttpResponse()
            if vary:
                response["Vary"] = vary
            django_key = learn_cache_key(request, response, 60, "pre", cache=cache)
            django_headerlist = await cache.aget(
                next(k for k in await cache.akeys("*cache_header*"))
            )
            await cache.aclear()
            assert await alearn_cache_key(request, response, 60, "pre", cache=cache) == django_key
            (header_key,) = await cache.akeys("*cache_header*")
            assert await cache.aget(header_key) == django_headerlist
            for method in ("GET", "HEAD"):
                expected = get_cache_key(request, "pre", method, cache=cache)
                assert expected is not None
                assert await aget_cache_key(request, "pre", method, cache=cache) == expected
            await cache.aclear()
        assert await aget_cache_key(factory.get("/"), "pre", cache=cache) is None


@pytest.mark.parametrize("writer", ["django", "ours"])
def test_pages_are_shared_with_djangos_middleware(redis_server: Any, writer: str) -> None:
    """A page stored by Django's middleware (sync stack) is a hit for ours (async stack),
    and the other way round; with a Vary header, so the header lists must agree too."""
    with asyncio.Runner() as runner:
        ours = Site("async", redis_server.url, runner)
        django_site = Site("sync", redis_server.url, None, urls="async")  # the same URLs
        try:
            first, second = (ours, django_site) if writer == "ours" else (django_site, ours)
            first.use(OURS_PAIR if writer == "ours" else DJANGO_PAIR)
            stored = first.get("varied", X_Variant="a")
            first.close()
            second.use(DJANGO_PAIR if writer == "ours" else OURS_PAIR)
            assert second.get("varied", X_Variant="a").body == stored.body
            assert second.get("varied", X_Variant="b").body == b"varied 2 variant=b"
            assert CALLS["varied"] == 2
        finally:
            ours.close()
            django_site.close()


# The thread-hop proof


@pytest.mark.parametrize(
    ("middleware", "view"),
    [(OURS_PAIR, "page"), (OURS_SINGLE, "page"), ([], "cached")],
    ids=["pair", "single", "cache_page"],
)
async def test_a_cached_page_makes_no_thread_hop_under_asgi(
    redis_server: Any, raw: Any, hops: list[str], middleware: list[str], view: str
) -> None:
    """A page served under ASGI by our middleware (or ``cache_page``) makes zero thread
    hops of its own, on a miss (aget + aset) and on a hit (aget).

    Django's ASGI handler hops by itself on every request: it sends request_started
    to sync receivers (close_old_connections, ...) and calls ``response.close()``
    (request_finished: close_caches, ...) with ``sync_to_async``. So the hops of each
    request are compared with a baseline: the same async view, same app, without any
    cache; the lists must be identical, call for call. The last part runs Django's
    own CacheMiddleware on the same view and shows it adds hops (its sync cache calls
    run in a thread), so the counting does catch them.
    """
    with site_settings(redis_server.url, []):
        baseline_body, baseline = await hops_of(ASGIHandler(), "/async/page/?x-q=base", hops)
    assert baseline_body == b"page 1 GET"
    assert "run_in_executor" in baseline  # Django's own hops are seen
    CALLS.clear()

    with site_settings(redis_server.url, middleware):
        app = ASGIHandler()
        miss_body, miss = await hops_of(app, f"/async/{view}/", hops)
        assert raw.keys("*cache_page*")  # the page was stored in Redis
        hit_body, hit = await hops_of(app, f"/async/{view}/", hops)
    assert miss_body == hit_body == f"{view} 1 GET".encode()
    assert miss == baseline
    assert hit == baseline

    with site_settings(redis_server.url, DJANGO_PAIR):
        app = ASGIHandler()
        await hops_of(app, "/async/page/?x-q=django", hops)
        _, django_hit = await hops_of(app, "/async/page/?x-q=django", hops)
    assert len(django_hit) == len(baseline) + 4  # 2 x (sync_to_async + run_in_executor)
    assert "sync_to_async:FetchFromCacheMiddleware.process_request" in django_hit
    assert "sync_to_async:UpdateCacheMiddleware.process_response" in django_hit


async def test_asgi_caller_serves_streaming_pages(redis_server: Any) -> None:
    """The streaming page through the ASGI app with our middleware: intact, uncached."""
    with site_settings(redis_server.url, OURS_PAIR):
        app = ASGIHandler()
        assert await asgi_get(app, "/async/stream/") == (200, b"chunk-1 stream 1")
        assert await asgi_get(app, "/async/stream/") == (200, b"chunk-1 stream 2")
