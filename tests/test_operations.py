"""Django's cache contract, one behaviour per test, through the sync and the async API.

The ``api`` fixture runs every test twice: once calling ``cache.get(...)``, once
calling ``await cache.aget(...)``; both drive the same operation code.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from django.core.cache.backends.base import CacheKeyWarning

# Storage and retrieval


def test_get_missing_key_returns_default(api: Any) -> None:
    """A missing key gives the default (None unless given)."""
    assert api.get("missing") is None
    assert api.get("missing", "fallback") == "fallback"


@pytest.mark.parametrize(
    "value",
    [
        "text",
        b"bytes",
        0,
        -7,
        2**80,
        1.5,
        True,
        False,
        None,
        {"nested": [1, (2, 3), {"x": None}]},
        "ünïcödé ✓",
    ],
    ids=repr,
)
def test_set_then_get_round_trips_the_value(api: Any, value: Any) -> None:
    """Whatever is stored comes back equal and of the same type."""
    api.set("key", value)
    result = api.get("key", "missing")
    assert result == value
    assert type(result) is type(value)


def test_stored_none_is_not_a_miss(api: Any) -> None:
    """None is a value like any other; only an absent key gives the default."""
    api.set("key", None)
    assert api.get("key", "missing") is None


def test_integers_are_stored_as_decimal_text(api: Any, raw: Any) -> None:
    """Integers are raw on the server, so INCRBY (and other clients) can read them."""
    api.set("key", 42)
    assert raw.get(":1:key") == b"42"


def test_other_values_are_pickled(api: Any, raw: Any) -> None:
    """Non-integers are pickled with the highest protocol by default."""
    api.set("key", "text")
    assert pickle.loads(raw.get(":1:key")) == "text"


def test_value_written_by_djangos_builtin_backend_is_readable(api: Any, raw: Any) -> None:
    """The stored format is Django's built-in one, so switching keeps the cache warm."""
    raw.set(":1:legacy", pickle.dumps({"a": 1}))
    raw.set(":1:count", b"12")
    assert api.get("legacy") == {"a": 1}
    assert api.get("count") == 12


def test_add_stores_only_when_absent(api: Any) -> None:
    """add() is set-if-not-exists and says whether it stored."""
    assert api.add("key", "first") is True
    assert api.add("key", "second") is False
    assert api.get("key") == "first"


def test_delete_reports_whether_the_key_existed(api: Any) -> None:
    api.set("key", "value")
    assert api.delete("key") is True
    assert api.delete("key") is False
    assert api.get("key") is None


def test_has_key(api: Any) -> None:
    api.set("key", None)
    assert api.has_key("key") is True
    assert api.has_key("missing") is False


def test_get_many_returns_found_keys_in_callers_order(api: Any) -> None:
    """Missing keys are left out; the order is the caller's."""
    api.set_many({"a": 1, "b": "two", "c": None})
    assert list(api.get_many(["c", "missing", "a", "b"]).items()) == [
        ("c", None),
        ("a", 1),
        ("b", "two"),
    ]


def test_get_many_of_nothing_is_empty(api: Any) -> None:
    assert api.get_many([]) == {}


def test_set_many_returns_no_failed_keys(api: Any) -> None:
    assert api.set_many({"a": 1, "b": 2}) == []
    assert api.get_many(["a", "b"]) == {"a": 1, "b": 2}


def test_delete_many_deletes_only_the_given_keys(api: Any) -> None:
    api.set_many({"a": 1, "b": 2, "c": 3})
    assert api.delete_many(["a", "b", "missing"]) is None
    assert api.get_many(["a", "b", "c"]) == {"c": 3}


def test_delete_many_of_nothing_is_fine(api: Any) -> None:
    assert api.delete_many([]) is None


def test_clear_removes_everything(api: Any) -> None:
    api.set_many({"a": 1, "b": 2})
    api.clear()
    assert api.get_many(["a", "b"]) == {}


# Counters


def test_incr_and_decr(api: Any) -> None:
    api.set("n", 1)
    assert api.incr("n") == 2
    assert api.incr("n", 10) == 12
    assert api.decr("n") == 11
    assert api.decr("n", 5) == 6
    assert api.get("n") == 6


