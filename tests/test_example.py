"""End to end: examples/run_demo.py under uvicorn, driven over HTTP on loopback.

The demo runs in a child process: it needs its own Django settings, and this
process already has the test suite's.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import ServerProcess

RUN_DEMO = Path(__file__).resolve().parent.parent / "examples" / "run_demo.py"
BANNER = re.compile(r"demo running on (http://127\.0\.0\.1:\d+)/")
EMBEDDED = re.compile(r"embedded server: redis://127\.0\.0\.1:(\d+)")


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    log: Path
    base_url: str = ""

    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 30.0) -> re.Match[str]:
        """Poll the demo's output for ``pattern``, failing if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = pattern.search(self.output())
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"the demo did not print {pattern.pattern!r}:\n{self.output()}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the demo and wait for its exit code; kill it if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            pytest.fail(f"the demo did not stop within {timeout} s:\n{self.output()}")


StartDemo = Callable[[str | None], Demo]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator[StartDemo]:
    """``start_demo(redis_url)``: run the demo on a free port, stopped after the test."""
    demos: list[Demo] = []

    def start(redis_url: str | None) -> Demo:
        env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
        if redis_url is not None:
            env["REDIS_URL"] = redis_url
        log = tmp_path / f"demo-{len(demos)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, str(RUN_DEMO), "--port", "0"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        demo = Demo(process, log)
        demos.append(demo)
        demo.base_url = demo.wait_for(BANNER).group(1)
        return demo

    yield start
    for demo in demos:
        demo.stop()


@pytest.fixture
def server(redis_server: ServerProcess) -> Iterator[ServerProcess]:
    """The session's server, empty before and after the test (the demo writes to it)."""
    redis_server.flush()
    yield redis_server
    redis_server.flush()


