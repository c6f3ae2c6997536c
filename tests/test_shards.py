"""django-redis's ShardClient settings: client-side shards over independent servers,
keys placed exactly where django-redis places them, so a live migration finds its
data. Checked against django-redis itself (a test dependency) on three real servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from django_asyncredis import RedisCache
from tests.servers import ServerProcess

SHARD_CLIENT = {"CLIENT_CLASS": "django_redis.client.ShardClient"}
#: Plain keys, and keys with hash tags (only the tag decides the shard).
KEYS = [f"key-{i}" for i in range(150)] + [f"{{user{i}}}:profile" for i in range(50)]


@pytest.fixture(scope="module")
def shards() -> Iterator[list[ServerProcess]]:
    servers = [ServerProcess().start() for _ in range(3)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def locations(shards: list[ServerProcess]) -> Iterator[list[str]]:
    yield [server.url for server in shards]
    for server in shards:
        server.flush()


@pytest.fixture
def ours(locations: list[str]) -> RedisCache:
    return RedisCache(locations, {"OPTIONS": SHARD_CLIENT})


@pytest.fixture
def theirs(locations: list[str]) -> Any:
    from django_redis.cache import RedisCache as DjangoRedisCache

    return DjangoRedisCache(locations, {"OPTIONS": SHARD_CLIENT})


@pytest.fixture(params=["sync", "async"])
def is_async(request: pytest.FixtureRequest) -> bool:
    return request.param == "async"


def keys_per_shard(shards: list[ServerProcess]) -> list[set[bytes]]:
    found = []
    for server in shards:
        with redis.Redis.from_url(server.url) as client:
            found.append(set(client.keys("*")))
    return found


def test_what_django_redis_writes_we_read(theirs: Any, ours: RedisCache, is_async: bool) -> None:
    """Every key django-redis's ShardClient wrote is found by ours, on either API."""
    for i, key in enumerate(KEYS):
        theirs.set(key, i)
    if is_async:

        async def read() -> list[Any]:
            return [await ours.aget(key) for key in KEYS]

        assert asyncio.run(read()) == list(range(len(KEYS)))
    else:
        assert [ours.get(key) for key in KEYS] == list(range(len(KEYS)))


# django-redis's RedisCache.get passes client=None to its ShardClient, which warns
# (an error here): the tests read through ``theirs.client.get`` instead.


def test_what_we_write_django_redis_reads(theirs: Any, ours: RedisCache, is_async: bool) -> None:
    """And the reverse, including keys written by one set_many spread over shards."""
    data = {key: f"value {i}" for i, key in enumerate(KEYS)}
    if is_async:
        asyncio.run(ours.aset_many(data))
    else:
        ours.set_many(data)
    assert {key: theirs.client.get(key) for key in KEYS} == data


def test_keys_are_spread_over_every_shard(
    ours: RedisCache, shards: list[ServerProcess], theirs: Any
) -> None:
    """Each shard holds some keys, each key once, and exactly where django-redis
    puts it: the same keys on the same servers after each backend writes them."""
    ours.set_many(dict.fromkeys(KEYS, 1))
    placed_by_us = keys_per_shard(shards)
    for server in shards:
        server.flush()
    for key in KEYS:
        theirs.set(key, 1)
    assert keys_per_shard(shards) == placed_by_us
    assert all(placed_by_us)
    assert sum(len(keys) for keys in placed_by_us) == len(KEYS)


def test_a_hash_tag_keeps_keys_together(ours: RedisCache, shards: list[ServerProcess]) -> None:
    """Keys with the same tag share a shard, as with django-redis."""
    ours.set_many({f"{{cart42}}:{part}": part for part in ("items", "total", "owner")})
    assert sorted(len(keys) for keys in keys_per_shard(shards)) == [0, 0, 3]


def test_multi_key_calls_span_the_shards(ours: RedisCache, is_async: bool) -> None:
    """get_many, delete_many, has_key and clear work across shards."""
    data = {key: i for i, key in enumerate(KEYS[:40])}

    async def calls() -> tuple[Any, ...]:
        await ours.aset_many(data)
        got = await ours.aget_many([*data, "missing"])
        await ours.adelete_many(list(data)[:20])
        left = await ours.aget_many(data)
        await ours.aclear()
        return got, left, await ours.ahas_key(KEYS[39])

    def sync_calls() -> tuple[Any, ...]:
        ours.set_many(data)
        got = ours.get_many([*data, "missing"])
        ours.delete_many(list(data)[:20])
        left = ours.get_many(data)
        ours.clear()
        return got, left, ours.has_key(KEYS[39])

    got, left, exists = asyncio.run(calls()) if is_async else sync_calls()
    assert got == data
    assert left == dict(list(data.items())[20:])
    assert exists is False


