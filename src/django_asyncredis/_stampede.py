"""Stampede protection for ``get_or_set``: when a hot key expires, one caller
recomputes it and the others wait for that result or are served the old one.

Three tools, from cheapest to strongest (docs/stampede.md):

- **Single-flight in the process** (always on for a callable default): the
  concurrent misses of one key, version and cache settings share one
  computation. A process-wide registry maps (settings identity, full Redis key)
  to the ``_Flight`` in progress: a ``concurrent.futures.Future`` that the
  computing caller settles. Async waiters get an asyncio future of their own
  loop, woken with ``call_soon_threadsafe`` (no thread hop, any loop); sync
  waiters block on the future with a bound (``WAIT_SECONDS``), then compute
  themselves. A failure reaches every waiter and is not stored; a computing
  caller that is cancelled hands the work over (``_HandOff``) to a waiter.
- **Single-flight across processes** (``lock=``/``STAMPEDE_LOCK``): the
  computing caller first takes a short server-side lock (``SET NX PX``, as
  ``cache.lock``); the other processes poll for the value and take the lock
  themselves if the holder dies (its TTL).
- **Early refresh** (``stale=``/``STAMPEDE_STALE``, ``xfetch=``/``STAMPEDE_XFETCH``):
  the value is stored framed (``_codec.FRAMED``) with its soft expiry and how
  long it took to compute. After the soft expiry (stale-while-revalidate), or
  with a probability rising as it nears (XFetch, weighted by that duration),
  one caller refreshes it, claiming a server-side lock so that there is never
  more than one refresh per key at a time, while the others are served the
  value they read at once. Async callers refresh in a background task of their
  loop; sync callers inline.

The Redis side is sans-IO operations (``read``, ``store``, ``claim_or_wait``,
``claim``, ``release``) run by the same drivers as every other operation.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.core.exceptions import SynchronousOnlyOperation
from redis.exceptions import LockError

from django_asyncredis import _operations as ops
from django_asyncredis._codec import Codec, Framed

if TYPE_CHECKING:
    from django_asyncredis._core import AsyncCore
    from django_asyncredis._sync import SyncAdapter

logger = logging.getLogger("django_asyncredis.stampede")

#: How long a waiter waits for another caller's computation before computing itself.
WAIT_SECONDS = 60.0
#: The TTL of the lock that claims a refresh (and of the cross-process lock when
#: it is switched on with ``True``): a dead refresher frees the key after it.
DEFAULT_LOCK_SECONDS = 10.0
#: How often a process waiting on another process's computation reads the key.
POLL_SECONDS = 0.025

#: What a driver returns in ignore-exceptions mode when the server is unavailable.
UNAVAILABLE: Any = object()
_MISS: Any = object()


class Policy:
    """Which tools a ``get_or_set`` uses (None: off)."""

    __slots__ = ("framed", "lock", "stale", "xfetch")

    def __init__(
        self, stale: float | None = None, xfetch: float | None = None, lock: float | None = None
    ) -> None:
        self.stale = stale  # seconds served stale after the timeout
        self.xfetch = xfetch  # XFetch's beta (1.0: the paper's)
        self.lock = lock  # cross-process lock TTL, seconds
        #: Whether values carry metadata (soft expiry, computation time).
        self.framed = stale is not None or xfetch is not None

    def merged(self, stale: Any, xfetch: Any, lock: Any) -> Policy:
        """This policy with a call's own choices (None: keep; False: off; True:
        the default value: 1.0 for XFetch's beta, ``DEFAULT_LOCK_SECONDS``)."""
        if stale is None and xfetch is None and lock is None:
            return self
        return Policy(
            _choice("stale", stale, self.stale, None),
            _choice("xfetch", xfetch, self.xfetch, 1.0),
            _choice("lock", lock, self.lock, DEFAULT_LOCK_SECONDS),
        )


def _choice(name: str, given: Any, default: float | None, when_true: float | None) -> float | None:
    if given is None:
        return default
    if given is False:
        return None
    if given is True:
        if when_true is None:
            raise TypeError(f"{name}= takes a number of seconds > 0, False or None, not True.")
        return when_true
    if isinstance(given, int | float) and given > 0:
        return float(given)
    raise TypeError(f"{name}= must be a number > 0, True, False or None, not {given!r}.")