def test_incr_missing_key_raises_value_error(api: Any) -> None:
    """Django's contract: incr never creates a key."""
    with pytest.raises(ValueError, match="not found"):
        api.incr("missing")
    assert api.has_key("missing") is False


def test_incr_keeps_the_expiry(api: Any, raw: Any) -> None:
    api.set("n", 1, 100)
    api.incr("n")
    assert 0 < raw.pttl(":1:n") <= 100_000


def test_incr_beyond_64_bits_falls_back_to_exact_arithmetic(api: Any, raw: Any) -> None:
    """Past INCRBY's range the result is still exact, and the expiry is kept."""
    api.set("n", 2**63 - 1, 100)
    assert api.incr("n") == 2**63
    assert api.incr("n", 2**70) == 2**63 + 2**70
    assert api.get("n") == 2**63 + 2**70
    assert 0 < raw.pttl(":1:n") <= 100_000


def test_incr_of_a_non_integer_raises_type_error(api: Any) -> None:
    api.set("text", "abc")
    with pytest.raises(TypeError, match="not an integer"):
        api.incr("text")
    assert api.get("text") == "abc"


def test_get_or_set_returns_existing_value(api: Any) -> None:
    api.set("key", "existing")
    assert api.get_or_set("key", "default") == "existing"


def test_get_or_set_stores_the_default_when_missing(api: Any) -> None:
    assert api.get_or_set("key", "default") == "default"
    assert api.get("key") == "default"


def test_get_or_set_calls_a_callable_default_only_on_a_miss(api: Any) -> None:
    calls = []

    def compute() -> str:
        calls.append(1)
        return "computed"

    assert api.get_or_set("key", compute) == "computed"
    assert api.get_or_set("key", compute) == "computed"
    assert calls == [1]


def test_get_or_set_with_zero_timeout_returns_default_without_storing(api: Any) -> None:
    assert api.get_or_set("key", "default", 0) == "default"
    assert api.has_key("key") is False


# Timeouts


def test_default_timeout_comes_from_settings(make_cache: Any, raw: Any) -> None:
    cache = make_cache(TIMEOUT=30)
    cache.set("key", "value")
    assert 29_000 < raw.pttl(":1:key") <= 30_000


def test_none_timeout_stores_forever(api: Any, raw: Any) -> None:
    api.set("key", "value", None)
    assert raw.pttl(":1:key") == -1


@pytest.mark.parametrize("timeout", [0, -1, -100])
def test_non_positive_timeout_stores_nothing(api: Any, timeout: int) -> None:
    """A timeout of 0 or less means 'expire now', and replaces an older value."""
    api.set("key", "old")
    api.set("key", "new", timeout)
    assert api.get("key") is None


def test_fractional_timeout_has_millisecond_precision(api: Any, raw: Any) -> None:
    """0.5 means half a second (Django's built-in backend rounds it down to 0)."""
    api.set("key", "value", 0.5)
    assert 0 < raw.pttl(":1:key") <= 500


def test_add_with_zero_timeout_reports_absent_key_and_stores_nothing(api: Any) -> None:
    assert api.add("key", "value", 0) is True
    assert api.has_key("key") is False


def test_set_many_with_timeout_sets_each_expiry(api: Any, raw: Any) -> None:
    api.set_many({"a": 1, "b": 2}, 10)
    assert 0 < raw.pttl(":1:a") <= 10_000
    assert 0 < raw.pttl(":1:b") <= 10_000


def test_set_many_with_zero_timeout_removes_the_keys(api: Any) -> None:
    api.set_many({"a": 1, "b": 2})
    api.set_many({"a": 3, "b": 4}, 0)
    assert api.get_many(["a", "b"]) == {}


def test_touch_sets_a_new_expiry(api: Any, raw: Any) -> None:
    api.set("key", "value", 10)
    assert api.touch("key", 100) is True
    assert 10_000 < raw.pttl(":1:key") <= 100_000


def test_touch_none_makes_the_key_persistent(api: Any, raw: Any) -> None:
    api.set("key", "value", 10)
    assert api.touch("key", None) is True
    assert raw.pttl(":1:key") == -1


def test_touch_none_on_a_persistent_key_reports_it_exists(api: Any) -> None:
    """Unlike Django's built-in backend, which answers False here (PERSIST's 0)."""
    api.set("key", "value", None)
    assert api.touch("key", None) is True


