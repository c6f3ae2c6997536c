"""Turn CACHES["..."]["LOCATION"] and ["OPTIONS"] into validated, hashable settings.

Users arrive with settings written for Django's built-in ``RedisCache`` (lower-case
options, passed to redis-py) or for django-redis (upper-case options,
``CONNECTION_POOL_KWARGS``). Both spellings are accepted so that switching is a
one-line BACKEND change; anything else is an ``ImproperlyConfigured`` that names
the option. Parsed settings are memoised: Django builds a backend instance per
async context under ASGI, so parsing must not happen per request.
"""

from __future__ import annotations

import inspect
import logging
import pickle
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from django_asyncredis import _topology
from django_asyncredis._codec import Codec
from django_asyncredis._near import NearSettings
from django_asyncredis.compressors import Compressor
from django_asyncredis.serializers import Serializer
from django_asyncredis.serializers.pickle import PickleSerializer

#: Defaults chosen for a cache on the request path: fail in about a second
#: rather than hang (redis-py itself waits forever on reads by default).
DEFAULT_SOCKET_CONNECT_TIMEOUT = 1.0
DEFAULT_SOCKET_TIMEOUT = 2.0
DEFAULT_POOL_TIMEOUT = 2.0
DEFAULT_MAX_CONNECTIONS = 100
#: A command that fails on a broken connection is sent once more on a fresh one,
#: if sending it twice cannot be told from once (see _idempotency).
DEFAULT_RETRIES = 1
#: More than this is a retry storm against a server that is down, not resilience.
MAX_RETRIES = 10

Validator = Callable[[str, Any], Any]


def _number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be a number >= 0 or None.")
    return float(value)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be an int >= 1.")
    return value


def _non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)  # the cookbook writes 'db': '1'
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be an int >= 0.")
    return value


