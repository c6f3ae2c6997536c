"""Views for the end-to-end session tests (ROOT_URLCONF="tests.session_urls").

Sync views use the session's sync API, async views (named "a" + the sync
view's name) its async API; both count visits in the session, so a test can
mix them and see one session.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
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


def look(request: HttpRequest) -> JsonResponse:
    """Reads without writing: the middleware must not save."""
    return _state(request, request.session.get("visits", 0))


async def alook(request: HttpRequest) -> JsonResponse:
    """Reads without writing: the middleware must not save."""
    return _state(request, await request.session.aget("visits", 0))


def untouched(request: HttpRequest) -> HttpResponse:
    """Never touches the session: it is neither loaded nor saved."""
    return HttpResponse(b"untouched")


async def auntouched(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"untouched")


def expire(request: HttpRequest) -> JsonResponse:
    """``set_expiry(?seconds)``, then counts."""
    request.session.set_expiry(int(request.GET["seconds"]))
    return count(request)


async def aexpire(request: HttpRequest) -> JsonResponse:
    await request.session.aset_expiry(int(request.GET["seconds"]))
    return await acount(request)


def fail(request: HttpRequest) -> HttpResponse:
    """Modifies the session, then answers 500: nothing may be saved."""
    request.session["visits"] = 99
    return HttpResponse(b"failed", status=500)


async def afail(request: HttpRequest) -> HttpResponse:
    await request.session.aset("visits", 99)
    return HttpResponse(b"failed", status=500)


def flush(request: HttpRequest) -> JsonResponse:
    """What logout does."""
    request.session.flush()
    return _state(request, 0)


async def acycle(request: HttpRequest) -> JsonResponse:
    """What login does: a new key for the same data."""
    await request.session.acycle_key()
    return _state(request, await request.session.aget("visits", 0))


async def aflush(request: HttpRequest) -> JsonResponse:
    """What logout does."""
    await request.session.aflush()
    return _state(request, 0)


async def ablocking(request: HttpRequest) -> JsonResponse:
    """An async view using the session's sync API (it blocks the loop, but works)."""
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    return _state(request, visits)


def vanish(request: HttpRequest) -> JsonResponse:
    """A concurrent logout: the session is deleted while this request modifies it."""
    visits = request.session.get("visits", 0) + 1
    SessionStore().delete(request.session.session_key)
    request.session["visits"] = visits
    return _state(request, visits)


async def avanish(request: HttpRequest) -> JsonResponse:
    visits = await request.session.aget("visits", 0) + 1
    await SessionStore().adelete(request.session.session_key)
    await request.session.aset("visits", visits)
    return _state(request, visits)


urlpatterns = [
    path("count/", count),
    path("acount/", acount),
    path("look/", look),
    path("alook/", alook),
    path("untouched/", untouched),
    path("auntouched/", auntouched),
    path("expire/", expire),
    path("aexpire/", aexpire),
    path("fail/", fail),
    path("afail/", afail),
    path("acycle/", acycle),
    path("flush/", flush),
    path("aflush/", aflush),
    path("ablocking/", ablocking),
    path("vanish/", vanish),
    path("avanish/", avanish),
]
