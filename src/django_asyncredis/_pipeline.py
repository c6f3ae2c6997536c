"""The cache pipeline: several cache calls, one round trip per step.

``with cache.pipeline() as p:`` (or ``async with cache.apipeline() as p:``) queues
calls such as ``p.set(...)``, ``p.get(...)``, ``p.incr(...)``; on exit (or
``p.execute()`` / ``await p.aexecute()``) they run together and ``p.results`` holds
each call's result, in order, with Django's semantics for each.

No new driver is needed: the queued operations are themselves sans-IO generators,
and ``lockstep`` is one more operation that runs them side by side. At each step
it collects the command (or batch) every unfinished operation is waiting on, and
yields them as one ``Batch``: one round trip for the step, whatever the number of
calls. A call of one command (``get``, ``set``, ``delete``, ``expire``, ...) thus
costs nothing beyond its share of the round trip; one that needs a second step
(``incr`` past 64 bits, ``get_or_set`` on a miss) takes the next round trip with
the others that do.

Errors: a call that fails (a missing key for ``incr``, a wrong type) does not
stop the others. Its exception takes its place among the results; ``execute()``
then raises ``PipelineError`` (with every result, exceptions included, in
``.results``) unless called with ``raise_on_error=False``. A connection error is
not a call's error: it fails the whole pipeline (or, with ``IGNORE_EXCEPTIONS``,
gives each call the result an empty cache would).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from redis.exceptions import ResponseError

from django_asyncredis import _operations as ops
from django_asyncredis.errors import CacheError

if TYPE_CHECKING:
    from django_asyncredis.cache import Expiry, Key, RedisCache, Timeout, When


class PipelineError(CacheError):
    """Some calls of a pipeline failed; ``results`` holds every call's result, with
    the exception of each failed call in its place."""

    def __init__(self, results: list[Any]) -> None:
        self.results = results
        failed = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
        detail = "; ".join(f"call {i}: {type(r).__name__}: {r}" for i, r in failed[:3])
        super().__init__(f"{len(failed)} of {len(results)} pipelined calls failed ({detail}).")


@dataclass(frozen=True)
class _Call:
    """One queued cache call: its operation, how its result becomes Django's, and
    what it returns when the server is unavailable in ignore-exceptions mode."""

    operation: ops.Operation[Any]
    finish: Callable[[Any], Any]
    fallback: Callable[[], Any]


class _Failed:
    """An operation's exception, kept apart from values an operation may return."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _is_command(request: Any) -> bool:
    return type(request) is tuple or type(request) is ops.Batch


def lockstep(operations: list[ops.Operation[Any]]) -> ops.Operation[list[Any]]:
    """Run operations side by side, each step's commands in one ``Batch``; the
    result of each (or a ``_Failed`` with its exception), in order."""
    results: list[Any] = [None] * len(operations)
    pending: dict[int, Any] = {}

    def advance(index: int, reply: Any, error: BaseException | None = None) -> None:
        operation = operations[index]
        try:
            request = operation.send(reply) if error is None else operation.throw(error)
        except StopIteration as stop:
            results[index] = stop.value
        except Exception as exc:  # the call's own error: the others go on
            results[index] = _Failed(exc)
        else:
            pending[index] = request

    try:
        for index in range(len(operations)):
            advance(index, None)
        while pending:
            # Anything but a command (an Offload of a lazy value) is done on its own.
            for index in [i for i, request in pending.items() if not _is_command(request)]:
                while index in pending and not _is_command(pending[index]):
                    try:
                        reply = yield pending.pop(index)
                    except ResponseError as exc:
                        advance(index, None, exc)
                    else:
                        advance(index, reply)
            if not pending:
                break
            step, pending = pending, {}
            commands: list[ops.Command] = []
            spans: dict[int, tuple[int, int]] = {}
            for index, request in step.items():
                start = len(commands)
                if type(request) is ops.Batch:
                    commands.extend(request)
                else:
                    commands.append(request)
                spans[index] = (start, len(commands))
            try:
                replies = yield ops.Batch(commands)
            except ResponseError as exc:
                replies = getattr(exc, "batch_replies", None)
                if replies is None or len(replies) != len(commands):
                    raise
            for index, (start, end) in spans.items():
                part = replies[start:end]
                error = next((r for r in part if isinstance(r, ResponseError)), None)
                if error is not None:
                    advance(index, None, error)
                elif type(step[index]) is ops.Batch:
                    advance(index, list(part))
                else:
                    advance(index, part[0])
    finally:
        for operation in operations:
            operation.close()
    return results


