"""MessagePack (the ``msgpack`` extra): compact and fast, for plain data.

Bytes and str stay distinct; tuples come back as lists.
"""

from __future__ import annotations

from typing import Any

import msgpack


class MSGPackSerializer:
    def dumps(self, value: Any) -> bytes:
        return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]

    def loads(self, data: bytes) -> Any:
        return msgpack.unpackb(data, raw=False)
