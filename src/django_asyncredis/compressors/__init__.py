"""Compressors shrink serialized values above a minimum size.

Each compressor writes a standard, self-describing format (zlib, gzip, xz, lz4
frame, zstd frame), and declares the magic bytes its output starts with. Reads
use those bytes to pick the decompressor, whatever compressor is configured now:
switching compression on, off or to another algorithm keeps every stored value
readable, including values django-redis compressed with the same algorithms.
"""

from typing import Protocol


class Compressor(Protocol):
    #: Every output of ``compress`` starts with one of these.
    magics: tuple[bytes, ...]

    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


__all__ = ["Compressor"]
