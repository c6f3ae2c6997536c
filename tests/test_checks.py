"""System checks: bad cache settings are reported by ``manage.py check``, with an id."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_asyncredis import RedisCache, get_redis_connection
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


LZ4 = "django_asyncredis.compressors.lz4.Lz4Compressor"
#: Each kind of bad setting: (the cache's settings, modules made unimportable, the message).
BAD: dict[str, tuple[dict[str, Any], tuple[str, ...], str]] = {
    "unknown-option": (
        {"OPTIONS": {"no_such_option": 1}},
        (),
        "Unknown cache option 'no_such_option'.",
    ),
    "bad-type": (
        {"OPTIONS": {"socket_timeout": "soon"}},
        (),
        "OPTIONS['socket_timeout'] must be a number >= 0 or None.",
    ),
    "serializer": (
        {"OPTIONS": {"SERIALIZER": "no.such.Serializer"}},
        (),
        "OPTIONS['SERIALIZER'] cannot be imported: No module named 'no'",
    ),
    "compressor": (
        {"OPTIONS": {"COMPRESSOR": "no.such.Compressor"}},
        (),
        "OPTIONS['COMPRESSOR'] cannot be imported: No module named 'no'",
    ),
    "bad-url": (
        {"LOCATION": "http://127.0.0.1:6379"},
        (),
        "LOCATION scheme must be redis://, rediss://, unix://, redis+cluster:// or "
        "redis+sentinel://, not 'http'.",
    ),
    "missing-extra": (
        {"OPTIONS": {"COMPRESSOR": LZ4}},
        ("lz4", "lz4.frame"),
        "OPTIONS['COMPRESSOR'] cannot be imported: import of lz4.frame halted",
    ),
}
ROOT = Path(__file__).resolve().parent.parent


def message_ids(output: str) -> list[str]:
    """The ids of the messages ``manage.py check`` printed, in order."""
    return re.findall(r"\(([a-z_]+\.[A-Z]\d{3})\)", output)


def plain_check(settings: dict[str, Any]) -> str:
    """What a plain ``manage.py check`` (no tag) says for one cache with these settings."""
    caches = {"default": {"BACKEND": BACKEND, **settings}}
    with override_settings(CACHES=caches):
        try:
            call_command("check", stdout=StringIO(), stderr=StringIO())
        except SystemCheckError as exc:
            return str(exc)
    return "no error"


@pytest.mark.parametrize("kind", BAD)
def test_plain_check_reports_each_bad_setting_as_e001(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``manage.py check`` without a tag reports E001 with the alias and the message,
    although Django's own cache checks build the cache first."""
    settings, missing, message = BAD[kind]
    for module in missing:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delitem(sys.modules, "django_asyncredis.compressors.lz4", raising=False)
    output = plain_check(settings)
    # The test project's own models.W042 aside: the cache messages, ours and Django's.
    cache_ids = [id_ for id_ in message_ids(output) if not id_.startswith("models.")]
    assert cache_ids == ["django_asyncredis.E001"]
    assert f"(django_asyncredis.E001) CACHES['default']: {message}" in output


