"""xz / LZMA (standard library): the best ratio, the slowest."""

from __future__ import annotations

import lzma


class LzmaCompressor:
    magics: tuple[bytes, ...] = (b"\xfd7zXZ\x00",)

    def __init__(self, preset: int = 4) -> None:
        self.preset = preset

    def compress(self, data: bytes) -> bytes:
        return lzma.compress(data, preset=self.preset)

    def decompress(self, data: bytes) -> bytes:
        return lzma.decompress(data)