class Call:
    """One ``get_or_set``: everything the functions below need (a plain slotted
    class: it is built on every call, hits included)."""

    __slots__ = ("codec", "default", "identity", "key", "policy", "ttl_ms")

    def __init__(
        self,
        identity: int,
        codec: Codec,
        key: str,
        default: Any,
        ttl_ms: int | None,
        policy: Policy,
    ) -> None:
        self.identity = identity  # the cache settings': misses coalesce per settings and key
        self.codec = codec
        self.key = key  # the full Redis key
        self.default = default
        self.ttl_ms = ttl_ms
        self.policy = policy

    @property
    def flight_key(self) -> tuple[int, str]:
        return (self.identity, self.key)

    @property
    def lock_key(self) -> str:
        # A NUL cannot be in a key Django validates without warning: no collision.
        return self.key + "\x00lock"

    @property
    def lock_ms(self) -> int:
        return int((self.policy.lock or DEFAULT_LOCK_SECONDS) * 1000)


# The Redis side: sans-IO operations.


def read(codec: Codec, key: str, framed: bool) -> ops.Operation[Framed | None]:
    """The value under ``key`` with its metadata, or None on a miss."""
    raw = yield ("GET", key)
    if raw is None:
        return None
    if framed:
        return codec.loads_framed(raw, key)
    return Framed(codec.loads(raw, key), None, 0.0)


def store(call: Call, value: Any, seconds: float, replace: bool) -> ops.Operation[Any]:
    """Store a computed value and return the value callers get. A miss adds
    (``SET NX``) and reads back in the same round trip: if another writer won
    in between, theirs is returned (Django's race rule); a refresh overwrites."""
    ttl_ms = call.ttl_ms
    if ttl_ms is not None and ttl_ms <= 0:
        return value  # Django: a timeout <= 0 stores nothing
    expiry: tuple[Any, ...] = ()
    data: bytes | int
    if call.policy.framed:
        soft = math.inf if ttl_ms is None else time.time() + ttl_ms / 1000
        try:
            data = call.codec.dumps_framed(value, call.key, soft, seconds)
        except SynchronousOnlyOperation:
            data = yield ops.Offload(call.codec.dumps_framed, value, call.key, soft, seconds)
        if ttl_ms is not None:
            expiry = ("PX", ttl_ms + int((call.policy.stale or 0) * 1000))
    else:
        data = yield from ops.encode(call.codec, value, call.key)
        if ttl_ms is not None:
            expiry = ("PX", ttl_ms)
    if replace:
        yield ("SET", call.key, data, *expiry)
        return value
    added, raw = yield ops.Batch((("SET", call.key, data, "NX", *expiry), ("GET", call.key)))
    if added is not None or raw is None:
        return value
    return call.codec.loads(raw, call.key)


def claim(name: str, token: bytes, ttl_ms: int) -> ops.Operation[bool]:
    """Take the lock ``name`` if it is free (``cache.lock``'s ``SET NX PX``)."""
    reply = yield ("SET", name, token, "NX", "PX", ttl_ms)
    return reply is not None


def release(name: str, token: bytes) -> ops.Operation[None]:
    """Release our lock; one that expired meanwhile is no error here."""
    with contextlib.suppress(LockError):
        yield from ops.lock_release(name, token)


def claim_or_wait(call: Call, token: bytes) -> ops.Operation[Framed | None]:
    """Another process may be computing: wait for its value. Returns the value
    once stored, or None once we hold the lock and must compute: at once if no
    one held it, or when the holder died and the lock's TTL freed it."""
    framed = call.policy.framed
    while True:
        if (yield from claim(call.lock_key, token, call.lock_ms)):
            # The holder may have stored the value and released just before.
            found = yield from read(call.codec, call.key, framed)
            if found is not None:
                yield from release(call.lock_key, token)
            return found
        found = yield from read(call.codec, call.key, framed)
        if found is not None:
            return found
        yield ops.Sleep(POLL_SECONDS)


