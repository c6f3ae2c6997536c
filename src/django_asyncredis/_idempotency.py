"""Which requests may be sent again after a connection broke mid round trip.

A connection that breaks after a command was written leaves one question open:
did the server execute it? Sending it again is harmless only when a second
execution changes neither the data nor the reply. ``INCRBY`` would count twice,
``SET NX`` would answer "not added" to the caller who added it, ``DEL`` would
answer 0. So the drivers re-send a request only if ``may_resend`` says so; any
other request fails with ``ConnectionInterrupted`` and the caller decides.
(A connection found closed *before* anything is written is simply replaced: the
pools do that at checkout, for every command.)

Pure functions of the request, kept out of the drivers so that both decide alike
(and, for both, the one way to give up on a request that got no reply).
"""

from __future__ import annotations

from typing import Any, NoReturn

from redis.exceptions import TimeoutError

from django_asyncredis._operations import Batch
from django_asyncredis.errors import ReplyLostError, ReplyTimeoutError

#: Commands whose second execution gives the same reply and leaves the same data.
_REPEATABLE = frozenset(
    {
        # reads
        "GET", "MGET", "EXISTS", "TTL", "PTTL", "STRLEN", "TYPE", "DUMP",
        "SCAN", "SSCAN", "HSCAN", "ZSCAN",
        "SCARD", "SISMEMBER", "SMISMEMBER", "SMEMBERS", "SDIFF", "SINTER", "SUNION",
        "SRANDMEMBER", "HGET", "HMGET", "HGETALL", "HLEN", "HKEYS", "HVALS", "HEXISTS",
        "ZCARD", "ZCOUNT", "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYSCORE",
        "ZRANK", "ZREVRANK", "ZSCORE", "LRANGE", "LLEN", "LINDEX",
        "PING", "ECHO", "DBSIZE", "INFO",
        # connection state and topology questions
        "SELECT", "ASKING", "READONLY",
        # writes that set an absolute state and always give the same reply
        "SETEX", "PSETEX", "MSET", "FLUSHDB", "FLUSHALL",
    }
)  # fmt: skip

#: SET's options that make it conditional or make its reply depend on the previous
#: value: with one of them, a second SET answers differently.
_CONDITIONAL_SET = frozenset({"NX", "XX", "GET", "IFEQ", "IFNE", "IFDEQ", "IFDNE"})

#: Sub-commands that only ask.
_QUESTIONS = {
    "CLUSTER": frozenset({"SLOTS", "SHARDS", "NODES", "INFO", "KEYSLOT"}),
    "SENTINEL": frozenset(
        {"GET-MASTER-ADDR-BY-NAME", "MASTERS", "MASTER", "REPLICAS", "SLAVES", "SENTINELS"}
    ),
}


def _word(part: Any) -> str:
    if isinstance(part, bytes):
        return part.decode("latin-1").upper()
    return str(part).upper()


def _command_may_resend(command: tuple[Any, ...]) -> bool:
    name = _word(command[0])
    if name in _REPEATABLE:
        return True
    if name == "SET":
        # SET key value [EX|PX n | KEEPTTL]: the options after the value are words,
        # except the expiry's number, which never spells NX/XX/GET.
        return not any(_word(part) in _CONDITIONAL_SET for part in command[3:])
    if name in ("PEXPIRE", "EXPIRE"):
        # Plain form only: NX/XX/GT/LT make the second reply differ.
        return len(command) == 3
    questions = _QUESTIONS.get(name)
    return questions is not None and len(command) > 1 and _word(command[1]) in questions


def may_resend(request: Any) -> bool:
    """Whether ``request`` (a command or a ``Batch``) may be sent again after its
    connection broke once it was written: True only if executing it twice is
    indistinguishable from executing it once."""
    if type(request) is Batch:
        return all(_command_may_resend(command) for command in request)
    return _command_may_resend(request)


def raise_unanswered(server: object, request: Any, exc: Exception) -> NoReturn:
    """Give up on a request that was sent and got no reply. When running it twice
    would show, as ``ReplyLostError`` (``ReplyTimeoutError`` for a timeout), so
    that nothing above (a topology's retry loop) sends it again; else as it is."""
    if may_resend(request):
        raise exc
    if isinstance(exc, TimeoutError):
        raise ReplyTimeoutError(
            f"Redis server {server} did not answer within socket_timeout; the command "
            "may have run and was not sent again."
        ) from exc
    raise ReplyLostError(
        f"The connection to Redis server {server} broke after the command was sent; "
        f"it may have run and was not sent again: {exc}"
    ) from exc
