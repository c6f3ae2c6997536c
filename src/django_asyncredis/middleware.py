"""Django's page-cache and session middleware, natively async.

``SessionMiddleware`` is documented in its own module (``_session_middleware``)
and docs/sessions.md; the rest of this docstring is about the page cache.

``UpdateCacheMiddleware``, ``FetchFromCacheMiddleware`` and ``CacheMiddleware``
behave like the classes of ``django.middleware.cache`` (same settings, same rules
for what is cached and for how long, same keys), with one difference: in an
async middleware chain Django's classes run their whole request and response
phases in a thread (``MiddlewareMixin`` wraps them in ``sync_to_async``),
because they call the sync cache API. Ours await ``cache.aget``/``cache.aset``
instead: with ``django_asyncredis.RedisCache`` a cached or uncached page costs no
thread at all. In a sync chain they use the sync API, with no event loop.

Every Django cache backend works as ``CACHE_MIDDLEWARE_ALIAS``; for Django's own
backends the ``a``-methods hop to a thread themselves, which is no worse than
Django's middleware.

Rules, as in Django 6.1 (applied on Django 4.2 to 6.0 too, where Django's own
are older and laxer, or match Cache-Control directives as substrings):

- only GET and HEAD requests are looked up; only 200 responses are stored
  (200 and 304 get Expires/Cache-Control headers);
- never stored: streaming responses, ``Cache-Control`` private, no-cache or
  no-store (directive names, matched whole), ``max-age=0``, ``Vary: *``, and
  responses setting a cookie while varying on Cookie;
- the timeout is the page timeout (``cache_page``), else the response's
  max-age, else ``CACHE_MIDDLEWARE_SECONDS``;
- a request with an Authorization header makes the response vary on it unless
  it is ``Cache-Control: public``;
- a hit gets an ``Age`` header.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import (
    get_cache_key,
    get_max_age,
    learn_cache_key,
    patch_response_headers,
    patch_vary_headers,
)

from django_asyncredis._http_cache import aget_cache_key, alearn_cache_key
from django_asyncredis._session_middleware import SessionMiddleware

__all__ = [
    "CacheMiddleware",
    "FetchFromCacheMiddleware",
    "SessionMiddleware",
    "UpdateCacheMiddleware",
]

GetResponse = Callable[[HttpRequest], Any]  # returns a response, or an awaitable of one

#: The request attribute through which the fetch half tells the update half
#: whether to store the response. Django's name, so that either half can be
#: combined with the other half of Django's middleware.
_UPDATE_FLAG = "_cache_update_cache"

_UNCACHEABLE_DIRECTIVES = frozenset({"private", "no-cache", "no-store"})


class _PageCacheMiddleware:
    """Sync or async depending on the chain, like ``MiddlewareMixin``, minus its threads.

    Django hands a middleware an async ``get_response`` in an async chain; the
    instance then marks itself as a coroutine function, so Django awaits it, and
    runs the async hooks (``aprocess_request``/``aprocess_response``) on the
    event loop. In a sync chain it runs the sync hooks.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        if get_response is None:
            raise ValueError("get_response must be provided.")
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        self.key_prefix: str = settings.CACHE_MIDDLEWARE_KEY_PREFIX
        self.cache_alias: str = settings.CACHE_MIDDLEWARE_ALIAS

    def __repr__(self) -> str:
        name = getattr(self.get_response, "__qualname__", type(self.get_response).__name__)
        return f"<{type(self).__qualname__} get_response={name}>"

    @property
    def cache(self) -> BaseCache:
        """Looked up per use: under ASGI Django gives each request its own backend instance."""
        return caches[self.cache_alias]

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        response = self.process_request(request)
        if response is None:
            response = self.get_response(request)
        return self.process_response(request, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.aprocess_request(request)
        if response is None:
            response = await self.get_response(request)
        return await self.aprocess_response(request, response)

    def process_request(self, request: HttpRequest) -> HttpResponseBase | None:
        return None

    async def aprocess_request(self, request: HttpRequest) -> HttpResponseBase | None:
        return None

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        return response

    async def aprocess_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        return response


class UpdateCacheMiddleware(_PageCacheMiddleware):
    """Stores cacheable responses; first in MIDDLEWARE, so its response phase runs last."""

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.cache_timeout: float = settings.CACHE_MIDDLEWARE_SECONDS
        self.page_timeout: float | None = None

    def _should_update_cache(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        return bool(getattr(request, _UPDATE_FLAG, False))

    def _storage_timeout(self, request: HttpRequest, response: HttpResponseBase) -> float | None:
        """Apply the caching rules to ``response`` and patch its headers.

        Return how long to store it, or None if it must not be stored. Shared by
        both paths: only the cache calls differ between them.
        """
        if not self._should_update_cache(request, response):
            return None
        if response.streaming or response.status_code not in (200, 304):
            return None
        # A user-specific (maybe security sensitive) cookie must never be replayed.
        if response.cookies and _varies_on(response, "Cookie"):
            return None
        cache_control = _directive_names(response.get("Cache-Control", ""))
        if cache_control & _UNCACHEABLE_DIRECTIVES:
            return None
        if _varies_on(response, "*"):
            return None
        timeout = self.page_timeout
        if timeout is None:
            timeout = get_max_age(response)
            if timeout is None:
                timeout = self.cache_timeout
            elif timeout == 0:
                return None
        patch_response_headers(response, timeout)  # type: ignore[arg-type]  # any number works
        # RFC 9111, section 3.5: a shared cache may reuse a response to an
        # authenticated request only if it is marked public.
        if request.headers.get("Authorization") and "public" not in cache_control:
            patch_vary_headers(response, ("Authorization",))
        if timeout and response.status_code == 200:
            return timeout
        return None

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        timeout = self._storage_timeout(request, response)
        if timeout is not None:
            cache = self.cache
            key = learn_cache_key(request, response, timeout, self.key_prefix, cache=cache)
            _store(cache, key, response, timeout)
        return response

    async def aprocess_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        timeout = self._storage_timeout(request, response)
        if timeout is not None:
            cache = self.cache
            key = await alearn_cache_key(request, response, timeout, self.key_prefix, cache=cache)
            if not _renders_later(response):
                await cache.aset(key, response, timeout)
            else:
                _store(cache, key, response, timeout)
        return response


class FetchFromCacheMiddleware(_PageCacheMiddleware):
    """Serves cached pages; last in MIDDLEWARE, so it sees the request as the view would."""

    def process_request(self, request: HttpRequest) -> HttpResponseBase | None:
        if request.method not in ("GET", "HEAD"):
            setattr(request, _UPDATE_FLAG, False)
            return None
        cache = self.cache
        response = None
        key = get_cache_key(request, self.key_prefix, "GET", cache=cache)
        if key is not None:
            response = cache.get(key)
            if response is None and request.method == "HEAD":
                key = get_cache_key(request, self.key_prefix, "HEAD", cache=cache)
                if key is not None:
                    response = cache.get(key)
        return _hit_or_miss(request, response)

    async def aprocess_request(self, request: HttpRequest) -> HttpResponseBase | None:
        if request.method not in ("GET", "HEAD"):
            setattr(request, _UPDATE_FLAG, False)
            return None
        cache = self.cache
        response = None
        key = await aget_cache_key(request, self.key_prefix, "GET", cache=cache)
        if key is not None:
            response = await cache.aget(key)
            if response is None and request.method == "HEAD":
                key = await aget_cache_key(request, self.key_prefix, "HEAD", cache=cache)
                if key is not None:
                    response = await cache.aget(key)
        return _hit_or_miss(request, response)


class CacheMiddleware(UpdateCacheMiddleware, FetchFromCacheMiddleware):
    """Both halves in one, for simple sites and for ``cache_page``.

    As Django's: ``key_prefix`` and ``cache_alias``, when given (even as None,
    which means "" and "default"), replace the CACHE_MIDDLEWARE_* settings.
    """

    def __init__(
        self,
        get_response: GetResponse,
        cache_timeout: float | None = None,
        page_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(get_response)
        if "key_prefix" in kwargs:
            self.key_prefix = kwargs["key_prefix"] or ""
        if "cache_alias" in kwargs:
            self.cache_alias = kwargs["cache_alias"] or "default"
        if cache_timeout is not None:
            self.cache_timeout = cache_timeout
        self.page_timeout = page_timeout


def _renders_later(response: HttpResponseBase) -> bool:
    """A TemplateResponse not rendered yet: its content exists only after ``render()``.

    Only ``cache_page`` sees one (Django renders before the middleware response
    phase). Django renders it after the view returns, in a thread under ASGI.
    """
    return callable(getattr(response, "render", None)) and not getattr(
        response, "is_rendered", True
    )


def _store(cache: BaseCache, key: str, response: HttpResponseBase, timeout: float) -> None:
    """Store with the sync API, now or once the response is rendered.

    The post-render callback runs wherever Django renders: in a worker thread
    under ASGI, where the sync API is the one that may be used.
    """
    if _renders_later(response):
        response.add_post_render_callback(  # type: ignore[attr-defined]
            lambda rendered: cache.set(key, rendered, timeout)
        )
    else:
        cache.set(key, response, timeout)


def _directive_names(cache_control: str) -> set[str]:
    """The directive names of a Cache-Control value, lowercased, without their values.

    ``private="Set-Cookie"`` is ``private`` (RFC 9111 allows qualified forms); a
    name is matched whole, so an extension such as ``x-no-store-hint`` or a value
    such as ``ext="public"`` is not mistaken for a directive (Django 6.1's rule,
    applied on every version).
    """
    return {part.split("=", 1)[0].strip().lower() for part in cache_control.split(",")}


def _varies_on(response: HttpResponseBase, header: str) -> bool:
    """Whether the response's Vary header names ``header`` (case-insensitively)."""
    names = response.get("Vary", "").split(",")
    return header.lower() in {name.strip().lower() for name in names}


def _http_date_seconds(value: str) -> int | None:
    """An HTTP date (any of its three formats) as a Unix time; None if it is not one."""
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # asctime format, and "-0000": both mean UTC in HTTP
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp())


def _hit_or_miss(
    request: HttpRequest, response: HttpResponseBase | None
) -> HttpResponseBase | None:
    """Flag a miss for the update half; give a hit its Age (seconds since it was stored)."""
    if response is None:
        setattr(request, _UPDATE_FLAG, True)
        return None
    max_age = get_max_age(response)
    expires = _http_date_seconds(response.get("Expires", ""))
    if max_age is not None and expires is not None:
        # Never negative, should the clock have been turned back.
        response["Age"] = max(0, max_age - (expires - int(time.time())))
    setattr(request, _UPDATE_FLAG, False)
    return response
