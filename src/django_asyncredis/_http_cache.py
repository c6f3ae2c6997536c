"""Async twins of ``django.utils.cache.get_cache_key`` and ``learn_cache_key``.

Django's two functions read and write the cache with the sync API, so an async
middleware calling them would either block the event loop or need a thread. The
twins here await ``cache.aget``/``cache.aset`` instead and otherwise build the
keys with Django's own helpers (``_generate_cache_header_key``,
``_generate_cache_key``, which add the i18n/time-zone suffix): a page cached by
Django's ``CacheMiddleware`` is found by ours and vice versa, on every supported
Django version, including its rule for absent request headers.

Only the Vary-to-header-list step of ``learn_cache_key`` is not a separate helper
in Django, so it is written again in ``vary_header_list``; the tests compare it
with Django's function.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.http import HttpRequest
from django.http.response import HttpResponseBase

# Private helpers, not in django-stubs; the same signatures from Django 4.2 to 5.2.
from django.utils.cache import (  # type: ignore[attr-defined]
    _generate_cache_header_key,
    _generate_cache_key,
    cc_delim_re,
)


def vary_header_list(response: HttpResponseBase) -> list[str]:
    """The ``request.META`` names that the response's Vary header makes part of the key.

    As Django: sorted, and without Accept-Language when USE_I18N is on (the key
    already ends with the active language, so it would only split one page into
    copies per raw header value).
    """
    if not response.has_header("Vary"):
        return []
    skip_accept_language = settings.USE_I18N
    names = []
    for header in cc_delim_re.split(response.headers["Vary"]):
        name = header.upper().replace("-", "_")
        if name != "ACCEPT_LANGUAGE" or not skip_accept_language:
            names.append("HTTP_" + name)
    names.sort()
    return names


async def aget_cache_key(
    request: HttpRequest,
    key_prefix: str | None = None,
    method: str = "GET",
    cache: BaseCache | None = None,
) -> str | None:
    """The page key for ``request``, or None if no response for its URL was learnt yet.

    Like Django's ``get_cache_key``: the header list stored by ``alearn_cache_key``
    (or Django's ``learn_cache_key``) says which request headers the key uses.
    """
    if key_prefix is None:
        key_prefix = settings.CACHE_MIDDLEWARE_KEY_PREFIX
    if cache is None:
        cache = caches[settings.CACHE_MIDDLEWARE_ALIAS]
    header_key: str = _generate_cache_header_key(key_prefix, request)
    headerlist = await cache.aget(header_key)
    if headerlist is None:
        return None
    page_key: str = _generate_cache_key(request, method, headerlist, key_prefix)
    return page_key


async def alearn_cache_key(
    request: HttpRequest,
    response: HttpResponseBase,
    cache_timeout: float | None = None,
    key_prefix: str | None = None,
    cache: BaseCache | None = None,
) -> str:
    """Store which headers the URL's responses vary on; return the page key to store under.

    Like Django's ``learn_cache_key``: the header list lives in the same cache as
    the pages, so an evicted list only costs one rebuilt response.
    """
    if key_prefix is None:
        key_prefix = settings.CACHE_MIDDLEWARE_KEY_PREFIX
    if cache_timeout is None:
        cache_timeout = settings.CACHE_MIDDLEWARE_SECONDS
    if cache is None:
        cache = caches[settings.CACHE_MIDDLEWARE_ALIAS]
    headerlist = vary_header_list(response)
    await cache.aset(_generate_cache_header_key(key_prefix, request), headerlist, cache_timeout)
    page_key: str = _generate_cache_key(request, request.method, headerlist, key_prefix)
    return page_key
