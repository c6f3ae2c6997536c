"""``incr``/``decr``: atomic in every configuration, no update lost, bad input refused first."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_asyncredis import RedisCache
from tests.conftest import AsyncAPI

PASSWORD = "counter-pass"
SIGNED = "django_asyncredis.serializers.signed.SignedPickleSerializer"
THREADS = 8
ROUNDS = 200


@pytest.fixture
def no_scripting_url(redis_server: Any, raw: Any) -> Iterator[str]:
    """An ACL user allowed everything but scripting (EVAL answers NOPERM), as on
    managed services that restrict EVAL."""
    raw.execute_command(
        "ACL", "SETUSER", "noscript", "on", f">{PASSWORD}", "~*", "+@all", "-@scripting"
    )
    yield redis_server.url.replace("redis://", f"redis://noscript:{PASSWORD}@")
    raw.execute_command("ACL", "DELUSER", "noscript")


@pytest.fixture(params=["plain", "no-scripting", "signed"])
def counter_cache(
    request: pytest.FixtureRequest, make_cache: Callable[..., Any], no_scripting_url: str
) -> RedisCache:
    """A cache where incr is INCRBY on the server, a transaction because EVAL is
    denied, or a transaction because the stored integers are signed."""
    if request.param == "no-scripting":
        return make_cache(no_scripting_url)  # type: ignore[no-any-return]
    if request.param == "signed":
        return make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "k"})  # type: ignore[no-any-return]
    return make_cache()  # type: ignore[no-any-return]


@pytest.fixture(params=["sync", "async"])
def counter(request: pytest.FixtureRequest, counter_cache: RedisCache) -> Iterator[Any]:
    """``counter_cache`` through its sync API, then through its async API."""
    if request.param == "sync":
        yield counter_cache
        return
    with asyncio.Runner() as runner:
        yield AsyncAPI(counter_cache, runner)


def increment_concurrently(cache: RedisCache, path: str, key: str, **kwargs: Any) -> None:
    """THREADS threads (or tasks) each incrementing ``key`` ROUNDS times."""
    if path == "sync":

        def work() -> None:
            for _ in range(ROUNDS):
                cache.incr(key, **kwargs)

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return

    async def work_async() -> None:
        for _ in range(ROUNDS):
            await cache.aincr(key, **kwargs)

    async def all_tasks() -> None:
        await asyncio.gather(*(work_async() for _ in range(THREADS)))

    asyncio.run(all_tasks())


@pytest.mark.parametrize("path", ["sync", "async"])
def test_no_update_is_lost_when_scripting_is_denied(
    make_cache: Callable[..., Any], no_scripting_url: str, path: str
) -> None:
    """EVAL answers NOPERM: incr takes a WATCH/MULTI/EXEC path, never a bare GET + SET."""
    cache = make_cache(no_scripting_url)
    cache.set("hits", 0)
    increment_concurrently(cache, path, "hits")
    assert cache.get("hits") == THREADS * ROUNDS


@pytest.mark.parametrize("path", ["sync", "async"])
def test_no_update_is_lost_beyond_64_bits(make_cache: Callable[..., Any], path: str) -> None:
    """Past INCRBY's range the exact arithmetic is a transaction too."""
    cache = make_cache()
    cache.set("big", 2**64)
    increment_concurrently(cache, path, "big")
    assert cache.get("big") == 2**64 + THREADS * ROUNDS


@pytest.mark.parametrize("path", ["sync", "async"])
def test_no_update_is_lost_under_the_signed_serializer(
    make_cache: Callable[..., Any], path: str
) -> None:
    cache = make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "k"})
    cache.set("hits", 0)
    increment_concurrently(cache, path, "hits")
    assert cache.get("hits") == THREADS * ROUNDS


@pytest.mark.parametrize("path", ["sync", "async"])
def test_no_update_is_lost_when_creating_with_ignore_key_check(
    counter_cache: RedisCache, path: str
) -> None:
    """The first increments race to create the key: exactly one creates it."""
    increment_concurrently(counter_cache, path, "created", ignore_key_check=True)
    assert counter_cache.get("created") == THREADS * ROUNDS


def test_incr_and_decr_in_every_configuration(counter: Any) -> None:
    counter.set("n", 1)
    assert counter.incr("n") == 2
    assert counter.incr("n", 10) == 12
    assert counter.decr("n", 5) == 7
    assert counter.get("n") == 7


def test_incr_of_a_missing_key_creates_nothing_in_every_configuration(counter: Any) -> None:
    with pytest.raises(ValueError, match="not found"):
        counter.incr("missing")
    assert counter.has_key("missing") is False


def test_incr_keeps_the_expiry_in_every_configuration(counter: Any, raw: Any) -> None:
    counter.set("n", 1, 100)
    counter.incr("n")
    assert 0 < raw.pttl(":1:n") <= 100_000


def test_incr_of_a_non_integer_is_a_type_error_in_every_configuration(counter: Any) -> None:
    counter.set("text", "abc")
    with pytest.raises(TypeError, match="not an integer"):
        counter.incr("text")
    assert counter.get("text") == "abc"