def needs_refresh(found: Framed, policy: Policy) -> bool:
    """Whether a hit should be refreshed now: past its soft expiry, or, with
    XFetch, early with a probability that rises as expiry nears and with how
    long the value took to compute (``now - delta * beta * ln(rand) >= expiry``)."""
    soft = found.soft_expiry
    if soft is None:
        return False
    now = time.time()
    if now >= soft:
        return True
    beta = policy.xfetch
    if beta is None or found.compute_seconds <= 0:
        return False
    return now - found.compute_seconds * beta * math.log(1.0 - random.random()) >= soft


# The in-process registry of computations in flight.


class _HandOff(Exception):
    """The computing caller was cancelled: a waiter takes the computation over."""


class _Flight:
    """One computation in progress, settled once with its value or exception."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()


_flights: dict[tuple[int, str], _Flight] = {}
#: Background refreshes, held so that they are not garbage-collected mid-flight.
_refreshes: set[asyncio.Task[None]] = set()


def _reset_after_fork() -> None:
    """A forked child starts with no computation in flight: the parent's would
    never settle there."""
    _flights.clear()
    _refreshes.clear()


os.register_at_fork(after_in_child=_reset_after_fork)


def _take_off(call: Call) -> tuple[_Flight, bool]:
    """The flight for ``call``'s key, and whether we are the one to compute it."""
    flight = _Flight()
    current = _flights.setdefault(call.flight_key, flight)
    return current, current is flight


@contextlib.contextmanager
def _landed_on_failure(call: Call, flight: _Flight) -> Iterator[None]:
    """Settle ``flight`` if the block fails: its error reaches every waiter once; a
    cancellation (any other BaseException) hands the work over, so none hangs."""
    try:
        yield
    except Exception as exc:
        _land(call, flight, error=exc)
        raise
    except BaseException:
        _land(call, flight, error=_HandOff())
        raise


def _land(
    call: Call, flight: _Flight, value: Any = None, error: BaseException | None = None
) -> None:
    """Settle a flight: unregister it first, so a caller arriving now starts afresh."""
    if _flights.get(call.flight_key) is flight:
        del _flights[call.flight_key]
    if error is not None:
        flight.future.set_exception(error)
    else:
        flight.future.set_result(value)


async def _await_flight(flight: _Flight) -> Any:
    """The flight's outcome, awaited on the running loop without blocking it."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[Any] = loop.create_future()
    loop_thread = threading.get_ident()

    def settle(done: concurrent.futures.Future[Any]) -> None:
        if waiter.done():  # this waiter timed out or was cancelled
            return
        error = done.exception()
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(done.result())

    def wake(done: concurrent.futures.Future[Any]) -> None:
        if threading.get_ident() == loop_thread:
            settle(done)
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there
            loop.call_soon_threadsafe(settle, done)

    flight.future.add_done_callback(wake)
    return await asyncio.wait_for(waiter, WAIT_SECONDS)


# Computing.


def _called(default: Any) -> Any:
    """The sync API's call of the default: an async one is refused."""
    result = default()
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        raise TypeError(_ASYNC_DEFAULT)
    return result


_ASYNC_DEFAULT = (
    "get_or_set() was given an async callable (or one returning an awaitable): "
    "use `await cache.aget_or_set(...)`, which awaits it."
)


def check_sync_default(default: Any) -> None:
    """Refuse an ``async def`` before calling it, at the cost of one attribute read
    (this runs on every hit); other callables that return an awaitable (a partial,
    a marked function) are refused after the call, by ``_called``."""
    code = getattr(default, "__code__", None)
    if code is not None and code.co_flags & inspect.CO_COROUTINE:
        raise TypeError(_ASYNC_DEFAULT)


async def _acomputed(call: Call, replace: bool, core: AsyncCore) -> Any:
    """Compute (awaiting an awaitable result) and store; the value callers get."""
    started = time.perf_counter()
    value = call.default()
    if inspect.isawaitable(value):
        value = await value
    seconds = time.perf_counter() - started
    stored = await core.run(store(call, value, seconds, replace), UNAVAILABLE)
    return value if stored is UNAVAILABLE else stored


def _computed(call: Call, replace: bool, adapter: SyncAdapter) -> Any:
    started = time.perf_counter()
    value = _called(call.default)
    seconds = time.perf_counter() - started
    stored = adapter.run(store(call, value, seconds, replace), UNAVAILABLE)
    return value if stored is UNAVAILABLE else stored


