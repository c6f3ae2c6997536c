"""Sets, hashes and sorted sets (django-redis 7.0's helpers), through the sync and async APIs."""

from __future__ import annotations

import asyncio
import inspect
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_asyncredis import _structure_ops as sops
from django_asyncredis._structures import StructuresMixin
from tests.conftest import AsyncAPI

JSON = "django_asyncredis.serializers.json.JSONSerializer"
ZLIB = "django_asyncredis.compressors.zlib.ZlibCompressor"


@pytest.fixture(params=["sync", "async"])
def api_for(request: pytest.FixtureRequest) -> Iterator[Callable[[Any], Any]]:
    """Like ``api``, for a cache built in the test: ``api_for(make_cache(...))``."""
    if request.param == "sync":
        yield lambda cache: cache
        return
    with asyncio.Runner() as runner:
        yield lambda cache: AsyncAPI(cache, runner)


# Sets


def test_sadd_counts_the_new_members(api: Any) -> None:
    assert api.sadd("s", "a", "b") == 2
    assert api.sadd("s", "b", "c") == 1
    assert api.smembers("s") == {"a", "b", "c"}


def test_sadd_without_members_adds_nothing(api: Any) -> None:
    assert api.sadd("s") == 0
    assert api.scard("s") == 0


def test_set_members_are_stored_like_cache_values(api: Any, raw: Any) -> None:
    """Integers raw, anything else through the serializer."""
    api.sadd("s", 42, "text")
    stored = raw.smembers(":1:s")
    assert b"42" in stored
    assert {pickle.loads(member) for member in stored - {b"42"}} == {"text"}


def test_smembers_round_trips_any_hashable_value(api: Any) -> None:
    members = {1, -7, "text", 2.5, (1, "two"), frozenset({3}), None, b"raw"}
    api.sadd("s", *members)
    assert api.smembers("s") == members


def test_an_unhashable_member_round_trips(api: Any) -> None:
    """A dict is a fine member; read it with the methods that return single members."""
    api.sadd("s", {"a": [1, 2]})
    assert api.sismember("s", {"a": [1, 2]}) is True
    assert api.srandmember("s") == {"a": [1, 2]}
    assert api.spop("s") == {"a": [1, 2]}


def test_smembers_of_a_missing_key_is_an_empty_set(api: Any) -> None:
    assert api.smembers("missing") == set()


def test_scard_counts_the_members(api: Any) -> None:
    api.sadd("s", 1, 2, 3)
    assert api.scard("s") == 3
    assert api.scard("missing") == 0


def test_sismember(api: Any) -> None:
    api.sadd("s", "a", 1)
    assert api.sismember("s", "a") is True
    assert api.sismember("s", 1) is True
    assert api.sismember("s", "1") is False
    assert api.sismember("missing", "a") is False


def test_smismember_answers_for_each_member_in_order(api: Any) -> None:
    api.sadd("s", "a", "c")
    assert api.smismember("s", "a", "b", "c") == [True, False, True]
    assert api.smismember("s") == []


def test_srem_counts_the_removed_members(api: Any) -> None:
    api.sadd("s", "a", "b", "c")
    assert api.srem("s", "a", "b", "x") == 2
    assert api.smembers("s") == {"c"}
    assert api.srem("s") == 0


def test_sdiff_sinter_sunion(api: Any) -> None:
    api.sadd("a", 1, 2, 3)
    api.sadd("b", 2, 3, 4)
    api.sadd("c", 3, 5)
    assert api.sdiff("a", "b") == {1}
    assert api.sinter("a", "b", "c") == {3}
    assert api.sunion("a", "b", "c") == {1, 2, 3, 4, 5}
    assert api.sdiff("missing", "a") == set()


def test_sdiffstore_stores_the_difference(api: Any) -> None:
    api.sadd("a", 1, 2, 3)
    api.sadd("b", 2)
    assert api.sdiffstore("dest", "a", "b") == 2
    assert api.smembers("dest") == {1, 3}


def test_sdiffstore_takes_separate_versions(api: Any) -> None:
    api.sadd("a", 1, 2, version=2)
    api.sadd("b", 2, version=2)
    assert api.sdiffstore("dest", "a", "b", version_dest=5, version_keys=2) == 1
    assert api.smembers("dest", version=5) == {1}
    assert api.smembers("dest", version=2) == set()


