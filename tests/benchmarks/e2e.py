"""End to end: the ASGI app of ``e2e_app.py`` under uvicorn, driven over HTTP.

The suite starts uvicorn (one worker, asyncio loop, h11: what a fresh install
gets, pinned so the figures do not depend on whether uvloop or httptools happen
to be installed) on a free loopback port, and stops it at the end, whatever
happens. The load generator runs in the suite's own process: ``CONNECTIONS``
keep-alive HTTP/1.1 connections per backend, each sending its next request as
soon as the previous answer is in. As in the other measurements, each round
warms every backend up, then alternates them in short slices (the connections
of the idle ones stay open), in an order that rotates from round to round.

The generator is a minimal asyncio HTTP/1.1 client (a fixed request, the
status line, ``Content-Length``, the body) rather than httpx, whose per-request
cost is several times higher: on two CPUs shared by the server, the load
generator and Redis, every cycle the generator spends is taken from the server
it measures. httpx checks every URL once before the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from tests.benchmarks import contenders as c
from tests.benchmarks.harness import serpentine
from tests.servers import free_port

CONNECTIONS = 64
HOST = "127.0.0.1"

SCENARIO = "3 aget + 1 aset"
RAW_VIEW = "view on raw redis.asyncio"
NO_CACHE = "no cache at all"
#: URL path of each backend's view (``e2e_app.py``), and of the two references.
PATHS = {
    c.ASYNCREDIS: "/asyncredis/",
    c.ASYNCREDIS_POOLED: "/asyncredis-pooled/",
    RAW_VIEW: "/raw/",
    c.VALKEY: "/valkey/",
    c.BUILTIN: "/builtin/",
    c.DJANGO_REDIS: "/django-redis/",
    NO_CACHE: "/nocache/",
}


class Served(NamedTuple):
    """A running uvicorn (``uvicorn_server``): its base URL, and its pid for
    ``process_cpu_seconds``."""

    url: str
    pid: int


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of process ``pid``, all its threads (Django's
    thread pool included); None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class HttpSample:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0  # the slices' time, each until its last request ended
    latencies: list[float] = field(default_factory=list)
    #: CPU time of the uvicorn process during the slices; None if unknown.
    cpu_seconds: float | None = 0.0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        """What a request cost the server process (uvicorn, Django, the view and
        its cache) in CPU: unlike requests/s, the same whether or not the load
        generator and Redis, on the same CPUs, took CPU time from it meanwhile."""
        if self.cpu_seconds is None or not self.requests:
            return float("nan")
        return self.cpu_seconds / self.requests * 1e6

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1e3


@contextlib.contextmanager
def uvicorn_server(
    root: Path,
    redis_url: str,
    timeout: float = 30.0,
    app: str = "tests.benchmarks.e2e_app:app",
    ready_path: str = "/nocache/",
) -> Iterator[Served]:
    """uvicorn serving ``app`` (by default ``e2e_app.py``'s); yields its base URL
    and pid once ``ready_path`` answers 200."""
    port = free_port()
    env = {**os.environ, "BENCH_REDIS_URL": redis_url, "PYTHONPATH": str(root)}
    args = [
        sys.executable, "-m", "uvicorn", app,
        "--app-dir", str(root),
        "--host", HOST, "--port", str(port),
        "--loop", "asyncio", "--http", "h11",
        "--lifespan", "off",  # Django does not speak ASGI lifespan
        "--timeout-keep-alive", "60",  # connections wait between slices
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(args, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_ready(process, port, timeout, ready_path)
            yield Served(f"http://{HOST}:{port}", process.pid)
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
            if process.returncode not in (0, -15):
                log.seek(0)
                sys.stderr.write(log.read().decode(errors="replace")[-4000:])


def _wait_ready(
    process: subprocess.Popen[bytes], port: int, timeout: float, ready_path: str
) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited at start with status {process.returncode}")
        try:
            if httpx.get(f"http://{HOST}:{port}{ready_path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not answer within {timeout} s")


def check_paths(base: str, paths: Sequence[str]) -> None:
    """Every view answers 200 once, through a real HTTP client, before any timing."""
    import httpx

    with httpx.Client(base_url=base, timeout=10) as client:
        for url_path in paths:
            response = client.get(url_path)
            if response.status_code != 200 or response.content != b"ok":
                raise RuntimeError(f"{url_path} answered {response.status_code}: {response.text!r}")


class _Connection:
    """One keep-alive HTTP/1.1 connection of the load generator, reopened after an error."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    async def get(self, request: bytes) -> bytes:
        """The status code of one request (the body is read and dropped)."""
        if self.reader is None or self.writer is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        await self.reader.readexactly(_content_length(head))
        return head[9:12]

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _content_length(head: bytes) -> int:
    start = head.lower().find(b"\r\ncontent-length:")
    if start < 0:
        raise ValueError("no Content-Length")
    end = head.find(b"\r\n", start + 2)
    return int(head[start + 17 : end])


async def _requests(
    connection: _Connection, request: bytes, deadline: float, sample: HttpSample
) -> None:
    """Requests back to back until the deadline. As in the harness, the request
    in flight at the deadline is finished and counted, and the slice lasts until
    the last one ends. An error (a status other than 200, a broken connection)
    is counted, and the connection opened again."""
    clock = time.perf_counter
    while clock() < deadline:
        began = clock()
        try:
            status = await connection.get(request)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            sample.errors += 1
            await connection.close()
            await asyncio.sleep(0.01)
            continue
        if status == b"200":
            sample.requests += 1
            sample.latencies.append(clock() - began)
        else:
            sample.errors += 1


async def _slice(
    connections: Sequence[_Connection],
    path: str,
    seconds: float,
    sample: HttpSample,
    server_pid: int | None = None,
) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    cpu_before = process_cpu_seconds(server_pid) if server_pid is not None else None
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(*(_requests(each, request, deadline, sample) for each in connections))
    sample.seconds += time.perf_counter() - began
    cpu_after = process_cpu_seconds(server_pid) if server_pid is not None else None
    if cpu_before is None or cpu_after is None or sample.cpu_seconds is None:
        sample.cpu_seconds = None
    else:
        sample.cpu_seconds += cpu_after - cpu_before


async def _round(
    port: int,
    paths: dict[str, str],
    warmup: float,
    seconds: float,
    slices: int,
    server_pid: int | None,
) -> dict[str, HttpSample]:
    """Every backend (in the order of ``paths``) warmed up on its own CONNECTIONS
    connections, then all of them alternating in ``slices`` slices (forwards,
    then backwards: see ``harness.serpentine``), the connections staying open
    in between."""
    pools = {name: [_Connection(port) for _ in range(CONNECTIONS)] for name in paths}
    samples = {name: HttpSample() for name in paths}
    try:
        for name, path in paths.items():
            await _slice(pools[name], path, warmup, HttpSample())
        for number in range(slices):
            for name in serpentine(list(paths), number):
                path = paths[name]
                await _slice(pools[name], path, seconds / slices, samples[name], server_pid)
    finally:
        for pool in pools.values():
            for connection in pool:
                await connection.close()
    return samples


def measure_round(
    served: Served, paths: dict[str, str], warmup: float, seconds: float, slices: int
) -> dict[str, HttpSample]:
    """One round: ``seconds`` of load per backend after ``warmup``, in alternating slices."""
    port = int(served.url.rsplit(":", 1)[1])
    return asyncio.run(_round(port, paths, warmup, seconds, slices, served.pid))
