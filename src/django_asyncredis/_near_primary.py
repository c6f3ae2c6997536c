"""Which server the near-cache's listener tracks, and how it learns to move.

The near-cache (``_near``) holds values read from one server and trusts the
invalidations of that server only, so the listener must track exactly the
server the reads go to:

- ``FixedServer``: a single server (LOCATION names it); nothing ever moves.
- ``SentinelPrimary``: the primary of a Sentinel service. It shares the data
  path's ``SentinelState``: whoever resolves a primary (a read or write
  following a failover, or the listener) records it there, and a change is
  heard by the store, which flushes at once and serves no hit until the listener
  tracks the new primary. While the listener tracks, a thread asks a sentinel
  every ``CHECK_EVERY`` seconds who the primary is (``SentinelWatch``): a
  failover that leaves the old primary up (``SENTINEL FAILOVER``, a partition)
  drops no connection, and only the sentinels tell.

Every connection here is a sync redis-py one, of the thread that opened it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
import redis.exceptions

if TYPE_CHECKING:  # _config imports _near, which imports this module: a circle at run time
    from django_asyncredis._config import Server
    from django_asyncredis._topology import SentinelState

#: Seconds a server (data node or sentinel) has to answer the listener.
ANSWER_DEADLINE = 3.0
#: Seconds between two questions to the sentinels while the listener tracks.
CHECK_EVERY = 0.5


class PrimaryMoved(Exception):
    """The tracked server is no longer the one the reads go to."""


def connect(server: Server) -> Any:
    """A sync RESP2 connection to ``server`` with its own settings (a redis.Connection)."""
    kwargs = server.connection_kwargs()
    kwargs["protocol"] = 2
    kwargs["socket_timeout"] = ANSWER_DEADLINE
    kwargs.pop("db", None)  # tracking is per connection, not per database
    kwargs.pop("health_check_interval", None)  # our own pings: a subscribed PONG differs
    connection_class: type[Any] = redis.Connection
    if server.scheme == "unix":
        connection_class = redis.UnixDomainSocketConnection
    elif server.scheme == "rediss":
        connection_class = redis.SSLConnection
    connection = connection_class(**kwargs)
    connection.connect()
    return connection


class Idle:
    """The watch of a server that never moves."""

    def poll(self) -> None:
        """Nothing to ask."""

    def close(self) -> None:
        """Nothing held."""


class FixedServer:
    """The one server LOCATION names."""

    #: A single server is tracked whatever its role (as the reads go to it).
    primary_only = False

    def __init__(self, server: Server) -> None:
        self.server = server

    def __str__(self) -> str:
        return str(self.server)

    def locate(self) -> Server:
        return self.server

    def is_current(self, server: Server) -> bool:
        return True

    def watch(self, server: Server) -> Idle:
        return Idle()

    def observe(self, callback: Callable[[Server], None]) -> None:
        """It never changes: nobody to tell."""


class SentinelPrimary:
    """The current primary of a Sentinel service, as the data path knows it."""

    #: Tracking is refused on a server that says it is a replica (not yet, or no
    #: longer, the primary the sentinels name).
    primary_only = True

    def __init__(self, state: SentinelState) -> None:
        self.state = state

    def __str__(self) -> str:
        return f"sentinel service {self.state.service!r}"

    def locate(self) -> Server:
        """Ask the sentinels, in turn, and record the answer (its observers hear a change)."""
        last: Exception | None = None
        for sentinel in self.state.sentinels:
            try:
                address = _ask(sentinel, self.state.address_request())
            except (redis.exceptions.RedisError, OSError) as exc:
                last = exc
                continue
            primary = self.state.follow(address)
            if primary is not None:
                return primary
        raise redis.exceptions.ConnectionError(
            f"no sentinel names a primary for {self.state.service!r}: {last}"
        )

    def is_current(self, server: Server) -> bool:
        """Whether the reads go to ``server``: the last primary resolved."""
        return self.state.known == server

    def watch(self, server: Server) -> SentinelWatch:
        watch = SentinelWatch(self.state, server)
        watch.start()
        return watch

    def observe(self, callback: Callable[[Server], None]) -> None:
        self.state.observe(callback)


def _ask(sentinel: Server, command: tuple[Any, ...]) -> Any:
    connection = connect(sentinel)
    try:
        connection.send_command(*command)
        return connection.read_response()
    finally:
        connection.disconnect()


class SentinelWatch(threading.Thread):
    """Asks a sentinel every ``CHECK_EVERY`` seconds who the primary is, while the
    listener tracks ``tracked``.

    In a daemon thread of its own, so the listener never waits on a sentinel (a
    slow or unreachable one would hold up the invalidations behind it). An answer
    is recorded in the state, whose observers (the store) flush at once if it
    names another primary; the listener compares on each turn (``poll``) and
    moves. A sentinel that fails is left for the next one; the tracking goes on
    meanwhile (a sentinel's outage is no failover)."""

    def __init__(self, state: SentinelState, tracked: Server) -> None:
        super().__init__(name=f"asyncredis-near-cache sentinels of {tracked}", daemon=True)
        self.state = state
        self.tracked = tracked
        self._closed = threading.Event()

    def poll(self) -> None:
        """Raise ``PrimaryMoved`` once the data path or a sentinel named another primary."""
        if self.state.known != self.tracked:
            raise PrimaryMoved(f"the primary is now {self.state.known}")

    def run(self) -> None:
        turn = 0
        connection: Any = None
        try:
            while not self._closed.wait(CHECK_EVERY):
                try:
                    if connection is None:
                        sentinels = self.state.sentinels
                        connection = connect(sentinels[turn % len(sentinels)])
                    connection.send_command(*self.state.address_request())
                    address = connection.read_response()
                except Exception:  # this sentinel failed: ask the next one next time
                    _disconnect(connection)
                    connection, turn = None, turn + 1
                    continue
                if not self._closed.is_set():
                    self.state.follow(address)
        finally:
            _disconnect(connection)

    def close(self) -> None:
        """The listener stopped tracking: end after the question in flight, if any."""
        self._closed.set()


def _disconnect(connection: Any) -> None:
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.disconnect()
