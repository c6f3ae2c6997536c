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