def test_incr_version_moves_a_key_across_shards(
    ours: RedisCache, theirs: Any, is_async: bool
) -> None:
    """A new version may live on another shard: the value moves there, keeping its
    expiry, and django-redis finds it at the new version."""
    for key in KEYS[:20]:
        ours.set(key, key, timeout=100)

    async def bump() -> list[int]:
        return [await ours.aincr_version(key) for key in KEYS[:20]]

    versions = asyncio.run(bump()) if is_async else [ours.incr_version(k) for k in KEYS[:20]]
    assert versions == [2] * 20
    assert [theirs.client.get(key, version=2) for key in KEYS[:20]] == KEYS[:20]
    assert [ours.get(key) for key in KEYS[:20]] == [None] * 20
    assert all(0 < ours.ttl(key, version=2) <= 100 for key in KEYS[:20])  # type: ignore[operator]


def test_keys_and_delete_pattern_scan_every_shard(ours: RedisCache, is_async: bool) -> None:
    """keys() and delete_pattern() see the keys of every shard."""
    ours.set_many(dict.fromkeys(KEYS[:30], 1))
    if is_async:

        async def scan() -> tuple[list[Any], int]:
            return await ours.akeys("key-*"), await ours.adelete_pattern("key-*")

        found, deleted = asyncio.run(scan())
    else:
        found, deleted = ours.keys("key-*"), ours.delete_pattern("key-*")
    assert sorted(found) == sorted(KEYS[:30])
    assert deleted == 30


def test_a_pipeline_spans_the_shards(ours: RedisCache, theirs: Any) -> None:
    """The cache pipeline groups its commands per shard."""
    with ours.pipeline() as p:
        for i, key in enumerate(KEYS[:30]):
            p.set(key, i)
    assert [theirs.client.get(key) for key in KEYS[:30]] == list(range(30))


SIGNED_SHARDS = {
    **SHARD_CLIENT,
    "SERIALIZER": "django_asyncredis.serializers.signed.SignedPickleSerializer",
    "SIGNING_KEY": "k",
}


@pytest.fixture
def signed(locations: list[str]) -> RedisCache:
    """Shards whose integers are signed: incr is a transaction on the key's shard."""
    return RedisCache(locations, {"OPTIONS": SIGNED_SHARDS})


def test_a_transactional_incr_runs_on_the_keys_own_shard(
    signed: RedisCache, theirs: Any, shards: list[ServerProcess], is_async: bool
) -> None:
    """incr under signing (a WATCH/MULTI/EXEC transaction) updates each key on the
    shard django-redis places it on, never on another."""
    keys = KEYS[:30]
    for key in keys:
        signed.set(key, 10)

    async def bump() -> list[int]:
        return [await signed.aincr(key, 5) for key in keys]

    results = asyncio.run(bump()) if is_async else [signed.incr(key, 5) for key in keys]
    assert results == [15] * 30
    assert [signed.get(key) for key in keys] == [15] * 30
    stored = [signed.make_key(key).encode() for key in keys]
    placed = keys_per_shard(shards)
    expected = [theirs.client.get_server_name(signed.make_key(key)) for key in keys]
    for made, location in zip(stored, expected, strict=True):
        index = [server.url for server in shards].index(location)
        assert [made in found for found in placed] == [i == index for i in range(3)]


def test_a_signed_value_moves_across_shards_on_incr_version(
    signed: RedisCache, is_async: bool
) -> None:
    """Under signing, incr_version re-signs each value for its new key and writes it
    on the new key's shard: every value reads back at its new version."""
    keys = KEYS[:20]
    for key in keys:
        signed.set(key, {"v": key}, timeout=100)

    async def bump() -> list[int]:
        return [await signed.aincr_version(key) for key in keys]

    versions = asyncio.run(bump()) if is_async else [signed.incr_version(k) for k in keys]
    assert versions == [2] * 20
    assert [signed.get(key, version=2) for key in keys] == [{"v": key} for key in keys]
    assert [signed.get(key) for key in keys] == [None] * 20
