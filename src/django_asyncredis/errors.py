"""The exceptions the cache raises, and the one place redis-py's are translated.

Each class also derives from the redis-py exception it replaces, so code written
for Django's built-in backend (``except redis.exceptions.ConnectionError``)
keeps catching it.
"""

from __future__ import annotations

import redis.exceptions


class CacheError(Exception):
    """Base class of every error raised by django-asyncredis."""


class ConnectionInterrupted(CacheError, redis.exceptions.ConnectionError):
    """The server could not be reached, or the connection broke mid-command.

    The name is django-redis's, so ``except ConnectionInterrupted`` keeps working
    for users who switch.
    """


class ServerTimeoutError(ConnectionInterrupted, redis.exceptions.TimeoutError):
    """The server did not answer within ``socket_timeout`` (or connect within
    ``socket_connect_timeout``)."""


class PoolTimeoutError(ConnectionInterrupted):
    """Every connection of the pool stayed busy for ``pool_timeout`` seconds."""


class CorruptValueError(CacheError, ValueError):
    """The bytes stored under a key are not a value this cache wrote."""


def translate(exc: BaseException, server: str) -> CacheError | None:
    """Map a redis-py or socket error to ours, naming the server (never its password).

    Returns None for errors that are not about the connection (they propagate as
    they are: a ``ResponseError`` is a bug or a wrong key type, not an outage).
    """
    if isinstance(exc, CacheError):
        return None
    if isinstance(exc, redis.exceptions.TimeoutError | TimeoutError):
        return ServerTimeoutError(f"Redis server {server} timed out: {exc}")
    if isinstance(exc, redis.exceptions.ConnectionError | OSError):
        return ConnectionInterrupted(f"Redis server {server} is unavailable: {exc}")
    return None
