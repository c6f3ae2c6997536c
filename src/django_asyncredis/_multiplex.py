"""The multiplexed transport: every concurrent caller on one connection per (loop, server)
(or a few: ``shared_connections``, see ``Multiplexer``).

Why: with one pooled connection per concurrent caller, each command costs a pool
checkout and its own write and read system calls, and 64 busy tasks hold 64
server connections. Here every caller's command is appended to one write buffer,
flushed once per event-loop iteration (or sooner, past ``FLUSH_BYTES``), so the
commands issued in one iteration leave in one ``write``; replies come back in
order and are matched to callers by a FIFO of futures (a ``Batch``: one future
for its N replies).

What rides the shared connection: every request ``_core._send`` gets, except

- commands that change or depend on connection state, or block the connection
  (``DEDICATED_COMMANDS``; WATCH/MULTI/EXEC arrive as ``Pinned`` requests, which
  never reach ``_send``: they keep a dedicated pooled connection);
- requests whose packed size exceeds ``LARGE_REQUEST_BYTES``, so one large write
  does not hold up the small commands queued behind it.

Those go to the pooled connections (``dedicated``). Replies cannot be sized in
advance: a large reply delays the replies behind it by its transfer time (docs/design.md).

The connection is opened and authenticated by redis-py exactly as a pooled one
(AUTH, SELECT, CLIENT SETNAME, TLS, keepalive), then its transport is handed to
this module's protocol (``asyncio.BaseTransport.set_protocol``). Replies are
parsed by hiredis; without hiredis the pooled transport is used.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from django_asyncredis._idempotency import may_resend, raise_unanswered
from django_asyncredis._operations import Batch, raise_batch_errors

try:
    import hiredis
    from redis._parsers import _HiredisParser  # private module; see docs/design.md

    AVAILABLE = True
except ImportError:  # pragma: no cover - hiredis is an extra
    AVAILABLE = False

#: Commands that never ride the shared connection: they change its state (the
#: next caller's commands would run in another db, or be tracked, or queued in a
#: transaction) or block it (every caller behind them would wait).
DEDICATED_COMMANDS = frozenset(
    {
        "WATCH", "UNWATCH", "MULTI", "EXEC", "DISCARD",
        "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE",
        "SUNSUBSCRIBE", "MONITOR", "SELECT", "CLIENT", "AUTH", "HELLO", "RESET", "QUIT",
        "READONLY", "READWRITE",
        "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX",
        "BZMPOP", "XREAD", "XREADGROUP", "WAIT", "WAITAOF",
    }
)  # fmt: skip

#: A request packed larger than this takes a dedicated pooled connection: written
#: on the shared one, it would hold up every command behind it for its transfer.
LARGE_REQUEST_BYTES = 256 * 1024
#: Coalesced writes are flushed at the end of the loop iteration, or at once when
#: they reach this size (bounding the memory a burst can queue).
FLUSH_BYTES = 256 * 1024
#: Times a request that never reached the server (its connection failed before
#: the write) is put on a new connection before the failure is reported.
_UNSENT_ATTEMPTS = 3


#: Seconds without opening a further connection after one failed to open.
_GROW_BACKOFF = 1.0


class NotSent(ConnectionError):
    """The connection failed before this request was written: it never ran."""


class ReplyOverdue(Exception):
    """No reply within ``socket_timeout`` (the caller's deadline, kept by the connection)."""


class _Batch:
    """A caller waiting for the ``count`` replies of a Batch (a single command's
    caller waits in the queue as its bare future: no object of its own per call)."""

    __slots__ = ("count", "future", "replies")

    def __init__(self, future: asyncio.Future[Any], count: int) -> None:
        self.future = future
        self.count = count
        self.replies: list[Any] = []


#: A caller in the queue: its future (one reply), or a ``_Batch``.
_Waiter = asyncio.Future[Any] | _Batch


class SharedConnection(asyncio.Protocol):
    """One server connection carrying many callers' commands, in order."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, writer: asyncio.StreamWriter, timeout: float | None
    ) -> None:
        self._loop = loop
        #: ``loop.create_future``, without its Python frame on asyncio's own loops (a
        #: tenth of ``submit``'s cost); a loop of another kind makes its own.
        self._new_future: Callable[[], asyncio.Future[Any]] = (
            functools.partial(asyncio.Future, loop=loop)
            if type(loop).create_future is asyncio.BaseEventLoop.create_future
            else loop.create_future
        )
        self._timeout = timeout
        #: (deadline, bytes received when written, ``upto``) per write, oldest
        #: first: the callers numbered below ``upto`` (and not in an earlier entry)
        #: are due by ``deadline``, the write's time plus the timeout. One timer,
        #: set for the oldest, enforces every caller's deadline: every caller has
        #: the same timeout, so deadlines come in queue order (asyncio.timeout per
        #: call, a timer handle each, was measured at a fifth of the CPU per get).
        #: Stamped per write, not per call: coalesced callers share the write's
        #: time (their deadline is later than their call by at most the loop
        #: iteration that coalesced them), one clock read for all of them.
        self._deadlines: collections.deque[tuple[float, int, int]] = collections.deque()
        #: Callers answered so far: the number of the first one in ``_waiting``
        #: (callers are numbered in queue order from 0).
        self._answered = 0
        #: Callers below this number have been failed as overdue already.
        self._overdue_upto = 0
        self._timer: asyncio.TimerHandle | None = None
        # Held for the connection's life: a StreamWriter closes its transport when collected.
        self._writer = writer
        transport = self._transport = writer.transport
        self._reader = hiredis.Reader(replyError=_HiredisParser.parse_error)
        #: The callers whose replies are due, in order: the last
        #: ``len(_outgoing)`` of them are queued there, not yet written (one
        #: packed request each).
        self._waiting: collections.deque[_Waiter] = collections.deque()
        self._outgoing: list[bytes] = []
        self._outgoing_bytes = 0
        self._flush_scheduled = False
        self.broken: Exception | None = None
        #: Bytes received so far: a caller that times out while this has not moved
        #: since its command was queued knows the connection is stuck, not busy.
        self.received = 0
        self._retiring = False
        #: Takes new commands: not broken, not retiring.
        self.usable = True
        self.closed: asyncio.Future[None] = loop.create_future()
        #: Called once when the connection is lost (the pool's ``closed_total``).
        self.on_lost: Callable[[], None] | None = None
        transport.set_protocol(self)

    # -- callers' side ----------------------------------------------------------

    def submit(self, packed: bytes, count: int | None) -> asyncio.Future[Any]:
        """Queue a packed request; the future gets its reply (a Batch: the list of
        its ``count`` replies)."""
        future = self._new_future()
        waiting = self._waiting
        idle = not waiting
        waiting.append(future if count is None else _Batch(future, count))
        if idle:
            # Nothing in flight, so nothing to coalesce with yet: written at once,
            # a lone caller pays no extra loop iteration. Calls made while this one
            # waits are coalesced.
            self._transport.write(packed)
            if self._timeout is not None:
                self._stamp()
            return future
        self._outgoing.append(packed)
        self._outgoing_bytes += len(packed)
        if self._outgoing_bytes >= FLUSH_BYTES:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._outgoing or self.broken is not None:
            return
        data = self._outgoing[0] if len(self._outgoing) == 1 else b"".join(self._outgoing)
        self._outgoing = []
        self._outgoing_bytes = 0
        self._transport.write(data)
        if self._timeout is not None:
            self._stamp()

    def _stamp(self) -> None:
        """Give the callers just written (every one queued so far and not stamped)
        their deadline; the timer is set if none is."""
        assert self._timeout is not None
        deadline = self._loop.time() + self._timeout
        self._deadlines.append((deadline, self.received, self._answered + len(self._waiting)))
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._expire)

    def retire(self) -> None:
        """Take no new commands; close once every waiting caller has its reply
        (at once if none waits: replies due to cancelled callers are not awaited)."""
        self._retiring = True
        self.usable = False
        if all(_future(waiter).done() for waiter in self._waiting):
            self._transport.close()

    def _expire(self) -> None:
        """Fail the callers whose deadline has passed; a connection on which no
        byte arrived since such a caller's command was queued is stuck, not busy
        (a stopped server or network): it is aborted, failing the others too."""
        self._timer = None
        now = self._loop.time()
        deadlines = self._deadlines
        stuck = False
        while deadlines and deadlines[0][0] <= now:
            _, mark, upto = deadlines.popleft()
            first = max(self._overdue_upto, self._answered)  # not answered, not failed
            self._overdue_upto = upto
            overdue = itertools.islice(self._waiting, first - self._answered, upto - self._answered)
            for waiter in overdue:
                future = _future(waiter)
                if not future.done():  # its reply, when it comes, is dropped
                    future.set_exception(ReplyOverdue())
                    stuck = stuck or mark == self.received
        if stuck and self.broken is None:
            self.abort(ConnectionError("No reply within socket_timeout: connection replaced."))
        elif deadlines:
            self._timer = self._loop.call_at(deadlines[0][0], self._expire)

    def abort(self, reason: Exception) -> None:
        """Give up on the connection (stuck): every waiting caller fails."""
        self._fail(reason)
        self._transport.abort()

    # -- the event loop's side ---------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        answered = 0
        try:
            reply = reader.gets()
            while reply is not False:
                waiter = waiting[0]
                if isinstance(waiter, _Batch):
                    replies = waiter.replies
                    replies.append(reply)
                    if len(replies) < waiter.count:
                        reply = reader.gets()
                        continue
                    future = waiter.future
                    answer: Any = replies  # a batch answers its replies, errors in place
                else:
                    future = waiter
                    answer = reply
                waiting.popleft()
                answered += 1
                if not future.done():  # cancelled or timed out: dropped
                    if answer is reply and isinstance(reply, ResponseError):
                        future.set_exception(reply)
                    else:
                        future.set_result(answer)
                reply = reader.gets()
        except (hiredis.ProtocolError, IndexError) as exc:  # garbage, or a reply nobody asked for
            self.abort(ConnectionError(f"Protocol error on the shared connection: {exc}"))
            return
        finally:
            self._answered += answered
        deadlines = self._deadlines
        while deadlines and deadlines[0][2] <= self._answered:  # their callers all answered
            deadlines.popleft()
        if self._retiring and not waiting:
            self._transport.close()

    def eof_received(self) -> bool | None:
        self.usable = False  # new calls go to a new connection at once
        return None  # the transport closes itself: connection_lost fails the waiting ones

    def connection_lost(self, exc: Exception | None) -> None:
        on_lost, self.on_lost = self.on_lost, None
        if on_lost is not None:
            on_lost()
        self._fail(ConnectionError(f"Connection closed by server{f': {exc}' if exc else ''}."))
        if not self.closed.done():
            self.closed.set_result(None)

    def _fail(self, reason: Exception) -> None:
        if self.broken is None:
            self.broken = reason
        self.usable = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadlines.clear()
        waiting, self._waiting = self._waiting, collections.deque()
        written = len(waiting) - len(self._outgoing)
        self._outgoing = []
        for index, waiter in enumerate(waiting):
            future = _future(waiter)
            if not future.done():
                future.set_exception(reason if index < written else NotSent(str(reason)))


def _future(waiter: _Waiter) -> asyncio.Future[Any]:
    return waiter.future if isinstance(waiter, _Batch) else waiter


class Multiplexer:
    """The shared connections of one pool (one server, one event loop): up to the
    server's ``shared_connections`` of them, each replaced when it fails.

    With one (the default), ``current`` is that connection and a call's only cost
    is reading it. With several, each call takes the usable connection with the
    fewest callers waiting (``pick``); a further one is opened only when every
    open one has callers waiting, so a lightly used cache holds one connection and
    a busy one grows to ``shared_connections``.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._limit: int = pool.server.shared_connections
        #: With one shared connection: that connection, if any (maybe broken: check
        #: ``usable``). With several: always None (a call asks ``pick``).
        self.current: SharedConnection | None = None
        #: Every connection opened and not yet lost (usable, retiring or failing).
        self._connections: list[SharedConnection] = []
        #: The opening awaited by the callers that found no usable connection.
        self._opening: asyncio.Future[SharedConnection] | None = None
        #: Connections being opened now: they count toward ``shared_connections``.
        self._pending = 0
        #: Loop time before which no further connection is opened: one that failed
        #: to open (server down, ``maxclients``) is not tried again on every call.
        self._grow_after = 0.0
        self._loop = asyncio.get_running_loop()
        self._closed = False

    def pick(self) -> SharedConnection | None:
        """The connection for the next call, without awaiting; None when the call
        must ``await connection()`` instead: no connection is usable, or (with
        several) every one has callers waiting and a further one is due."""
        if self._limit == 1:
            current = self.current
            return current if current is not None and current.usable else None
        best, grow = self._least_loaded()
        return None if grow else best

    def _least_loaded(self) -> tuple[SharedConnection | None, bool]:
        """The usable connection with the fewest callers waiting, the oldest on a tie
        (so light traffic stays on one, its writes coalesced); and whether a further
        connection is due: every usable one has callers waiting, fewer than
        ``shared_connections`` are open or opening, and none failed to open lately."""
        best: SharedConnection | None = None
        fewest = 0
        usable = 0
        for connection in self._connections:
            if connection.usable:
                waiting = len(connection._waiting)
                if best is None or waiting < fewest:
                    best, fewest = connection, waiting
                    if not waiting:
                        return best, False
                usable += 1
        grow = (
            best is not None
            and usable + self._pending < self._limit
            and not self._closed
            and self._loop.time() >= self._grow_after
        )
        return best, grow

    async def connection(self) -> SharedConnection:
        """A usable connection: the one ``pick`` would give, else a new one.

        With none usable, one opening is shared by every caller waiting for it.
        With several allowed and all busy, this caller waits for a further one of
        its own (the others go on on the busy ones): every opening is awaited by a
        caller, so none is left pending when a loop stops running.
        """
        if self._closed:
            raise NotSent("The shared connection was closed.")
        if self._limit == 1:
            best, grow = self.pick(), False
        else:
            best, grow = self._least_loaded()
        if best is not None and not grow:
            return best
        if best is None:
            if self._opening is None:
                self._opening = self._start_opening()
            try:
                # Shielded: a caller cancelled while it opens leaves it to the others.
                opened = await asyncio.shield(self._opening)
            finally:
                if self._opening is not None and self._opening.done():
                    self._opening = None
            return opened
        try:
            return await asyncio.shield(self._start_opening())
        except Exception:
            # Not opened (refused, timed out): this call goes on a busy one, and no
            # further connection is tried for a while.
            self._grow_after = self._loop.time() + _GROW_BACKOFF
            return best if best.usable else await self.connection()

    def _start_opening(self) -> asyncio.Future[SharedConnection]:
        self._pending += 1
        opening = asyncio.ensure_future(self._open())
        opening.add_done_callback(self._opened)
        return opening

    def _opened(self, opening: asyncio.Future[SharedConnection]) -> None:
        # A callback, not a ``finally``: a task cancelled before it started runs no code.
        self._pending -= 1
        if not opening.cancelled():
            opening.exception()  # retrieved: its caller may have been cancelled

    async def _open(self) -> SharedConnection:
        redis_connection = await self._pool.open_unpooled()
        writer = redis_connection._writer  # see docs/design.md: the transport is taken over
        redis_connection._reader = redis_connection._writer = None
        connection = SharedConnection(
            asyncio.get_running_loop(), writer, self._pool.command_timeout
        )
        connection.on_lost = lambda: self._lost(connection)
        if self._closed:  # closed while it opened: its callers go to a pooled connection
            connection.abort(NotSent("The shared connection was closed."))
            raise NotSent("The shared connection was closed.")
        self._connections.append(connection)
        if self._limit == 1:
            self.current = connection
        return connection

    def _lost(self, connection: SharedConnection) -> None:
        self._pool.counts.closed_total += 1
        if connection in self._connections:
            self._connections.remove(connection)

    async def aclose(self) -> None:
        """Close every connection once its waiting callers have their replies,
        all within one ``socket_timeout``."""
        self._closed = True
        self.current = None
        connections = list(self._connections)
        for connection in connections:
            connection.retire()
        if not connections:
            return
        # Bounded: a server that stopped answering must not hold up a loop's end.
        _, stuck = await asyncio.wait(
            [connection.closed for connection in connections],
            timeout=self._pool.command_timeout,
        )
        if stuck:
            for connection in connections:
                if not connection.closed.done():
                    connection.abort(ConnectionError("Closed: no reply within socket_timeout."))
            await asyncio.wait(stuck)

    def open_count(self) -> int:
        """The shared connections open now (the pool's ``shared`` gauge)."""
        return len(self._connections)

    def transports(self) -> list[Any]:
        """The open connections' transports (closed directly when the loop is gone)."""
        return [connection._transport for connection in self._connections]


def rides_shared(request: Any) -> bool:
    """Whether a request may go on the shared connection (before its size is known)."""
    if type(request) is Batch:
        for command in request:  # noqa: SIM110  # a loop, not all(...): no generator per batch
            if not _name_rides_shared(command[0]):
                return False
        return True
    return _name_rides_shared(request[0])


#: Command name (as the operations spell it) -> whether it may ride the shared connection.
_RIDES: dict[Any, bool] = {}


def _name_rides_shared(name: Any) -> bool:
    rides = _RIDES.get(name)
    if rides is None:
        word = name.upper() if type(name) is str else bytes(name).decode("latin-1").upper()
        rides = word not in DEDICATED_COMMANDS
        if len(_RIDES) < 1024:  # names come from the code, but a raw caller could vary them
            _RIDES[name] = rides
    return rides


def _pack(request: Any) -> bytes:
    if type(request) is Batch:
        return b"".join(map(hiredis.pack_command, request))
    return hiredis.pack_command(request)  # type: ignore[no-any-return]


#: How a request on the shared connection can fail (handled by ``send``'s retry rule).
SEND_FAILURES = (ReplyOverdue, ConnectionError)


def submit_now(pool: Any, request: Any) -> asyncio.Future[Any] | None:
    """A request put on the pool's shared connection at once: the future of its
    reply (a ``Batch``: the list of its replies, errors in place; see
    ``raise_batch_errors``). None when it must go through ``send`` instead (no
    usable connection yet, a command that does not ride the shared connection, a
    large request, an empty batch).

    The drivers' fast path: awaiting this future rather than ``send`` spares a
    coroutine per call. A failure of the future is handed to ``send(...,
    failed=exc)``, which applies the same retry rule as for its own attempts.
    """
    multiplexer: Multiplexer | None = pool.shared
    if multiplexer is None:
        return None
    connection = multiplexer.current  # one shared connection: nothing else to do
    if connection is None or not connection.usable:
        connection = multiplexer.pick()
        if connection is None:
            return None
    if type(request) is Batch:
        if not request or not rides_shared(request):
            return None
        packed = _pack(request)
        count: int | None = len(request)
    else:
        name = request[0]
        if not (_RIDES.get(name) or _name_rides_shared(name)):  # the lookup inline: hot
            return None
        packed = hiredis.pack_command(request)
        count = None
    if len(packed) > LARGE_REQUEST_BYTES:
        return None
    return connection.submit(packed, count)


async def send(
    pool: Any,
    request: Any,
    dedicated: Callable[[Any, Any], Awaitable[Any]],
    failed: Exception | None = None,
) -> Any:
    """One round trip on the pool's shared connection, or on a dedicated one (see above).

    Failure rules are the pooled transport's (``_core._send``): a request that may
    have reached the server is sent again only if ``may_resend`` allows it, up to
    ``retries``; one that was never written is put on a new connection. ``failed``:
    how the request's first attempt (``submit_now``) failed, counted as one.
    """
    if type(request) is Batch and not request:
        return []
    if not rides_shared(request):
        return await dedicated(pool, request)
    packed = _pack(request)
    if len(packed) > LARGE_REQUEST_BYTES:
        return await dedicated(pool, request)
    server = pool.server
    count = len(request) if type(request) is Batch else None
    attempts = _Attempts()
    if failed is not None:
        attempts.failed(server, request, failed)
    while True:
        multiplexer: Multiplexer | None = pool.shared
        if multiplexer is None:
            if pool.closed:  # closed under us: a connection closed after this request
                return await dedicated(pool, request)
            multiplexer = pool.shared = Multiplexer(pool)
        connection = multiplexer.current  # one shared connection: nothing else to do
        if connection is None or not connection.usable:
            connection = multiplexer.pick() or await multiplexer.connection()
        try:
            # socket_timeout: enforced by the connection (see SharedConnection._expire).
            reply = await connection.submit(packed, count)
        except SEND_FAILURES as exc:
            attempts.failed(server, request, exc)
            continue
        if count is not None:
            raise_batch_errors(reply)
        return reply


class _Attempts:
    """The failed attempts of one request, and whether it may go again."""

    __slots__ = ("sent", "unsent")

    def __init__(self) -> None:
        self.sent = 0  # attempts that may have reached the server
        self.unsent = 0  # attempts whose connection failed before the write

    def failed(self, server: Any, request: Any, exc: Exception) -> None:
        """Count a failed attempt; raise if the request must not go again."""
        if isinstance(exc, NotSent):
            self.unsent += 1
            if self.unsent >= _UNSENT_ATTEMPTS:
                raise exc
            return
        self.sent += 1
        if isinstance(exc, ReplyOverdue):
            exc = TimeoutError(f"Timeout reading from {server}")
            if not server.retry_on_timeout:
                raise_unanswered(server, request, exc)
        if self.sent > server.retries or not may_resend(request):
            raise_unanswered(server, request, exc)
