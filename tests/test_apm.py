"""What APM tools users already run see of our cache, each checked with the real package.

Each probe (tests/apm_probe.py) runs in a child process, since each tool patches
Django or redis-py for its whole process. The sync ``get``, async ``aget`` and a
raw-client ``ping`` are made once each. docs/observability.md tells the same story.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ServerProcess

ROOT = Path(__file__).resolve().parent.parent


def probe(tool: str, server: ServerProcess, *needs: str) -> Any:
    for module in needs:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    done = subprocess.run(
        [sys.executable, "-m", "tests.apm_probe", tool, server.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_sentry_cache_spans_see_only_sync_calls(redis_server: ServerProcess) -> None:
    """DjangoIntegration(cache_spans=True) wraps sync get/get_many/set/set_many: aget is unseen."""
    seen = probe("sentry", redis_server, "sentry_sdk")
    assert seen["spans"] == [{"op": "cache.get", "description": "probe:sync"}]


def test_sentry_through_opentelemetry_sees_both_apis(redis_server: ServerProcess) -> None:
    """Sentry's SentrySpanProcessor receives our spans: the sync get and the async aget."""
    seen = probe("sentry_otel", redis_server, "sentry_sdk", "opentelemetry.sdk")
    assert seen["spans"] == [
        {"op": "get", "description": "get"},
        {"op": "get", "description": "get"},
    ]


def test_debug_toolbar_cache_panel_sees_only_sync_calls(redis_server: ServerProcess) -> None:
    """Under ASGI, the toolbar's cache panel counts the sync get; our panel counts both."""
    seen = probe("debug_toolbar", redis_server, "debug_toolbar")
    assert seen["toolbar"] == {"get": 1}
    assert seen["ours"] == [
        ["default", "async", "get", 1, 0, 1, 0],
        ["default", "sync", "get", 1, 0, 1, 0],
    ]


def test_otel_redis_instrumentation_sees_only_the_raw_client(redis_server: ServerProcess) -> None:
    """opentelemetry-instrumentation-redis wraps redis-py clients' execute_command: it sees
    the raw client's PING; the cache calls are our own instrumentation's spans."""
    seen = probe("otel_redis", redis_server, "opentelemetry.instrumentation.redis")
    assert sorted(map(tuple, seen["spans"])) == [
        ("django_asyncredis", "get"),
        ("django_asyncredis", "get"),
        ("opentelemetry.instrumentation.redis", "PING"),
    ]