def test_touch_zero_expires_the_key(api: Any) -> None:
    api.set("key", "value")
    assert api.touch("key", 0) is True
    assert api.has_key("key") is False


def test_touch_missing_key_is_false(api: Any) -> None:
    assert api.touch("missing") is False


# Keys, prefixes and versions


def test_key_prefix_and_version_make_the_stored_key(make_cache: Any, raw: Any) -> None:
    cache = make_cache(KEY_PREFIX="site", VERSION=3)
    cache.set("key", 1)
    assert raw.get("site:3:key") == b"1"


def test_key_function_is_used(make_cache: Any, raw: Any) -> None:
    cache = make_cache(KEY_FUNCTION=lambda key, prefix, version: f"custom-{key}")
    cache.set("key", 1)
    assert raw.get("custom-key") == b"1"


def test_versions_are_separate_namespaces(api: Any) -> None:
    api.set("key", "v1", version=1)
    api.set("key", "v2", version=2)
    assert api.get("key", version=1) == "v1"
    assert api.get("key", version=2) == "v2"


def test_incr_version_moves_the_value_and_keeps_its_expiry(api: Any, raw: Any) -> None:
    api.set("key", "value", 100)
    assert api.incr_version("key") == 2
    assert api.get("key") is None
    assert api.get("key", version=2) == "value"
    assert 0 < raw.pttl(":2:key") <= 100_000


def test_decr_version(api: Any) -> None:
    api.set("key", "value", version=2)
    assert api.decr_version("key", version=2) == 1
    assert api.get("key", version=1) == "value"


def test_incr_version_of_missing_key_raises_value_error(api: Any) -> None:
    with pytest.raises(ValueError, match="not found"):
        api.incr_version("missing")


@pytest.mark.parametrize(
    "key", ["has space", "x" * 251, "ctrl\x01char"], ids=["space", "long", "ctrl"]
)
def test_memcached_unsafe_keys_warn_but_work(api: Any, key: str) -> None:
    """Django's portability warning, as every backend gives it; Redis stores the key."""
    with pytest.warns(CacheKeyWarning):
        api.set(key, "value")
    with pytest.warns(CacheKeyWarning):
        assert api.get(key) == "value"


# Values Django makes special


def test_lazy_queryset_is_cacheable_through_both_apis(api: Any, django_db_tables: None) -> None:
    """Pickling a QuerySet evaluates it; from async code that must happen off the loop."""
    from tests.models import Poll

    Poll.objects.create(question="why?")
    api.set("polls", Poll.objects.all())
    assert [poll.question for poll in api.get("polls")] == ["why?"]


def test_unpicklable_value_raises_and_stores_nothing(api: Any) -> None:
    import threading

    with pytest.raises(TypeError):
        api.set("key", threading.Lock())
    assert api.has_key("key") is False


def test_get_or_set_returns_the_value_another_caller_added_first(cache: Any, raw: Any) -> None:
    """Django's race rule: if someone adds between our miss and our add, theirs wins."""
    operation = cache._get_or_set("key", "mine", 60, None)
    assert operation.send(None) == ("GET", ":1:key")
    add_and_read = operation.send(None)  # our GET missed
    raw.set(":1:key", pickle.dumps("theirs"))  # another caller adds in between
    with pytest.raises(StopIteration) as done:
        operation.send(cache._sync._execute(add_and_read))
    assert done.value.value == "theirs"
    assert cache.get("key") == "theirs"


@pytest.mark.parametrize("path", ["sync", "async"])
def test_get_or_set_calls_the_default_once_when_the_server_fails_after_the_miss(
    make_cache: Any, raw: Any, path: str
) -> None:
    """Ignore-exceptions mode: a failure between the GET and the SET NX returns the
    value already computed, instead of calling the default a second time."""
    import asyncio

    cache = make_cache(OPTIONS={"IGNORE_EXCEPTIONS": True, "SOCKET_TIMEOUT": 0.2})
    calls = []

    def default() -> str:
        calls.append(1)
        raw.execute_command("CLIENT", "PAUSE", 600, "ALL")  # the SET NX times out
        return f"computed {len(calls)}"

    if path == "sync":
        value = cache.get_or_set("key", default)
    else:
        value = asyncio.run(cache.aget_or_set("key", default))
    assert (value, len(calls)) == ("computed 1", 1)