async def _acompute_miss(call: Call, core: AsyncCore) -> Any:
    """A miss, computed by this process: under the cross-process lock if asked."""
    if call.policy.lock is None:
        return await _acomputed(call, False, core)
    token = uuid.uuid4().hex.encode()
    found = await core.run(claim_or_wait(call, token), None)
    if found is not None:
        return found.value
    try:
        return await _acomputed(call, False, core)
    finally:
        await core.run(release(call.lock_key, token), None)


def _compute_miss(call: Call, adapter: SyncAdapter) -> Any:
    if call.policy.lock is None:
        return _computed(call, False, adapter)
    token = uuid.uuid4().hex.encode()
    found = adapter.run(claim_or_wait(call, token), None)
    if found is not None:
        return found.value
    try:
        return _computed(call, False, adapter)
    finally:
        adapter.run(release(call.lock_key, token), None)


async def _arecheck(call: Call, core: AsyncCore) -> Any:
    """The key read again by the caller about to compute: a caller whose first
    read was slow may take off just after another flight stored the value."""
    found = await core.run(read(call.codec, call.key, call.policy.framed), None)
    return _MISS if found is None else found.value


async def _ashared(call: Call, core: AsyncCore) -> Any:
    """The miss's value, computed once for all the process's concurrent callers."""
    while True:
        flight, computing = _take_off(call)
        if not computing:
            try:
                return await _await_flight(flight)
            except _HandOff:
                continue  # its computing caller was cancelled: one of us takes over
            except TimeoutError:
                return await _acompute_miss(call, core)
        with _landed_on_failure(call, flight):
            value = await _arecheck(call, core)
            if value is _MISS:
                value = await _acompute_miss(call, core)
        _land(call, flight, value)
        return value


def _shared(call: Call, adapter: SyncAdapter) -> Any:
    while True:
        flight, computing = _take_off(call)
        if not computing:
            if _on_an_event_loop():
                # The sync API called from a loop's thread: waiting would block that
                # loop, which may be the one computing. Compute, uncoalesced.
                return _compute_miss(call, adapter)
            try:
                return flight.future.result(timeout=WAIT_SECONDS)
            except _HandOff:
                continue
            except concurrent.futures.TimeoutError:
                return _compute_miss(call, adapter)
        with _landed_on_failure(call, flight):
            value = adapter.run(read(call.codec, call.key, call.policy.framed), None)
            value = _MISS if value is None else value.value
            if value is _MISS:
                value = _compute_miss(call, adapter)
        _land(call, flight, value)
        return value


def _on_an_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# Refreshing a hit ahead of its expiry.


async def _arefresh(call: Call, flight: _Flight, core: AsyncCore) -> None:
    """The background refresh: claim the key across processes, compute, store."""
    token = uuid.uuid4().hex.encode()
    try:
        if not await core.run(claim(call.lock_key, token, call.lock_ms), False):
            _land(call, flight, error=_HandOff())  # another process is refreshing it
            return
        try:
            value = await _acomputed(call, True, core)
        finally:
            await core.run(release(call.lock_key, token), None)
    except Exception as exc:
        logger.exception("Refreshing the cache key %r failed.", call.key)
        _land(call, flight, error=exc)
        return
    except BaseException:
        _land(call, flight, error=_HandOff())
        raise
    _land(call, flight, value)


def _start_refresh(call: Call, core: AsyncCore) -> None:
    """Refresh in a task of the running loop, unless a computation of the key is
    already in flight in this process."""
    if call.flight_key in _flights:
        return
    flight, computing = _take_off(call)
    if not computing:
        return
    task = asyncio.get_running_loop().create_task(_arefresh(call, flight, core))
    _refreshes.add(task)
    task.add_done_callback(_refreshes.discard)


def _refresh_inline(call: Call, stale: Any, adapter: SyncAdapter) -> Any:
    """The sync refresh: this caller computes (others are served ``stale``)."""
    if call.flight_key in _flights:
        return stale
    flight, computing = _take_off(call)
    if not computing:
        return stale
    token = uuid.uuid4().hex.encode()
    with _landed_on_failure(call, flight):
        if not adapter.run(claim(call.lock_key, token, call.lock_ms), False):
            _land(call, flight, error=_HandOff())
            return stale
        try:
            value = _computed(call, True, adapter)
        finally:
            adapter.run(release(call.lock_key, token), None)
    _land(call, flight, value)
    return value


