"""Serializers turn a Python value into the bytes stored in Redis, and back.

Integers never reach a serializer: they are stored as decimal text so INCRBY
works on them (see ``_codec``). A serializer is any object with ``dumps`` and
``loads``; select one by dotted path in ``OPTIONS["serializer"]``.
"""

from typing import Any, Protocol


class Serializer(Protocol):
    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


__all__ = ["Serializer"]
