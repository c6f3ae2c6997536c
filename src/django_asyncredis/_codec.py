"""The stored format: how a value becomes the bytes under a key, and back.

Integers (exactly ``int``, not ``bool``) are stored as decimal text, so the
server's INCRBY works on them and ``incr`` stays atomic even for keys written
with ``set(key, 5)``. Everything else goes through the serializer. Reading
decides by the first byte, never by trying one decoder and catching its error:
decimal text starts with a digit or '-', which no pickle (protocol 2+) does.
This is also the format of Django's built-in RedisCache and of django-redis's
default settings, so switching backends keeps existing cache entries readable.
"""

from __future__ import annotations

from typing import Any

from django_asyncredis.errors import CorruptValueError
from django_asyncredis.serializers import Serializer

_INTEGER_FIRST_BYTES = frozenset(b"-0123456789")


class Codec:
    __slots__ = ("_dumps", "_loads")

    def __init__(self, serializer: Serializer) -> None:
        self._dumps = serializer.dumps
        self._loads = serializer.loads

    def dumps(self, value: Any) -> bytes | int:
        """Bytes for Redis; an int is returned as is (redis-py sends it as decimal text)."""
        if type(value) is int:
            return value
        return self._dumps(value)

    def loads(self, data: bytes, key: str) -> Any:
        try:
            if data[0] in _INTEGER_FIRST_BYTES:
                return int(data)
            return self._loads(data)
        except Exception as exc:
            raise CorruptValueError(
                f"The value stored under {key!r} ({len(data)} bytes) could not be decoded: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