def _retries(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be an int from 0 to {MAX_RETRIES}.")
    return value


#: The async transport when OPTIONS do not choose one (see docs/design.md, Transport).
DEFAULT_TRANSPORT = "multiplexed"
TRANSPORTS = ("multiplexed", "pooled")


def _transport(name: str, value: Any) -> str:
    if value not in TRANSPORTS:
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be 'multiplexed' or 'pooled'.")
    return str(value)


#: The multiplexed transport's connections per (event loop, server) when OPTIONS
#: do not say: one measured fastest on 2 cores (tests/benchmarks/shared_connections.py).
DEFAULT_SHARED_CONNECTIONS = 1
#: More is a pool, which the pooled transport already is.
MAX_SHARED_CONNECTIONS = 8


def _shared_connections(name: str, value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_SHARED_CONNECTIONS
    ):
        raise ImproperlyConfigured(
            f"OPTIONS[{name!r}] must be an int from 1 to {MAX_SHARED_CONNECTIONS}."
        )
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be True or False.")
    return value


def _text(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        # Never echo the value: it may be a password.
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be a str.")
    return value


def _ssl_cert_reqs(name: str, value: Any) -> Any:
    if value is None or isinstance(value, ssl.VerifyMode):
        return value
    if isinstance(value, str) and value.lower() in ("none", "optional", "required"):
        return value.lower()
    raise ImproperlyConfigured(
        f"OPTIONS[{name!r}] must be 'none', 'optional', 'required' or an ssl.VerifyMode."
    )


def _keepalive_options(name: str, value: Any) -> tuple[tuple[int, int], ...] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be a dict of socket options.")
    return tuple(sorted((int(k), int(v)) for k, v in value.items()))


#: redis-py connection arguments a user may set, with their validators.
CONNECTION_OPTIONS: dict[str, Validator] = {
    "db": _non_negative_int,
    "username": _text,
    "password": _text,
    "socket_timeout": _number,
    "socket_connect_timeout": _number,
    "socket_keepalive": _boolean,
    "socket_keepalive_options": _keepalive_options,
    "health_check_interval": _number,
    "client_name": _text,
    "ssl_keyfile": _text,
    "ssl_certfile": _text,
    "ssl_cert_reqs": _ssl_cert_reqs,
    "ssl_ca_certs": _text,
    "ssl_ca_path": _text,
    "ssl_ca_data": _text,
    "ssl_check_hostname": _boolean,
    "ssl_password": _text,
    "ssl_ciphers": _text,
}

#: Pool-level arguments (not passed to the connection class).
POOL_OPTIONS: dict[str, Validator] = {
    "max_connections": _positive_int,
    "pool_timeout": _number,
    "retry_on_timeout": _boolean,
    "retries": _retries,
    "transport": _transport,
    "shared_connections": _shared_connections,
}

#: django-redis CLIENT_CLASS values that mean "the default client", which we are.
_DEFAULT_CLIENTS = {
    "django_redis.client.DefaultClient",
    "django_redis.client.default.DefaultClient",
}

#: django-redis's HerdClient: values served stale for CACHE_HERD_TIMEOUT seconds
#: after their timeout while one caller refreshes them (``_stampede``).
_HERD_CLIENTS = {
    "django_redis.client.HerdClient",
    "django_redis.client.herd.HerdClient",
}
#: django-redis's default CACHE_HERD_TIMEOUT.
DEFAULT_HERD_TIMEOUT = 60

#: django-redis's Sentinel client: with ``SENTINELS`` (and LOCATION
#: ``redis://<service>/<db>``), the same Sentinel support as ``redis+sentinel://``.
_SENTINEL_CLIENTS = {
    "django_redis.client.SentinelClient",
    "django_redis.client.sentinel.SentinelClient",
}
#: django-redis's client-side sharding: each LOCATION a shard, keys placed as it
#: places them (``_topology.ShardMap``).
_SHARD_CLIENTS = {
    "django_redis.client.ShardClient",
    "django_redis.client.sharded.ShardClient",
}
#: django-redis's connection factories we replace: the default one, and the
#: Sentinel one (its work, finding the primary, is done by our Sentinel support).
_CONNECTION_FACTORIES = {
    "django_redis.pool.ConnectionFactory",
    "django_redis.pool.SentinelConnectionFactory",
}

#: django-redis's and Django's dotted paths, so their settings work unchanged
#: (and without django-redis installed).
SERIALIZER_ALIASES = {
    "django_redis.serializers.pickle.PickleSerializer": (
        "django_asyncredis.serializers.pickle.PickleSerializer"
    ),
    "django_redis.serializers.json.JSONSerializer": (
        "django_asyncredis.serializers.json.JSONSerializer"
    ),
    "django_redis.serializers.msgpack.MSGPackSerializer": (
        "django_asyncredis.serializers.msgpack.MSGPackSerializer"
    ),
    "django.core.cache.backends.redis.RedisSerializer": (
        "django_asyncredis.serializers.pickle.PickleSerializer"
    ),
}
COMPRESSOR_ALIASES: dict[str, str | None] = {
    "django_redis.compressors.identity.IdentityCompressor": None,
    "django_redis.compressors.zlib.ZlibCompressor": (
        "django_asyncredis.compressors.zlib.ZlibCompressor"
    ),
    "django_redis.compressors.gzip.GzipCompressor": (
        "django_asyncredis.compressors.gzip.GzipCompressor"
    ),
    "django_redis.compressors.lzma.LzmaCompressor": (
        "django_asyncredis.compressors.lzma.LzmaCompressor"
    ),
    "django_redis.compressors.lz4.Lz4Compressor": "django_asyncredis.compressors.lz4.Lz4Compressor",
    "django_redis.compressors.zstd.ZStdCompressor": (
        "django_asyncredis.compressors.zstd.ZstdCompressor"
    ),
}
DEFAULT_COMPRESS_MIN_LENGTH = 256


@dataclass(frozen=True)
class Server:
    """One Redis server and how to connect to it; hashable, so pools can be keyed on it."""

    scheme: str  # "redis", "rediss" or "unix"
    host: str
    port: int
    path: str
    connection: tuple[tuple[str, Any], ...]  # sorted redis-py connection kwargs
    max_connections: int
    pool_timeout: float | None
    retries: int
    retry_on_timeout: bool
    parser: str  # "default" (hiredis when installed), "hiredis" or "python"
    sync_pool_class: type[Any] | None = field(default=None, compare=True)
    #: The async transport: "multiplexed" (shared connections, needs hiredis) or "pooled".
    transport: str = "pooled"
    #: The multiplexed transport's connections per event loop (1 with "pooled").
    shared_connections: int = 1
    #: The hash of the fields above, computed once: a server is looked up in the
    #: pool registries on every command, and hashing a dozen fields each time
    #: cost about a microsecond.
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        compared = tuple(getattr(self, each.name) for each in fields(self) if each.compare)
        object.__setattr__(self, "_hash", hash(compared))

    def __hash__(self) -> int:
        return self._hash

    def connection_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.connection)
        if self.scheme == "unix":
            kwargs["path"] = self.path
        else:
            kwargs["host"] = self.host
            kwargs["port"] = self.port
        return kwargs

    def __str__(self) -> str:
        """The address without credentials: safe for logs and error messages."""
        db = dict(self.connection).get("db", 0)
        if self.scheme == "unix":
            return f"unix://{self.path}?db={db}"
        return f"{self.scheme}://{self.host}:{self.port}/{db}"

    def __repr__(self) -> str:
        return f"<Server {self}>"


@dataclass(frozen=True)
class CacheConfig:
    """Everything a backend needs from its settings, parsed once per distinct setting."""

    #: standalone: servers[0] is the leader, the rest read replicas; cluster: servers
    #: are startup nodes; sentinel: servers are the sentinels.
    servers: tuple[Server, ...]
    serializer: Serializer
    close_connection: bool
    compressor: Compressor | None = None
    compress_min_length: int = DEFAULT_COMPRESS_MIN_LENGTH
    ignore_exceptions: bool = False
    #: Where ignored exceptions are logged; None: not logged.
    ignored_exceptions_logger: str | None = None
    #: For ``get_redis_connection``: REDIS_CLIENT_CLASS / REDIS_CLIENT_KWARGS.
    redis_client_class: type[Any] | None = None
    redis_client_kwargs: tuple[tuple[str, Any], ...] = ()
    #: SCAN's COUNT when the caller gives no itersize (None: the server's default).
    scan_itersize: int | None = None
    mode: str = "standalone"  # or "cluster", "sentinel" or "shard"
    #: Sentinel: the service name; the data servers' settings (host/port found later).
    service: str = ""
    template: Server | None = None
    read_from_replicas: bool = False
    #: Shards: each server's LOCATION string as written (it places the keys).
    shard_names: tuple[str, ...] = ()
    #: Stampede protection defaults for ``get_or_set`` (``_stampede``): seconds a
    #: value is served stale while one caller refreshes it (STAMPEDE_STALE), XFetch's
    #: beta (STAMPEDE_XFETCH), the cross-process lock's TTL in seconds
    #: (STAMPEDE_LOCK). None: off.
    stampede_stale: float | None = None
    stampede_xfetch: float | None = None
    stampede_lock: float | None = None
    #: django-redis's HerdClient: CACHE_HERD_TIMEOUT seconds (None: not a HerdClient).
    herd_timeout: float | None = None
    #: Built once per distinct setting: its decoder tables are not free to build.
    codec: Codec = field(init=False, compare=False, repr=False)
    #: The live topology state of a cluster or sentinel configuration.
    topology: Any = field(init=False, compare=False, repr=False)
    #: STATS: count calls, hits, misses, errors and latency (``_stats``).
    stats: bool = True
    #: OPENTELEMETRY: a span per call and the stats as metrics, when the API is installed.
    opentelemetry: bool = True
    #: NEAR_CACHE and its NEAR_CACHE_* bounds: None when off (``_near``).
    near_cache: NearSettings | None = None

    def __post_init__(self) -> None:
        codec = Codec(self.serializer, self.compressor, self.compress_min_length)
        object.__setattr__(self, "codec", codec)
        topology: Any = None
        if self.mode == "cluster":
            topology = _topology.ClusterMap(self.servers)
        elif self.mode == "shard":
            topology = _topology.ShardMap(list(zip(self.shard_names, self.servers, strict=True)))
        elif self.mode == "sentinel":
            assert self.template is not None
            topology = _topology.SentinelState(
                self.template, self.servers, self.service, self.read_from_replicas
            )
        object.__setattr__(self, "topology", topology)


def _multiplex_available() -> bool:
    """The multiplexed transport parses replies with hiredis, an optional extra."""
    from django_asyncredis._multiplex import AVAILABLE

    return AVAILABLE


def split_location(location: str | list[str] | tuple[str, ...]) -> list[str]:
    """LOCATION as Django accepts it: a URL, a list of URLs, or a ',' / ';' separated string."""
    if isinstance(location, str):
        urls = [part.strip() for part in re.split(r"[;,]", location)]
    elif isinstance(location, list | tuple):
        urls = [str(part).strip() for part in location]
    else:
        raise ImproperlyConfigured("LOCATION must be a URL, a list of URLs or a separated string.")
    urls = [url for url in urls if url]
    if not urls:
        raise ImproperlyConfigured("LOCATION names no Redis server.")
    return urls


#: LOCATION schemes, and the topology each one selects.
_SCHEMES = {
    "redis": ("redis", "standalone"),
    "rediss": ("rediss", "standalone"),
    "unix": ("unix", "standalone"),
    "redis+cluster": ("redis", "cluster"),
    "rediss+cluster": ("rediss", "cluster"),
    "redis+sentinel": ("redis", "sentinel"),
    "rediss+sentinel": ("rediss", "sentinel"),
}


@dataclass(frozen=True)
class _URL:
    scheme: str
    mode: str
    host: str
    port: int
    path: str
    settings: dict[str, Any]
    service: str = ""


def _parse_url(url: str) -> _URL:
    """Split a LOCATION URL; its settings win over OPTIONS (as in redis-py).

    ``redis+cluster://host:port`` names a Redis Cluster node (list several as
    startup nodes); ``redis+sentinel://host:port/service[/db]`` a sentinel.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in _SCHEMES:
        raise ImproperlyConfigured(
            "LOCATION scheme must be redis://, rediss://, unix://, redis+cluster:// or "
            f"redis+sentinel://, not {parts.scheme.lower() or 'none'!r}."
        )
    scheme, mode = _SCHEMES[parts.scheme.lower()]
    from_url: dict[str, Any] = {}
    if parts.username:
        from_url["username"] = unquote(parts.username)
    if parts.password:
        from_url["password"] = unquote(parts.password)
    for name, value in parse_qsl(parts.query):
        if name != "db":
            raise ImproperlyConfigured(
                f"LOCATION query argument {name!r} is not supported; set it in OPTIONS."
            )
        from_url["db"] = _non_negative_int("db", value)
    if scheme == "unix":
        if not parts.path:
            raise ImproperlyConfigured("A unix:// LOCATION needs a socket path.")
        return _URL(scheme, mode, "", 0, parts.path, from_url)
    path = parts.path.strip("/")
    service = ""
    if mode == "sentinel":
        service, _, path = path.partition("/")
        if not service:
            raise ImproperlyConfigured(
                "A redis+sentinel:// LOCATION needs the service name: "
                "redis+sentinel://host:26379/mymaster[/db]."
            )
    if path:
        from_url["db"] = _non_negative_int("db", path)
    if mode == "cluster" and from_url.get("db"):
        raise ImproperlyConfigured("Redis Cluster has only database 0.")
    try:
        port = parts.port or (26379 if mode == "sentinel" else 6379)
    except ValueError:
        raise ImproperlyConfigured("LOCATION has an invalid port.") from None
    return _URL(scheme, mode, parts.hostname or "localhost", port, "", from_url, service)


def _sentinels(name: str, value: Any) -> list[tuple[str, int]]:
    """django-redis's SENTINELS: a list of (host, port)."""
    try:
        sentinels = [(str(host), int(port)) for host, port in value]
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            f"OPTIONS[{name!r}] must be a list of (host, port) of the sentinels."
        ) from None
    if isinstance(value, str | bytes) or not sentinels:
        raise ImproperlyConfigured(
            f"OPTIONS[{name!r}] must be a list of (host, port) of the sentinels."
        )
    return sentinels