def test_sinterstore_and_sunionstore(api: Any) -> None:
    api.sadd("a", "x", "y")
    api.sadd("b", "y", "z")
    assert api.sinterstore("inter", "a", "b") == 1
    assert api.smembers("inter") == {"y"}
    assert api.sunionstore("union", "a", "b") == 3
    assert api.smembers("union") == {"x", "y", "z"}


def test_smove_moves_a_member(api: Any) -> None:
    api.sadd("from", "a", "b")
    assert api.smove("from", "to", "a") is True
    assert api.smembers("from") == {"b"}
    assert api.smembers("to") == {"a"}
    assert api.smove("from", "to", "missing") is False


def test_smove_uses_the_version_for_both_keys(api: Any) -> None:
    api.sadd("from", "a", version=3)
    assert api.smove("from", "to", "a", version=3) is True
    assert api.smembers("to", version=3) == {"a"}
    assert api.smembers("to") == set()


def test_spop_removes_one_member(api: Any) -> None:
    api.sadd("s", "a", "b")
    popped = api.spop("s")
    assert popped in {"a", "b"}
    assert api.smembers("s") == {"a", "b"} - {popped}


def test_spop_with_count_returns_a_set(api: Any) -> None:
    api.sadd("s", 1, 2, 3)
    assert api.spop("s", 2) <= {1, 2, 3}
    assert api.scard("s") == 1
    assert len(api.spop("s", 5)) == 1


def test_spop_of_an_empty_set(api: Any) -> None:
    assert api.spop("missing") is None
    assert api.spop("missing", 2) == set()


def test_srandmember_leaves_the_member(api: Any) -> None:
    api.sadd("s", "a", "b")
    assert api.srandmember("s") in {"a", "b"}
    assert api.scard("s") == 2


def test_srandmember_with_count_returns_a_list(api: Any) -> None:
    api.sadd("s", 1, 2, 3)
    some = api.srandmember("s", 2)
    assert isinstance(some, list)
    assert len(set(some)) == 2
    assert set(some) <= {1, 2, 3}


def test_srandmember_with_a_negative_count_may_repeat(api: Any) -> None:
    api.sadd("s", "only")
    assert api.srandmember("s", -3) == ["only", "only", "only"]


def test_srandmember_of_an_empty_set(api: Any) -> None:
    assert api.srandmember("missing") is None
    assert api.srandmember("missing", 2) == []


def test_sscan_reads_every_page(api: Any) -> None:
    members = {f"m{i}" for i in range(300)}
    api.sadd("s", *members)
    assert api.sscan("s", count=10) == members


def test_sscan_match_is_a_glob_on_string_members(api: Any) -> None:
    api.sadd("s", "user:1", "user:22", "group:1", 1, ("user:1",))
    assert api.sscan("s", match="user:*") == {"user:1", "user:22"}
    assert api.sscan("s", match="user:?") == {"user:1"}


GLOB_WORDS = ["hello", "hallo", "hxllo", "heeello", "h*llo", "h]llo", "a.b", "a\\b", "^x", "-"]


@pytest.mark.parametrize(
    "pattern",
    [
        "h?llo",
        "h*llo",
        "h[ae]llo",
        "h[^e]llo",
        "h[a-e]llo",
        "h[e-a]llo",
        "h\\*llo",
        "h[]llo",
        "h[\\]]llo",
        "*",
        "a.b",
        "a\\\\b",
        "[\\^]x",
        "[-]",
        "h[ae",
    ],
)
def test_sscan_match_follows_redis_glob_syntax(api: Any, raw: Any, pattern: str) -> None:
    """The same members as the server's own MATCH finds on the plain strings."""
    raw.sadd("plain", *GLOB_WORDS)
    expected = {member.decode() for member in raw.sscan_iter("plain", match=pattern)}
    api.sadd("s", *GLOB_WORDS)
    assert api.sscan("s", match=pattern) == expected


def test_sscan_match_sees_compressed_members(make_cache: Any, api_for: Any) -> None:
    api = api_for(make_cache(OPTIONS={"COMPRESSOR": ZLIB}))
    long = "user:" + "x" * 1000
    api.sadd("s", long, "other")
    assert api.sscan("s", match="user:*") == {long}


