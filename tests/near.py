"""Near-cache test helpers: a near-cached backend of its own, and a writer in
another process (the tests of tests/test_near_cache*.py share them)."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from django_asyncredis import RedisCache

_prefixes = itertools.count()


def near_cache(url: str, prefix: str = "near", **params: Any) -> RedisCache:
    """A near-cached backend on a key prefix of its own (so a store of its own),
    listening. ``params`` are OPTIONS, NEAR_CACHE on by default."""
    made = f"{prefix}-{os.getpid()}-{next(_prefixes)}"
    cache = RedisCache(url, {"KEY_PREFIX": made, "OPTIONS": {"NEAR_CACHE": True, **params}})
    assert cache._near is not None
    assert cache._near.wait_ready(5)
    return cache


@contextlib.contextmanager
def listening(url: str, prefix: str = "near", **params: Any) -> Iterator[RedisCache]:
    """``near_cache``, its listener stopped on leaving."""
    cache = near_cache(url, prefix, **params)
    try:
        yield cache
    finally:
        assert cache._near is not None
        cache._near.stop()


WRITER_SCRIPT = """
import sys, redis
client = redis.Redis.from_url(sys.argv[1])
for line in sys.stdin:
    key, value = line.split()
    client.set(key, int(value))
    print("ok", flush=True)
"""


class Writer:
    """Another process writing raw integers with redis-py: ``set()`` returns once
    the server acknowledged the write there."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WRITER_SCRIPT, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def set(self, key: str, value: int) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{key} {value}\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == "ok\n"

    def close(self) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        finally:
            self.process.stdout.close()
