"""Serializers and compressors: what is stored, and that it always reads back."""

from __future__ import annotations

import datetime
import decimal
import gzip
import pickle
import uuid
import zlib
from typing import Any

import pytest

from django_asyncredis import CorruptValueError

SERIALIZERS = {
    "pickle": "django_asyncredis.serializers.pickle.PickleSerializer",
    "json": "django_asyncredis.serializers.json.JSONSerializer",
    "msgpack": "django_asyncredis.serializers.msgpack.MSGPackSerializer",
}
COMPRESSORS = {
    "zlib": "django_asyncredis.compressors.zlib.ZlibCompressor",
    "gzip": "django_asyncredis.compressors.gzip.GzipCompressor",
    "lzma": "django_asyncredis.compressors.lzma.LzmaCompressor",
    "lz4": "django_asyncredis.compressors.lz4.Lz4Compressor",
    "zstd": "django_asyncredis.compressors.zstd.ZstdCompressor",
}
PLAIN_VALUES = ["text", 1.5, -2.25, True, None, [1, "two", None], {"a": {"b": [1.0]}}, "9 lives"]


@pytest.fixture(params=["sync", "async"])
def through(request: pytest.FixtureRequest) -> Any:
    """Call a cache method through the sync or the async API."""
    import asyncio

    def call(cache: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        if request.param == "sync":
            return getattr(cache, name)(*args, **kwargs)
        return asyncio.run(getattr(cache, "a" + name)(*args, **kwargs))

    return call


@pytest.mark.parametrize("serializer", list(SERIALIZERS))
@pytest.mark.parametrize("value", PLAIN_VALUES, ids=repr)
def test_each_serializer_round_trips_plain_values(
    make_cache: Any, through: Any, serializer: str, value: Any
) -> None:
    cache = make_cache(OPTIONS={"SERIALIZER": SERIALIZERS[serializer]})
    through(cache, "set", "key", value)
    assert through(cache, "get", "key") == value


@pytest.mark.parametrize("serializer", list(SERIALIZERS))
def test_integers_stay_raw_whatever_the_serializer(
    make_cache: Any, raw: Any, through: Any, serializer: str
) -> None:
    """So incr stays an atomic server-side INCRBY."""
    cache = make_cache(OPTIONS={"SERIALIZER": SERIALIZERS[serializer]})
    through(cache, "set", "n", 41)
    assert raw.get(":1:n") == b"41"
    assert through(cache, "incr", "n") == 42


def test_json_serializer_writes_djangos_types_as_strings(make_cache: Any, through: Any) -> None:
    cache = make_cache(OPTIONS={"SERIALIZER": SERIALIZERS["json"]})
    value = {
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "price": decimal.Decimal("9.99"),
        "id": uuid.UUID(int=1),
    }
    through(cache, "set", "key", value)
    assert through(cache, "get", "key") == {
        "when": "2026-01-02T03:04:05",
        "price": "9.99",
        "id": "00000000-0000-0000-0000-000000000001",
    }


def test_pickle_version_is_honoured(make_cache: Any, raw: Any) -> None:
    make_cache(OPTIONS={"PICKLE_VERSION": 2}).set("key", "text")
    assert raw.get(":1:key")[:2] == b"\x80\x02"


def test_a_users_own_serializer_by_dotted_path(make_cache: Any, through: Any, raw: Any) -> None:
    cache = make_cache(OPTIONS={"serializer": "tests.test_values.ReversingSerializer"})
    through(cache, "set", "key", "abc")
    assert raw.get(":1:key") == b"cba"
    assert through(cache, "get", "key") == "abc"


class ReversingSerializer:
    def dumps(self, value: Any) -> bytes:
        return str(value)[::-1].encode()

    def loads(self, data: bytes) -> Any:
        return data.decode()[::-1]


@pytest.mark.parametrize("compressor", list(COMPRESSORS))
def test_each_compressor_shrinks_big_values_and_reads_them_back(
    make_cache: Any, raw: Any, through: Any, compressor: str
) -> None:
    cache = make_cache(OPTIONS={"COMPRESSOR": COMPRESSORS[compressor]})
    value = "a compressible sentence. " * 200
    through(cache, "set", "key", value)
    assert len(raw.get(":1:key")) < len(pickle.dumps(value)) / 5
    assert through(cache, "get", "key") == value
    assert through(cache, "get_many", ["key"]) == {"key": value}


def test_small_values_are_stored_uncompressed(make_cache: Any, raw: Any) -> None:
    cache = make_cache(OPTIONS={"COMPRESSOR": COMPRESSORS["zlib"], "COMPRESS_MIN_LENGTH": 100})
    cache.set("key", "short")
    assert raw.get(":1:key") == pickle.dumps("short", pickle.HIGHEST_PROTOCOL)


@pytest.mark.parametrize("compressor", list(COMPRESSORS))
def test_switching_compression_on_and_off_keeps_old_values_readable(
    make_cache: Any, through: Any, compressor: str
) -> None:
    plain = make_cache()
    compressed = make_cache(OPTIONS={"COMPRESSOR": COMPRESSORS[compressor]})
    big = "x" * 5000
    through(plain, "set", "old", big)
    through(compressed, "set", "new", big)
    assert through(compressed, "get", "old") == big
    assert through(plain, "get", "new") == big


def test_values_compressed_by_django_redis_are_readable(cache: Any, raw: Any) -> None:
    """django-redis writes bare zlib / gzip streams: their magic bytes identify them."""
    raw.set(":1:zlib", zlib.compress(pickle.dumps({"from": "django-redis"})))
    raw.set(":1:gzip", gzip.compress(pickle.dumps([1, 2, 3])))
    assert cache.get("zlib") == {"from": "django-redis"}
    assert cache.get("gzip") == [1, 2, 3]


def test_json_numbers_are_never_mistaken_for_integers(make_cache: Any, raw: Any) -> None:
    """A payload that starts like an integer is escaped, so it reads back as itself."""
    cache = make_cache(OPTIONS={"SERIALIZER": SERIALIZERS["json"]})
    cache.set("float", 10.0)
    assert raw.get(":1:float") == b"\x0010.0"
    assert cache.get("float") == 10.0


def test_a_number_written_by_django_redis_json_is_readable(make_cache: Any, raw: Any) -> None:
    cache = make_cache(OPTIONS={"SERIALIZER": SERIALIZERS["json"]})
    raw.set(":1:legacy", b"1.5")
    assert cache.get("legacy") == 1.5


@pytest.mark.parametrize("garbage", [b"\x80\x05not a pickle", b"12abc", b"\x78\x9cnot zlib"])
def test_corrupt_bytes_raise_a_clear_error(api: Any, raw: Any, garbage: bytes) -> None:
    raw.set(":1:key", garbage)
    raw.set(":1:other", b"7")
    with pytest.raises(CorruptValueError, match=r"':1:key'"):
        api.get("key")
    assert api.get("other") == 7


def test_django_redis_serializer_and_compressor_paths_work_unchanged(
    make_cache: Any, through: Any
) -> None:
    cache = make_cache(
        OPTIONS={
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
            "COMPRESSOR": "django_redis.compressors.zstd.ZStdCompressor",
        }
    )
    through(cache, "set", "key", {"big": "y" * 1000})
    assert through(cache, "get", "key") == {"big": "y" * 1000}


# Signed values

SIGNED = "django_asyncredis.serializers.signed.SignedPickleSerializer"
RAN: list[str] = []


class Exploit:
    """Unpickling this records that code ran: what an attacker's value would do."""

    def __reduce__(self) -> Any:
        return (RAN.append, ("code ran",))


def test_signed_values_round_trip(make_cache: Any, through: Any) -> None:
    cache = make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "k1"})
    through(cache, "set", "key", {"a": [1, 2]})
    assert through(cache, "get", "key") == {"a": [1, 2]}


