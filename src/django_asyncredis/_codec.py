"""The stored format: how a value becomes the bytes under a key, and back.

- Integers (exactly ``int``, not ``bool``) are stored as decimal text, so the
  server's INCRBY works on them and ``incr`` stays atomic even for keys written
  with ``set(key, 5)``.
- Anything else goes through the serializer, then, when a compressor is set and
  the payload is at least ``compress_min_length`` bytes and shrinks, through the
  compressor, whose output starts with its format's magic bytes.
- An uncompressed payload that happens to start like an integer or like a
  compressed frame is prefixed with one ``ESCAPE`` byte, so reading is never
  ambiguous. Pickle (protocol 2+) starts with 0x80 and never needs it.

Reading decides by the first byte, never by trying decoders in turn on the hot
path. The format is also Django's built-in backend's and django-redis's (their
compressed values carry the same standard magic bytes), so switching backends,
or switching compression on or off, keeps existing entries readable.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django_asyncredis.compressors import Compressor
from django_asyncredis.errors import CorruptValueError
from django_asyncredis.serializers import Serializer

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
    __slots__ = ("_compress", "_decoders", "_dumps", "_loads", "_min_length", "_special")

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

    def dumps(self, value: Any) -> bytes | int:
        """Bytes for Redis; an int is returned as is (redis-py sends it as decimal text)."""
        if type(value) is int:
            return value
        payload = self._dumps(value)
        if self._compress is not None and len(payload) >= self._min_length:
            compressed = self._compress(payload)
            if len(compressed) < len(payload):
                return compressed
        if payload and payload[0] in self._special:
            return b"\x00" + payload
        return payload

    def loads(self, data: bytes, key: str) -> Any:
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
            raise CorruptValueError(
                f"The value stored under {key!r} ({len(data)} bytes) could not be decoded: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

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
