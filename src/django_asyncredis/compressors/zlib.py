"""zlib (standard library): a good default balance of speed and ratio."""

from __future__ import annotations

import zlib


class ZlibCompressor:
    # The zlib header: deflate with a 32 KiB window, then the level flags.
    magics: tuple[bytes, ...] = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")

    def __init__(self, level: int = 6) -> None:
        self.level = level

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, self.level)

    def decompress(self, data: bytes) -> bytes:
        return zlib.decompress(data)
