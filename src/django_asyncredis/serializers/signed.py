"""Pickle, signed: values written by anyone without the key are refused unread.

Unpickling runs code, so with the plain pickle serializer whoever can write to
the Redis server can run code in every process that reads the cache. This
serializer appends nothing secret to the data but prefixes an HMAC-SHA256 of the
pickle, keyed with ``OPTIONS["SIGNING_KEY"]`` (default: ``settings.SECRET_KEY``,
and values signed with ``settings.SECRET_KEY_FALLBACKS`` are still accepted, for
key rotation). A value whose signature does not match is rejected before
``pickle.loads`` ever sees it.
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


class SignatureMismatch(ValueError):
    """The value was not signed with our key: it is not unpickled."""


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

    def dumps(self, value: Any) -> bytes:
        payload = pickle.dumps(value, self._protocol)
        return hmac.new(self._keys[0], payload, _DIGEST).digest() + payload

    def loads(self, data: bytes) -> Any:
        signature, payload = data[:_SIZE], data[_SIZE:]
        for key in self._keys:
            if hmac.compare_digest(signature, hmac.new(key, payload, _DIGEST).digest()):
                return pickle.loads(payload)
        raise SignatureMismatch("the value's signature does not match the signing key")


def _derive(secret: str | bytes) -> bytes:
    """A key for this purpose only, so the HMAC never doubles as another signature."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(_SALT + raw).digest()
