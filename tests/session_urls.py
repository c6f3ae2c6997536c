"""Views for the end-to-end session tests (ROOT_URLCONF="tests.session_urls").

Sync views use the session's sync API, async views its async API; both count
visits in the session, so a test can mix them and see one session.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from django_asyncredis.sessions import SessionStore


def _state(request: HttpRequest, visits: int) -> JsonResponse:
    return JsonResponse({"visits": visits, "key": request.session.session_key})


def count(request: HttpRequest) -> JsonResponse:
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    return _state(request, visits)


async def acount(request: HttpRequest) -> JsonResponse:
    visits = await request.session.aget("visits", 0) + 1
    await request.session.aset("visits", visits)
    return _state(request, visits)


async def alook(request: HttpRequest) -> JsonResponse:
    """Reads without writing: the middleware must not save."""
    return _state(request, await request.session.aget("visits", 0))


async def acycle(request: HttpRequest) -> JsonResponse:
    """What login does: a new key for the same data."""
    await request.session.acycle_key()
    return _state(request, await request.session.aget("visits", 0))


async def aflush(request: HttpRequest) -> JsonResponse:
    """What logout does."""
    await request.session.aflush()
    return _state(request, 0)


def vanish(request: HttpRequest) -> JsonResponse:
    """A concurrent logout: the session is deleted while this request modifies it."""
    visits = request.session.get("visits", 0) + 1
    SessionStore().delete(request.session.session_key)
    request.session["visits"] = visits
    return _state(request, visits)


urlpatterns = [
    path("count/", count),
    path("acount/", acount),
    path("alook/", alook),
    path("acycle/", acycle),
    path("aflush/", aflush),
    path("vanish/", vanish),
]