def manage_py_check(settings: dict[str, Any], missing: tuple[str, ...] = ()) -> Any:
    """``python -m django check`` in a child process, on tests/check_settings.py."""
    env = {**os.environ, "CHECK_CACHE": json.dumps(settings), "CHECK_MISSING": ",".join(missing)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "-m", "django", "check", "--settings=tests.check_settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("kind", BAD)
def test_manage_py_check_exits_1_with_e001_and_no_traceback(kind: str) -> None:
    """The command line: exit status 1, our E001 and its message, no traceback."""
    settings, missing, message = BAD[kind]
    done = manage_py_check(settings, missing)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert message_ids(done.stderr) == ["django_asyncredis.E001"]
    assert f"(django_asyncredis.E001) CACHES['default']: {message}" in done.stderr


def test_manage_py_check_passes_good_settings() -> None:
    """The same project with good settings: exit status 0, no message."""
    done = manage_py_check({"LOCATION": LOCAL})
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "System check identified no issues (0 silenced).\n"


@pytest.fixture
def misconfigured() -> Iterator[Any]:
    """``caches["default"]`` with an unknown option, as the checks see it."""
    caches_setting = {"default": {"BACKEND": BACKEND, "OPTIONS": {"no_such_option": 1}}}
    with override_settings(CACHES=caches_setting):
        yield caches["default"]


UNKNOWN = "Unknown cache option 'no_such_option'."


def test_a_misconfigured_cache_raises_its_error_on_each_sync_call(misconfigured: Any) -> None:
    """Building it did not raise; every call does, the same error each time."""
    for call in (
        lambda: misconfigured.get("k"),
        lambda: misconfigured.set("k", 1),
        lambda: misconfigured.get("k"),
        lambda: misconfigured.stats,
        lambda: misconfigured.lock("k"),
    ):
        with pytest.raises(ImproperlyConfigured) as caught:
            call()
        assert str(caught.value) == UNKNOWN


async def test_a_misconfigured_cache_raises_its_error_on_each_async_call(
    misconfigured: Any,
) -> None:
    """The async API raises it when awaited, every time."""
    for call in (
        lambda: misconfigured.aget("k"),
        lambda: misconfigured.aset("k", 1),
        lambda: misconfigured.aget("k"),
        lambda: misconfigured.aget_or_set("k", 1),
    ):
        with pytest.raises(ImproperlyConfigured) as caught:
            await call()
        assert str(caught.value) == UNKNOWN


async def test_every_public_member_of_a_misconfigured_cache_raises(misconfigured: Any) -> None:
    """Each method and property of RedisCache, sync or async (awaited), raises the
    settings error: none returns as if the cache worked. close/aclose excepted."""
    names = [
        name
        for name in dir(RedisCache)
        if not name.startswith("_")
        and name not in {"close", "aclose"}
        and (callable(getattr(RedisCache, name)) or isinstance(getattr(RedisCache, name), property))
    ]
    assert len(names) > 100  # the whole API, both halves

    async def outcome(name: str) -> str:
        """The error ``cache.<name>()`` raised (awaited when it is a coroutine)."""
        try:
            result = getattr(misconfigured, name)()
            if inspect.isawaitable(result):
                await result
        except ImproperlyConfigured as exc:
            return str(exc)
        return "returned"

    assert {name: await outcome(name) for name in names} == dict.fromkeys(names, UNKNOWN)


async def test_closing_a_misconfigured_cache_is_quiet(misconfigured: Any) -> None:
    """Django closes every cache after each request: nothing was opened, nothing raises."""
    misconfigured.close()
    await misconfigured.aclose()


def test_a_misconfigured_cache_is_still_a_redis_cache(misconfigured: Any) -> None:
    """isinstance checks keep working, and the repr says what is wrong."""
    assert isinstance(misconfigured, RedisCache)
    assert repr(misconfigured) == f"<MisconfiguredCache: {UNKNOWN}>"


def test_what_reaches_a_built_caches_internals_raises_its_error_too(misconfigured: Any) -> None:
    """get_redis_connection, the sessions engine and the command read attributes only a
    built cache has: they raise the settings error, not an AttributeError about them."""
    from django_asyncredis.sessions import SessionStore

    for call in (
        lambda: get_redis_connection("default"),
        lambda: SessionStore("a" * 32).load(),
        lambda: call_command("asyncredis", "ping", stdout=StringIO()),
    ):
        with pytest.raises(ImproperlyConfigured) as caught:
            call()
        assert str(caught.value) == UNKNOWN


def test_instrumentations_can_still_mark_a_misconfigured_cache(misconfigured: Any) -> None:
    """hasattr/getattr with a default (how Sentry and the debug toolbar tell a cache
    they patched) answer "not there", and attributes set on it stay."""
    assert not hasattr(misconfigured, "_sentry_patched")
    assert getattr(misconfigured, "_djdt_patched", None) is None
    misconfigured._sentry_patched = True
    assert misconfigured._sentry_patched is True


def test_good_settings_build_the_real_backend() -> None:
    """Only bad settings give the refusing cache."""
    assert type(RedisCache(LOCAL, {})) is RedisCache


def test_without_the_app_building_the_cache_raises_as_before() -> None:
    """No app, no check to report the error: building the cache raises it at once."""
    with (
        override_settings(INSTALLED_APPS=["django.contrib.contenttypes"]),
        pytest.raises(ImproperlyConfigured, match="no_such_option"),
    ):
        RedisCache(LOCAL, {"OPTIONS": {"no_such_option": 1}})


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
