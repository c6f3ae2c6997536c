"""Async twins of ``django.utils.cache.get_cache_key`` and ``learn_cache_key``.

Django's two functions read and write the cache with the sync API, so an async
middleware calling them would either block the event loop or need a thread. The
twins here await ``cache.aget``/``cache.aset`` instead, and leave everything
else to Django's two public functions themselves: each is called with a
``_KeyRecorder`` as its ``cache`` argument, a stand-in that answers or records
the one cache call the function makes, without I/O. The keys, the Vary-header
parsing and the i18n/time-zone suffix are therefore Django's own on every
supported version (Django 6.1 changed how the page key hashes the header
values): a page cached by Django's ``CacheMiddleware`` is found by ours and vice
versa, with no private Django name involved.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import get_cache_key, learn_cache_key


class _KeyRecorder(BaseCache):
    """The cache Django's key functions talk to: a header list to answer, a record of what they ask.

    ``get_cache_key`` makes one ``get`` (the header-list key) and ``learn_cache_key``
    one ``set`` (the header-list key, the list, the timeout). Any other call is
    ``BaseCache``'s NotImplementedError: loud, should a Django version start making
    one.
    """

    def __init__(self, headerlist: list[str] | None = None) -> None:
        super().__init__({})
        self.headerlist = headerlist
        self.key: str | None = None
        self.timeout: Any = None

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        self.key = key
        return self.headerlist

    def set(
        self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        self.key = key
        self.headerlist = value
        self.timeout = timeout


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
    if cache is None:
        cache = caches[settings.CACHE_MIDDLEWARE_ALIAS]
    probe = _KeyRecorder()
    get_cache_key(request, key_prefix, method, cache=probe)  # records the header-list key
    assert probe.key is not None
    headerlist = await cache.aget(probe.key)
    if headerlist is None:
        return None
    page_key: str | None = get_cache_key(
        request, key_prefix, method, cache=_KeyRecorder(headerlist)
    )
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
    if cache is None:
        cache = caches[settings.CACHE_MIDDLEWARE_ALIAS]
    recorder = _KeyRecorder()
    page_key: str = learn_cache_key(request, response, cache_timeout, key_prefix, cache=recorder)
    assert recorder.key is not None
    await cache.aset(recorder.key, recorder.headerlist, recorder.timeout)
    return page_key
