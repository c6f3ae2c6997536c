"""``cache_page`` for async and sync views, and Vary decorators that accept both.

Django's ``cache_page`` is built with ``decorator_from_middleware_with_args``: on
Django 4.2 it cannot wrap an async view at all, and on 5.x it calls the sync
cache API from the event loop. Ours wraps an async view in an async function
that awaits our ``CacheMiddleware``'s async hooks (``cache.aget``/``cache.aset``,
no thread with ``django_asyncredis.RedisCache``), and a sync view in a sync one.

Django's ``vary_on_headers``/``vary_on_cookie`` accept async views from Django
5.0 on; on 4.2 they return a sync wrapper that breaks on a coroutine. They are
re-exported where they work, and replaced by equivalents where they do not, so
``from django_asyncredis.decorators import cache_page, vary_on_cookie`` works
on every supported Django.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.views.decorators import vary as django_vary

from django_asyncredis.middleware import CacheMiddleware

__all__ = ["cache_page", "vary_on_cookie", "vary_on_headers"]

View = TypeVar("View", bound=Callable[..., Any])


def cache_page(
    timeout: float | None, *, cache: str | None = None, key_prefix: str | None = None
) -> Callable[[View], View]:
    """Serve the view's page from the cache, and cache it, like Django's ``cache_page``.

    ``timeout`` (seconds) takes precedence over the response's max-age; ``cache``
    is the alias (default: "default", as Django, not CACHE_MIDDLEWARE_ALIAS);
    ``key_prefix`` separates cache areas (default: ""). The key also covers the
    request headers named in the response's Vary header, so put ``vary_on_*``
    decorators *below* ``cache_page``.
    """

    def decorator(view: View) -> View:
        middleware = CacheMiddleware(
            view, page_timeout=timeout, cache_alias=cache, key_prefix=key_prefix
        )
        if iscoroutinefunction(view):

            async def async_view(
                request: HttpRequest, *args: Any, **kwargs: Any
            ) -> HttpResponseBase:
                cached = await middleware.aprocess_request(request)
                if cached is not None:
                    return cached
                response = await view(request, *args, **kwargs)
                return await middleware.aprocess_response(request, response)

            return functools.wraps(view)(async_view)  # type: ignore[return-value]

        def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            cached = middleware.process_request(request)
            if cached is not None:
                return cached
            response = view(request, *args, **kwargs)
            if inspect.iscoroutine(response):
                response.close()
                raise TypeError(
                    f"{view!r} is a sync function that returned a coroutine; cache_page "
                    "needs the async view itself: decorate the view from as_view() or "
                    "the async handler method, not dispatch()."
                )
            return middleware.process_response(request, response)

        return functools.wraps(view)(sync_view)  # type: ignore[return-value]

    return decorator


def _vary_on_headers(*headers: str) -> Callable[[View], View]:
    """Add ``headers`` to the response's Vary header; the view may be async or sync."""

    def decorator(view: View) -> View:
        if iscoroutinefunction(view):

            async def async_view(
                request: HttpRequest, *args: Any, **kwargs: Any
            ) -> HttpResponseBase:
                response: HttpResponseBase = await view(request, *args, **kwargs)
                patch_vary_headers(response, headers)
                return response

            return functools.wraps(view)(async_view)  # type: ignore[return-value]

        def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            response: HttpResponseBase = view(request, *args, **kwargs)
            patch_vary_headers(response, headers)
            return response

        return functools.wraps(view)(sync_view)  # type: ignore[return-value]

    return decorator


def _django_vary_accepts_async_views() -> bool:
    """Whether Django's ``vary_on_headers`` keeps an async view async (Django >= 5.0)."""

    async def probe(request: HttpRequest) -> HttpResponseBase:
        raise NotImplementedError

    return iscoroutinefunction(django_vary.vary_on_headers("Cookie")(probe))


vary_on_headers: Callable[..., Callable[[View], View]]
vary_on_cookie: Callable[[View], View]

if _django_vary_accepts_async_views():
    vary_on_headers = django_vary.vary_on_headers
    vary_on_cookie = django_vary.vary_on_cookie
else:
    vary_on_headers = _vary_on_headers
    vary_on_cookie = _vary_on_headers("Cookie")
