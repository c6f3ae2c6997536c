"""Distributed locks on the server, for both APIs, from one set of operations.

The algorithm is redis-py's: SET NX PX with a random token to acquire, and Lua
scripts that release or extend the lock only while it still holds our token.
The retry loop, with its ``sleep`` and ``blocking_timeout``, is an operation too
(``_operations.lock_acquire``): the sync lock sleeps with ``time.sleep``, the async
one with ``asyncio.sleep``, and neither ever blocks the other's world.
"""

from __future__ import annotations

import threading
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any

from django_asyncredis import _operations as ops
from django_asyncredis.errors import LockError

if TYPE_CHECKING:
    from django_asyncredis._core import AsyncCore
    from django_asyncredis._sync import SyncAdapter


class _Token(threading.local):
    value: bytes | None = None


class _LockBase:
    def __init__(
        self,
        name: str,
        *,
        timeout: float | None,
        sleep: float,
        blocking: bool,
        blocking_timeout: float | None,
        thread_local: bool,
    ) -> None:
        self.name = name
        self.timeout = timeout
        self.sleep = sleep
        self.blocking = blocking
        self.blocking_timeout = blocking_timeout
        # thread_local (redis-py's default): a token acquired in one thread is not
        # seen by another, so one thread cannot release another's lock by mistake.
        self._local: Any = _Token() if thread_local else _PlainToken()

    def _acquire_operation(
        self, blocking: bool | None, blocking_timeout: float | None, token: str | bytes | None
    ) -> tuple[ops.Operation[bool], bytes]:
        if token is None:
            token = uuid.uuid4().hex.encode()
        elif isinstance(token, str):
            token = token.encode()
        ttl_ms = None if self.timeout is None else int(self.timeout * 1000)
        operation = ops.lock_acquire(
            self.name,
            token,
            ttl_ms,
            self.sleep,
            self.blocking if blocking is None else blocking,
            self.blocking_timeout if blocking_timeout is None else blocking_timeout,
        )
        return operation, token

    def _held_token(self) -> bytes:
        token = self._local.value
        if token is None:
            raise LockError(f"Cannot release or extend lock {self.name!r}: it is not acquired.")
        return token  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class _PlainToken:
    value: bytes | None = None


class Lock(_LockBase):
    """The sync lock: ``with cache.lock("name", timeout=10): ...``."""

    def __init__(self, adapter: SyncAdapter, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self._adapter = adapter

    def acquire(
        self,
        blocking: bool | None = None,
        blocking_timeout: float | None = None,
        token: str | bytes | None = None,
    ) -> bool:
        operation, token = self._acquire_operation(blocking, blocking_timeout, token)
        if self._adapter.run(operation):
            self._local.value = token
            return True
        return False

    def release(self) -> None:
        """Release; ``LockNotOwnedError`` if it expired or another owner holds it now."""
        token = self._held_token()
        self._local.value = None
        self._adapter.run(ops.lock_release(self.name, token))

    def extend(self, additional_time: float, replace_ttl: bool = False) -> bool:
        ms = int(additional_time * 1000)
        return self._adapter.run(ops.lock_extend(self.name, self._held_token(), ms, replace_ttl))

    def reacquire(self) -> bool:
        """Reset the lock's life to its full ``timeout``."""
        if self.timeout is None:
            raise LockError(f"Cannot reacquire lock {self.name!r}: it has no timeout.")
        ms = int(self.timeout * 1000)
        return self._adapter.run(ops.lock_extend(self.name, self._held_token(), ms, True))

    def locked(self) -> bool:
        """Whether anyone holds the lock."""
        return self._adapter.run(ops.has_key(self.name))

    def owned(self) -> bool:
        """Whether this lock object holds it."""
        return self._adapter.run(ops.lock_owned(self.name, self._local.value))

    def __enter__(self) -> Lock:
        if self.acquire():
            return self
        raise LockError(f"Unable to acquire lock {self.name!r} within the time specified.")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


class AsyncLock(_LockBase):
    """The async lock: ``async with cache.alock("name", timeout=10): ...``."""

    def __init__(self, core: AsyncCore, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self._core = core

    async def acquire(
        self,
        blocking: bool | None = None,
        blocking_timeout: float | None = None,
        token: str | bytes | None = None,
    ) -> bool:
        operation, token = self._acquire_operation(blocking, blocking_timeout, token)
        if await self._core.run(operation):
            self._local.value = token
            return True
        return False

    async def release(self) -> None:
        token = self._held_token()
        self._local.value = None
        await self._core.run(ops.lock_release(self.name, token))

    async def extend(self, additional_time: float, replace_ttl: bool = False) -> bool:
        ms = int(additional_time * 1000)
        operation = ops.lock_extend(self.name, self._held_token(), ms, replace_ttl)
        return await self._core.run(operation)

    async def reacquire(self) -> bool:
        if self.timeout is None:
            raise LockError(f"Cannot reacquire lock {self.name!r}: it has no timeout.")
        ms = int(self.timeout * 1000)
        return await self._core.run(ops.lock_extend(self.name, self._held_token(), ms, True))

    async def locked(self) -> bool:
        return await self._core.run(ops.has_key(self.name))

    async def owned(self) -> bool:
        return await self._core.run(ops.lock_owned(self.name, self._local.value))

    async def __aenter__(self) -> AsyncLock:
        if await self.acquire():
            return self
        raise LockError(f"Unable to acquire lock {self.name!r} within the time specified.")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.release()
