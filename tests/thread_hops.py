"""Counting thread hops, and one request through an ASGI app, in-process.

``count_hops`` is behind the ``hops`` fixture (tests/conftest.py): the tests of
the page-cache and session middleware prove with it that a request makes no
thread hop of its own under ``ASGIHandler``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from asgiref.sync import SyncToAsync
from django.core.handlers.asgi import ASGIHandler


def _callable_name(func: Any) -> str:
    func = getattr(func, "func", func)  # functools.partial
    return getattr(func, "__qualname__", type(func).__name__)


def count_hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Log every call into a thread: each ``sync_to_async`` call and each
    ``loop.run_in_executor`` (which ``sync_to_async`` uses, as does anything else
    that offloads work, like a DNS lookup)."""
    log: list[str] = []
    to_thread = SyncToAsync.__call__
    in_executor = asyncio.BaseEventLoop.run_in_executor

    async def counting_sync_to_async(self: SyncToAsync[Any, Any], *args: Any, **kwargs: Any) -> Any:
        log.append(f"sync_to_async:{_callable_name(self.func)}")
        return await to_thread(self, *args, **kwargs)

    def counting_run_in_executor(
        self: asyncio.AbstractEventLoop, executor: Any, func: Any, *args: Any
    ) -> Any:
        log.append("run_in_executor")
        return in_executor(self, executor, func, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(SyncToAsync, "__call__", counting_sync_to_async)
    monkeypatch.setattr(asyncio.BaseEventLoop, "run_in_executor", counting_run_in_executor)
    return log


async def asgi_get(
    app: ASGIHandler, path: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> tuple[int, bytes]:
    """One GET through the ASGI app, in-process, on the running loop."""
    sent: list[dict[str, Any]] = []
    requested = False
    disconnected = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnected.wait()  # the client stays connected; Django cancels this
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


async def hops_of(
    app: ASGIHandler, path: str, hops: list[str], headers: Sequence[tuple[bytes, bytes]] = ()
) -> tuple[bytes, list[str]]:
    """The body of a GET that must answer 200, and the hops it made."""
    hops.clear()
    status, body = await asgi_get(app, path, headers)
    assert status == 200
    return body, list(hops)
