"""LZ4 frames (the ``lz4`` extra): very fast, a modest ratio."""

from __future__ import annotations

import lz4.frame


class Lz4Compressor:
    magics: tuple[bytes, ...] = (b"\x04\x22\x4d\x18",)

    def compress(self, data: bytes) -> bytes:
        return lz4.frame.compress(data)  # type: ignore[no-any-return]

    def decompress(self, data: bytes) -> bytes:
        return lz4.frame.decompress(data)  # type: ignore[no-any-return]
