"""The cache seen from an async view, from a sync view, and from a health check.

``django.core.cache.cache`` is the "default" entry of settings.CACHES, here a
``django_asyncredis.RedisCache``. Its async methods (``aget``, ``aset``,
``aincr``, ...) talk to the server on the event loop itself, and its sync
methods (``get``, ``set``, ...) over a plain socket from the calling thread:
neither hops to another thread, unlike ``sync_to_async`` wrappers.

Every response carries ``X-Cache: hit`` or ``X-Cache: miss``: reload a page
and watch it change.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, JsonResponse

from django_asyncredis import aget_redis_connection

REPORT_TIMEOUT = 30  # seconds the async view's report stays cached


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


async def async_view(request: HttpRequest) -> JsonResponse:
    """``GET /``: a visit counter and a cached report, through the async API."""
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

    response = JsonResponse(
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

    response = JsonResponse({"view": "sync", "previous_visit": previous, "this_visit": now})
    response["X-Cache"] = "miss" if previous is None else "hit"
    return response


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
        return JsonResponse({"status": "error", "cache": info}, status=503)

    # Valkey reports itself as server_name=valkey; Redis has no server_name.
    name = server.get("server_name", "redis")
    info["server"] = f"{name} {server.get(f'{name}_version', server['redis_version'])}"
    return JsonResponse({"status": "ok", "cache": info})


def _without_password(location: str) -> str:
    """redis://user:secret@host:6379/0 -> redis://host:6379/0 (for one URL or several)."""
    urls = []
    for url in location.split(","):
        parts = urlsplit(url.strip())
        host = parts.netloc.rpartition("@")[2]  # drop user:password@
        urls.append(parts._replace(netloc=host).geturl())
    return ",".join(urls)
