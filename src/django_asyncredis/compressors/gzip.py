"""gzip (standard library): zlib's deflate in a gzip envelope."""

from __future__ import annotations

import gzip


class GzipCompressor:
    magics: tuple[bytes, ...] = (b"\x1f\x8b",)

    def __init__(self, level: int = 6) -> None:
        self.level = level

    def compress(self, data: bytes) -> bytes:
        return gzip.compress(data, self.level, mtime=0)

    def decompress(self, data: bytes) -> bytes:
        return gzip.decompress(data)
