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

``cached`` memoises a function or an async function in the cache, with the
stampede protection of ``get_or_set`` (docs/stampede.md).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import pickle
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction
from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.views.decorators import vary as django_vary

from django_asyncredis.middleware import CacheMiddleware

__all__ = ["cache_page", "cached", "vary_on_cookie", "vary_on_headers"]

View = TypeVar("View", bound=Callable[..., Any])
Function = TypeVar("Function", bound=Callable[..., Any])

#: The pickle protocol of argument digests: fixed, so keys do not change with
#: the Python version's default protocol.
_KEY_PICKLE_PROTOCOL = 4


def cached(
    timeout: Any = DEFAULT_TIMEOUT,
    *,
    key: str | Callable[..., Any] | None = None,
    stale: float | bool | None = None,
    xfetch: float | bool | None = None,
    lock: float | bool | None = None,
    cache: str = "default",
    version: int | None = None,
) -> Callable[[Function], Function]:
    """Cache a function's (or an async function's) result per arguments, with
    ``get_or_set``'s stampede protection: concurrent misses run it once.

    ``timeout``: seconds (default: the cache's TIMEOUT). ``key``: None, the key
    is ``cached:<module>.<qualname>:<digest of the arguments>``; a str replaces
    ``<module>.<qualname>``; a callable gets the function's arguments and returns
    the whole key. The digest is SHA-256 of the pickled ``(args, kwargs)``
    (protocol 4, keyword arguments sorted by name): stable across processes and
    restarts, unlike ``hash()``; arguments must be picklable; arguments that are
    equal but pickle differently (1 and 1.0, dicts built in another order) are
    different keys. ``stale``, ``xfetch``, ``lock``: as ``get_or_set`` (None:
    the alias's OPTIONS). ``cache``: the CACHES alias.
    """
    options: dict[str, Any] = {
        name: value
        for name, value in (("stale", stale), ("xfetch", xfetch), ("lock", lock))
        if value is not None
    }

    def decorator(function: Function) -> Function:
        name = key if isinstance(key, str) else f"{function.__module__}.{function.__qualname__}"

        def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if callable(key):
                return key(*args, **kwargs)
            return f"cached:{name}:{arguments_digest(args, kwargs)}"

        if iscoroutinefunction(function):

            async def async_cached(*args: Any, **kwargs: Any) -> Any:
                return await caches[cache].aget_or_set(
                    key_of(args, kwargs),
                    lambda: function(*args, **kwargs),
                    timeout,
                    version=version,
                    **options,
                )

            return functools.wraps(function)(async_cached)  # type: ignore[return-value]

        def sync_cached(*args: Any, **kwargs: Any) -> Any:
            return caches[cache].get_or_set(
                key_of(args, kwargs),
                lambda: function(*args, **kwargs),
                timeout,
                version=version,
                **options,
            )

        return functools.wraps(function)(sync_cached)  # type: ignore[return-value]

    return decorator


def arguments_digest(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """A stable hex digest of a call's arguments (``cached``'s keys)."""
    try:
        data = pickle.dumps((args, sorted(kwargs.items())), protocol=_KEY_PICKLE_PROTOCOL)
    except Exception as exc:
        raise TypeError(
            f"@cached needs picklable arguments to make a key ({exc}); pass key= a "
            "function of the arguments that returns the key."
        ) from exc
    return hashlib.sha256(data).hexdigest()


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