def poll(
    fetch: Callable[[], httpx.Response],
    until: Callable[[httpx.Response], bool],
    timeout: float = 5.0,
) -> httpx.Response:
    """``fetch()`` until ``until(response)``, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        response = fetch()
        if until(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def never_cached(response: httpx.Response) -> bool:
    return "no-store" in response.headers["Cache-Control"] and "Age" not in response.headers


def test_demo_serves_the_cache_over_asgi(start_demo: StartDemo, server: ServerProcess) -> None:
    demo: Demo = start_demo(server.url)
    assert "Using the server at REDIS_URL" in demo.output()

    with httpx.Client(base_url=demo.base_url, timeout=10) as client:
        index = client.get("/")
        assert index.status_code == 200
        assert index.headers["Content-Type"].startswith("text/html")
        links = re.findall(r'<a href="([^"]+)">', index.text)
        assert links == [
            "/async",
            "/sync",
            "/site-cache",
            "/cache-page",
            "/session",
            "/health",
            "/metrics",
        ]
        for path in ["/", *links]:
            assert path in demo.output()  # the banner lists them too

        first = client.get("/async")
        second = client.get("/async")
        assert first.status_code == second.status_code == 200
        assert first.json()["view"] == "async"
        assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
        assert second.json()["visits"] == first.json()["visits"] + 1 == 2
        assert second.json()["report"] == first.json()["report"]  # served from the cache
        assert 0 < second.json()["report_expires_in_s"] <= 30
        assert never_cached(second)  # not stored by the site-wide page cache

        first = client.get("/sync")
        second = client.get("/sync")
        assert first.status_code == second.status_code == 200
        assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
        assert first.json()["previous_visit"] is None
        assert second.json()["previous_visit"] == first.json()["this_visit"]
        assert never_cached(second)

        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        cache = health.json()["cache"]
        assert cache["backend"] == "django_asyncredis.RedisCache"
        assert cache["location"] == server.url
        assert cache["aget_latency_ms"] >= 0
        assert cache["server"].split()[0] in {"redis", "valkey"}
        # The stats of this demo process: two /sync visits, one miss then one hit;
        # two /async visits, two INCRs.
        operations = health.json()["stats"]["default"]["operations"]
        sync_get = operations["sync"]["get"]
        assert (sync_get["calls"], sync_get["hits"], sync_get["misses"]) == (2, 1, 1)
        assert operations["async"]["incr"]["calls"] == 2
        metrics = client.get("/metrics")
        assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        get_labels = '{alias="default",api="sync",operation="get"}'
        assert f"django_asyncredis_hits_total{get_labels} 1" in metrics.text
        assert f"django_asyncredis_misses_total{get_labels} 1" in metrics.text
        assert never_cached(metrics)
        assert never_cached(client.get("/health"))
        assert never_cached(client.get("/"))

    assert demo.stop(signal.SIGTERM) == 0
    assert "Demo stopped." in demo.output()


def test_pages_are_served_from_the_cache(start_demo: StartDemo, server: ServerProcess) -> None:
    demo: Demo = start_demo(server.url)

    with httpx.Client(base_url=demo.base_url, timeout=10) as client:
        # @cache_page(10) on an async view: a miss renders the page, a hit is the
        # stored page (same body, same X-Rendered-At) with an Age header.
        miss = client.get("/cache-page")
        hit = client.get("/cache-page")
        assert miss.status_code == hit.status_code == 200
        assert "Age" not in miss.headers
        assert 0 <= int(hit.headers["Age"]) <= 10
        assert hit.json() == miss.json()
        assert hit.headers["X-Rendered-At"] == miss.headers["X-Rendered-At"]
        assert miss.headers["Cache-Control"] == "max-age=10"  # cache_page's, not the site's 30
        assert "Cookie" in miss.headers["Vary"]  # @vary_on_cookie

        # Varying on the cookie: with a session cookie, a page of one's own.
        assert client.get("/session").json()["your_visits"] == 1
        own = client.get("/cache-page")
        assert "Age" not in own.headers
        assert own.json()["your_session_visits"] == 1
        assert own.json()["rendered_at"] != miss.json()["rendered_at"]
        assert client.get("/cache-page").json() == own.json()
        with httpx.Client(base_url=demo.base_url, timeout=10) as stranger:
            assert stranger.get("/cache-page").json() == miss.json()  # still shared

        # The site-wide middleware stores a view with no caching code of its own
        # for CACHE_MIDDLEWARE_SECONDS; the hit's Age grows while the page stays.
        miss = client.get("/site-cache")
        assert miss.status_code == 200
        assert "Age" not in miss.headers
        assert miss.headers["Cache-Control"] == "max-age=30"
        hit = poll(lambda: client.get("/site-cache"), lambda r: int(r.headers["Age"]) >= 1)
        assert 1 <= int(hit.headers["Age"]) <= 30
        assert hit.json() == miss.json()
        assert hit.headers["X-Rendered-At"] == miss.headers["X-Rendered-At"]

    assert demo.stop(signal.SIGTERM) == 0


def test_sessions_live_in_the_cache(start_demo: StartDemo, server: ServerProcess) -> None:
    import redis

    demo: Demo = start_demo(server.url)

    with httpx.Client(base_url=demo.base_url, timeout=10) as alice:
        visits = [alice.get("/session") for _ in range(3)]
        assert [visit.status_code for visit in visits] == [200] * 3
        assert [visit.json()["your_visits"] for visit in visits] == [1, 2, 3]
        assert all(never_cached(visit) for visit in visits)
        session_key = alice.cookies["sessionid"]

        # A client without the cookie has a session of its own, from 1.
        with httpx.Client(base_url=demo.base_url, timeout=10) as bob:
            assert bob.get("/session").json()["your_visits"] == 1
            assert bob.cookies["sessionid"] != session_key
        assert alice.get("/session").json()["your_visits"] == 4

    # Stored by the cache, under Django's cache session key and the cache's prefix.
    with redis.Redis.from_url(server.url) as client:
        key = f"demo:1:django.contrib.sessions.cache{session_key}"
        assert client.exists(key)
        assert 0 < client.ttl(key) <= 14 * 24 * 3600  # SESSION_COOKIE_AGE, two weeks

    assert demo.stop(signal.SIGTERM) == 0


def test_health_hides_the_password(start_demo: StartDemo, redis_server: ServerProcess) -> None:
    url = redis_server.url.replace("redis://", "redis://demo-user:s3cret-pw@")
    demo: Demo = start_demo(url)

    with httpx.Client(base_url=demo.base_url, timeout=10) as client:
        health = client.get("/health")
        # The page cache ignores its errors: pages are served, uncached.
        pages = [client.get("/site-cache") for _ in range(2)]
    # The server has no such user: the check fails, and says so without the password.
    assert health.status_code == 503
    assert health.json()["status"] == "error"
    assert health.json()["cache"]["location"] == redis_server.url
    assert "s3cret-pw" not in health.text
    assert [page.status_code for page in pages] == [200, 200]
    assert pages[0].json() != pages[1].json()  # rendered twice
    assert "s3cret-pw" not in demo.output()
    assert demo.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_embedded_server_stops_with_the_demo(start_demo: StartDemo, signum: int) -> None:
    demo: Demo = start_demo(None)
    port = int(demo.wait_for(EMBEDDED).group(1))

    with httpx.Client(base_url=demo.base_url, timeout=10) as client:
        health = client.get("/health")
    assert health.json()["status"] == "ok"
    assert health.json()["cache"]["location"] == f"redis://127.0.0.1:{port}"
    assert listening(port)

    assert demo.stop(signum) == 0
    assert "Stopped the embedded server." in demo.output()
    assert not listening(port)  # no orphan server
