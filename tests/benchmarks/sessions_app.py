"""The session benchmark's ASGI app: one Django, one middleware chain per variant.

Started by ``sessions.py`` as ``uvicorn tests.benchmarks.sessions_app:app``
with BENCH_REDIS_URL set. ``/<variant>/<view>/`` runs ``<view>`` behind the
session middleware of ``<variant>`` (see ``sessions.MIDDLEWARE``): every
variant is an ``ASGIHandler`` of its own, built with its own MIDDLEWARE, in one
process, so that they can be measured in alternating slices of one run. The
views:

- ``rw``: an async view that reads and writes the session (``aget`` then
  ``aset`` of a counter), so the middleware saves it;
- ``rw-sync``: the same as a sync view (run in a thread under ASGI);
- ``untouched``: an async view that never uses the session;
- ``/new/``: no middleware; creates a session and answers its key, for the load
  generator's cookies.

A view that finds no stored session (the counter missing) answers 500, which
the load generator counts as an error.
"""

from __future__ import annotations

import os
from typing import Any

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

from tests.benchmarks.sessions import MIDDLEWARE, NEW_PATH, VIEWS

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    CACHES={
        "default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
        "sessions": {
            "BACKEND": "django_asyncredis.RedisCache",
            "LOCATION": URL,
            "KEY_PREFIX": "bench-sessions",
        },
    },
    SESSION_ENGINE="django_asyncredis.sessions",
    SESSION_CACHE_ALIAS="sessions",
    USE_TZ=True,
    SECRET_KEY="benchmarks-only",
    LOGGING_CONFIG=None,
)
django.setup()

from django.core.handlers.asgi import ASGIHandler  # noqa: E402

from django_asyncredis.middleware import SessionMiddleware  # noqa: E402
from django_asyncredis.sessions import SessionStore  # noqa: E402


class PreloadingSessionMiddleware(SessionMiddleware):
    """The alternative measured against ours: the session read in the request phase.

    Reading it marks it accessed; that flag is reset, so that only a view that
    uses the session makes the response vary on Cookie, as with the lazy one.
    """

    async def __acall__(self, request: HttpRequest) -> Any:
        self.process_request(request)
        await request.session.akeys()
        request.session.accessed = False
        response = await self.get_response(request)
        return await self.aprocess_response(request, response)


def _response(body: bytes, status: int = 200) -> HttpResponse:
    response = HttpResponse(body, status=status)
    response["Content-Length"] = str(len(body))
    return response


async def rw(request: HttpRequest) -> HttpResponse:
    visits = await request.session.aget("visits")
    if visits is None:
        return _response(b"no session", 500)
    await request.session.aset("visits", visits + 1)
    return _response(b"ok")


def rw_sync(request: HttpRequest) -> HttpResponse:
    visits = request.session.get("visits")
    if visits is None:
        return _response(b"no session", 500)
    request.session["visits"] = visits + 1
    return _response(b"ok")


async def untouched(request: HttpRequest) -> HttpResponse:
    return _response(b"ok")


async def new(request: HttpRequest) -> HttpResponse:
    session = SessionStore()
    await session.aset("visits", 0)
    await session.asave()
    return _response((session.session_key or "").encode())


_VIEWS = {"rw": rw, "rw-sync": rw_sync, "untouched": untouched}
assert set(_VIEWS) == set(VIEWS.values())

urlpatterns = [
    path(NEW_PATH.lstrip("/"), new),
    *(
        path(f"{variant}/{view}/", _VIEWS[view], name=f"{variant}-{view}")
        for variant in MIDDLEWARE
        for view in _VIEWS
    ),
]


def _handler(middleware: list[str]) -> ASGIHandler:
    """An ASGI handler with its own middleware chain (read from settings at init)."""
    settings.MIDDLEWARE = middleware
    try:
        return ASGIHandler()
    finally:
        settings.MIDDLEWARE = []


_handlers = {variant: _handler(chain) for variant, chain in MIDDLEWARE.items()}
_bare = ASGIHandler()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Route ``/<variant>/...`` to that variant's handler, the rest to the bare one."""
    variant = scope.get("path", "/").split("/", 2)[1]
    await _handlers.get(variant, _bare)(scope, receive, send)