def _sentinel_urls(location: Any, sentinels: list[tuple[str, int]]) -> tuple[list[_URL], bool]:
    """django-redis's Sentinel LOCATION, ``redis://<service>[/db]`` (its URLs may say
    ``?is_master=0`` for the replicas), read as one ``redis+sentinel://`` URL per
    sentinel; and whether replica URLs were listed (a single URL stands for both,
    as django-redis's SentinelClient makes it)."""
    services: set[tuple[str, str, str]] = set()
    replicas_listed = False
    data: _URL | None = None
    given = split_location(location)
    for url in given:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("redis", "rediss"):
            raise ImproperlyConfigured(
                "With SENTINELS, LOCATION names the service: redis://<service>/<db>, "
                f"not {parts.scheme.lower() or 'no'}:// URLs."
            )
        query = parse_qsl(parts.query)
        is_master = [value for key, value in query if key == "is_master"]
        replicas_listed = replicas_listed or len(given) == 1 or "0" in is_master
        rest = "&".join(f"{key}={value}" for key, value in query if key != "is_master")
        parsed = _parse_url(parts._replace(query=rest).geturl())
        services.add((parts.hostname or "", str(parsed.settings.get("db", 0)), parsed.scheme))
        data = data or parsed
    if len(services) > 1 or data is None or not data.host:
        raise ImproperlyConfigured(
            "With SENTINELS, every LOCATION URL must name the same service and db: "
            "redis://<service>/<db>."
        )
    urls = [
        _URL(data.scheme, "sentinel", host, port, "", data.settings, service=data.host)
        for host, port in sentinels
    ]
    return urls, replicas_listed