def test_sscan_iter_yields_every_member_page_by_page(cache: Any) -> None:
    members = {f"m{i}" for i in range(300)}
    cache.sadd("s", *members)
    found = cache.sscan_iter("s", count=10)
    assert iter(found) is found  # a generator, not a list
    assert set(found) == members


def test_sscan_iter_filters_with_match(cache: Any) -> None:
    cache.sadd("s", "a1", "a2", "b1")
    assert sorted(cache.sscan_iter("s", match="a*")) == ["a1", "a2"]


async def test_asscan_iter_yields_every_member_page_by_page(cache: Any) -> None:
    members = {f"m{i}" for i in range(300)}
    await cache.asadd("s", *members)
    found = [member async for member in cache.asscan_iter("s", count=10)]
    assert set(found) == members


async def test_asscan_iter_filters_with_match(cache: Any) -> None:
    await cache.asadd("s", "a1", "a2", "b1")
    assert sorted([m async for m in cache.asscan_iter("s", match="a*")]) == ["a1", "a2"]


# Hashes


def test_hset_counts_new_fields(api: Any) -> None:
    assert api.hset("h", "f", "v1") == 1
    assert api.hset("h", "f", "v2") == 0
    assert api.hget("h", "f") == "v2"


def test_hset_takes_a_mapping_and_a_field_together(api: Any) -> None:
    assert api.hset("h", "c", 3, mapping={"a": 1, "b": 2}) == 3
    assert api.hgetall("h") == {"a": 1, "b": 2, "c": 3}


def test_hset_with_an_empty_mapping_sets_nothing(api: Any) -> None:
    assert api.hset("h", mapping={}) == 0
    assert api.hlen("h") == 0


def test_hset_without_field_or_mapping_is_an_error(api: Any) -> None:
    with pytest.raises(ValueError, match="field"):
        api.hset("h")


def test_hset_stores_none_as_a_value(api: Any) -> None:
    api.hset("h", "f", None)
    assert api.hexists("h", "f") is True
    assert api.hget("h", "f", "default") is None


def test_hash_values_are_stored_like_cache_values(api: Any, raw: Any) -> None:
    api.hset("h", mapping={"n": 5, "d": {"a": 1}})
    assert raw.hget(":1:h", "n") == b"5"
    assert pickle.loads(raw.hget(":1:h", "d")) == {"a": 1}


def test_a_dict_hash_value_round_trips(api: Any) -> None:
    value = {"a": [1, 2], "b": {"c": None}}
    api.hset("h", "f", value)
    assert api.hget("h", "f") == value
    assert api.hgetall("h") == {"f": value}


def test_hash_field_names_are_text(api: Any, raw: Any) -> None:
    api.hset("h", mapping={"name": 1, 2: "two"})
    assert sorted(raw.hkeys(":1:h")) == [b"2", b"name"]
    assert sorted(api.hkeys("h")) == ["2", "name"]
    assert api.hget("h", 2) == "two"


def test_hget_of_a_missing_field_or_hash_is_the_default(api: Any) -> None:
    api.hset("h", "f", 1)
    assert api.hget("h", "other") is None
    assert api.hget("h", "other", default=0) == 0
    assert api.hget("missing", "f", "none") == "none"


def test_hgetall_of_a_missing_hash_is_empty(api: Any) -> None:
    assert api.hgetall("missing") == {}


def test_hdel_removes_a_field(api: Any) -> None:
    api.hset("h", mapping={"a": 1, "b": 2})
    assert api.hdel("h", "a") == 1
    assert api.hdel("h", "a") == 0
    assert api.hgetall("h") == {"b": 2}


def test_hlen_counts_the_fields(api: Any) -> None:
    api.hset("h", mapping={"a": 1, "b": 2})
    assert api.hlen("h") == 2
    assert api.hlen("missing") == 0


def test_hkeys_lists_the_field_names(api: Any) -> None:
    api.hset("h", mapping={"a": 1, "b": 2})
    assert sorted(api.hkeys("h")) == ["a", "b"]
    assert api.hkeys("missing") == []


def test_hexists(api: Any) -> None:
    api.hset("h", "a", 1)
    assert api.hexists("h", "a") is True
    assert api.hexists("h", "b") is False
    assert api.hexists("missing", "a") is False


# Sorted sets


