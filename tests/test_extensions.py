"""django-redis's extensions, each through the sync and the async API."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from django_asyncredis import LockError, LockNotOwnedError

# Expiry


def test_ttl_of_a_missing_key_is_zero(api: Any) -> None:
    assert api.ttl("missing") == 0
    assert api.pttl("missing") == 0


def test_ttl_of_a_persistent_key_is_none(api: Any) -> None:
    api.set("key", "value", None)
    assert api.ttl("key") is None
    assert api.pttl("key") is None


def test_ttl_of_a_volatile_key_is_what_is_left(api: Any) -> None:
    api.set("key", "value", 22)
    assert 20 <= api.ttl("key") <= 22
    assert 20_000 < api.pttl("key") <= 22_000


def test_expire_sets_seconds(api: Any) -> None:
    api.set("key", "value", None)
    assert api.expire("key", 5) is True
    assert 4_000 < api.pttl("key") <= 5_000


def test_expire_takes_a_timedelta(api: Any) -> None:
    api.set("key", "value", None)
    assert api.expire("key", timedelta(minutes=1)) is True
    assert 59_000 < api.pttl("key") <= 60_000


def test_expire_of_a_missing_key_is_false(api: Any) -> None:
    assert api.expire("missing", 5) is False
    assert api.pexpire("missing", 5000) is False
    assert api.expire_at("missing", datetime.now(UTC) + timedelta(seconds=9)) is False


def test_pexpire_sets_milliseconds(api: Any) -> None:
    api.set("key", "value", None)
    assert api.pexpire("key", 1500) is True
    assert 1000 < api.pttl("key") <= 1500


def test_expire_at_takes_a_datetime(api: Any) -> None:
    api.set("key", "value", None)
    assert api.expire_at("key", datetime.now(UTC) + timedelta(seconds=30)) is True
    assert 25 <= api.ttl("key") <= 30


def test_expire_at_takes_a_timestamp_in_seconds(api: Any) -> None:
    api.set("key", "value", None)
    assert api.expire_at("key", datetime.now(UTC).timestamp() + 30) is True
    assert 25 <= api.ttl("key") <= 30


def test_pexpire_at_takes_a_timestamp_in_milliseconds(api: Any) -> None:
    api.set("key", "value", None)
    assert api.pexpire_at("key", int(datetime.now(UTC).timestamp() * 1000) + 30_000)
    assert 25 <= api.ttl("key") <= 30


def test_expire_in_the_past_deletes_the_key(api: Any) -> None:
    api.set("key", "value", None)
    assert api.expire_at("key", datetime(2000, 1, 1, tzinfo=UTC)) is True
    assert api.has_key("key") is False


def test_persist_removes_the_expiry(api: Any) -> None:
    api.set("key", "value", 22)
    assert api.persist("key") is True
    assert api.ttl("key") is None


def test_persist_reports_whether_the_key_exists(api: Any) -> None:
    api.set("key", "value", None)
    assert api.persist("key") is True
    assert api.persist("missing") is False


# set(nx=, xx=)


def test_set_nx_stores_only_an_absent_key(api: Any) -> None:
    assert api.set("key", "first", nx=True) is True
    assert api.set("key", "second", nx=True) is False
    assert api.get("key") == "first"


def test_set_xx_stores_only_a_present_key(api: Any) -> None:
    assert api.set("key", "first", xx=True) is False
    assert api.has_key("key") is False
    api.set("key", "first")
    assert api.set("key", "second", xx=True) is True
    assert api.get("key") == "second"


def test_set_without_nx_or_xx_returns_none(api: Any) -> None:
    """Django's contract for set()."""
    assert api.set("key", "value") is None


def test_set_nx_and_xx_together_is_an_error(api: Any) -> None:
    with pytest.raises(ValueError, match="not both"):
        api.set("key", "value", nx=True, xx=True)


def test_set_nx_honours_the_timeout(api: Any) -> None:
    assert api.set("key", "value", 10, nx=True) is True
    assert 9_000 < api.pttl("key") <= 10_000


# Key patterns


def test_keys_returns_the_callers_keys(api: Any) -> None:
    api.set_many({"foo_1": 1, "foo_2": 2, "bar": 3})
    assert sorted(api.keys("foo_*")) == ["foo_1", "foo_2"]


def test_keys_sees_only_its_version(api: Any) -> None:
    api.set("foo", 1, version=1)
    api.set("foo", 2, version=2)
    assert api.keys("foo", version=2) == ["foo"]
    assert api.keys("nothing*") == []


def test_keys_escapes_glob_characters_in_the_prefix(make_cache: Any, raw: Any) -> None:
    starred = make_cache(KEY_PREFIX="site*")
    other = make_cache(KEY_PREFIX="site-other")
    starred.set("a", 1)
    other.set("b", 2)
    assert starred.keys("*") == ["a"]
    assert starred.delete_pattern("*") == 1
    assert other.get("b") == 2


def test_keys_strips_a_prefix_that_contains_colons(make_cache: Any) -> None:
    cache = make_cache(KEY_PREFIX="app:v2")
    cache.set("user:1", 1)
    assert cache.keys("user:*") == ["user:1"]


