"""The cache Django gets for settings that do not parse, when the system checks report them.

Django's own cache checks (``django.core.checks.caches``, on 4.2 to 6.0) build
every cache in CACHES with ``caches[alias]`` and let whatever the backend raises
escape, so a backend that raised ImproperlyConfigured when built turned a plain
``manage.py check`` into a traceback before our check could report E001.

So, when our checks are registered (the app is installed), ``RedisCache(...)``
with a bad LOCATION or OPTIONS returns a ``MisconfiguredCache`` instead: building
it succeeds, Django's checks pass over it, ours reports E001 (``checks``), and
every call on it (each method and property of ``RedisCache``, sync or async,
and the attributes only a built cache has) raises that same ImproperlyConfigured:
the error is deferred to first use, never swallowed. Only ``close`` and
``aclose`` are quiet: Django calls them at the end of every request, and this
cache opened nothing. Without the app nothing would
report the error before first use, so building the cache still raises then.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NoReturn

from django.core.cache.backends.base import BaseCache
from django.core.exceptions import ImproperlyConfigured

from django_asyncredis.cache import RedisCache

#: The app whose ready() registers the checks that report these errors.
_APP = "django_asyncredis"
#: What stays callable: Django calls these at the end of every request.
_QUIET = frozenset({"close", "aclose"})


def reported_by_checks() -> bool:
    """True when ``manage.py check`` reports bad settings itself (E001): the app is
    installed and loaded, so its ready() has registered the checks."""
    from django.apps import apps

    return apps.ready and apps.is_installed(_APP)


class SettingsError(ImproperlyConfigured, AttributeError):
    """The settings error, raised for an attribute a built cache would have (``_sync``,
    ``_config``...: what the sessions engine, ``get_redis_connection`` and the
    command read). An AttributeError too, so that ``hasattr`` and ``getattr(cache,
    name, default)``, which Sentry and the debug toolbar use to mark a cache they
    patched, still answer "not there" instead of failing."""


class MisconfiguredCache(RedisCache):
    """A cache whose LOCATION or OPTIONS are wrong: every call raises the
    ImproperlyConfigured that says what is wrong (the methods are set below)."""

    _error: ImproperlyConfigured

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        """Built by ``refusing`` already (Python calls this after ``RedisCache.__new__``)."""

    @classmethod
    def refusing(cls, error: ImproperlyConfigured, params: dict[str, Any]) -> MisconfiguredCache:
        """A cache that raises ``error`` on first use. Django's own settings
        (TIMEOUT, KEY_PREFIX, VERSION, KEY_FUNCTION) are read as for any backend."""
        cache = object.__new__(cls)
        BaseCache.__init__(cache, params)
        cache._error = error
        return cache

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__}: {self._error}>"

    def _refuse(self) -> NoReturn:
        # A new exception each time: re-raising the stored one would grow its traceback.
        raise ImproperlyConfigured(str(self._error)) from self._error

    def __getattr__(self, name: str) -> NoReturn:
        """Only for attributes that are not there: a built cache's own (``_config``,
        ``_sync``...), never set on this one."""
        if name.startswith("__") or name == "_error":
            raise AttributeError(name)
        raise SettingsError(str(self._error)) from self._error

    def close(self, **kwargs: Any) -> None:
        """Nothing was opened."""

    async def aclose(self, **kwargs: Any) -> None:
        """Nothing was opened."""


def _refusing(name: str, member: Any) -> Any:
    """A stand-in for ``RedisCache.<name>`` that raises the settings error: an
    ``async def`` for a coroutine method (so it raises when awaited, as the real
    one would fail), a property for a property, a function otherwise."""
    if isinstance(member, property):
        return property(MisconfiguredCache._refuse, doc=member.__doc__)
    refuse: Callable[..., Any]
    if inspect.iscoroutinefunction(member):

        async def refuse_async(self: MisconfiguredCache, *args: Any, **kwargs: Any) -> NoReturn:
            self._refuse()

        refuse = refuse_async
    else:

        def refuse_sync(self: MisconfiguredCache, *args: Any, **kwargs: Any) -> NoReturn:
            self._refuse()

        refuse = refuse_sync
    refuse.__name__ = name
    refuse.__qualname__ = f"{MisconfiguredCache.__qualname__}.{name}"
    refuse.__doc__ = member.__doc__
    return refuse


for _name in dir(RedisCache):
    _member = inspect.getattr_static(RedisCache, _name)
    if _name.startswith("_") or _name in _QUIET:
        continue
    if isinstance(_member, property) or inspect.isfunction(_member):
        setattr(MisconfiguredCache, _name, _refusing(_name, _member))
