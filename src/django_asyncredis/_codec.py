"""The stored format: how a value becomes the bytes under a key, and back.

- Integers (exactly ``int``, not ``bool``) are stored as decimal text, so the
  server's INCRBY works on them and ``incr`` stays atomic even for keys written
  with ``set(key, 5)``. Not under a key-binding serializer (the signed one):
  there every value, integers included, goes through the serializer, so a
  number written by anyone without the key is refused like any other value.
- Anything else goes through the serializer, then, when a compressor is set and
  the payload is at least ``compress_min_length`` bytes and shrinks, through the
  compressor, whose output starts with its format's magic bytes.
- A value stored with stampede metadata (``_stampede``: stale-while-revalidate,
  XFetch, HerdClient) is *framed*: one ``FRAMED`` byte, a header of two
  big-endian doubles (the soft expiry as a Unix time, and how long the value
  took to compute, in seconds), then the value's ordinary bytes as above.
  ``loads`` skips the header, so a plain ``get`` of a framed key still returns
  the value; ``loads_framed`` returns the metadata too.
- An uncompressed payload that is empty, or that happens to start like an
  integer, like a compressed frame or like a framed value, is prefixed with one
  ``ESCAPE`` byte, so reading is never ambiguous. Pickle (protocol 2+) starts with 0x80 and never
  needs it.

Reading decides by the first byte, never by trying decoders in turn on the hot
path. The format is also Django's built-in backend's and django-redis's (their
compressed values carry the same standard magic bytes), so switching backends,
or switching compression on or off, keeps existing entries readable.

Cache values are encoded for the Redis key they are stored under (``dumps(value,
key)``): a key-binding serializer signs the key with the value, so a value
copied to another key is refused. Members of sets and sorted sets and values of
hashes (``dumps_member``) are not bound to their key: set operations compare
members across keys, which needs equal values to be equal bytes everywhere.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, NamedTuple

from django_asyncredis.compressors import Compressor
from django_asyncredis.errors import CorruptValueError
from django_asyncredis.serializers import KeyBindingSerializer, Serializer

ESCAPE = 0x00
#: The first byte of a value framed with stampede metadata: 0xC1, the one byte
#: MessagePack never writes, and no first byte of pickle, JSON, the compressors'
#: magics, integers or the signed serializer's key-bound frame (0x01), so no
#: value stored before framing existed reads as framed.
FRAMED = 0xC1
_FRAMED_BYTE = bytes((FRAMED,))
_HEADER = struct.Struct(">dd")
_FRAMED_HEADER_LENGTH = 1 + _HEADER.size
_INTEGER_FIRST_BYTES = frozenset(b"-0123456789")


class Framed(NamedTuple):
    """A value read with its stampede metadata (``soft_expiry`` None: unframed)."""

    value: Any
    soft_expiry: float | None  # Unix time after which the value is stale
    compute_seconds: float  # how long its computation took (XFetch's delta)


def _builtin_compressors() -> list[Compressor]:
    """Every compressor whose library is installed: reads must recognise them all."""
    from django_asyncredis.compressors.gzip import GzipCompressor
    from django_asyncredis.compressors.lzma import LzmaCompressor
    from django_asyncredis.compressors.zlib import ZlibCompressor

    found: list[Compressor] = [ZlibCompressor(), GzipCompressor(), LzmaCompressor()]
    try:
        from django_asyncredis.compressors.lz4 import Lz4Compressor

        found.append(Lz4Compressor())
    except ImportError:
        pass
    try:
        from django_asyncredis.compressors.zstd import ZstdCompressor

        found.append(ZstdCompressor())
    except ImportError:
        pass
    return found


class Codec:
    """Encodes and decodes for one serializer and compressor.

    Built for a key-binding serializer, it is a ``KeyBindingCodec`` (chosen in
    ``__new__``, so every caller keeps writing ``Codec(...)``): the plain methods
    stay exactly as cheap as they were, with no "does it sign?" test per call.
    """

    __slots__ = ("_compress", "_decoders", "_dumps", "_loads", "_min_length", "_special")

    #: True when values are signed for their key: ints are not raw, so ``incr``
    #: cannot use INCRBY and reads-then-writes in a transaction instead.
    binds_keys = False

    def __new__(cls, serializer: Serializer, *args: Any, **kwargs: Any) -> Codec:
        if cls is Codec and isinstance(serializer, KeyBindingSerializer):
            cls = KeyBindingCodec
        return object.__new__(cls)

    def __init__(
        self,
        serializer: Serializer,
        compressor: Compressor | None = None,
        compress_min_length: int = 256,
    ) -> None:
        self._dumps = serializer.dumps
        self._loads = serializer.loads
        self._compress = compressor.compress if compressor is not None else None
        self._min_length = compress_min_length
        known: Iterable[Compressor] = _builtin_compressors()
        if compressor is not None:
            known = [compressor, *known]
        # first byte -> [(magic, decompress)]: the bytes that need a closer look.
        self._decoders: dict[int, list[tuple[bytes, Any]]] = {}
        for each in known:
            for magic in each.magics:
                self._decoders.setdefault(magic[0], []).append((magic, each.decompress))
        self._special = frozenset({ESCAPE, FRAMED, *_INTEGER_FIRST_BYTES, *self._decoders})

    def dumps(self, value: Any, key: str) -> bytes | int:
        """Bytes for a cache value under ``key``; an int is returned as is
        (redis-py sends it as decimal text)."""
        if type(value) is int:
            return value
        payload = self._dumps(value)
        if self._compress is not None and len(payload) >= self._min_length:
            compressed = self._compress(payload)
            if len(compressed) < len(payload):
                return compressed
        if not payload or payload[0] in self._special:
            return b"\x00" + payload
        return payload

    def loads(self, data: bytes, key: str) -> Any:
        """The cache value stored under ``key``; ``CorruptValueError`` if undecodable."""
        try:
            first = data[0]
            if first not in self._special:
                return self._loads(data)
            if first in _INTEGER_FIRST_BYTES:
                return self._integer(data)
            if first == ESCAPE:
                return self._loads(data[1:])
            if first == FRAMED:
                return self.loads(data[_FRAMED_HEADER_LENGTH:], key)
            return self._loads(self._decompress(data))
        except CorruptValueError:
            raise
        except Exception as exc:
            if not data:  # written by an older release, which stored b"" unescaped
                return self._decoded(self._loads, data, key)
            raise _corrupt(data, key, exc) from exc

    def dumps_framed(
        self, value: Any, key: str, soft_expiry: float, compute_seconds: float
    ) -> bytes:
        """The framed bytes of ``value`` under ``key``: its metadata, then its
        ordinary bytes (an integer as decimal text)."""
        inner = self.dumps(value, key)
        if isinstance(inner, int):
            inner = str(inner).encode()
        return _FRAMED_BYTE + _HEADER.pack(soft_expiry, compute_seconds) + inner

    def loads_framed(self, data: bytes, key: str) -> Framed:
        """The value under ``key`` with its metadata: ours (framed), a value
        written by django-redis's HerdClient (a pickled ``(Marker, value,
        soft_expiry)``), or a plain value (no metadata)."""
        if data[:1] == _FRAMED_BYTE and len(data) >= _FRAMED_HEADER_LENGTH:
            soft_expiry, seconds = _HEADER.unpack_from(data, 1)
            return Framed(self.loads(data[_FRAMED_HEADER_LENGTH:], key), soft_expiry, seconds)
        value = self.loads(data, key)
        if type(value) is tuple and len(value) == 3 and _is_herd_marker(value[0]):
            return Framed(value[1], float(value[2]), 0.0)
        return Framed(value, None, 0.0)

    def dumps_member(self, value: Any) -> bytes | int:
        """A set/sorted-set member or hash value: the same bytes under any key."""
        return self.dumps(value, "")

    def loads_member(self, data: bytes, key: str) -> Any:
        return self.loads(data, key)

    def _frame(self, payload: bytes) -> bytes:
        """``payload`` compressed, or escaped when its first byte is ambiguous."""
        if self._compress is not None and len(payload) >= self._min_length:
            compressed = self._compress(payload)
            if len(compressed) < len(payload):
                return compressed
        if not payload or payload[0] in self._special:
            return b"\x00" + payload
        return payload

    def _decoded(self, loads: Any, data: bytes, key: str) -> Any:
        """``loads`` of the payload inside ``data``, with no integer shortcut."""
        try:
            if not data:
                return loads(data)
            first = data[0]
            if first == ESCAPE:
                return loads(data[1:])
            if first in self._decoders:
                return loads(self._decompress(data))
            return loads(data)
        except CorruptValueError:
            raise
        except Exception as exc:
            raise _corrupt(data, key, exc) from exc

    def _integer(self, data: bytes) -> Any:
        try:
            return int(data)
        except ValueError:
            # Not ours: a number written by another serializer (django-redis's JSON).
            return self._loads(data)

    def _decompress(self, data: bytes) -> bytes:
        for magic, decompress in self._decoders[data[0]]:
            if data.startswith(magic):
                return decompress(data)  # type: ignore[no-any-return]
        return data  # a first byte shared with a magic, but no magic: a plain payload


class KeyBindingCodec(Codec):
    """For a key-binding serializer: cache values signed with their key, and no
    raw integers anywhere (a bare number under a key is refused like any forgery)."""

    __slots__ = ("_bound",)

    binds_keys = True

    def __init__(
        self,
        serializer: Serializer,
        compressor: Compressor | None = None,
        compress_min_length: int = 256,
    ) -> None:
        super().__init__(serializer, compressor, compress_min_length)
        assert isinstance(serializer, KeyBindingSerializer)
        self._bound = serializer

    def dumps(self, value: Any, key: str) -> bytes:
        return self._frame(self._bound.dumps_for_key(value, key))

    def loads(self, data: bytes, key: str) -> Any:
        if data[:1] == _FRAMED_BYTE:
            data = data[_FRAMED_HEADER_LENGTH:]
        bound = self._bound
        return self._decoded(lambda payload: bound.loads_for_key(payload, key), data, key)

    def dumps_member(self, value: Any) -> bytes:
        return self._frame(self._dumps(value))

    def loads_member(self, data: bytes, key: str) -> Any:
        return self._decoded(self._loads, data, key)


def _is_herd_marker(thing: Any) -> bool:
    """Whether ``thing`` is django-redis's ``client.herd.Marker`` (by name: the
    class only exists where django-redis is installed)."""
    cls = type(thing)
    return cls.__name__ == "Marker" and cls.__module__ == "django_redis.client.herd"


def _corrupt(data: bytes, key: str, exc: Exception) -> CorruptValueError:
    return CorruptValueError(
        f"The value stored under {key!r} ({len(data)} bytes) could not be decoded: "
        f"{type(exc).__name__}: {exc}"
    )