def test_incr_of_a_redis_list_is_a_type_error_in_every_configuration(
    counter: Any, raw: Any
) -> None:
    raw.rpush(":1:list", "a")
    with pytest.raises(TypeError, match="not an integer"):
        counter.incr("list")
    assert raw.lrange(":1:list", 0, -1) == [b"a"]


@pytest.mark.parametrize("delta", [0.5, 1.0, "1", None, b"1"], ids=repr)
def test_a_delta_that_is_not_an_integer_is_refused_before_any_write(
    counter: Any, delta: Any
) -> None:
    """Was: incr(k, 0.5) stored 1.5 and returned 1; the next get raised CorruptValueError."""
    counter.set("n", 1)
    for method in (counter.incr, counter.decr):
        with pytest.raises(TypeError, match="must be an integer"):
            method("n", delta)
        with pytest.raises(TypeError, match="must be an integer"):
            method("n", delta, ignore_key_check=True)
    assert counter.get("n") == 1
    assert counter.has_key("never") is False


def test_an_int_like_delta_is_an_integer(counter: Any) -> None:
    """What ``operator.index`` takes (bool, numpy's integers) counts, as in Python."""
    counter.set("n", 1)
    assert counter.incr("n", True) == 2
    assert counter.decr("n", False) == 2


def test_ignore_key_check_creates_a_missing_key_with_the_delta(counter: Any, raw: Any) -> None:
    """django-redis's ``incr(..., ignore_key_check=True)``: no ValueError; no expiry."""
    assert counter.incr("created", 5, ignore_key_check=True) == 5
    assert counter.decr("lowered", 3, ignore_key_check=True) == -3
    assert counter.get("created") == 5
    assert counter.get("lowered") == -3
    assert raw.pttl(":1:created") == -1


def test_ignore_key_check_increments_an_existing_key(counter: Any, raw: Any) -> None:
    counter.set("n", 10, 100)
    assert counter.incr("n", 2, ignore_key_check=True) == 12
    assert counter.decr("n", 1, ignore_key_check=True) == 11
    assert 0 < raw.pttl(":1:n") <= 100_000


def test_ignore_key_check_still_refuses_a_non_integer(counter: Any) -> None:
    counter.set("text", "abc")
    with pytest.raises(TypeError, match="not an integer"):
        counter.incr("text", ignore_key_check=True)
    assert counter.get("text") == "abc"


def test_incr_past_64_bits_returns_the_exact_int_and_leaves_a_non_redis_integer(
    api: Any, raw: Any
) -> None:
    """Documented: the cache keeps exact Python ints, but the stored decimal text is
    then out of INCRBY's range, so other Redis clients can no longer INCR it."""
    import redis

    api.set("n", 2**63 - 1)
    assert api.incr("n") == 2**63
    assert api.get("n") == 2**63
    assert raw.get(":1:n") == str(2**63).encode()
    with pytest.raises(redis.ResponseError, match="not an integer or out of range"):
        raw.incr(":1:n")
    assert api.decr("n") == 2**63 - 1
    assert raw.decr(":1:n") == 2**63 - 2  # back in range: a Redis integer again


def test_another_redis_error_is_raised_as_is(
    make_cache: Callable[..., Any], redis_server: Any, raw: Any
) -> None:
    """Only "not a 64-bit integer" and "EVAL denied" take the transaction path: a
    user who may run scripts but not write gets the server's NOPERM, nothing written."""
    import redis

    raw.execute_command(
        "ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@read", "+@scripting", "+@transaction"
    )
    try:
        reader = make_cache(redis_server.url.replace("redis://", "redis://reader:pw@"))
        raw.set(":1:n", 1)
        with pytest.raises(redis.ResponseError, match=r"(?i)can.t run|no permission"):
            reader.incr("n")
        with pytest.raises(redis.ResponseError, match=r"(?i)can.t run|no permission"):
            asyncio.run(reader.aincr("n"))
        assert raw.get(":1:n") == b"1"
    finally:
        raw.execute_command("ACL", "DELUSER", "reader")


@pytest.fixture(scope="module")
def server_without_eval() -> Iterator[Any]:
    """A server where EVAL was renamed away, as some managed services do."""
    from tests.servers import ServerProcess

    server = ServerProcess(["--rename-command", "EVAL", ""]).start()
    yield server
    server.stop()


@pytest.mark.parametrize("path", ["sync", "async"])
def test_no_update_is_lost_on_a_server_without_eval(server_without_eval: Any, path: str) -> None:
    """EVAL answers "unknown command": incr takes the transaction path too."""
    cache = RedisCache(server_without_eval.url, {"KEY_PREFIX": path})
    cache.set("hits", 0)
    increment_concurrently(cache, path, "hits")
    assert cache.get("hits") == THREADS * ROUNDS
    with pytest.raises(ValueError, match="not found"):
        cache.incr("missing")