def test_a_tampered_value_is_rejected_and_never_unpickled(
    make_cache: Any, raw: Any, through: Any
) -> None:
    cache = make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "k1"})
    through(cache, "set", "key", "genuine")
    stored = raw.get(":1:key")
    raw.set(":1:key", stored[:-40] + pickle.dumps(Exploit())[-40:])
    raw.set(":1:forged", pickle.dumps(Exploit()))  # written by someone without the key
    for key in ("key", "forged"):
        with pytest.raises(CorruptValueError, match="signature"):
            through(cache, "get", key)
    assert RAN == []


def test_a_value_signed_with_another_key_is_rejected(make_cache: Any, through: Any) -> None:
    writer = make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "theirs"})
    reader = make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "ours"})
    through(writer, "set", "key", "value")
    with pytest.raises(CorruptValueError, match="signature"):
        through(reader, "get", "key")


def test_signed_serializer_defaults_to_secret_key_and_accepts_fallbacks(
    make_cache: Any, through: Any
) -> None:
    from django.test import override_settings

    # Parsed settings are memoised per OPTIONS (SECRET_KEY does not change at run
    # time), so each phase uses its own OPTIONS.
    with override_settings(SECRET_KEY="old-secret"):
        writer = make_cache(OPTIONS={"SERIALIZER": SIGNED, "PICKLE_VERSION": 4})
        through(writer, "set", "key", "value")
    with override_settings(SECRET_KEY="new-secret", SECRET_KEY_FALLBACKS=["old-secret"]):
        reader = make_cache(OPTIONS={"SERIALIZER": SIGNED, "PICKLE_VERSION": 5})
        assert through(reader, "get", "key") == "value"


