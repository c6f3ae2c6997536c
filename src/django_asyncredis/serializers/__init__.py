"""Serializers turn a Python value into the bytes stored in Redis, and back.

A serializer is any object with ``dumps`` and ``loads``; select one by dotted
path in ``OPTIONS["serializer"]``. Integers never reach a plain serializer:
they are stored as decimal text so INCRBY works on them (see ``_codec``).

A serializer that also has ``dumps_for_key`` and ``loads_for_key`` (a
``KeyBindingSerializer``, like the signed one) is given the full Redis key of
every cache value, and every value, integers included: its output can then be
valid under that key only. ``dumps``/``loads`` remain in use for members of
sets, sorted sets and hashes, which set operations compare across keys.
"""

from typing import Any, Protocol, runtime_checkable


class Serializer(Protocol):
    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


@runtime_checkable
class KeyBindingSerializer(Protocol):
    """A serializer whose cache values are only valid under the key they were written for."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...

    def dumps_for_key(self, value: Any, key: str) -> bytes: ...

    def loads_for_key(self, data: bytes, key: str) -> Any: ...


__all__ = ["KeyBindingSerializer", "Serializer"]
