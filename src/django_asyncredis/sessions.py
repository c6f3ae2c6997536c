"""A session engine on this cache: ``SESSION_ENGINE = "django_asyncredis.sessions"``.

It is Django's cache engine (``django.contrib.sessions.backends.cache``),
subclassed, on the cache alias ``SESSION_CACHE_ALIAS``, with the same keys
(``"django.contrib.sessions.cache" + session_key``, then the cache's KEY_PREFIX
and VERSION), so a site can switch between the two engines without logging
anyone out. What it changes:

- The async session API (``aload``, ``asave``, ``aget``, ``acycle_key``, ...)
  runs natively on the cache's async API, never in a thread. Django 5.1+
  defines that API on ``SessionBase``; on older Django (4.2) this module
  provides it, so async views can ``await request.session.aget(...)`` there too.
- Every write is one atomic command: creating is SET NX, which is both the
  collision check and the write (no EXISTS round trip first); saving is SET XX,
  so a session deleted meanwhile (a logout in a concurrent request) raises
  ``UpdateError`` instead of being brought back, with no window between a check
  and the write.
- Loading does not swallow server errors: Django's engine turns any exception
  into an empty session, so an outage silently logs everyone out. Here the error
  propagates, unless the session cache alias sets ``ignore_exceptions`` (then an
  unreachable server reads as an empty session, Django's behaviour).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import django
from django.conf import settings
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.contrib.sessions.backends.cache import KEY_PREFIX
from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore
from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import get_random_string

from django_asyncredis import _operations as ops
from django_asyncredis.cache import RedisCache
from django_asyncredis.errors import CorruptValueError

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_keys, dict_values
    from datetime import datetime, timedelta

__all__ = ["KEY_PREFIX", "SessionStore"]

logger = logging.getLogger(__name__)

#: How many fresh keys ``create`` tries. Keys are 32 random characters (165
#: bits), so a second SET NX failure means the server stores nothing (an
#: unreachable server under ``ignore_exceptions``), not bad luck: Django's
#: 10000 attempts would then be 10000 timeouts.
CREATE_ATTEMPTS = 3

#: The longest session key accepted from a cookie: the longest any Django engine
#: issues (the database engine's ``session_key`` column is 40 characters).
MAX_SESSION_KEY_LENGTH = 40

_NOT_GIVEN: Any = object()


class SessionStore(CacheSessionStore):
    """Django's cache session store on a ``django_asyncredis.RedisCache``, async-native."""

    _cache: RedisCache
    cache_key_prefix: str
    _session_cache: dict[str, Any]  # Django's: set once the session is loaded

    if TYPE_CHECKING:  # Django's, absent from django-stubs

        def _get_session(self, no_load: bool = False) -> dict[str, Any]: ...

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        if not isinstance(self._cache, RedisCache):
            raise ImproperlyConfigured(
                f"SESSION_ENGINE 'django_asyncredis.sessions' needs the cache alias "
                f"SESSION_CACHE_ALIAS={settings.SESSION_CACHE_ALIAS!r} to be a "
                f"django_asyncredis.RedisCache, not {type(self._cache).__qualname__}; "
                f"use 'django.contrib.sessions.backends.cache' for other caches."
            )

    def _validate_session_key(self, key: str | None) -> bool:
        """Refuse a cookie value no session engine could have issued (Django's own
        rule is only "8 characters or more").

        Such a value would reach the cache as a key: one too long or with spaces or
        control characters makes Django's key check warn, which anyone could then
        trigger at will. A refused key reads as no session, as an unknown one does.
        """
        return (
            key is not None
            and 8 <= len(key) <= MAX_SESSION_KEY_LENGTH
            and key.isascii()
            and key.isalnum()
        )

    # Reading.

    def load(self) -> dict[str, Any]:
        try:
            data = self._cache._sync.run(_read_on_primary(self._cache, self.cache_key))
        except CorruptValueError as exc:
            _log_corrupt(exc)
            data = None
        return self._loaded(data)

    async def aload(self) -> dict[str, Any]:
        try:
            data = await self._cache._async.run(
                _read_on_primary(self._cache, await self.acache_key())
            )
        except CorruptValueError as exc:
            _log_corrupt(exc)
            data = None
        return self._loaded(data)

    def _loaded(self, data: Any) -> dict[str, Any]:
        """The stored session, or an empty one that forgets its key.

        Forgetting the key means saving creates a session under a fresh key, never
        under one the client chose (a session fixation attempt) or one that expired.
        Undecodable data (a changed serializer, a foreign writer) is such a miss too:
        the only way out for the user short of deleting their cookie.
        """
        if isinstance(data, dict):
            return data
        if data is not None:
            logger.warning("Session data of an unexpected type was discarded: %s.", type(data))
        self._session_key = None
        return {}

    # Writing.

    def create(self) -> None:
        for _ in range(CREATE_ATTEMPTS):
            # No exists() check: the SET NX in save(must_create=True) is the check.
            self._session_key = get_random_string(32, VALID_KEY_CHARS)
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError(_CREATE_FAILED)

    async def acreate(self) -> None:
        for _ in range(CREATE_ATTEMPTS):
            self._session_key = get_random_string(32, VALID_KEY_CHARS)
            try:
                await self.asave(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError(_CREATE_FAILED)

    def save(self, must_create: bool = False) -> None:
        """Create the session (``must_create``: SET NX, else ``CreateError``) or
        update it (SET XX, else ``UpdateError``), expiring with the session."""
        if self.session_key is None:
            self.create()
            return
        key = self.cache_key  # before loading, which forgets the key of a vanished session
        data = self._get_session(no_load=must_create)
        stored = self._cache.set(
            key, data, self.get_expiry_age(), nx=must_create, xx=not must_create
        )
        _check_stored(stored, must_create)

    async def asave(self, must_create: bool = False) -> None:
        if self.session_key is None:
            await self.acreate()
            return
        key = await self.acache_key()
        data = await self._aget_session(no_load=must_create)
        stored = await self._cache.aset(
            key, data, await self.aget_expiry_age(), nx=must_create, xx=not must_create
        )
        _check_stored(stored, must_create)

    # exists, delete, clear_expired and, on Django 5.1+, every other async method
    # are Django's: they only call the methods above or the cache's async API.

    if django.VERSION < (5, 1):
        # Django 4.2 and 5.0 have no async session API: here it is, with Django
        # 5.1's names and behaviour. Once ``_aget_session`` has loaded the session,
        # Django's sync methods touch no storage, so most of these load and then
        # call them.

        async def acache_key(self) -> str:
            return self.cache_key_prefix + await self._aget_or_create_session_key()

        async def _aget_session(self, no_load: bool = False) -> dict[str, Any]:
            if not no_load and not hasattr(self, "_session_cache") and self.session_key:
                self._session_cache = await self.aload()
            return self._get_session(no_load=no_load)

        async def _aget_or_create_session_key(self) -> str:
            key = self._session_key
            if key is None:
                key = self._session_key = await self._aget_new_session_key()
            return key

        async def _aget_new_session_key(self) -> str:
            while True:
                session_key = get_random_string(32, VALID_KEY_CHARS)
                if not await self.aexists(session_key):
                    return session_key

        async def aexists(self, session_key: str) -> bool:
            if not session_key:
                return False
            return await self._cache.ahas_key(self.cache_key_prefix + session_key)

        async def adelete(self, session_key: str | None = None) -> None:
            if session_key is None:
                if self.session_key is None:
                    return
                session_key = self.session_key
            await self._cache.adelete(self.cache_key_prefix + session_key)

        @classmethod
        async def aclear_expired(cls) -> None:
            """Nothing to do: the server expires sessions itself."""

        async def aget(self, key: str, default: Any = None) -> Any:
            await self._aget_session()
            return self.get(key, default)

        async def aset(self, key: str, value: Any) -> None:
            await self._aget_session()
            self[key] = value

        async def apop(self, key: str, default: Any = _NOT_GIVEN) -> Any:
            await self._aget_session()
            return self.pop(key) if default is _NOT_GIVEN else self.pop(key, default)

        async def asetdefault(self, key: str, value: Any) -> Any:
            await self._aget_session()
            return self.setdefault(key, value)

        async def aupdate(self, dict_: Any) -> None:
            await self._aget_session()
            self.update(dict_)

        async def ahas_key(self, key: Any) -> bool:
            await self._aget_session()
            return self.has_key(key)

        async def akeys(self) -> dict_keys[str, Any]:
            return (await self._aget_session()).keys()

        async def avalues(self) -> dict_values[str, Any]:
            return (await self._aget_session()).values()

        async def aitems(self) -> dict_items[str, Any]:
            return (await self._aget_session()).items()

        async def aset_test_cookie(self) -> None:
            await self._aget_session()
            self.set_test_cookie()

        async def atest_cookie_worked(self) -> bool:
            await self._aget_session()
            return self.test_cookie_worked()

        async def adelete_test_cookie(self) -> None:
            await self._aget_session()
            self.delete_test_cookie()

        async def aget_expiry_age(self, **kwargs: Any) -> int:
            if "expiry" not in kwargs:  # given, it spares loading the session
                await self._aget_session()
            return self.get_expiry_age(**kwargs)

        async def aget_expiry_date(self, **kwargs: Any) -> datetime:
            if "expiry" not in kwargs:
                await self._aget_session()
            return self.get_expiry_date(**kwargs)

        async def aset_expiry(self, value: datetime | timedelta | int | None) -> None:
            await self._aget_session()
            self.set_expiry(value)

        async def aget_expire_at_browser_close(self) -> bool:
            await self._aget_session()
            return self.get_expire_at_browser_close()

        async def aflush(self) -> None:
            self.clear()
            await self.adelete()
            self._session_key = None

        async def acycle_key(self) -> None:
            data = await self._aget_session()
            key = self.session_key
            await self.acreate()
            self._session_cache = data
            if key:
                await self.adelete(key)


_CREATE_FAILED = (
    f"No new session could be stored in {CREATE_ATTEMPTS} attempts: "
    "the session cache is likely unavailable."
)


def _log_corrupt(exc: CorruptValueError) -> None:
    # Not the message: it names the cache key, which holds the session key.
    logger.warning("Undecodable session data was discarded (%s).", type(exc.__cause__).__name__)


def _check_stored(stored: bool | None, must_create: bool) -> None:
    if stored:
        return
    if must_create:
        raise CreateError
    raise UpdateError


def _read_on_primary(cache: RedisCache, key: str) -> ops.Operation[Any]:
    """The session as the primary has it, never a replica: a load decides the next
    save, and a lagging replica would hand back (and so restore) an older session,
    or none (forgetting a session just created)."""
    return ops.get_from_primary(cache._codec, cache.make_and_validate_key(key), None)
