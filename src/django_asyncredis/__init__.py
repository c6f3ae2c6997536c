"""An async-first Redis and Valkey cache backend for Django.

Every cache operation is written once, as a generator in ``_operations``; the
async core (``_core``) drives it over ``redis.asyncio`` connections and the sync
adapter (``_sync``) drives the very same generator over sync redis-py
connections. ``cache.RedisCache`` is the Django backend that translates Django's
cache API into those operations.
"""

from django_asyncredis._lock import AsyncLock, Lock
from django_asyncredis._pipeline import PipelineError
from django_asyncredis._pools import aclose_all
from django_asyncredis._raw import aget_redis_connection, get_redis_connection
from django_asyncredis.cache import RedisCache
from django_asyncredis.errors import (
    CacheError,
    ConnectionInterrupted,
    CorruptValueError,
    LockError,
    LockNotOwnedError,
    PoolTimeoutError,
    ServerTimeoutError,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "AsyncLock",
    "CacheError",
    "ConnectionInterrupted",
    "CorruptValueError",
    "Lock",
    "LockError",
    "LockNotOwnedError",
    "PipelineError",
    "PoolTimeoutError",
    "RedisCache",
    "ServerTimeoutError",
    "__version__",
    "aclose_all",
    "aget_redis_connection",
    "get_redis_connection",
]
