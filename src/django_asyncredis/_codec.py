"""The stored format: how a value becomes the bytes under a key, and back.

- Integers (exactly ``int``, not ``bool``) are stored as decimal text, so the
  server's INCRBY works on them and ``incr`` stays atomic even for keys written
  with ``set(key, 5)``. Not under a key-binding serializer (the signed one):
  there every value, integers included, goes through the serializer, so a
  number written by anyone without the key is refused like any other value.
- Anything else goes through the serializer, then, when a compressor is set and
  the payload is at least ``compress_min_length`` bytes and shrinks, through the
  compressor, whose output starts with its format's magic bytes.
- An uncompressed payload that is empty, or that happens to start like an
  integer or like a compressed frame, is prefixed with one ``ESCAPE`` byte, so
  reading is never ambiguous. Pickle (protocol 2+) starts with 0x80 and never
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

from collections.abc import Callable, Iterable
from typing import Any

from django_asyncredis.compressors import Compressor
from django_asyncredis.errors import CorruptValueError
from django_asyncredis.serializers import KeyBindingSerializer, Serializer

ESCAPE = 0x00
_INTEGER_FIRST_BYTES = frozenset(b"-0123456789")


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

    ``dumps`` and ``loads`` are chosen once, at construction: the plain methods,
    or, for a key-binding serializer, the ones that pass the key and never store
    raw integers. So the hot path of a plain serializer pays nothing for signing.
    """

    __slots__ = (
        "_bind",
        "_compress",
        "_decoders",
        "_dumps",
        "_loads",
        "_min_length",
        "_special",
        "binds_keys",
        "dumps",
        "loads",
    )

    #: Bytes (or a raw int) for a cache value stored under ``key``.
    dumps: Callable[[Any, str], bytes | int]
    #: The cache value stored under ``key``; ``CorruptValueError`` if undecodable.
    loads: Callable[[bytes, str], Any]

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
        self._special = frozenset({ESCAPE, *_INTEGER_FIRST_BYTES, *self._decoders})
        #: True when values are signed for their key: ints are not raw, so ``incr``
        #: cannot use INCRBY and reads-then-writes in a transaction instead.
        self.binds_keys = isinstance(serializer, KeyBindingSerializer)
        self._bind: KeyBindingSerializer | None = None
        if self.binds_keys:
            self._bind = serializer  # type: ignore[assignment]
            self.dumps = self._dumps_bound
            self.loads = self._loads_bound
        else:
            self.dumps = self._dumps_plain
            self.loads = self._loads_plain

    # Cache values: bound to their key when the serializer binds keys.

    def _dumps_plain(self, value: Any, key: str) -> bytes | int:
        """Bytes for Redis; an int is returned as is (redis-py sends it as decimal text)."""
        if type(value) is int:
            return value
        return self._frame(self._dumps(value))

    def _loads_plain(self, data: bytes, key: str) -> Any:
        try:
            first = data[0]
            if first not in self._special:
                return self._loads(data)
            if first in _INTEGER_FIRST_BYTES:
                return self._integer(data)
            if first == ESCAPE:
                return self._loads(data[1:])
            return self._loads(self._decompress(data))
        except CorruptValueError:
            raise
        except Exception as exc:
            if not data:  # written by an older version, which stored b"" unescaped
                return self._decoded(self._loads, data, key)
            raise _corrupt(data, key, exc) from exc

    def _dumps_bound(self, value: Any, key: str) -> bytes:
        assert self._bind is not None
        return self._frame(self._bind.dumps_for_key(value, key))

    def _loads_bound(self, data: bytes, key: str) -> Any:
        assert self._bind is not None
        bind = self._bind
        return self._decoded(lambda payload: bind.loads_for_key(payload, key), data, key)

    # Structure members: never bound to a key.

    def dumps_member(self, value: Any) -> bytes | int:
        """A set/sorted-set member or hash value: the same bytes under any key."""
        if type(value) is int and not self.binds_keys:
            return value
        return self._frame(self._dumps(value))

    def loads_member(self, data: bytes, key: str) -> Any:
        if self.binds_keys:
            return self._decoded(self._loads, data, key)
        return self._loads_plain(data, key)

    # The frame around a payload.

    def _frame(self, payload: bytes) -> bytes:
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


def _corrupt(data: bytes, key: str, exc: Exception) -> CorruptValueError:
    return CorruptValueError(
        f"The value stored under {key!r} ({len(data)} bytes) could not be decoded: "
        f"{type(exc).__name__}: {exc}"
    )
