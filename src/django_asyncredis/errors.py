"""The exceptions the cache raises, and the one place redis-py's are translated.

Each class also derives from the redis-py exception it replaces, so code written
for Django's built-in backend (``except redis.exceptions.ConnectionError``)
keeps catching it.
"""

from __future__ import annotations

from typing import NoReturn

import redis.exceptions
from redis.exceptions import LockError, LockNotOwnedError

__all__ = [
    "CacheError",
    "ConnectionInterrupted",
    "CorruptValueError",
    "LockError",
    "LockNotOwnedError",
    "PoolTimeoutError",
    "ReplyLostError",
    "ReplyTimeoutError",
    "ServerTimeoutError",
]


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


class ReplyLostError(ConnectionInterrupted):
    """The connection broke after a command was sent, before its reply came: the
    server may or may not have run it. It was not sent again, because running it
    twice would show (``incr``, ``add``, ``delete``, a lock...)."""


class ReplyTimeoutError(ServerTimeoutError, ReplyLostError):
    """No reply within ``socket_timeout`` to a command that was not sent again
    (as ``ReplyLostError``): it may still run, or have run, on the server."""


class PoolTimeoutError(ConnectionInterrupted):
    """Every connection of the pool stayed busy for ``pool_timeout`` seconds."""


class CorruptValueError(CacheError, ValueError):
    """The bytes stored under a key are not a value this cache wrote."""


#: Errors that mean "the server did not answer", as redis-py and sockets raise them.
CONNECTION_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def translate(exc: Exception, server: str) -> Exception:
    """Map one of ``CONNECTION_ERRORS`` to ours (ours are returned as they are),
    naming the server, never its password."""
    if isinstance(exc, CacheError):
        return exc
    if isinstance(exc, redis.exceptions.TimeoutError | TimeoutError):
        return ServerTimeoutError(f"Redis server {server} timed out: {exc}")
    return ConnectionInterrupted(f"Redis server {server} is unavailable: {exc}")


def raise_translated(exc: Exception, server: object) -> NoReturn:
    """Raise ``exc`` as one of ours, chained to it; if it already is ours, as it is."""
    error = translate(exc, str(server))
    if error is exc:
        raise exc
    raise error from exc