def test_iter_keys_yields_every_key_page_by_page(cache: Any) -> None:
    cache.set_many({f"k{i}": i for i in range(250)})
    keys = cache.iter_keys("k*", itersize=10)
    assert iter(keys) is keys  # a generator, not a list
    assert sorted(keys) == sorted(f"k{i}" for i in range(250))


async def test_aiter_keys_yields_every_key_page_by_page(cache: Any) -> None:
    await cache.aset_many({f"k{i}": i for i in range(250)})
    found = [key async for key in cache.aiter_keys("k*", itersize=10)]
    assert sorted(found) == sorted(f"k{i}" for i in range(250))


def test_delete_pattern_counts_what_it_deleted(api: Any) -> None:
    api.set_many({f"foo_{i}": i for i in range(120)} | {"bar": 1})
    assert api.delete_pattern("foo_*", itersize=25) == 120
    assert api.keys("*") == ["bar"]


def test_delete_pattern_with_nothing_to_delete(api: Any) -> None:
    assert api.delete_pattern("none_*") == 0


def test_reverse_key_function_for_a_custom_key_function(make_cache: Any) -> None:
    cache = make_cache(
        KEY_FUNCTION=lambda key, prefix, version: f"{prefix}/{version}/{key}",
        REVERSE_KEY_FUNCTION=lambda stored: stored.rsplit("/", 1)[1],
    )
    cache.set("item", 1)
    assert cache.keys("it*") == ["item"]


# Locks


def test_lock_is_a_context_manager(cache: Any) -> None:
    with cache.lock("job", timeout=5) as lock:
        assert lock.locked() is True
        assert lock.owned() is True
    assert lock.locked() is False


async def test_alock_is_an_async_context_manager(cache: Any) -> None:
    async with cache.alock("job", timeout=5) as lock:
        assert await lock.locked() is True
        assert await lock.owned() is True
    assert await lock.locked() is False


def test_lock_key_is_prefixed_and_versioned(make_cache: Any, raw: Any) -> None:
    cache = make_cache(KEY_PREFIX="site")
    with cache.lock("job", version=3):
        assert raw.exists("site:3:job") == 1


def test_sync_and_async_locks_exclude_each_other(cache: Any) -> None:
    """The same lock name means the same lock, whichever API takes it."""
    with cache.lock("job"):
        assert asyncio.run(cache.alock("job").acquire(blocking=False)) is False
    assert asyncio.run(cache.alock("job", timeout=1).acquire(blocking=False)) is True


def test_lock_waits_up_to_blocking_timeout(cache: Any) -> None:
    holder = cache.lock("job")
    assert holder.acquire() is True
    waiter = cache.lock("job", sleep=0.01, blocking_timeout=0.1)
    assert waiter.acquire() is False
    holder.release()
    assert waiter.acquire() is True
    waiter.release()


async def test_alock_waits_without_blocking_the_loop(cache: Any) -> None:
    holder = cache.alock("job")
    assert await holder.acquire() is True
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    waiter = cache.alock("job", sleep=0.01, blocking_timeout=0.1)
    assert await waiter.acquire() is False
    task.cancel()
    assert ticks > 5
    await holder.release()


def test_unacquirable_lock_in_with_raises_lock_error(cache: Any) -> None:
    other = cache.lock("job", blocking=False)
    with cache.lock("job"), pytest.raises(LockError, match="Unable to acquire"):
        other.__enter__()


def test_releasing_a_lock_you_do_not_hold_raises(cache: Any) -> None:
    lock = cache.lock("job", timeout=0.05)
    assert lock.acquire() is True
    cache.delete("job")
    cache.set("job", "someone else's token")  # another owner took over
    with pytest.raises(LockNotOwnedError):
        lock.release()


def test_releasing_an_unacquired_lock_raises(cache: Any) -> None:
    with pytest.raises(LockError, match="not acquired"):
        cache.lock("job").release()


def test_extend_and_reacquire(cache: Any, raw: Any) -> None:
    lock = cache.lock("job", timeout=10)
    lock.acquire()
    assert lock.extend(20) is True
    assert 25_000 < raw.pttl(":1:job") <= 30_000
    assert lock.extend(5, replace_ttl=True) is True
    assert raw.pttl(":1:job") <= 5_000
    assert lock.reacquire() is True
    assert 9_000 < raw.pttl(":1:job") <= 10_000
    lock.release()


def test_extending_a_lock_without_timeout_raises(cache: Any) -> None:
    with cache.lock("job") as lock, pytest.raises(LockError, match="no timeout"):
        lock.extend(5)


def test_thread_local_token_is_not_seen_by_other_threads(cache: Any) -> None:
    lock = cache.lock("job")
    lock.acquire()
    errors = []

    def release_elsewhere() -> None:
        try:
            lock.release()
        except LockError as exc:
            errors.append(exc)

    thread = threading.Thread(target=release_elsewhere)
    thread.start()
    thread.join()
    assert len(errors) == 1
    lock.release()


def test_lock_excludes_concurrent_threads(cache: Any) -> None:
    """A read-modify-write under the lock loses no update."""
    cache.set("counter", "0")

    def worker() -> None:
        for _ in range(10):
            with cache.lock("counter-lock", timeout=5, sleep=0.001):
                cache.set("counter", str(int(cache.get("counter")) + 1))

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.get("counter") == "50"
