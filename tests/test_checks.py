"""System checks: bad cache settings are reported by ``manage.py check``, with an id."""

from __future__ import annotations

import sys
from io import StringIO
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tests.servers import ServerProcess

BACKEND = "django_asyncredis.RedisCache"
LOCAL = "redis://127.0.0.1:6379/0"


def ids(
    location: Any = "redis://127.0.0.1:6379/0", deploy: bool = False, **params: Any
) -> list[str]:
    """The ids of our messages for a single cache with these settings."""
    caches = {"default": {"BACKEND": BACKEND, "LOCATION": location, **params}}
    with override_settings(CACHES=caches):
        messages = run_checks(include_deployment_checks=deploy, tags=["asyncredis"])
    return sorted(m.id for m in messages if m.id and m.id.startswith("django_asyncredis."))


def test_good_settings_give_no_message() -> None:
    """A plain local cache passes every check."""
    assert ids() == []


@pytest.mark.parametrize(
    "params",
    [
        {"OPTIONS": {"no_such_option": 1}},
        {"OPTIONS": {"socket_timeout": "soon"}},
        {"OPTIONS": {"SERIALIZER": "no.such.Serializer"}},
        {"OPTIONS": {"COMPRESSOR": "no.such.Compressor"}},
        {"LOCATION": "http://127.0.0.1:6379"},
    ],
    ids=["unknown-option", "bad-type", "serializer", "compressor", "bad-url"],
)
def test_invalid_settings_are_e001(params: dict[str, Any]) -> None:
    """Each error the backend would raise at first use is E001 at check time."""
    location = params.pop("LOCATION", "redis://127.0.0.1:6379/0")
    assert ids(location, **params) == ["django_asyncredis.E001"]


def test_a_missing_extra_is_e001(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compressor whose package is not installed (lz4 made unimportable) is E001."""
    monkeypatch.setitem(sys.modules, "lz4", None)
    monkeypatch.setitem(sys.modules, "lz4.frame", None)
    monkeypatch.delitem(sys.modules, "django_asyncredis.compressors.lz4", raising=False)
    compressor = "django_asyncredis.compressors.lz4.Lz4Compressor"
    assert ids(OPTIONS={"COMPRESSOR": compressor}) == ["django_asyncredis.E001"]


def test_a_bad_reverse_key_function_is_e002() -> None:
    """An error outside LOCATION/OPTIONS (here REVERSE_KEY_FUNCTION) is E002."""
    assert ids(REVERSE_KEY_FUNCTION=42) == ["django_asyncredis.E002"]


def test_the_check_command_reports_bad_settings_with_the_tag() -> None:
    """``manage.py check --tag asyncredis`` fails with E001 and the message."""
    caches = {"default": {"BACKEND": BACKEND, "OPTIONS": {"no_such_option": 1}}}
    with (
        override_settings(CACHES=caches),
        pytest.raises(SystemCheckError, match=r"E001.*no_such_option"),
    ):
        call_command("check", "--tag", "asyncredis", stdout=StringIO(), stderr=StringIO())


def test_plain_check_stops_at_djangos_own_cache_check() -> None:
    """Without the tag, Django's caches.W003 check builds the cache and raises first
    (documented in docs/observability.md; this test says when Django changes that)."""
    from django.core.exceptions import ImproperlyConfigured

    caches = {"default": {"BACKEND": BACKEND, "OPTIONS": {"no_such_option": 1}}}
    with (
        override_settings(CACHES=caches),
        pytest.raises(ImproperlyConfigured, match="no_such_option"),
    ):
        call_command("check", stdout=StringIO(), stderr=StringIO())


def test_a_local_cache_passes_the_deploy_checks() -> None:
    """Loopback, timeouts, no password: nothing to warn about."""
    assert ids(deploy=True) == []


def test_pickle_to_a_network_server_is_w001_and_w004() -> None:
    """Unsigned pickle and plain TCP to another machine: both warned about."""
    assert ids("redis://cache.internal:6379/0", deploy=True) == [
        "django_asyncredis.W001",
        "django_asyncredis.W004",
    ]


def test_signed_values_over_tls_are_not_warned() -> None:
    """rediss:// with the signed serializer: no W001, no W004."""
    signed = "django_asyncredis.serializers.signed.SignedPickleSerializer"
    assert ids("rediss://cache.internal:6379/0", True, OPTIONS={"SERIALIZER": signed}) == []


def test_no_socket_timeout_is_w002() -> None:
    """socket_timeout None is warned about."""
    assert ids(deploy=True, OPTIONS={"socket_timeout": None}) == ["django_asyncredis.W002"]


def test_close_connection_under_asgi_is_w003() -> None:
    """CLOSE_CONNECTION with ASGI_APPLICATION set is warned about."""
    with override_settings(ASGI_APPLICATION="project.asgi.application"):
        assert ids(deploy=True, OPTIONS={"CLOSE_CONNECTION": True}) == ["django_asyncredis.W003"]


def test_a_password_written_in_settings_is_w005() -> None:
    """A password in LOCATION that no environment variable holds is warned about."""
    assert ids("redis://:written-here@127.0.0.1:6379/0", deploy=True) == ["django_asyncredis.W005"]


def test_a_password_from_the_environment_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same password, read from an environment variable, is fine."""
    monkeypatch.setenv("REDIS_PASSWORD", "from-the-env")
    assert ids(deploy=True, OPTIONS={"PASSWORD": "from-the-env"}) == []


def connectivity(location: str) -> list[str]:
    caches = {"default": {"BACKEND": BACKEND, "LOCATION": location}}
    with override_settings(CACHES=caches):
        messages = run_checks(include_deployment_checks=True, tags=["asyncredis_connectivity"])
    return [m.id for m in messages if m.id]


def test_connectivity_passes_for_a_running_server(redis_server: ServerProcess) -> None:
    """A server that answers PING: no message."""
    assert connectivity(redis_server.url) == []


def test_connectivity_warns_for_a_stopped_server() -> None:
    """A server that is down: W010, asked for by its tag."""
    server = ServerProcess().start()
    server.stop()
    assert connectivity(server.url) == ["django_asyncredis.W010"]