def test_a_bare_integer_written_under_a_key_is_refused(
    make_cache: Any, raw: Any, through: Any
) -> None:
    """Was: ``SET <prefix>:1:user_id 1`` by anyone with server access read back as 1."""
    cache = make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "k1"})
    raw.set(":1:user_id", 1)
    with pytest.raises(CorruptValueError, match="signature"):
        through(cache, "get", "user_id")


def test_integers_are_signed_too(make_cache: Any, raw: Any, through: Any) -> None:
    cache = make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "k1"})
    through(cache, "set", "n", 41)
    assert not raw.get(":1:n").isdigit()
    assert through(cache, "incr", "n") == 42
    assert not raw.get(":1:n").isdigit()
    assert through(cache, "get", "n") == 42


def test_a_signed_value_copied_to_another_key_is_refused(
    make_cache: Any, raw: Any, through: Any
) -> None:
    """Was: copying alice's ``{"is_admin": True}`` onto mallory's key was accepted."""
    cache = make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "k1"})
    through(cache, "set", "user:alice", {"is_admin": True})
    through(cache, "set", "user:mallory", {"is_admin": False})
    raw.set(":1:user:mallory", raw.get(":1:user:alice"))
    raw.set(":2:user:alice", raw.get(":1:user:alice"))  # another version is another key
    with pytest.raises(CorruptValueError, match="signature"):
        through(cache, "get", "user:mallory")
    with pytest.raises(CorruptValueError, match="signature"):
        through(cache, "get", "user:alice", version=2)
    assert through(cache, "get", "user:alice") == {"is_admin": True}


def test_a_value_in_the_earlier_unbound_format_is_refused_with_a_clear_message(
    make_cache: Any, raw: Any, through: Any
) -> None:
    """Signed by an earlier release (or copied from a set): refused, the message says why."""
    from django_asyncredis.serializers.signed import SignedPickleSerializer

    cache = make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "k1"})
    earlier = SignedPickleSerializer({"SIGNING_KEY": "k1"}).dumps({"is_admin": True})
    raw.set(":1:user", earlier)
    with pytest.raises(CorruptValueError, match=r"does not cover its key.*migration"):
        through(cache, "get", "user")


def test_signed_values_survive_compression(make_cache: Any, through: Any) -> None:
    cache = make_cache(
        OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "k1", "COMPRESSOR": COMPRESSORS["zlib"]}
    )
    through(cache, "set", "big", "x" * 5000)
    through(cache, "set", "n", 7)
    assert through(cache, "get", "big") == "x" * 5000
    assert through(cache, "incr", "n") == 8


