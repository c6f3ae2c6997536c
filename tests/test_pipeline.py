"""The cache pipeline: queued calls run together, each with Django's result, on both APIs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from django_asyncredis import PipelineError
from django_asyncredis import _operations as ops
from django_asyncredis._pipeline import lockstep
from tests.servers import free_port

Build = Callable[[Any], None]


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Callable[..., list[Any]]:
    """``run(cache, build)``: ``with cache.pipeline() as p: build(p)``, or the async
    form; the pipeline's results."""

    def sync(cache: Any, build: Build, raise_on_error: bool = True) -> list[Any]:
        pipe = cache.pipeline()
        build(pipe)
        return pipe.execute(raise_on_error=raise_on_error)  # type: ignore[no-any-return]

    def asynchronous(cache: Any, build: Build, raise_on_error: bool = True) -> list[Any]:
        async def main() -> list[Any]:
            pipe = cache.apipeline()
            build(pipe)
            return await pipe.aexecute(raise_on_error=raise_on_error)  # type: ignore[no-any-return]

        return asyncio.run(main())

    return sync if request.param == "sync" else asynchronous


def test_each_call_returns_djangos_result_in_order(cache: Any, run: Any) -> None:
    """Every kind of call, its result as the cache method would return it."""
    cache.set("old", "x", timeout=None)

    def build(p: Any) -> None:
        p.set("a", 1)
        p.add("a", 2)
        p.add("b", 2)
        p.set("a", 5, nx=True)
        p.get("a")
        p.get("missing", "default")
        p.incr("a", 10)
        p.decr("b")
        p.has_key("b")
        p.expire("a", 100)
        p.ttl("a")
        p.persist("a")
        p.pttl("a")
        p.touch("old", 50)
        p.get_or_set("fresh", lambda: "computed")
        p.delete("old")
        p.delete("old")

    assert run(cache, build) == [
        None, False, True, False, 1, "default", 11, 1, True, True, 100, True, None, True,
        "computed", True, False,
    ]  # fmt: skip
    assert cache.get("fresh") == "computed"
    assert cache.get("b") == 1


def test_with_block_runs_on_exit_and_keeps_the_results(cache: Any) -> None:
    """``with cache.pipeline() as p:`` sends on exit; ``p.results`` holds the results."""
    with cache.pipeline() as p:
        p.set("key", "value")
        p.get("key")
        assert cache.get("key") is None  # nothing sent yet
    assert p.results == [None, "value"]


def test_async_with_block_runs_on_exit_and_keeps_the_results(cache: Any) -> None:
    """``async with cache.apipeline() as p:`` is the same on the async API."""

    async def main() -> list[Any]:
        async with cache.apipeline() as p:
            p.set("key", "value").get("key")  # calls chain
        return p.results

    assert asyncio.run(main()) == [None, "value"]


def test_a_failed_call_does_not_hide_the_others(cache: Any, run: Any) -> None:
    """``incr`` of a missing key fails alone: the others ran, their results are kept,
    and PipelineError carries them all."""

    def build(p: Any) -> None:
        p.set("a", 1)
        p.incr("missing")
        p.get("a")

    with pytest.raises(PipelineError, match="1 of 3") as caught:
        run(cache, build)
    first, error, last = caught.value.results
    assert (first, last) == (None, 1)
    assert isinstance(error, ValueError)


def test_an_error_reply_does_not_hide_the_others(cache: Any, raw: Any, run: Any) -> None:
    """A server error (WRONGTYPE) for one call leaves the replies of the calls
    batched with it in the same round trip."""
    raw.rpush(cache.make_key("list"), "x")

    def build(p: Any) -> None:
        p.set("a", 1)
        p.get("list")
        p.get("a")
        p.delete("a")

    results = run(cache, build, raise_on_error=False)
    assert results[0] is None
    assert "WRONGTYPE" in str(results[1])
    assert results[2:] == [1, True]


def test_a_block_that_raises_sends_nothing(cache: Any) -> None:
    """The queued calls are dropped when the block fails, as a transaction would."""

    def change_of_mind() -> None:
        with cache.pipeline() as p:
            p.set("key", "value")
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        change_of_mind()
    assert cache.has_key("key") is False


def test_an_empty_pipeline_is_no_round_trip(cache: Any, run: Any) -> None:
    """Nothing queued, nothing sent, no results."""
    assert run(cache, lambda p: None) == []


def test_with_ignore_exceptions_an_unreachable_server_gives_empty_cache_results(
    make_cache: Any, run: Any
) -> None:
    """IGNORE_EXCEPTIONS: each call gets what an empty cache would have given."""
    cache = make_cache(f"redis://127.0.0.1:{free_port()}", OPTIONS={"IGNORE_EXCEPTIONS": True})

    def build(p: Any) -> None:
        p.get("a", "default")
        p.set("a", 1)
        p.add("a", 1)
        p.ttl("a")
        p.get_or_set("a", lambda: "computed")

    assert run(cache, build) == ["default", None, False, 0, "computed"]


def test_one_round_trip_for_a_step_of_every_call() -> None:
    """Ten single-command calls are sent as one Batch of ten commands, then done."""
    operations = [ops.get(_IDENTITY, f"k{i}", None) for i in range(10)]
    runner = lockstep(operations)
    request = runner.send(None)
    assert type(request) is ops.Batch
    assert [command[1] for command in request] == [f"k{i}" for i in range(10)]
    with pytest.raises(StopIteration) as done:
        runner.send([str(i).encode() for i in range(10)])
    assert done.value.value == list(range(10))


class _Identity:
    """A codec stand-in for the sans-IO test: integers as decimal text."""

    def loads(self, raw: bytes, key: str) -> Any:
        return int(raw)


_IDENTITY: Any = _Identity()
