"""Views and URLs for tests/test_middleware.py.

Every view exists twice, as ``/sync/<name>/`` (a sync view) and ``/async/<name>/``
(an async view), so each middleware chain is tested with the view type it is
meant for. Each call of a view is counted in ``CALLS[name]`` and the count is in
the body, so a test can tell a page served from the cache from a fresh one.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.views import View

from django_asyncredis.decorators import cache_page, vary_on_cookie, vary_on_headers

CALLS: collections.Counter[str] = collections.Counter()

Builder = Callable[[HttpRequest, str], HttpResponseBase]


def _count(name: str) -> int:
    CALLS[name] += 1
    return CALLS[name]


def page(request: HttpRequest, name: str) -> HttpResponse:
    """A plain page, shaped by the query string.

    ``?status=404`` sets the status, ``?cookie=1`` sets a cookie, and any other
    parameter becomes a response header (``?Cache-Control=private``).
    """
    response = HttpResponse(f"{name} {_count(name)} {request.method}")
    for header, value in request.GET.items():
        if header == "status":
            response.status_code = int(value)
        elif header == "cookie":
            response.set_cookie("session", value)
        else:
            response[header] = value
    return response


def varied(request: HttpRequest, name: str) -> HttpResponse:
    """A page that depends on the X-Variant request header, and says so in Vary."""
    variant = request.headers.get("X-Variant", "-")
    response = HttpResponse(f"{name} {_count(name)} variant={variant}")
    response["Vary"] = "X-Variant"
    return response


def personal(request: HttpRequest, name: str) -> HttpResponse:
    """A page that depends on a cookie (decorated with vary_on_* below)."""
    user = request.COOKIES.get("user", "-")
    return HttpResponse(
        f"{name} {_count(name)} user={user} variant={request.headers.get('X-Variant', '-')}"
    )


def template(request: HttpRequest, name: str) -> TemplateResponse:
    """A TemplateResponse, rendered by Django after the view (and cache_page) returns."""
    return TemplateResponse(request, "page.html", {"n": _count(name)})


def _sync_chunks(name: str) -> Iterator[bytes]:
    yield b"chunk-1 "
    yield f"{name} {_count(name)}".encode()


async def _async_chunks(name: str) -> AsyncIterator[bytes]:
    yield b"chunk-1 "
    yield f"{name} {_count(name)}".encode()


def sync_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_sync_chunks("stream"))


async def async_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(_async_chunks("stream"))


class SyncPageView(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return page(request, "cbv")


class AsyncPageView(View):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return page(request, "cbv")


def _views(builder: Builder, name: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def sync_view(request: HttpRequest) -> HttpResponseBase:
        return builder(request, name)

    async def async_view(request: HttpRequest) -> HttpResponseBase:
        return builder(request, name)

    return sync_view, async_view


def _decorated(
    builder: Builder, name: str, *decorators: Callable[[Any], Any]
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Both views of ``builder``, decorated bottom-up like stacked ``@`` lines."""
    views = _views(builder, name)
    decorated = []
    for view in views:
        for decorator in reversed(decorators):
            view = decorator(view)
        decorated.append(view)
    return decorated[0], decorated[1]


VIEWS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "page": _views(page, "page"),
    "varied": _views(varied, "varied"),
    "stream": (sync_stream, async_stream),
    "template": _views(template, "template"),
    # cache_page, on its own and with the options and decorators Django documents
    "cached": _decorated(page, "cached", cache_page(60)),
    "cached-max-age": _decorated(page, "cached-max-age", cache_page(None)),
    "cached-prefix": _decorated(page, "cached-prefix", cache_page(60, key_prefix="site2")),
    "cached-other": _decorated(page, "cached-other", cache_page(60, cache="other")),
    "cached-cookie": _decorated(personal, "cached-cookie", cache_page(60), vary_on_cookie),
    "cached-headers": _decorated(
        personal, "cached-headers", cache_page(60), vary_on_headers("X-Variant")
    ),
    "cached-template": _decorated(template, "cached-template", cache_page(60)),
    # class-based views, decorated as Django documents it for URLconfs
    "cbv": (cache_page(60)(SyncPageView.as_view()), cache_page(60)(AsyncPageView.as_view())),
}

urlpatterns: list[URLPattern] = []
for _name, (_sync_view, _async_view) in VIEWS.items():
    urlpatterns.append(path(f"sync/{_name}/", _sync_view))
    urlpatterns.append(path(f"async/{_name}/", _async_view))