def _shard_names(location: Any) -> tuple[str, ...]:
    """The shards' names as django-redis's ShardClient sees them, which decide where
    each key goes: the LOCATION list's items, or a string split on ","; each exactly
    as written."""
    names = location.split(",") if isinstance(location, str) else [str(item) for item in location]
    if len(names) != len(split_location(location)):
        raise ImproperlyConfigured(
            "CLIENT_CLASS ShardClient: list the shards as a LOCATION list or a "
            "','-separated string, each a URL."
        )
    if len(set(names)) != len(names):
        raise ImproperlyConfigured("CLIENT_CLASS ShardClient: a shard is listed twice.")
    return tuple(names)


def _is_sentinel_pool(cls: type[Any]) -> bool:
    from redis.sentinel import SentinelConnectionPool

    return issubclass(cls, SentinelConnectionPool)


def _parser(name: str, value: Any) -> str:
    """Map a parser_class / PARSER_CLASS setting to the parser used on both paths.

    The async and sync connections need parser classes of different families, so
    the user's class is read for what it means (hiredis or pure Python).
    """
    dotted = value if isinstance(value, str) else getattr(value, "__qualname__", "")
    last = dotted.rsplit(".", 1)[-1].lower()
    if "hiredis" in last:
        return "hiredis"
    if "python" in last or "resp2" in last:
        return "python"
    raise ImproperlyConfigured(
        f"OPTIONS[{name!r}] must name a hiredis or pure-Python redis-py parser."
    )


def _import(name: str, value: Any, aliases: Mapping[str, str | None]) -> Any:
    if not isinstance(value, str):
        return value
    target = aliases.get(value, value)
    if target is None:
        return None
    try:
        return import_string(target)
    except ImportError as exc:
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] cannot be imported: {exc}") from exc


def _serializer(name: str, value: Any, options: Mapping[str, Any]) -> Serializer:
    cls = _import(name, value, SERIALIZER_ALIASES)
    if not callable(cls):
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be a class or its dotted path.")
    try:
        wants_options = "options" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        wants_options = False
    # django-redis's serializers (and our signed one) take the cache's OPTIONS.
    instance = cls(options=options) if wants_options else cls()
    if not (
        callable(getattr(instance, "dumps", None)) and callable(getattr(instance, "loads", None))
    ):
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must have dumps() and loads() methods.")
    return instance  # type: ignore[no-any-return]


def _compressor(name: str, value: Any) -> Compressor | None:
    cls = _import(name, value, COMPRESSOR_ALIASES)
    if cls is None:
        return None
    compressor = cls() if isinstance(cls, type) else cls
    for method in ("compress", "decompress"):
        if not callable(getattr(compressor, method, None)):
            raise ImproperlyConfigured(f"OPTIONS[{name!r}] must have a {method}() method.")
    magics = getattr(compressor, "magics", None)
    if not (
        isinstance(magics, tuple) and magics and all(isinstance(m, bytes) and m for m in magics)
    ):
        raise ImproperlyConfigured(
            f"OPTIONS[{name!r}] must declare `magics`: the bytes its output starts with, "
            "so that reads can tell compressed values from others."
        )
    return compressor  # type: ignore[no-any-return]


def _redis_client_class(name: str, value: Any) -> type[Any]:
    import redis

    cls = import_string(value) if isinstance(value, str) else value
    if not (isinstance(cls, type) and issubclass(cls, redis.Redis)):
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be a redis.Redis subclass.")
    return cls


def _sync_pool_class(name: str, value: Any) -> type[Any]:
    import redis

    cls = import_string(value) if isinstance(value, str) else value
    if not (isinstance(cls, type) and issubclass(cls, redis.ConnectionPool)):
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be a redis.ConnectionPool subclass.")
    return cls


def _pickle_version(name: str, value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (-1 <= value <= pickle.HIGHEST_PROTOCOL)
    ):
        raise ImproperlyConfigured(
            f"OPTIONS[{name!r}] must be an int from -1 to {pickle.HIGHEST_PROTOCOL}."
        )
    return value