def test_zadd_counts_the_added_members(api: Any) -> None:
    assert api.zadd("z", {"a": 1, "b": 2}) == 2
    assert api.zadd("z", {"a": 5, "c": 3}) == 1
    assert api.zrange("z", 0, -1, withscores=True) == [("b", 2.0), ("c", 3.0), ("a", 5.0)]


def test_zadd_with_an_empty_mapping_adds_nothing(api: Any) -> None:
    assert api.zadd("z", {}) == 0
    assert api.zcard("z") == 0


def test_sorted_set_members_are_stored_like_cache_values(api: Any, raw: Any) -> None:
    api.zadd("z", {7: 1, "seven": 2})
    number, text = raw.zrange(":1:z", 0, -1)
    assert number == b"7"
    assert pickle.loads(text) == "seven"


def test_a_dict_sorted_set_member_round_trips(api: Any) -> None:
    member = {"id": 1, "tags": ["x"]}
    api.zadd("z", {"plain": 0.5})
    api.zincrby("z", 2, member)
    assert api.zscore("z", member) == 2.0
    assert api.zrange("z", -1, -1) == [member]
    assert api.zpopmax("z") == (member, 2.0)


def test_zadd_ch_counts_the_changed_members(api: Any) -> None:
    api.zadd("z", {"a": 1, "b": 2})
    assert api.zadd("z", {"a": 10, "b": 2, "c": 3}, ch=True) == 2


def test_zadd_nx_only_adds(api: Any) -> None:
    api.zadd("z", {"a": 1})
    assert api.zadd("z", {"a": 10, "b": 2}, nx=True) == 1
    assert api.zscore("z", "a") == 1.0


def test_zadd_xx_only_updates(api: Any) -> None:
    api.zadd("z", {"a": 1})
    assert api.zadd("z", {"a": 10, "b": 2}, xx=True) == 0
    assert api.zrange("z", 0, -1, withscores=True) == [("a", 10.0)]


def test_zadd_gt_and_lt_update_only_in_one_direction(api: Any) -> None:
    api.zadd("z", {"a": 5, "b": 5})
    api.zadd("z", {"a": 1}, gt=True)
    api.zadd("z", {"b": 1}, lt=True)
    assert api.zscore("z", "a") == 5.0
    assert api.zscore("z", "b") == 1.0


def test_zadd_incr_returns_the_new_score(api: Any) -> None:
    assert api.zadd("z", {"a": 2}, incr=True) == 2.0
    assert api.zadd("z", {"a": 1.5}, incr=True) == 3.5


def test_zadd_incr_prevented_by_a_condition_returns_none(api: Any) -> None:
    api.zadd("z", {"a": 1})
    assert api.zadd("z", {"a": 1}, incr=True, nx=True) is None


@pytest.mark.parametrize(
    "options",
    [
        {"nx": True, "xx": True},
        {"gt": True, "lt": True},
        {"nx": True, "gt": True},
        {"incr": True, "mapping": {"a": 1, "b": 2}},
    ],
    ids=["nx-xx", "gt-lt", "nx-gt", "incr-two-members"],
)
def test_zadd_rejects_conflicting_options(api: Any, options: dict[str, Any]) -> None:
    options = dict(options)  # the same dict serves the sync and the async run
    mapping = options.pop("mapping", {"a": 1})
    with pytest.raises(ValueError, match=r"zadd\("):
        api.zadd("z", mapping, **options)


def test_zcard_counts_the_members(api: Any) -> None:
    api.zadd("z", {"a": 1, "b": 2})
    assert api.zcard("z") == 2
    assert api.zcard("missing") == 0


def test_zcount_counts_scores_in_a_range(api: Any) -> None:
    api.zadd("z", {"a": 1, "b": 2, "c": 3})
    assert api.zcount("z", 1, 2) == 2
    assert api.zcount("z", "(1", "+inf") == 2
    assert api.zcount("z", "-inf", "+inf") == 3


def test_zincrby_returns_the_new_score(api: Any) -> None:
    assert api.zincrby("z", 2.5, "a") == 2.5
    assert api.zincrby("z", -1, "a") == 1.5


def test_zpopmax_and_zpopmin_return_a_pair(api: Any) -> None:
    api.zadd("z", {"low": 1, "mid": 2, "high": 3})
    assert api.zpopmax("z") == ("high", 3.0)
    assert api.zpopmin("z") == ("low", 1.0)
    assert api.zrange("z", 0, -1) == ["mid"]


