"""The cache seen from async and sync views, as a page cache, and as a session store.

``django.core.cache.cache`` is the "default" entry of settings.CACHES, here a
``django_asyncredis.RedisCache``. Its async methods (``aget``, ``aset``,
``aincr``, ...) talk to the server on the event loop itself, and its sync
methods (``get``, ``set``, ...) over a plain socket from the calling thread:
neither hops to another thread, unlike ``sync_to_async`` wrappers.

The site-wide page cache (settings.MIDDLEWARE) stores every GET page for 30 s
unless the view says otherwise, so the views that show live data send
never-cache headers (``_live``). /site-cache and /cache-page are the cached pages:
a page served from the cache has an ``Age`` header, and the same ``rendered_at``
and ``X-Rendered-At`` as the response that was stored.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache, caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join

from django_asyncredis import aget_redis_connection
from django_asyncredis.decorators import cache_page, vary_on_cookie
from django_asyncredis.prometheus import CONTENT_TYPE, prometheus_text

REPORT_TIMEOUT = 30  # seconds the async view's report stays cached
PAGE_TIMEOUT = 10  # seconds /cache-page stays cached (the site-wide default is 30)

ENDPOINTS = {
    "/": "This page: what each endpoint shows.",
    "/async": "An async view: a visit counter (aadd + aincr) and a report cached for "
    "30 s (aget_or_set).",
    "/sync": "A sync view: the time of the previous visit (cache.get / cache.set).",
    "/site-cache": "A page stored for 30 s by the site-wide page-cache middleware.",
    "/cache-page": "An async view under @cache_page(10) and @vary_on_cookie: a page per visitor.",
    "/session": "Your own visit counter, in a session stored in the cache.",
    "/health": "The cache server (password hidden), the round trip of one aget, and each "
    "cache's stats in this process (calls, hits, misses, errors).",
    "/metrics": "The same stats in Prometheus's text format.",
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _live(data: dict[str, Any], status: int = 200) -> JsonResponse:
    """A JSON response the page cache must not store: it shows live data.

    ``add_never_cache_headers`` is what Django's ``@never_cache`` does; called
    here because that decorator rejects async views on Django 4.2.
    """
    response = JsonResponse(data, status=status)
    add_never_cache_headers(response)  # Cache-Control: max-age=0, no-cache, no-store, ...
    return response


async def index(request: HttpRequest) -> HttpResponse:
    """``GET /``: a small HTML page linking each endpoint, with what it shows (the
    other endpoints answer JSON)."""
    items = format_html_join(
        "\n",
        '<li><a href="{}"><code>{}</code></a>: {}</li>',
        ((path, path, what) for path, what in ENDPOINTS.items() if path != "/"),
    )
    page = format_html(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>django-asyncredis demo</title></head>\n<body>\n"
        "<h1>django-asyncredis demo</h1>\n"
        "<p>Every endpoint below uses one cache, <code>django_asyncredis.RedisCache</code>, "
        "and answers JSON.</p>\n<ul>\n{}\n</ul>\n</body></html>\n",
        items,
    )
    response = HttpResponse(page)
    add_never_cache_headers(response)
    return response


async def async_view(request: HttpRequest) -> JsonResponse:
    """``GET /async``: a visit counter and a cached report, through the async API."""
    # A counter shared by every request, worker and process: aadd creates the key
    # only if it is missing (SET NX), then aincr is one atomic INCR on the server,
    # so concurrent requests never lose an update. timeout=None: no expiry.
    await cache.aadd("visits", 0, timeout=None)
    visits = await cache.aincr("visits")

    # Read-through caching: aget_or_set returns the cached value if there is one,
    # else calls build_report, stores its result for REPORT_TIMEOUT seconds and
    # returns it. build_report runs only on a miss, and synchronously: keep it
    # quick. (For awaitable work: aget, then await the work, then aset.)
    computed = False

    def build_report() -> dict[str, Any]:
        nonlocal computed
        computed = True
        return {"computed_at": _now(), "cached_for_s": REPORT_TIMEOUT}

    report = await cache.aget_or_set("report", build_report, timeout=REPORT_TIMEOUT)

    response = _live(
        {
            "view": "async",
            "visits": visits,
            "report": report,
            # attl is an extension to Django's API (as in django-redis): seconds left.
            "report_expires_in_s": await cache.attl("report"),
        }
    )
    response["X-Cache"] = "miss" if computed else "hit"
    return response


def sync_view(request: HttpRequest) -> JsonResponse:
    """``GET /sync``: the time of the previous visit, through the sync API."""
    # Under ASGI, Django runs a sync view in a worker thread. The sync API works
    # there as in any WSGI project or management command: same cache, same keys.
    previous = cache.get("sync:last_visit")
    now = _now()
    cache.set("sync:last_visit", now, timeout=None)

    response = _live({"view": "sync", "previous_visit": previous, "this_visit": now})
    response["X-Cache"] = "miss" if previous is None else "hit"
    return response


async def site_cached(request: HttpRequest) -> JsonResponse:
    """``GET /site-cache``: no caching code at all; the middleware stores the page.

    Rendered once, then served from the cache for CACHE_MIDDLEWARE_SECONDS without
    reaching this view: reload and ``rendered_at`` stays, while ``Age`` grows.
    """
    rendered_at = _now()
    response = JsonResponse({"view": "site-cache", "rendered_at": rendered_at})
    response["X-Rendered-At"] = rendered_at
    return response


# cache_page works as Django's, on async views too, without a thread: the page is
# looked up and stored with cache.aget / cache.aset. The cache key covers the
# request headers the response varies on, so vary_on_cookie goes *below*
# cache_page: each visitor (each session cookie) gets a page of their own, and
# nobody is shown another's visit count. (SessionMiddleware adds Vary: Cookie
# too, but only after cache_page has stored the page.)
#
# The site-wide middleware wraps this view as well and stores its page under the
# same key (the same cache alias and key prefix), so either one serves the next
# request: here cache_page sets this page's timeout, 10 s instead of 30. In a
# project without the site-wide cache, cache_page alone caches the view.
@cache_page(PAGE_TIMEOUT, cache="pages")
@vary_on_cookie
async def cache_page_view(request: HttpRequest) -> JsonResponse:
    """``GET /cache-page``: a per-visitor page, rendered at most every 10 s."""
    rendered_at = _now()
    response = JsonResponse(
        {
            "view": "cache-page",
            "rendered_at": rendered_at,
            "your_session_visits": await request.session.aget("visits", 0),
        }
    )
    response["X-Rendered-At"] = rendered_at
    return response


async def session_view(request: HttpRequest) -> JsonResponse:
    """``GET /session``: how often *you* came here, kept in your session."""
    # SESSION_ENGINE = "django_asyncredis.sessions": aget loads the session with
    # one cache.aget on the event loop. aset only changes it in memory; at the end
    # of the request SessionMiddleware saves it (one SET, awaited on the event
    # loop) and, for a new session, sets the session cookie. A client without the
    # cookie starts over at 1.
    visits = await request.session.aget("visits", 0) + 1
    await request.session.aset("visits", visits)
    return _live({"view": "session", "your_visits": visits})


async def health(request: HttpRequest) -> JsonResponse:
    """``GET /health``: which server the cache uses, and the round trip of one aget."""
    info: dict[str, Any] = {
        "backend": settings.CACHES["default"]["BACKEND"],
        "location": _without_password(settings.CACHES["default"]["LOCATION"]),
    }
    try:
        started = time.perf_counter()
        await cache.aget("health:probe")  # a miss is fine: we time the round trip
        info["aget_latency_ms"] = round((time.perf_counter() - started) * 1000, 3)

        # For what the cache API does not cover, a redis.asyncio client on the
        # cache's own connection pool (see docs/migration.md).
        client = await aget_redis_connection()
        server = await client.info("server")
    except Exception as exc:  # server down, wrong address, wrong password, ...
        info["error"] = f"{type(exc).__name__}: {exc}"
        return _live({"status": "error", "cache": info}, status=503)

    # Valkey reports itself as server_name=valkey; Redis has no server_name.
    name = server.get("server_name", "redis")
    info["server"] = f"{name} {server.get(f'{name}_version', server['redis_version'])}"
    # cache.stats: this process's counters for the alias, shared by every request
    # (see docs/observability.md). as_dict() also has a latency histogram per call.
    stats = {alias: caches[alias].stats.as_dict() for alias in settings.CACHES}  # type: ignore[attr-defined]
    return _live({"status": "ok", "cache": info, "stats": stats})


async def metrics(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: the stats of every cache in Prometheus's text format."""
    response = HttpResponse(prometheus_text(), content_type=CONTENT_TYPE)
    add_never_cache_headers(response)
    return response


def _without_password(location: str) -> str:
    """redis://user:secret@host:6379/0 -> redis://host:6379/0 (for one URL or several)."""
    urls = []
    for url in location.split(","):
        parts = urlsplit(url.strip())
        host = parts.netloc.rpartition("@")[2]  # drop user:password@
        urls.append(parts._replace(netloc=host).geturl())
    return ",".join(urls)
