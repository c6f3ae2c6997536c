"""The default serializer: pickle, at the protocol PICKLE_VERSION names (-1: the highest).

Unpickling runs code: only point the cache at a Redis server that only trusted
processes can write to.
"""

from __future__ import annotations

import pickle
from typing import Any


class PickleSerializer:
    def __init__(self, protocol: int = -1) -> None:
        self.protocol = pickle.HIGHEST_PROTOCOL if protocol == -1 else protocol

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, self.protocol)

    #: pickle's own function, not a method calling it: a frame less per read.
    loads = staticmethod(pickle.loads)
