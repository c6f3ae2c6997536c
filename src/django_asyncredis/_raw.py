"""Raw redis-py clients on the cache's own connection pools.

For what the cache API does not cover (streams, pub/sub, Lua of your own). The
clients share the cache's pools: do not change connection state that the cache
relies on (``SELECT``, ``CLIENT REPLY``, ``RESET``), and close nothing but what
you opened yourself. Pipelines and transactions are fine.
"""

from __future__ import annotations

import random
from typing import Any

import redis
import redis.asyncio
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured

from django_asyncredis._config import Server
from django_asyncredis._pools import raw_async_pool, sync_pool
from django_asyncredis._topology import SentinelState


def _cache(alias: str) -> Any:
    from django_asyncredis.cache import RedisCache

    cache = caches[alias]
    if not isinstance(cache, RedisCache):
        raise ImproperlyConfigured(
            f"CACHES[{alias!r}] is a {type(cache).__name__}, not django_asyncredis.RedisCache."
        )
    return cache


def _server(cache: Any, write: bool, primary: Server | None) -> Server:
    """Sentinel: the current primary (or a replica); cluster: the first startup
    node; else the leader, or a random replica for reads."""
    topology = cache._config.topology
    if isinstance(topology, SentinelState):
        assert primary is not None
        if not write and topology.replicas:
            return random.choice(topology.replicas)
        return primary
    servers = cache._config.servers
    if write or len(servers) == 1 or topology is not None:
        return servers[0]  # type: ignore[no-any-return]
    return servers[random.randrange(1, len(servers))]  # type: ignore[no-any-return]


def get_redis_connection(alias: str = "default", write: bool = True) -> redis.Redis:
    """The sync redis-py client of cache ``alias``: the leader, or a replica for
    ``write=False`` when replicas are configured (REDIS_CLIENT_CLASS/KWARGS apply)."""
    return client_of(_cache(alias), write)


async def aget_redis_connection(alias: str = "default", write: bool = True) -> redis.asyncio.Redis:
    """The ``redis.asyncio`` client of cache ``alias``, bound to the running loop
    (use it on that loop only; its pool closes when the loop shuts down)."""
    return await aclient_of(_cache(alias), write)


def client_of(cache: Any, write: bool = True) -> redis.Redis:
    """``get_redis_connection`` for a backend instance rather than an alias
    (what ``cache.get_client()`` and ``cache.client.get_client()`` return)."""
    config = cache._config
    primary = None
    if isinstance(config.topology, SentinelState):
        primary = config.topology.primary or cache._sync._resolve_primary(config.topology)
    server = _server(cache, write, primary)
    client_class = config.redis_client_class or redis.Redis
    return client_class(connection_pool=sync_pool(server), **dict(config.redis_client_kwargs))


async def aclient_of(cache: Any, write: bool = True) -> redis.asyncio.Redis:
    """``aget_redis_connection`` for a backend instance rather than an alias."""
    topology = cache._config.topology
    primary = None
    if isinstance(topology, SentinelState):
        primary = topology.primary or await cache._async._resolve_primary(topology)
    server = _server(cache, write, primary)
    return redis.asyncio.Redis(connection_pool=raw_async_pool(server))


def addresses_of(config: Any) -> set[tuple[Any, ...]]:
    """Where this cache's data lives now, as (host, port, unix path, db): to
    recognise a client of its own among those passed as ``client=``."""
    topology = config.topology
    servers: list[Server] = list(config.servers)
    if isinstance(topology, SentinelState):
        servers = [s for s in (topology.primary, *topology.replicas) if s is not None]
    elif topology is not None:
        servers = [*topology.primaries, *config.servers]
    return {_address(server.connection_kwargs()) for server in servers}


def address_of_client(client: Any) -> tuple[Any, ...] | None:
    """(host, port, unix path, db) of a redis-py client's pool, None if it has none."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
    return None if kwargs is None else _address(kwargs)


def _address(kwargs: dict[str, Any]) -> tuple[Any, ...]:
    path = kwargs.get("path", "")
    host = "" if path else kwargs.get("host", "localhost")
    port = 0 if path else int(kwargs.get("port", 6379))
    return (host, port, path, int(kwargs.get("db", 0) or 0))
