"""An async-first Redis and Valkey cache backend for Django.

Every cache operation is written once, as a generator in ``_operations``; the
async core (``_core``) drives it over ``redis.asyncio`` connections and the sync
adapter (``_sync``) drives the very same generator over sync redis-py
connections. ``cache.RedisCache`` is the Django backend that translates Django's
cache API into those operations.
"""

from django_asyncredis._pools import aclose_all
from django_asyncredis.cache import RedisCache
from django_asyncredis.errors import (
    CacheError,
    ConnectionInterrupted,
    CorruptValueError,
    PoolTimeoutError,
    ServerTimeoutError,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "CacheError",
    "ConnectionInterrupted",
    "CorruptValueError",
    "PoolTimeoutError",
    "RedisCache",
    "ServerTimeoutError",
    "__version__",
    "aclose_all",
]
