"""The Django cache backend: ``CACHES = {"default": {"BACKEND": "django_asyncredis.RedisCache"}}``.

It translates and does not talk to Redis: each method makes and validates the
key, normalises the timeout, builds the operation (``_operations``) and hands it
to the async core (``a``-methods) or to the sync adapter (the others). Both run
the very same operation, so the two APIs cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

from django_asyncredis import _operations as ops
from django_asyncredis._codec import Codec
from django_asyncredis._config import CacheConfig, parse_cached
from django_asyncredis._core import AsyncCore
from django_asyncredis._pools import aclose_async_pools, close_sync_pools
from django_asyncredis._sync import SyncAdapter

Key = Any  # whatever the KEY_FUNCTION accepts; Django's default takes str
Timeout = float | int | None | object


class RedisCache(BaseCache):
    """Django's cache API on Redis or Valkey, natively async, with a sync twin of every method."""

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(params)
        self._config: CacheConfig = parse_cached(server, params.get("OPTIONS") or {})
        self._codec = Codec(self._config.serializer)
        self._sync = SyncAdapter(self._config.servers)
        self._async = AsyncCore(self._config.servers)

    def __repr__(self) -> str:
        servers = ", ".join(str(server) for server in self._config.servers)
        return f"<{type(self).__qualname__} {servers}>"

    def get_backend_timeout(self, timeout: Timeout = DEFAULT_TIMEOUT) -> int | None:
        """The timeout in milliseconds (None: forever; <= 0: expire now).

        Milliseconds, so a timeout of 0.5 s means half a second rather than
        Django's built-in rounding down to "expire now".
        """
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return None
        return int(timeout * 1000)  # type: ignore[operator]

    def _key(self, key: Key, version: int | None) -> str:
        return self.make_and_validate_key(key, version=version)

    # The operations, each built once for both APIs.

    def _get(self, key: Key, default: Any, version: int | None) -> ops.Operation[Any]:
        return ops.get(self._codec, self._key(key, version), default)

    def _set(
        self, key: Key, value: Any, timeout: Timeout, version: int | None
    ) -> ops.Operation[None]:
        return ops.set(
            self._codec, self._key(key, version), value, self.get_backend_timeout(timeout)
        )

    def _add(
        self, key: Key, value: Any, timeout: Timeout, version: int | None
    ) -> ops.Operation[bool]:
        return ops.add(
            self._codec, self._key(key, version), value, self.get_backend_timeout(timeout)
        )

    def _get_or_set(
        self, key: Key, default: Any, timeout: Timeout, version: int | None
    ) -> ops.Operation[Any]:
        return ops.get_or_set(
            self._codec, self._key(key, version), default, self.get_backend_timeout(timeout)
        )

    def _touch(self, key: Key, timeout: Timeout, version: int | None) -> ops.Operation[bool]:
        return ops.touch(self._key(key, version), self.get_backend_timeout(timeout))

    def _delete(self, key: Key, version: int | None) -> ops.Operation[bool]:
        return ops.delete(self._key(key, version))

    def _has_key(self, key: Key, version: int | None) -> ops.Operation[bool]:
        return ops.has_key(self._key(key, version))

    def _get_many(self, keys: Iterable[Key], version: int | None) -> ops.Operation[dict[Any, Any]]:
        return ops.get_many(self._codec, {self._key(key, version): key for key in keys})

    def _set_many(
        self, data: Mapping[Key, Any], timeout: Timeout, version: int | None
    ) -> ops.Operation[list[Any]]:
        items = {self._key(key, version): value for key, value in data.items()}
        return ops.set_many(self._codec, items, self.get_backend_timeout(timeout))

    def _delete_many(self, keys: Iterable[Key], version: int | None) -> ops.Operation[None]:
        return ops.delete_many([self._key(key, version) for key in keys])

    def _incr(self, key: Key, delta: int, version: int | None) -> ops.Operation[int]:
        return ops.incr(self._codec, self._key(key, version), delta, key)

    def _incr_version(
        self, key: Key, delta: int, version: int | None
    ) -> tuple[ops.Operation[None], int]:
        if version is None:
            version = self.version
        source = self._key(key, version)
        target = self._key(key, version + delta)
        return ops.rename(source, target, key), version + delta

    # The sync API (Django's contract), driven by the sync adapter.

    def get(self, key: Key, default: Any = None, version: int | None = None) -> Any:
        return self._sync.run(self._get(key, default, version))

    def set(
        self, key: Key, value: Any, timeout: Timeout = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        self._sync.run(self._set(key, value, timeout, version))

    def add(
        self, key: Key, value: Any, timeout: Timeout = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        return self._sync.run(self._add(key, value, timeout, version))

    def get_or_set(
        self,
        key: Key,
        default: Any | Callable[[], Any],
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> Any:
        return self._sync.run(self._get_or_set(key, default, timeout, version))

    def touch(
        self, key: Key, timeout: Timeout = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        return self._sync.run(self._touch(key, timeout, version))

    def delete(self, key: Key, version: int | None = None) -> bool:
        return self._sync.run(self._delete(key, version))

    def has_key(self, key: Key, version: int | None = None) -> bool:
        return self._sync.run(self._has_key(key, version))

    def get_many(self, keys: Iterable[Key], version: int | None = None) -> dict[Any, Any]:
        return self._sync.run(self._get_many(keys, version))

    def set_many(
        self,
        data: Mapping[Key, Any],
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> list[Any]:
        return self._sync.run(self._set_many(data, timeout, version))

    def delete_many(self, keys: Iterable[Key], version: int | None = None) -> None:
        self._sync.run(self._delete_many(keys, version))

    def incr(self, key: Key, delta: int = 1, version: int | None = None) -> int:
        return self._sync.run(self._incr(key, delta, version))

    def decr(self, key: Key, delta: int = 1, version: int | None = None) -> int:
        return self._sync.run(self._incr(key, -delta, version))

    def incr_version(self, key: Key, delta: int = 1, version: int | None = None) -> int:
        operation, new_version = self._incr_version(key, delta, version)
        self._sync.run(operation)
        return new_version

    def decr_version(self, key: Key, delta: int = 1, version: int | None = None) -> int:
        return self.incr_version(key, -delta, version)

    def clear(self) -> None:
        """FLUSHDB: empties the whole database, as Django's built-in backend does."""
        self._sync.run(ops.clear())

    def close(self, **kwargs: Any) -> None:
        """Django calls this at the end of every request: free unless CLOSE_CONNECTION is set."""
        if self._config.close_connection:
            close_sync_pools(self._config.servers)

    # The async API, driven natively by the async core: no thread, no sync_to_async.

    async def aget(self, key: Key, default: Any = None, version: int | None = None) -> Any:
        return await self._async.run(self._get(key, default, version))

    async def aset(
        self, key: Key, value: Any, timeout: Timeout = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        await self._async.run(self._set(key, value, timeout, version))

    async def aadd(
        self, key: Key, value: Any, timeout: Timeout = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        return await self._async.run(self._add(key, value, timeout, version))

    async def aget_or_set(
        self,
        key: Key,
        default: Any | Callable[[], Any],
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> Any:
        return await self._async.run(self._get_or_set(key, default, timeout, version))

    async def atouch(
        self, key: Key, timeout: Timeout = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        return await self._async.run(self._touch(key, timeout, version))

    async def adelete(self, key: Key, version: int | None = None) -> bool:
        return await self._async.run(self._delete(key, version))

    async def ahas_key(self, key: Key, version: int | None = None) -> bool:
        return await self._async.run(self._has_key(key, version))

    async def aget_many(self, keys: Iterable[Key], version: int | None = None) -> dict[Any, Any]:
        return await self._async.run(self._get_many(keys, version))

    async def aset_many(
        self,
        data: Mapping[Key, Any],
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> list[Any]:
        return await self._async.run(self._set_many(data, timeout, version))

    async def adelete_many(self, keys: Iterable[Key], version: int | None = None) -> None:
        await self._async.run(self._delete_many(keys, version))

    async def aincr(self, key: Key, delta: int = 1, version: int | None = None) -> int:
        return await self._async.run(self._incr(key, delta, version))

    async def adecr(self, key: Key, delta: int = 1, version: int | None = None) -> int:
        return await self._async.run(self._incr(key, -delta, version))

    async def aincr_version(self, key: Key, delta: int = 1, version: int | None = None) -> int:
        operation, new_version = self._incr_version(key, delta, version)
        await self._async.run(operation)
        return new_version

    async def adecr_version(self, key: Key, delta: int = 1, version: int | None = None) -> int:
        return await self.aincr_version(key, -delta, version)

    async def aclear(self) -> None:
        await self._async.run(ops.clear())

    async def aclose(self, **kwargs: Any) -> None:
        """With CLOSE_CONNECTION, close this cache's connections on the running loop."""
        if self._config.close_connection:
            await aclose_async_pools(self._config.servers)