def test_incr_version_re_signs_the_value_for_its_new_key(
    make_cache: Any, raw: Any, through: Any
) -> None:
    """RENAME would move bytes signed for the old key; the value is verified, signed
    for the new key and moved in one transaction, keeping its expiry."""
    cache = make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "k1"})
    through(cache, "set", "key", {"a": 1}, 100)
    through(cache, "set", "n", 5, None)
    assert through(cache, "incr_version", "key") == 2
    assert through(cache, "decr_version", "n") == 0
    assert through(cache, "get", "key", version=2) == {"a": 1}
    assert through(cache, "get", "n", version=0) == 5
    assert raw.exists(":1:key", ":1:n") == 0
    assert 0 < raw.pttl(":2:key") <= 100_000
    assert raw.pttl(":0:n") == -1


def test_incr_version_refuses_to_re_sign_a_forged_value(
    make_cache: Any, raw: Any, through: Any
) -> None:
    """A forged value is never laundered into a validly signed one; nothing moves."""
    cache = make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "k1"})
    raw.set(":1:key", pickle.dumps(Exploit()))
    with pytest.raises(CorruptValueError, match="signature"):
        through(cache, "incr_version", "key")
    assert raw.exists(":1:key") == 1
    assert raw.exists(":2:key") == 0
    assert RAN == []


def test_incr_version_of_a_missing_signed_key_raises_value_error(
    make_cache: Any, through: Any
) -> None:
    cache = make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "k1"})
    with pytest.raises(ValueError, match="not found"):
        through(cache, "incr_version", "missing")


def test_signed_set_members_compare_across_keys(make_cache: Any, through: Any) -> None:
    """Members are signed but not bound to their key: set algebra still works."""
    cache = make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "k1"})
    through(cache, "sadd", "a", "x", "y", 1)
    through(cache, "sadd", "b", "y", 1)
    assert through(cache, "sinter", "a", "b") == {"y", 1}
    assert through(cache, "smembers", "a") == {"x", "y", 1}


def test_a_bare_integer_member_is_refused_under_signing(
    make_cache: Any, raw: Any, through: Any
) -> None:
    cache = make_cache(OPTIONS={"SERIALIZER": SIGNED, "SIGNING_KEY": "k1"})
    raw.sadd(":1:s", 1)
    with pytest.raises(CorruptValueError, match="signature"):
        through(cache, "smembers", "s")


# Empty payloads


class EmptyStringSerializer:
    """Writes the empty string as no bytes at all."""

    def dumps(self, value: Any) -> bytes:
        return value.encode()  # type: ignore[no-any-return]

    def loads(self, data: bytes) -> Any:
        return data.decode()


def test_an_empty_payload_round_trips(make_cache: Any, through: Any) -> None:
    """Was: ``IndexError`` wrapped as ``CorruptValueError`` on the read."""
    cache = make_cache(OPTIONS={"SERIALIZER": "tests.test_values.EmptyStringSerializer"})
    through(cache, "set", "key", "")
    through(cache, "set_many", {"a": "", "b": "b"})
    assert through(cache, "get", "key") == ""
    assert through(cache, "get_many", ["a", "b"]) == {"a": "", "b": "b"}


def test_an_empty_value_stored_by_an_earlier_release_reads_back(
    make_cache: Any, raw: Any, through: Any
) -> None:
    cache = make_cache(OPTIONS={"SERIALIZER": "tests.test_values.EmptyStringSerializer"})
    raw.set(":1:key", b"")
    assert through(cache, "get", "key") == ""


def test_empty_bytes_under_pickle_are_a_clear_corrupt_value(api: Any, raw: Any) -> None:
    raw.set(":1:key", b"")
    with pytest.raises(CorruptValueError, match="':1:key' \\(0 bytes\\)"):
        api.get("key")


# Structure members


def test_equal_dicts_in_another_order_are_different_members(api: Any) -> None:
    """Documented (docs/structures.md): members compare by their pickled bytes."""
    assert api.sadd("s", {"a": 1, "b": 2}) == 1
    assert api.sadd("s", {"b": 2, "a": 1}) == 1
    assert api.scard("s") == 2
    assert api.sismember("s", {"a": 1, "b": 2}) is True
    assert api.sadd("s", 1, 1.0) == 2
