"""Sessions end to end: Django's ``SessionMiddleware`` against ours, under uvicorn.

``run.py --parts sessions`` (``nox -s bench -- --parts sessions``) starts
uvicorn on ``sessions_app.py`` as ``e2e.py`` does for its app, gives each of
``e2e.CONNECTIONS`` keep-alive connections a session of its own (a cookie,
made through ``/new/``), and measures, per scenario, every middleware variant
in alternating slices of one run, the order rotating from round to round: the
ratios compare variants that ran under the same conditions.

The variants: Django's middleware (both phases in a thread under ASGI), ours
(lazy, as Django's: no thread), and ours made to preload the session in the
request phase, to measure that alternative (docs/sessions.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import httpx

from tests.benchmarks import e2e
from tests.benchmarks.harness import serpentine

APP = "tests.benchmarks.sessions_app:app"
NEW_PATH = "/new/"

DJANGO = "Django's SessionMiddleware"
OURS = "django-asyncredis SessionMiddleware"
PRELOAD = "ours, preloading the session"
#: URL prefix -> MIDDLEWARE of that variant.
MIDDLEWARE = {
    "django": ["django.contrib.sessions.middleware.SessionMiddleware"],
    "ours": ["django_asyncredis.middleware.SessionMiddleware"],
    "preload": ["tests.benchmarks.sessions_app.PreloadingSessionMiddleware"],
}
VARIANTS = {DJANGO: "django", OURS: "ours", PRELOAD: "preload"}
#: scenario -> view of sessions_app.py
VIEWS = {
    "session read+write, async view": "rw",
    "session read+write, sync view": "rw-sync",
    "session untouched, cookie sent": "untouched",
}


def new_sessions(base: str, count: int) -> list[str]:
    """``count`` stored sessions, through the app; their keys, for the cookies."""
    with httpx.Client(base_url=base, timeout=10) as client:
        keys = [client.get(NEW_PATH).text for _ in range(count)]
        for variant in VARIANTS.values():  # every variant answers before any timing
            for view in VIEWS.values():
                response = client.get(f"/{variant}/{view}/", cookies={"sessionid": keys[0]})
                if response.status_code != 200 or response.content != b"ok":
                    raise RuntimeError(f"/{variant}/{view}/ answered {response.status_code}")
    return keys


def _request(path: str, session_key: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {e2e.HOST}\r\nCookie: sessionid={session_key}\r\n\r\n"
    ).encode()


async def _slice(
    connections: Sequence[e2e._Connection],
    path: str,
    keys: Sequence[str],
    seconds: float,
    sample: e2e.HttpSample,
) -> None:
    """Like ``e2e``'s slice, each connection with its own session cookie."""
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(
        *(
            e2e._requests(connection, _request(path, key), deadline, sample)
            for connection, key in zip(connections, keys, strict=True)
        )
    )
    sample.seconds += time.perf_counter() - began


async def _round(
    port: int, keys: Sequence[str], order: Sequence[str], warmup: float, seconds: float, slices: int
) -> dict[str, dict[str, e2e.HttpSample]]:
    """scenario -> variant -> sample: each scenario's variants warmed up, then
    alternating in ``slices`` slices, each on its own connections."""
    results: dict[str, dict[str, e2e.HttpSample]] = {}
    for scenario, view in VIEWS.items():
        pools = {name: [e2e._Connection(port) for _ in keys] for name in order}
        samples = {name: e2e.HttpSample() for name in order}
        paths = {name: f"/{VARIANTS[name]}/{view}/" for name in order}
        try:
            for name in order:
                await _slice(pools[name], paths[name], keys, warmup, e2e.HttpSample())
            for number in range(slices):
                for name in serpentine(list(order), number):
                    await _slice(pools[name], paths[name], keys, seconds / slices, samples[name])
        finally:
            for pool in pools.values():
                for connection in pool:
                    await connection.close()
        results[scenario] = samples
    return results


def measure_round(
    base: str,
    keys: Sequence[str],
    order: Sequence[str],
    warmup: float,
    seconds: float,
    slices: int,
) -> dict[str, dict[str, e2e.HttpSample]]:
    port = int(base.rsplit(":", 1)[1])
    return asyncio.run(_round(port, keys, order, warmup, seconds, slices))