def _normalise(options: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """Map each lower-cased option name to (the name as the user spelled it, value),
    refusing the same option given twice."""
    normalised: dict[str, tuple[str, Any]] = {}
    for name, value in options.items():
        if not isinstance(name, str):
            raise ImproperlyConfigured(f"OPTIONS keys must be strings, not {name!r}.")
        key = name.lower()
        if key in normalised:
            raise ImproperlyConfigured(
                f"OPTIONS sets {normalised[key][0]!r} and {name!r}: the same option twice."
            )
        normalised[key] = (name, value)
    return normalised


@dataclass
class _Options:
    """OPTIONS, validated, before LOCATION is read (step one of ``parse``)."""

    connection: dict[str, Any]
    pool: dict[str, Any]
    serializer_option: tuple[str, Any] | None = None
    pickle_version: int = -1
    parser: str = "default"
    sync_pool_class: type[Any] | None = None
    close_connection: bool = False
    compressor: Compressor | None = None
    compress_min_length: int = DEFAULT_COMPRESS_MIN_LENGTH
    ignore_exceptions: bool = False
    redis_client_class: type[Any] | None = None
    redis_client_kwargs: tuple[tuple[str, Any], ...] = ()
    read_from_replicas: bool | None = None  # None: not set
    sentinel_kwargs: dict[str, Any] = field(default_factory=dict)
    sentinels: list[tuple[str, int]] | None = None
    sentinel_client: bool = False
    shard_client: bool = False
    stats: bool = True  # STATS (see CacheConfig)
    herd_client: bool = False
    stampede: dict[str, float | None] = field(default_factory=dict)
    opentelemetry: bool = True  # OPENTELEMETRY (see CacheConfig)
    near_cache: bool = False  # NEAR_CACHE
    near: dict[str, Any] = field(default_factory=dict)  # the NEAR_CACHE_* options

    @classmethod
    def defaults(cls) -> _Options:
        """Every option as it is when not given (some from the global settings)."""
        return cls(
            connection={
                "socket_connect_timeout": DEFAULT_SOCKET_CONNECT_TIMEOUT,
                "socket_timeout": DEFAULT_SOCKET_TIMEOUT,
            },
            pool={
                "max_connections": DEFAULT_MAX_CONNECTIONS,
                "pool_timeout": DEFAULT_POOL_TIMEOUT,
                "retry_on_timeout": False,
                "retries": DEFAULT_RETRIES,
                "transport": DEFAULT_TRANSPORT,
            },
            close_connection=bool(_global_setting("CLOSE_CONNECTION", False)),
            ignore_exceptions=_global_setting("IGNORE_EXCEPTIONS", False),
        )


@dataclass
class _Location:
    """LOCATION, read in the light of OPTIONS (step two of ``parse``)."""

    urls: list[_URL]
    mode: str
    shard_names: tuple[str, ...]
    read_from_replicas: bool
    #: The sync pool class once a Sentinel one is dropped (our routing does its work).
    sync_pool_class: type[Any] | None


def parse(location: Any, options: Mapping[str, Any]) -> CacheConfig:
    """Validate LOCATION and OPTIONS; raise ImproperlyConfigured naming the first bad one.

    In three steps: OPTIONS, each read by its entry in ``OTHER_OPTIONS`` or as a
    connection or pool setting (``_apply_connection_option``); then LOCATION,
    which OPTIONS may reinterpret (``_parse_location``: sentinels, shards); then
    the servers and the configuration (``_build``)."""
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured("OPTIONS must be a dict.")
    opts = _normalise(options)
    parsed = _Options.defaults()
    # CONNECTION_POOL_KWARGS first, so a top-level option of the same name wins.
    if "connection_pool_kwargs" in opts:
        _apply_connection_option(
            parsed, "connection_pool_kwargs", *opts.pop("connection_pool_kwargs")
        )
    for key, (name, value) in opts.items():
        if key in OTHER_OPTIONS:
            OTHER_OPTIONS[key](parsed, name, value)
        else:
            _apply_connection_option(parsed, key, name, value)
    if parsed.serializer_option is not None:
        serializer = _serializer(*parsed.serializer_option, options)
    else:
        serializer = PickleSerializer(protocol=parsed.pickle_version)
    return _build(_parse_location(location, parsed), parsed, serializer)


OptionReader = Callable[[_Options, str, Any], None]


def _stored(attribute: str, read: Callable[[str, Any], Any]) -> OptionReader:
    """An option whose value, once ``read`` has validated it, is kept as it is."""

    def store(parsed: _Options, name: str, value: Any) -> None:
        setattr(parsed, attribute, read(name, value))

    return store


def _set_serializer(parsed: _Options, name: str, value: Any) -> None:
    parsed.serializer_option = (name, value)  # built once OPTIONS are read: it may need them


def _check_signing_key(parsed: _Options, name: str, value: Any) -> None:
    if _text(name, value) is None or not value:
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be a non-empty str.")


def _check_connection_factory(parsed: _Options, name: str, value: Any) -> None:
    if value not in _CONNECTION_FACTORIES:
        raise ImproperlyConfigured(
            f"OPTIONS[{name!r}] = {value!r} is not supported: django-asyncredis makes "
            "its own connections. Remove it (django-redis's ConnectionFactory and "
            "SentinelConnectionFactory are accepted)."
        )


def _set_sentinel_kwargs(parsed: _Options, name: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be a dict.")
    for inner_key, (inner_name, inner_value) in _normalise(value).items():
        if inner_key not in CONNECTION_OPTIONS:
            raise ImproperlyConfigured(f"Unknown option {inner_name!r} in {name}.")
        parsed.sentinel_kwargs[inner_key] = CONNECTION_OPTIONS[inner_key](inner_name, inner_value)


def _set_redis_client_kwargs(parsed: _Options, name: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be a dict.")
    parsed.redis_client_kwargs = tuple(sorted(value.items()))


def _set_client_class(parsed: _Options, name: str, value: Any) -> None:
    if value in _SENTINEL_CLIENTS:
        parsed.sentinel_client = True
    elif value in _SHARD_CLIENTS:
        parsed.shard_client = True
    elif value in _HERD_CLIENTS:
        parsed.herd_client = True
    elif value not in _DEFAULT_CLIENTS:
        raise ImproperlyConfigured(
            f"OPTIONS[{name!r}] = {value!r} is not supported: django-asyncredis "
            "is itself the client. Remove the option (DefaultClient, "
            "SentinelClient, ShardClient and HerdClient are accepted)."
        )


def _set_stampede(parsed: _Options, name: str, value: Any) -> None:
    parsed.stampede[name.lower()] = _stampede_number(name, value)


def _herd_timeout(parsed: _Options) -> float | None:
    """CACHE_HERD_TIMEOUT in seconds under django-redis's HerdClient, else None."""
    if not parsed.herd_client:
        return None
    herd_timeout = _herd_timeout_setting()
    if isinstance(herd_timeout, bool) or not isinstance(herd_timeout, int | float):
        herd_timeout = -1  # refused below, with the setting's name
    if not herd_timeout > 0:
        raise ImproperlyConfigured(
            "settings.CACHE_HERD_TIMEOUT (CLIENT_CLASS HerdClient) must be a number of seconds > 0."
        )
    return float(herd_timeout)


def _set_near(parsed: _Options, name: str, value: Any) -> None:
    key = name.lower()
    if key == "near_cache_max_entries" or key == "near_cache_max_bytes":
        parsed.near[key[len("near_cache_") :]] = _positive_int(name, value)
    elif key == "near_cache_max_lifetime":
        seconds = _stampede_number(name, value)
        if seconds is None:
            raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be a number of seconds > 0.")
        parsed.near["max_lifetime"] = seconds
    elif key == "near_cache_check_ttl":
        parsed.near["check_ttl"] = _boolean(name, value)
    else:  # near_cache_keys
        if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
            raise ImproperlyConfigured(
                f"OPTIONS[{name!r}] must be a non-empty list of glob patterns of keys."
            )
        for pattern in value:
            if not isinstance(pattern, str) or not pattern:
                raise ImproperlyConfigured(f"OPTIONS[{name!r}] holds {pattern!r}: not a pattern.")
        parsed.near["keys"] = tuple(value)


def _near_settings(opts: _Options, where: _Location) -> NearSettings | None:
    """NEAR_CACHE's settings, refused where coherence is not guaranteed."""
    if not opts.near_cache:
        if opts.near:
            raise ImproperlyConfigured(
                "NEAR_CACHE_* options are set but OPTIONS['NEAR_CACHE'] is not True."
            )
        return None
    if where.mode in ("cluster", "shard"):
        raise ImproperlyConfigured(
            f"NEAR_CACHE is not supported with {where.mode} LOCATIONs: the keys live "
            "on several primaries, and coherence would need an invalidation stream "
            "per primary and a flush of each node's keys on every MOVED or failover, "
            "which are not built (docs/near-cache.md#topologies). Use it with a "
            "single server or a Sentinel service."
        )
    if where.read_from_replicas:
        raise ImproperlyConfigured(
            "NEAR_CACHE cannot read from replicas: a lagging replica's reply could be "
            "stored after the primary's invalidation. Set READ_FROM_REPLICAS to False "
            "(with SENTINELS, replica URLs in LOCATION turn it on unless it is set)."
        )
    if opts.herd_client:
        raise ImproperlyConfigured("NEAR_CACHE does not combine with CLIENT_CLASS HerdClient.")
    return NearSettings(**opts.near)


def _read_by_base_cache(parsed: _Options, name: str, value: Any) -> None:
    """Read by BaseCache; Redis evicts by its own maxmemory-policy."""


#: The options that are not a connection's or a pool's (lower-cased), each with
#: what reads it.
OTHER_OPTIONS: dict[str, OptionReader] = {
    "serializer": _set_serializer,
    "signing_key": _check_signing_key,
    "pickle_version": _stored("pickle_version", _pickle_version),
    "parser_class": _stored("parser", _parser),
    "compressor": _stored("compressor", _compressor),
    "read_from_replicas": _stored("read_from_replicas", _boolean),
    "sentinels": _stored("sentinels", _sentinels),
    "connection_factory": _check_connection_factory,
    "sentinel_kwargs": _set_sentinel_kwargs,
    "redis_client_class": _stored("redis_client_class", _redis_client_class),
    "redis_client_kwargs": _set_redis_client_kwargs,
    "compress_min_length": _stored("compress_min_length", _non_negative_int),
    "pool_class": _stored("sync_pool_class", _sync_pool_class),
    "connection_pool_class": _stored("sync_pool_class", _sync_pool_class),
    "close_connection": _stored("close_connection", _boolean),
    "client_class": _set_client_class,
    "max_entries": _read_by_base_cache,
    "cull_frequency": _read_by_base_cache,
    "ignore_exceptions": _stored("ignore_exceptions", _boolean),
    "stats": _stored("stats", _boolean),
    "stampede_stale": _set_stampede,
    "stampede_xfetch": _set_stampede,
    "stampede_lock": _set_stampede,
    "opentelemetry": _stored("opentelemetry", _boolean),
    "near_cache": _stored("near_cache", _boolean),
    "near_cache_max_entries": _set_near,
    "near_cache_max_bytes": _set_near,
    "near_cache_max_lifetime": _set_near,
    "near_cache_keys": _set_near,
    "near_cache_check_ttl": _set_near,
}


def _apply_connection_option(
    parsed: _Options, key: str, name: str, value: Any, *, nested: bool = False
) -> None:
    """A connection or pool option, at the top level or in CONNECTION_POOL_KWARGS."""
    if key in CONNECTION_OPTIONS:
        parsed.connection[key] = CONNECTION_OPTIONS[key](name, value)
    elif key in POOL_OPTIONS:
        parsed.pool[key] = POOL_OPTIONS[key](name, value)
    elif not nested and key == "connection_pool_kwargs":
        if not isinstance(value, Mapping):
            raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be a dict.")
        for inner_key, (inner_name, inner_value) in _normalise(value).items():
            _apply_connection_option(parsed, inner_key, inner_name, inner_value, nested=True)
    else:
        hint = " (inside CONNECTION_POOL_KWARGS)" if nested else ""
        raise ImproperlyConfigured(f"Unknown cache option {name!r}{hint}.")


def _parse_location(location: Any, opts: _Options) -> _Location:
    """The URLs and the mode (standalone, cluster, sentinel, shard): LOCATION as
    written, or the sentinels OPTIONS lists, or shards for ShardClient."""
    read_from_replicas = opts.read_from_replicas
    sync_pool_class = opts.sync_pool_class
    if opts.sentinel_client and not opts.sentinels:
        raise ImproperlyConfigured(
            "CLIENT_CLASS SentinelClient needs OPTIONS['SENTINELS']: a list of "
            "(host, port) of the sentinels."
        )
    if opts.sentinels:
        urls, replicas_listed = _sentinel_urls(location, opts.sentinels)
        if read_from_replicas is None:
            # django-redis's SentinelClient reads from a replica: keep that.
            read_from_replicas = replicas_listed
        if sync_pool_class is not None and _is_sentinel_pool(sync_pool_class):
            sync_pool_class = None  # its work (finding the primary) is done by our routing
    else:
        urls = [_parse_url(url) for url in split_location(location)]
    modes = {url.mode for url in urls}
    if len(modes) > 1:
        raise ImproperlyConfigured("LOCATION mixes standalone, cluster and sentinel URLs.")
    mode = modes.pop()
    shard_names: tuple[str, ...] = ()
    if opts.shard_client:
        if mode != "standalone" or opts.sentinels:
            raise ImproperlyConfigured(
                "CLIENT_CLASS ShardClient takes redis://, rediss:// or unix:// LOCATIONs, "
                "one per shard (for Redis Cluster, use redis+cluster:// URLs instead)."
            )
        mode = "shard"
        shard_names = _shard_names(location)
    return _Location(urls, mode, shard_names, bool(read_from_replicas), sync_pool_class)


def _build(where: _Location, opts: _Options, serializer: Serializer) -> CacheConfig:
    """The servers (each with its connection and pool settings), then the configuration."""
    pool = opts.pool
    transport, shared_connections = _async_transport(pool)

    def server(url: _URL, settings: Mapping[str, Any]) -> Server:
        return Server(
            scheme=url.scheme,
            host=url.host,
            port=url.port,
            path=url.path,
            connection=tuple(sorted(settings.items())),
            max_connections=pool["max_connections"],
            pool_timeout=pool["pool_timeout"],
            retries=pool["retries"],
            retry_on_timeout=pool["retry_on_timeout"],
            transport=transport,
            shared_connections=shared_connections,
            parser=opts.parser,
            sync_pool_class=where.sync_pool_class,
        )

    urls = where.urls
    if where.mode == "sentinel":
        if (
            len({url.service for url in urls}) > 1
            or len({url.settings.get("db") for url in urls}) > 1
        ):
            raise ImproperlyConfigured(
                "Every redis+sentinel:// URL must name the same service and db."
            )
        # The sentinels themselves: timeouts, and their own credentials if any.
        sentinel_settings = {
            key: value for key, value in opts.connection.items() if key.startswith("socket_")
        }
        sentinel_settings.update(opts.sentinel_kwargs)
        servers = [server(url, sentinel_settings) for url in urls]
        data_settings = {**opts.connection, **urls[0].settings}
        template = server(urls[0], data_settings)
    else:
        servers = [server(url, {**opts.connection, **url.settings}) for url in urls]
        template = servers[0]
    logger = None
    if opts.ignore_exceptions and _global_setting("LOG_IGNORED_EXCEPTIONS", False):
        logger = _global_setting("LOGGER", None) or "django_asyncredis"
    return CacheConfig(
        mode=where.mode,
        service=urls[0].service,
        template=template,
        read_from_replicas=where.read_from_replicas,
        shard_names=where.shard_names,
        servers=tuple(servers),
        serializer=serializer,
        close_connection=opts.close_connection,
        compressor=opts.compressor,
        compress_min_length=opts.compress_min_length,
        ignore_exceptions=opts.ignore_exceptions,
        ignored_exceptions_logger=logger,
        redis_client_class=opts.redis_client_class,
        redis_client_kwargs=opts.redis_client_kwargs,
        scan_itersize=_global_setting("SCAN_ITERSIZE", None),
        stats=opts.stats,
        opentelemetry=opts.opentelemetry,
        stampede_stale=opts.stampede.get("stampede_stale"),
        stampede_xfetch=opts.stampede.get("stampede_xfetch"),
        stampede_lock=opts.stampede.get("stampede_lock"),
        herd_timeout=_herd_timeout(opts),
        near_cache=_near_settings(opts, where),
    )


def _async_transport(pool: Mapping[str, Any]) -> tuple[str, int]:
    """The async transport and its shared connections per (loop, server).

    ``shared_connections`` with ``transport: "pooled"`` is refused: it would
    change nothing, and the user expects it to. Without hiredis the multiplexed
    transport falls back to pooled, and the count with it (as ``transport`` is
    not an error there, neither is its count)."""
    transport = pool["transport"]
    if "shared_connections" in pool and transport == "pooled":
        raise ImproperlyConfigured(
            "OPTIONS['shared_connections'] sets the multiplexed transport's connections: "
            "it cannot be used with OPTIONS['transport'] 'pooled' (whose connections "
            "are max_connections)."
        )
    if not _multiplex_available():
        return "pooled", 1
    return transport, pool.get("shared_connections", DEFAULT_SHARED_CONNECTIONS)


def _stampede_number(name: str, value: Any) -> float | None:
    """A stampede setting: a number > 0 (seconds, or XFetch's beta), or None (off)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ImproperlyConfigured(f"OPTIONS[{name!r}] must be a number > 0 or None.")
    return float(value)


def _herd_timeout_setting() -> Any:
    """django-redis's global CACHE_HERD_TIMEOUT setting (seconds), default 60."""
    from django.conf import settings

    return getattr(settings, "CACHE_HERD_TIMEOUT", DEFAULT_HERD_TIMEOUT)


#: The global settings that shape a CacheConfig (part of its memo key).
_GLOBAL_SETTINGS = (
    "IGNORE_EXCEPTIONS",
    "LOG_IGNORED_EXCEPTIONS",
    "LOGGER",
    "CLOSE_CONNECTION",
    "SCAN_ITERSIZE",
)


def _global_setting(name: str, default: Any) -> Any:
    """``DJANGO_ASYNCREDIS_<name>``, or django-redis's ``DJANGO_REDIS_<name>``."""
    from django.conf import settings

    for prefix in ("DJANGO_ASYNCREDIS_", "DJANGO_REDIS_"):
        value = getattr(settings, prefix + name, None)
        if value is not None:
            return value
    return default


_parsed: dict[str, CacheConfig] = {}
#: The last OPTIONS objects seen, by identity: Django's cache handler copies the
#: CACHES entry shallowly for each backend it builds, so the same OPTIONS dict
#: comes back on every request. Holding it keeps its id from being reused.
_by_identity: dict[int, tuple[Mapping[str, Any], Any, CacheConfig]] = {}


def parse_cached(location: Any, options: Mapping[str, Any]) -> CacheConfig:
    """``parse`` memoised: by the OPTIONS object's identity (a backend is built per
    request under ASGI), else by the settings' repr (dicts are not hashable)."""
    known = _by_identity.get(id(options))
    if known is not None and known[0] is options and known[1] == location:
        return known[2]
    globals_ = [_global_setting(name, None) for name in _GLOBAL_SETTINGS]
    globals_.append(_herd_timeout_setting())
    key = repr((location, sorted(options.items(), key=lambda item: str(item[0])), globals_))
    config = _parsed.get(key)
    if config is None:
        if len(_parsed) >= 256:  # settings overridden in a loop (tests) must not grow this
            _parsed.clear()
        # Threads that parse the same settings at once all keep the first result:
        # one configuration object per settings, since what is process-wide per
        # cache (single-flight, pools) is keyed by it.
        config = _parsed.setdefault(key, parse(location, options))
    if len(_by_identity) >= 256:
        _by_identity.clear()
    _by_identity[id(options)] = (options, location, config)
    return config


def _forget_parsed(*, setting: str, **kwargs: Any) -> None:
    """Settings changed (override_settings in tests): parse afresh."""
    if setting in ("CACHES", "CACHE_HERD_TIMEOUT") or setting.startswith(
        ("DJANGO_ASYNCREDIS_", "DJANGO_REDIS_")
    ):
        _by_identity.clear()
        _parsed.clear()


setting_changed.connect(_forget_parsed)


def alias_of(config: CacheConfig) -> str:
    """The CACHES alias whose settings made ``config`` (Django does not tell a
    backend its alias); the leader's address when no alias matches."""
    from django.conf import settings

    for alias, params in getattr(settings, "CACHES", {}).items():
        try:
            if parse_cached(params.get("LOCATION", ""), params.get("OPTIONS") or {}) is config:
                return str(alias)
        except ImproperlyConfigured:
            continue
    return str(config.servers[0])


def log_ignored(config: Any, operation: Any, exc: BaseException) -> None:
    """Log an exception swallowed by ignore-exceptions mode: once per call, naming
    the cache alias and the operation (never the password)."""
    if config.ignored_exceptions_logger is None:
        return
    logging.getLogger(config.ignored_exceptions_logger).warning(
        "Cache %r: %s failed and was ignored (IGNORE_EXCEPTIONS): %s",
        alias_of(config),
        getattr(operation, "__name__", "operation"),
        exc,
    )
