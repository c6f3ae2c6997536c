"""System checks (``manage.py check``): bad cache settings found before the first request.

Registered by the app (``"django_asyncredis"`` in INSTALLED_APPS, see ``apps``).
Every error the backend would raise on first use (an unknown option, a bad URL or
type, a serializer or compressor that cannot be imported, a missing extra) is
reported here, by building each of our caches the way Django does: building one
parses its settings and opens no connection.

Django's own cache checks build every cache too, and let whatever the backend
raises escape; so, the app being installed, bad LOCATION or OPTIONS build a
``MisconfiguredCache`` that raises at first use (``_misconfigured``), and a plain
``manage.py check`` reports E001 instead of a traceback. ``manage.py check --tag
asyncredis`` runs only these checks.

The ids (docs/observability.md#system-checks):

- ``E001`` a cache's LOCATION or OPTIONS are invalid (the message names which).
- ``E002`` building the cache failed otherwise (TIMEOUT, KEY_FUNCTION,
  REVERSE_KEY_FUNCTION...).
- ``W001`` (deploy) pickle without signing, on a server reached over the network.
- ``W002`` (deploy) no socket timeout: a stuck server hangs requests.
- ``W003`` (deploy) CLOSE_CONNECTION under ASGI: a new connection per request.
- ``W004`` (deploy) TLS off for a server that is not on this machine.
- ``W005`` (deploy) a password written into settings, not read from the environment.
- ``W010`` (deploy, tag ``asyncredis_connectivity``) the server does not answer PING.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from django_asyncredis._config import CacheConfig, Server, parse, split_location

#: The tag of every check here but connectivity: ``manage.py check --tag asyncredis``.
TAG = "asyncredis"
#: The tag of the check that talks to the servers: ``check --deploy --tag asyncredis_connectivity``.
CONNECTIVITY = "asyncredis_connectivity"

_BACKENDS = frozenset({"django_asyncredis.RedisCache", "django_asyncredis.cache.RedisCache"})


def our_caches() -> Iterator[tuple[str, dict[str, Any]]]:
    """(alias, CACHES entry) of each cache that uses this backend."""
    for alias, params in getattr(settings, "CACHES", {}).items():
        if params.get("BACKEND") in _BACKENDS:
            yield str(alias), params


def _configs() -> Iterator[tuple[str, dict[str, Any], CacheConfig]]:
    """Our caches whose settings parse (the others are E001's business)."""
    for alias, params in our_caches():
        try:
            config = parse(params.get("LOCATION", ""), params.get("OPTIONS") or {})
        except ImproperlyConfigured:
            continue
        yield alias, params, config


@register(TAG, Tags.caches)
def check_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[Any]:
    """E001/E002: each of our caches can be built from its settings."""
    from django.core.cache import caches

    messages: list[CheckMessage] = []
    for alias, params in our_caches():
        try:
            parse(params.get("LOCATION", ""), params.get("OPTIONS") or {})
        except ImproperlyConfigured as exc:
            messages.append(
                Error(
                    f"CACHES[{alias!r}]: {exc}",
                    hint="See docs/configuration.md for the accepted LOCATION and OPTIONS.",
                    id="django_asyncredis.E001",
                )
            )
            continue
        try:
            caches.create_connection(alias)
        except Exception as exc:
            messages.append(
                Error(
                    f"CACHES[{alias!r}] cannot be built: {type(exc).__name__}: {exc}",
                    id="django_asyncredis.E002",
                )
            )
    return messages


def _is_local(server: Server) -> bool:
    if server.scheme == "unix" or server.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(server.host).is_loopback
    except ValueError:
        return False  # a host name: assume the network


def _data_servers(config: CacheConfig) -> list[Server]:
    if config.mode == "sentinel" and config.template is not None:
        return [config.template]
    return list(config.servers)


@register(TAG, Tags.caches, Tags.security, deploy=True)
def check_deployment(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[Any]:
    """W001-W005: settings that work, but are risky in production."""
    from django_asyncredis.serializers.pickle import PickleSerializer

    messages: list[CheckMessage] = []
    asgi = bool(getattr(settings, "ASGI_APPLICATION", None))
    for alias, params, config in _configs():
        servers = _data_servers(config)
        remote = [server for server in servers if not _is_local(server)]
        if isinstance(config.serializer, PickleSerializer) and remote:
            messages.append(
                Warning(
                    f"CACHES[{alias!r}] unpickles what {remote[0]} holds: whoever can write "
                    "to that server can run code in this application.",
                    hint="Use the SERIALIZER "
                    "'django_asyncredis.serializers.signed.SignedPickleSerializer' (or JSON, "
                    "msgpack) unless only this application can reach the server.",
                    id="django_asyncredis.W001",
                )
            )
        if any(dict(server.connection).get("socket_timeout") is None for server in servers):
            messages.append(
                Warning(
                    f"CACHES[{alias!r}] has no socket_timeout: a server that stops "
                    "answering blocks requests forever.",
                    hint="Set OPTIONS['socket_timeout'] (the default is 2 seconds).",
                    id="django_asyncredis.W002",
                )
            )
        if asgi and config.close_connection:
            messages.append(
                Warning(
                    f"CACHES[{alias!r}] sets CLOSE_CONNECTION under ASGI: every request "
                    "opens and closes its connections.",
                    hint="Remove CLOSE_CONNECTION: the pools are per event loop already.",
                    id="django_asyncredis.W003",
                )
            )
        plain = [server for server in remote if server.scheme == "redis"]
        if plain:
            messages.append(
                Warning(
                    f"CACHES[{alias!r}] talks to {plain[0]} without TLS.",
                    hint="Use a rediss:// LOCATION when the server is on another machine.",
                    id="django_asyncredis.W004",
                )
            )
        if _literal_password(params):
            messages.append(
                Warning(
                    f"CACHES[{alias!r}] has its password written into the settings.",
                    hint="Read it from the environment (os.environ) or a secrets file.",
                    id="django_asyncredis.W005",
                )
            )
    return messages


def _literal_password(params: dict[str, Any]) -> bool:
    """A password in LOCATION or OPTIONS that no environment variable holds (one read
    from the environment has the same value as that variable)."""
    passwords: list[str] = []
    location = params.get("LOCATION", "")
    try:
        urls = split_location(location)
    except (ImproperlyConfigured, TypeError, AttributeError):
        urls = []
    for url in urls:
        password = urlsplit(url).password
        if password:
            passwords.append(unquote(password))
    for name, value in (params.get("OPTIONS") or {}).items():
        if str(name).lower() == "password" and isinstance(value, str) and value:
            passwords.append(value)
    from_environment = set(os.environ.values())
    return any(password not in from_environment for password in passwords)


@register(CONNECTIVITY, deploy=True)
def check_connectivity(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[Any]:
    """W010: each of our caches answers PING (asks the servers: deploy checks only)."""
    from django_asyncredis import get_redis_connection

    messages: list[CheckMessage] = []
    for alias, _, _config in _configs():
        try:
            get_redis_connection(alias).ping()
        except Exception as exc:
            messages.append(
                Warning(
                    f"CACHES[{alias!r}] did not answer PING: {exc}",
                    hint="Start the server or fix LOCATION; the cache fails at first use.",
                    id="django_asyncredis.W010",
                )
            )
    return messages