def test_zpop_with_count_returns_a_list_of_pairs(api: Any) -> None:
    api.zadd("z", {"a": 1, "b": 2, "c": 3})
    assert api.zpopmax("z", 2) == [("c", 3.0), ("b", 2.0)]
    assert api.zpopmin("z", 5) == [("a", 1.0)]


def test_zpop_of_an_empty_sorted_set(api: Any) -> None:
    assert api.zpopmax("missing") is None
    assert api.zpopmin("missing") is None
    assert api.zpopmax("missing", 2) == []


def test_zrange_by_rank(api: Any) -> None:
    api.zadd("z", {"a": 1, "b": 2, "c": 3})
    assert api.zrange("z", 0, -1) == ["a", "b", "c"]
    assert api.zrange("z", 1, 1) == ["b"]
    assert api.zrange("z", -2, -1) == ["b", "c"]
    assert api.zrange("z", 0, 1, desc=True) == ["c", "b"]
    assert api.zrange("missing", 0, -1) == []


def test_zrange_withscores_gives_pairs(api: Any) -> None:
    api.zadd("z", {"a": 1.5, "b": 2})
    assert api.zrange("z", 0, -1, withscores=True) == [("a", 1.5), ("b", 2.0)]


def test_score_cast_func_gets_the_score_as_a_float(api: Any) -> None:
    api.zadd("z", {"a": 1, "b": 2.5})
    assert api.zrange("z", 0, -1, withscores=True, score_cast_func=int) == [("a", 1), ("b", 2)]
    assert api.zrangebyscore("z", 2, 3, withscores=True, score_cast_func=str) == [("b", "2.5")]


def test_zrangebyscore(api: Any) -> None:
    api.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4})
    assert api.zrangebyscore("z", 2, 3) == ["b", "c"]
    assert api.zrangebyscore("z", "(1", "+inf") == ["b", "c", "d"]
    assert api.zrangebyscore("z", 1, 4, withscores=True)[0] == ("a", 1.0)


def test_zrangebyscore_pages_with_start_and_num(api: Any) -> None:
    api.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4})
    assert api.zrangebyscore("z", "-inf", "+inf", start=1, num=2) == ["b", "c"]


def test_start_without_num_is_an_error(api: Any) -> None:
    with pytest.raises(ValueError, match="together"):
        api.zrangebyscore("z", 0, 1, start=1)


def test_zrevrange(api: Any) -> None:
    api.zadd("z", {"a": 1, "b": 2, "c": 3})
    assert api.zrevrange("z", 0, 1) == ["c", "b"]
    assert api.zrevrange("z", 0, 0, withscores=True) == [("c", 3.0)]


def test_zrevrangebyscore_takes_max_first(api: Any) -> None:
    api.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4})
    assert api.zrevrangebyscore("z", 3, 1) == ["c", "b", "a"]
    assert api.zrevrangebyscore("z", "+inf", "-inf", start=0, num=2, withscores=True) == [
        ("d", 4.0),
        ("c", 3.0),
    ]


def test_zrank(api: Any) -> None:
    api.zadd("z", {"a": 1, "b": 2})
    assert api.zrank("z", "a") == 0
    assert api.zrank("z", "b") == 1
    assert api.zrank("z", "x") is None


def test_zrank_withscore_gives_rank_and_score(api: Any, raw: Any) -> None:
    version = raw.info("server").get("redis_version", "0")
    if tuple(int(part) for part in version.split(".")[:2]) < (7, 2):
        pytest.skip(f"ZRANK WITHSCORE needs Redis/Valkey 7.2+, the server is {version}")
    api.zadd("z", {"a": 1, "b": 2.5})
    assert api.zrank("z", "b", withscore=True) == [1, 2.5]
    assert api.zrank("z", "x", withscore=True) is None


def test_zrem_counts_the_removed_members(api: Any) -> None:
    api.zadd("z", {"a": 1, "b": 2, "c": 3})
    assert api.zrem("z", "a", "b", "x") == 2
    assert api.zrange("z", 0, -1) == ["c"]
    assert api.zrem("z") == 0


def test_zremrangebyscore(api: Any) -> None:
    api.zadd("z", {"a": 1, "b": 2, "c": 3})
    assert api.zremrangebyscore("z", 1, "(3") == 2
    assert api.zrange("z", 0, -1) == ["c"]


