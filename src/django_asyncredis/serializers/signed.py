"""Pickle, signed: values written by anyone without the key are refused unread.

Unpickling runs code, so with the plain pickle serializer whoever can write to
the Redis server can run code in every process that reads the cache. This
serializer prefixes an HMAC-SHA256, keyed with ``OPTIONS["SIGNING_KEY"]``
(default: ``settings.SECRET_KEY``, and values signed with
``settings.SECRET_KEY_FALLBACKS`` are still accepted, for key rotation). A value
whose signature does not match is rejected before ``pickle.loads`` ever sees it.

A cache value's signature covers its full Redis key too (``dumps_for_key``), so
a value copied from one key to another is refused as well. Its frame is::

    0x01 | HMAC(version byte | key length (4 bytes) | key | pickle) | pickle

Integers are signed like everything else (the codec gives them to this
serializer), so a bare number written under a key is refused too.

Members of sets and sorted sets and values of hashes are signed without their
key (``dumps``: ``HMAC(pickle) | pickle``, the format every value had in
earlier releases): set operations compare members across keys. A cache value in that
older format is refused with a message that says so (see docs/migration.md).
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from collections.abc import Mapping
from typing import Any

_DIGEST = hashlib.sha256
_SIZE = _DIGEST().digest_size
_SALT = b"django_asyncredis.serializers.signed"
#: The first byte of a key-bound frame, and the first byte its MAC covers.
KEY_BOUND = b"\x01"


class SignatureMismatch(ValueError):
    """The value was not signed with our key (or not for this Redis key): it is not unpickled."""


class SignedPickleSerializer:
    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        from django.conf import settings

        options = {key.lower(): value for key, value in (options or {}).items()}
        keys = [options.get("signing_key") or settings.SECRET_KEY]
        if not options.get("signing_key"):
            keys += list(getattr(settings, "SECRET_KEY_FALLBACKS", []))
        self._keys = [_derive(key) for key in keys]
        self._protocol = options.get("pickle_version", -1)
        if self._protocol == -1:
            self._protocol = pickle.HIGHEST_PROTOCOL

    # Cache values: bound to their Redis key.

    def dumps_for_key(self, value: Any, key: str) -> bytes:
        payload = pickle.dumps(value, self._protocol)
        return KEY_BOUND + _mac(self._keys[0], _bound(key, payload)) + payload

    def loads_for_key(self, data: bytes, key: str) -> Any:
        if data[:1] == KEY_BOUND:
            signature, payload = data[1 : 1 + _SIZE], data[1 + _SIZE :]
            if self._verified(signature, _bound(key, payload)):
                return pickle.loads(payload)
        if self._verified(data[:_SIZE], data[_SIZE:]):
            raise SignatureMismatch(
                "the value's signature does not cover its key: it was written by an "
                "earlier release, or copied from a set or hash; see docs/migration.md"
            )
        raise SignatureMismatch("the value's signature does not match the signing key and key")

    # Members of sets, sorted sets and hashes: not bound to a key.

    def dumps(self, value: Any) -> bytes:
        payload = pickle.dumps(value, self._protocol)
        return _mac(self._keys[0], payload) + payload

    def loads(self, data: bytes) -> Any:
        if self._verified(data[:_SIZE], data[_SIZE:]):
            return pickle.loads(data[_SIZE:])
        raise SignatureMismatch("the value's signature does not match the signing key")

    def _verified(self, signature: bytes, message: bytes) -> bool:
        return any(hmac.compare_digest(signature, _mac(key, message)) for key in self._keys)


def _bound(key: str, payload: bytes) -> bytes:
    """What a key-bound signature covers: the frame version, the key, the value."""
    encoded = key.encode()
    return KEY_BOUND + len(encoded).to_bytes(4, "big") + encoded + payload


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, _DIGEST).digest()


def _derive(secret: str | bytes) -> bytes:
    """A key for this purpose only, so the HMAC never doubles as another signature."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(_SALT + raw).digest()