class _Queue:
    """The calls a pipeline accepts: Django's single-key methods and django-redis's
    expiry ones, with the same arguments; each returns the pipeline (to chain)."""

    def __init__(self, cache: RedisCache) -> None:
        self._cache = cache
        self._calls: list[_Call] = []
        #: Each call's result, in order, once the pipeline has run.
        self.results: list[Any] = []

    def __len__(self) -> int:
        return len(self._calls)

    def _queue(
        self, operation: ops.Operation[Any], fallback: Any, finish: Callable[[Any], Any] = bool
    ) -> _Queue:
        thunk = fallback if isinstance(fallback, _Later) else _Later(lambda: fallback)
        self._calls.append(_Call(operation, finish, thunk))
        return self

    def get(self, key: Key, default: Any = None, version: int | None = None) -> _Queue:
        return self._queue(self._cache._get(key, default, version), default, _same)

    def set(
        self,
        key: Key,
        value: Any,
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
        nx: bool = False,
        xx: bool = False,
    ) -> _Queue:
        operation = self._cache._set(key, value, timeout, version, nx, xx)
        if nx or xx:
            return self._queue(operation, False)
        return self._queue(operation, None, _none)

    def add(
        self, key: Key, value: Any, timeout: Timeout = DEFAULT_TIMEOUT, version: int | None = None
    ) -> _Queue:
        return self._queue(self._cache._set(key, value, timeout, version, nx=True), False)

    def get_or_set(
        self,
        key: Key,
        default: Any | Callable[[], Any],
        timeout: Timeout = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> _Queue:
        operation = self._cache._get_or_set(key, default, timeout, version)
        return self._queue(operation, _Later(lambda: _computed(default)), _same)

    def touch(
        self, key: Key, timeout: Timeout = DEFAULT_TIMEOUT, version: int | None = None
    ) -> _Queue:
        return self._queue(self._cache._touch(key, timeout, version), False)

    def delete(self, key: Key, version: int | None = None) -> _Queue:
        return self._queue(ops.delete(self._cache._key(key, version)), False)

    def has_key(self, key: Key, version: int | None = None) -> _Queue:
        return self._queue(ops.has_key(self._cache._key(key, version)), False)

    def incr(self, key: Key, delta: int = 1, version: int | None = None) -> _Queue:
        return self._queue(self._cache._incr(key, delta, version, False, False), None, _same)

    def decr(self, key: Key, delta: int = 1, version: int | None = None) -> _Queue:
        return self._queue(self._cache._incr(key, delta, version, True, False), None, _same)

    def ttl(self, key: Key, version: int | None = None) -> _Queue:
        return self._queue(ops.ttl(self._cache._key(key, version), "TTL"), 0, _same)

    def pttl(self, key: Key, version: int | None = None) -> _Queue:
        return self._queue(ops.ttl(self._cache._key(key, version), "PTTL"), 0, _same)

    def expire(self, key: Key, timeout: Expiry | None, version: int | None = None) -> _Queue:
        return self._queue(self._cache._expire_in(key, timeout, 1000, version), False)

    def pexpire(self, key: Key, timeout: Expiry | None, version: int | None = None) -> _Queue:
        return self._queue(self._cache._expire_in(key, timeout, 1, version), False)

    def expire_at(self, key: Key, when: When, version: int | None = None) -> _Queue:
        return self._queue(self._cache._expire_at(key, when, 1000, version), False)

    def pexpire_at(self, key: Key, when: When, version: int | None = None) -> _Queue:
        return self._queue(self._cache._expire_at(key, when, 1, version), False)

    def persist(self, key: Key, version: int | None = None) -> _Queue:
        return self._queue(ops.persist(self._cache._key(key, version)), False)

    def _discard(self) -> None:
        """The block raised: the queued calls are dropped, unsent."""
        for call in self._calls:
            call.operation.close()
        self._calls = []

    def _take(self) -> tuple[ops.Operation[list[Any]], list[_Call]]:
        calls, self._calls = self._calls, []
        return lockstep([call.operation for call in calls]), calls

    def _finish(self, calls: list[_Call], outcomes: list[Any], raise_on_error: bool) -> list[Any]:
        results = []
        for call, outcome in zip(calls, outcomes, strict=True):
            if isinstance(outcome, _Failed):
                results.append(outcome.error)
            elif outcome is _UNAVAILABLE:
                results.append(call.fallback())
            else:
                results.append(call.finish(outcome))
        self.results = results
        if raise_on_error and any(isinstance(r, BaseException) for r in results):
            raise PipelineError(results)
        return results


class Pipeline(_Queue):
    """``with cache.pipeline() as p:``: the sync API's pipeline."""

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Run the queued calls; each one's result, in order (see ``PipelineError``)."""
        operation, calls = self._take()
        outcomes = self._cache._sync.run(operation, [_UNAVAILABLE] * len(calls))
        return self._finish(calls, outcomes, raise_on_error)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.execute()
        else:
            self._discard()


class AsyncPipeline(_Queue):
    """``async with cache.apipeline() as p:``: the async API's pipeline."""

    async def aexecute(self, raise_on_error: bool = True) -> list[Any]:
        """Run the queued calls; each one's result, in order (see ``PipelineError``)."""
        operation, calls = self._take()
        outcomes = await self._cache._async.run(operation, [_UNAVAILABLE] * len(calls))
        return self._finish(calls, outcomes, raise_on_error)

    async def __aenter__(self) -> AsyncPipeline:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.aexecute()
        else:
            self._discard()


#: A call's outcome when the server was unavailable in ignore-exceptions mode.
_UNAVAILABLE: Any = object()


class _Later:
    """A fallback computed only if needed (``get_or_set``'s callable default)."""

    __slots__ = ("function",)

    def __init__(self, function: Callable[[], Any]) -> None:
        self.function = function

    def __call__(self) -> Any:
        return self.function()


def _computed(default: Any) -> Any:
    return default() if callable(default) else default


def _same(value: Any) -> Any:
    return value


def _none(value: Any) -> None:
    return None