# The entry points of the backend's get_or_set and aget_or_set.


async def aget_or_set(call: Call, core: AsyncCore) -> Any:
    if not callable(call.default):
        return await _aplain_default(call, core)
    if call.policy.framed:
        found = await core.run(read(call.codec, call.key, True), None)
        if found is not None:
            if needs_refresh(found, call.policy):
                _start_refresh(call, core)
            return found.value
    else:
        value = await core.run(ops.get(call.codec, call.key, _MISS), _MISS)
        if value is not _MISS:
            return value
    return await _ashared(call, core)


def get_or_set(call: Call, adapter: SyncAdapter) -> Any:
    if not callable(call.default):
        return _plain_default(call, adapter)
    check_sync_default(call.default)
    if call.policy.framed:
        found = adapter.run(read(call.codec, call.key, True), None)
        if found is not None:
            if needs_refresh(found, call.policy):
                return _refresh_inline(call, found.value, adapter)
            return found.value
    else:
        value = adapter.run(ops.get(call.codec, call.key, _MISS), _MISS)
        if value is not _MISS:
            return value
    return _shared(call, adapter)


async def _aplain_default(call: Call, core: AsyncCore) -> Any:
    """A non-callable default: nothing to compute, so nothing to coalesce."""
    found = await core.run(read(call.codec, call.key, call.policy.framed), None)
    if found is not None:
        return found.value
    stored = await core.run(store(call, call.default, 0.0, False), UNAVAILABLE)
    return call.default if stored is UNAVAILABLE else stored


def _plain_default(call: Call, adapter: SyncAdapter) -> Any:
    found = adapter.run(read(call.codec, call.key, call.policy.framed), None)
    if found is not None:
        return found.value
    stored = adapter.run(store(call, call.default, 0.0, False), UNAVAILABLE)
    return call.default if stored is UNAVAILABLE else stored


# django-redis's HerdClient: its get() and set().


def herd_get(codec: Codec, key: str, default: Any, herd_seconds: float) -> ops.Operation[Any]:
    """HerdClient's ``get``: past the value's timeout (its soft expiry), report a
    miss with a probability that rises across the herd window, so that one of
    the callers recomputes while the others are still served the value."""
    raw = yield ("GET", key)
    if raw is None:
        return default
    found = codec.loads_framed(raw, key)
    soft = found.soft_expiry
    if soft is not None and _herd_expired(time.time() - soft, herd_seconds):
        return default
    return found.value


def _herd_expired(late: float, herd_seconds: float) -> bool:
    """django-redis's rule: ``late`` seconds past the timeout, a miss with a
    probability of about late / herd window, and always after the window."""
    if late < 0:
        return False
    return late >= herd_seconds or late + random.uniform(0, herd_seconds) >= herd_seconds


def herd_set(
    codec: Codec,
    key: str,
    value: Any,
    ttl_ms: int | None,
    herd_seconds: float,
    condition: str | None,
) -> ops.Operation[bool]:
    """HerdClient's ``set``: a value with a timeout is framed with that timeout as
    its soft expiry and lives ``herd_seconds`` longer on the server."""
    if ttl_ms is None or ttl_ms <= 0:
        return (yield from ops.set(codec, key, value, ttl_ms, condition))
    soft = time.time() + ttl_ms / 1000
    try:
        data = codec.dumps_framed(value, key, soft, 0.0)
    except SynchronousOnlyOperation:
        data = yield ops.Offload(codec.dumps_framed, value, key, soft, 0.0)
    hard = ttl_ms + int(herd_seconds * 1000)
    reply = yield ("SET", key, data, *((condition,) if condition else ()), "PX", hard)
    return condition is None or reply is not None


def default_policy(
    stale: float | None, xfetch: float | None, lock: float | None, herd: float | None
) -> Policy:
    """The alias's policy from its OPTIONS (a HerdClient serves stale for its window)."""
    return Policy(stale if stale is not None else herd, xfetch, lock)
