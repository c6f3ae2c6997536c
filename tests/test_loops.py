"""Event loops closed without ``shutdown_asyncgens()``, and forks mid-lock.

``loop = new_event_loop(); loop.run_until_complete(...); loop.close()`` is how
Celery tasks, older code and some test runners run coroutines: the loop never
runs its async generators' cleanup, so the pools' watcher never runs. Each test
counts the server's connections exactly (CLIENT LIST on a server of its own).
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
import warnings
import weakref

import pytest
import redis
import redis.asyncio

from django_asyncredis import RedisCache, _pools
from tests.servers import ServerProcess, clients


def wait_for_clients(admin: redis.Redis, count: int, timeout: float = 5.0) -> int:
    """Poll until the server holds ``count`` connections (it sees closes a little later)."""
    deadline = time.monotonic() + timeout
    while clients(admin) != count and time.monotonic() < deadline:
        time.sleep(0.01)
    return clients(admin)


def closed_loops_registered() -> int:
    return sum(loop.is_closed() for loop in list(_pools._async_pools))


def run_and_close_without_shutdown(
    cache: RedisCache, concurrency: int
) -> asyncio.AbstractEventLoop:
    """One Celery-style loop: its own connections, closed without shutdown_asyncgens()."""

    async def use() -> None:
        await cache.aset("key", "value")
        values = await asyncio.gather(*(cache.aget("key") for _ in range(concurrency)))
        assert values == ["value"] * concurrency

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(use())
    finally:
        loop.close()
    return loop


def test_loops_closed_without_shutdown_asyncgens_leave_bounded_connections(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """30 such loops of 4 concurrent calls each: at any time only the last closed
    loop's connections remain (4 pooled ones, or the 1 shared one), and the next loop
    to start closes them."""
    cache = RedisCache(own_server.url, {})
    per_loop = 1 if cache._config.servers[0].transport == "multiplexed" else 4
    loops = []
    for _ in range(30):
        loops.append(weakref.ref(run_and_close_without_shutdown(cache, concurrency=4)))
        assert closed_loops_registered() == 1
        assert wait_for_clients(admin, per_loop) == per_loop
    asyncio.run(cache.aget("key"))  # a loop that shuts down cleanly closes its own too
    assert closed_loops_registered() == 0
    assert wait_for_clients(admin, 0) == 0
    gc.collect()  # an unclosed transport or connection would warn here, failing the test
    assert [ref for ref in loops if ref() is not None] == []


def test_a_loop_closed_without_shutdown_asyncgens_closes_raw_client_connections_too(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """The raw clients' pool (``aget_redis_connection``) is closed with the others."""
    cache = RedisCache(own_server.url, {})

    async def use() -> None:
        client = redis.asyncio.Redis(
            connection_pool=_pools.raw_async_pool(cache._config.servers[0])
        )
        assert await client.ping()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(use())
    finally:
        loop.close()
    del loop
    assert wait_for_clients(admin, 1) == 1
    asyncio.run(cache.aget("key"))
    assert closed_loops_registered() == 0
    assert wait_for_clients(admin, 0) == 0
    gc.collect()


def test_uvloop_loops_closed_without_shutdown_asyncgens_are_dropped(
    own_server: ServerProcess, admin: redis.Redis
) -> None:
    """uvloop's ``close()`` closes the loop's sockets itself; the next loop then drops
    that loop's pools without error. (uvloop warns about each connection it closes,
    and asyncio's StreamWriter again when it is collected: ResourceWarnings this
    cache cannot prevent once the loop is closed under it.)"""
    uvloop = pytest.importorskip("uvloop")
    cache = RedisCache(own_server.url, {})

    async def use() -> None:
        await asyncio.gather(*(cache.aget("key") for _ in range(4)))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        for _ in range(3):
            loop = uvloop.new_event_loop()
            try:
                loop.run_until_complete(use())
            finally:
                loop.close()
            assert closed_loops_registered() == 1
            assert wait_for_clients(admin, 0) == 0
        del loop
        asyncio.run(use())
        gc.collect()
    assert closed_loops_registered() == 0
    assert wait_for_clients(admin, 0) == 0


# Fork while another thread holds a registry lock


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("lock_name", ["_sync_lock", "_registry_lock"])
def test_a_child_forked_while_a_thread_holds_a_pool_lock_completes_its_calls(
    own_server: ServerProcess, lock_name: str
) -> None:
    """The lock's holder does not exist in the child: the child must not wait for it."""
    cache = RedisCache(own_server.url, {})
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with getattr(_pools, lock_name):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5)
        with warnings.catch_warnings():  # 3.12+: "multi-threaded, fork() may deadlock": the point
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: its exit status tells the parent what happened
            try:
                cache.set("from-child", "sync")
                ok = asyncio.run(cache.aget("from-child")) == "sync"
                os._exit(0 if ok else 1)
            except BaseException:
                os._exit(2)
        deadline = time.monotonic() + 10
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail("the forked child deadlocked on a lock held by a parent's thread")
            time.sleep(0.02)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        release.set()
        holder.join()
