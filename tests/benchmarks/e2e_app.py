"""The end-to-end benchmark's ASGI app: Django, settings in code, one URL per backend.

Started by ``e2e.py`` as ``uvicorn tests.benchmarks.e2e_app:app`` with
BENCH_REDIS_URL set. Each ``/<name>/`` view is what an async view that uses a
cache does: three ``aget`` and one ``aset`` of 100 B values, one after the
other, through ``django.core.cache.caches`` (so, under ASGI, a backend instance
per request, as in a project). ``/raw/`` does the same on a module-level
``redis.asyncio`` client (pickle included); ``/nocache/`` only answers. A view
that reads anything but the stored value answers 500, which the load generator
counts as an error.
"""

from __future__ import annotations

import itertools
import os
import pickle
from typing import Any

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

from tests.benchmarks import contenders as c
from tests.benchmarks.e2e import NO_CACHE, PATHS, RAW_VIEW

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
VALUE = c.VALUES[100]
PICKLED = c.PICKLED[100]
KEYS = c.names(100)
COUNT = len(KEYS)
BODY = b"ok"

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    CACHES=c.caches_setting(URL),
    USE_TZ=True,
    SECRET_KEY="benchmarks-only",
    LOGGING_CONFIG=None,
)
django.setup()

from django.core.cache import caches  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402

_counter = itertools.count()


def _response(ok: bool) -> HttpResponse:
    response = HttpResponse(BODY if ok else b"wrong value", status=200 if ok else 500)
    response["Content-Length"] = str(len(response.content))
    return response


def cached_view(name: str) -> Any:
    alias = c.ALIASES[name]

    async def view(request: HttpRequest) -> HttpResponse:
        cache = caches[alias]
        n = next(_counter)
        first = await cache.aget(KEYS[n % COUNT])
        second = await cache.aget(KEYS[(n + 1) % COUNT])
        third = await cache.aget(KEYS[(n + 2) % COUNT])
        await cache.aset(KEYS[(n + 3) % COUNT], VALUE)
        return _response(first == VALUE and second == VALUE and third == VALUE)

    return view


_raw_client: Any = None


async def raw_view(request: HttpRequest) -> HttpResponse:
    """What a project without a cache backend would write: a global client."""
    global _raw_client
    if _raw_client is None:
        import redis.asyncio

        _raw_client = redis.asyncio.Redis.from_url(URL)
    client = _raw_client
    loads = pickle.loads
    n = next(_counter)
    first = loads(await client.get(c.raw_key(KEYS[n % COUNT])))
    second = loads(await client.get(c.raw_key(KEYS[(n + 1) % COUNT])))
    third = loads(await client.get(c.raw_key(KEYS[(n + 2) % COUNT])))
    await client.set(c.raw_key(KEYS[(n + 3) % COUNT]), PICKLED, ex=c.TIMEOUT)
    return _response(first == VALUE and second == VALUE and third == VALUE)


async def no_cache_view(request: HttpRequest) -> HttpResponse:
    return _response(True)


urlpatterns = [
    *(path(PATHS[name].lstrip("/"), cached_view(name)) for name in c.ALIASES),
    path(PATHS[RAW_VIEW].lstrip("/"), raw_view),
    path(PATHS[NO_CACHE].lstrip("/"), no_cache_view),
]

app = ASGIHandler()
