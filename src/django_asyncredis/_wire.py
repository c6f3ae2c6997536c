"""Commands to bytes, for both drivers' connections (async and sync alike).

redis-py packs commands in C (hiredis) on its sync connections but in Python on
its asyncio ones; with hiredis installed both drivers pack in C, straight from
the command tuple: a third of an aget_many of 100 keys was redis-py's Python
packer, and on the sync side redis-py's wrapper around hiredis (its argument
checks, one generator per command) was about 10 us of a 10 KB ``set``. Without
hiredis, the connection's own packer is used.
"""

from __future__ import annotations

from typing import Any

from django_asyncredis._operations import Batch, Command


def _pack_python(connection: Any, command: Command) -> Any:
    return connection.pack_command(*command)


def _pack_many_python(connection: Any, commands: Batch) -> Any:
    return connection.pack_commands(commands)


def _pack_hiredis(connection: Any, command: Command) -> bytes:
    return hiredis.pack_command(command)  # type: ignore[no-any-return]


def _pack_many_hiredis(connection: Any, commands: Batch) -> bytes:
    # map, not a list comprehension: no frame of its own on Python 3.11
    return b"".join(map(hiredis.pack_command, commands))


def _chunks_hiredis(connection: Any, command: Command) -> list[bytes]:
    return [hiredis.pack_command(command)]


def _chunks_many_hiredis(connection: Any, commands: Batch) -> list[bytes]:
    return [_pack_many_hiredis(connection, commands)]


# ``pack``/``pack_many``: what redis.asyncio's ``send_packed_command`` takes (bytes
# or a list of them); ``chunks``/``chunks_many``: what the sync one takes (it
# iterates over its argument, so always a list).
try:
    import hiredis

    pack, pack_many = _pack_hiredis, _pack_many_hiredis
    chunks, chunks_many = _chunks_hiredis, _chunks_many_hiredis
except ImportError:  # pragma: no cover - hiredis is an extra
    pack, pack_many = _pack_python, _pack_many_python
    chunks, chunks_many = _pack_python, _pack_many_python