def test_zscore(api: Any) -> None:
    api.zadd("z", {"a": 1.25})
    assert api.zscore("z", "a") == 1.25
    assert api.zscore("z", "x") is None
    assert api.zscore("missing", "a") is None


# The twins


SYNC_METHODS = sorted(name for name in vars(StructuresMixin) if not name.startswith(("_", "a")))


def test_every_method_has_an_async_twin_with_the_same_parameters() -> None:
    assert len(SYNC_METHODS) == 38
    for name in SYNC_METHODS:
        sync = inspect.signature(getattr(StructuresMixin, name))
        twin = inspect.signature(getattr(StructuresMixin, "a" + name))
        assert sync.parameters == twin.parameters, name


def test_ignored_failures_are_logged_under_the_methods_name() -> None:
    """IGNORE_EXCEPTIONS logs the operation's name: each method has its own."""
    for name in SYNC_METHODS:
        operation = getattr(sops, name)
        assert operation.__name__ == name


# Keys: prefix, version, the rest of the cache API


def test_structure_keys_are_prefixed_and_versioned(make_cache: Any, api_for: Any, raw: Any) -> None:
    api = api_for(make_cache(KEY_PREFIX="site"))
    api.sadd("s", 1, version=3)
    api.hset("h", "f", 1, version=3)
    api.zadd("z", {"m": 1}, version=3)
    assert sorted(raw.keys("*")) == [b"site:3:h", b"site:3:s", b"site:3:z"]
    assert api.smembers("s", version=3) == {1}
    assert api.hget("h", "f", version=3) == 1
    assert api.zscore("z", "m", version=3) == 1.0


def test_versions_are_separate_structures(api: Any) -> None:
    api.sadd("s", "v1", version=1)
    api.sadd("s", "v2", version=2)
    assert api.smembers("s") == {"v1"}
    assert api.smembers("s", version=2) == {"v2"}


def test_multi_key_set_operations_version_every_key(api: Any) -> None:
    api.sadd("a", 1, version=2)
    api.sadd("b", 2, version=2)
    api.sadd("b", 3)
    assert api.sunion("a", "b", version=2) == {1, 2}
    assert api.sunionstore("u", "a", "b", version=2) == 2
    assert api.smembers("u", version=2) == {1, 2}


def test_structures_work_with_the_cache_api(api: Any) -> None:
    api.hset("h", "f", 1)
    assert api.has_key("h") is True
    assert api.expire("h", 10) is True
    assert 0 < api.ttl("h") <= 10
    assert api.keys("*") == ["h"]
    assert api.delete("h") is True
    assert api.hgetall("h") == {}


def test_structures_have_no_timeout(api: Any) -> None:
    api.sadd("s", 1)
    api.hset("h", "f", 1)
    api.zadd("z", {"m": 1})
    assert api.ttl("s") is None
    assert api.ttl("h") is None
    assert api.ttl("z") is None


def test_wrong_type_is_a_server_error(api: Any) -> None:
    import redis

    api.set("plain", "value")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        api.sadd("plain", 1)


def test_values_go_through_the_configured_serializer(
    make_cache: Any, api_for: Any, raw: Any
) -> None:
    api = api_for(make_cache(OPTIONS={"SERIALIZER": JSON}))
    api.sadd("s", "text")
    api.hset("h", "f", {"a": [1, 2]})
    api.zadd("z", {"member": 1})
    assert raw.smembers(":1:s") == {b'"text"'}
    assert raw.hget(":1:h", "f") == b'{"a":[1,2]}'
    assert raw.zrange(":1:z", 0, -1) == [b'"member"']
    assert api.hget("h", "f") == {"a": [1, 2]}
    assert api.smembers("s") == {"text"}


def test_a_lazy_queryset_is_encoded_where_the_database_may_be_used(
    api: Any, django_db_tables: None
) -> None:
    """Pickling evaluates it; from async code that must happen off the event loop."""
    from tests.models import Poll

    Poll.objects.create(question="why?")
    api.hset("h", mapping={"polls": Poll.objects.all()})
    api.sadd("s", Poll.objects.all(), 1)
    assert [poll.question for poll in api.hget("h", "polls")] == ["why?"]
    assert api.scard("s") == 2
