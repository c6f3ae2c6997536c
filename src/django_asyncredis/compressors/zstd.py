"""Zstandard frames (the ``zstd`` extra): fast with a good ratio."""

from __future__ import annotations

import zstandard


class ZstdCompressor:
    magics: tuple[bytes, ...] = (b"\x28\xb5\x2f\xfd",)

    def __init__(self, level: int = 3) -> None:
        self.level = level

    # zstandard's (de)compressor objects must not be shared between threads, and
    # the sync API is called from many: make one per call (microseconds).

    def compress(self, data: bytes) -> bytes:
        return zstandard.ZstdCompressor(level=self.level).compress(data)

    def decompress(self, data: bytes) -> bytes:
        # A streaming reader also accepts frames written without a content size.
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
