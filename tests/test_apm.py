"""What APM tools users already run see of our cache, each checked with the real package.

Each probe (tests/apm_probe.py) runs in a child process, since each tool patches
Django or redis-py for its whole process. The sync ``get``, async ``aget`` and a
raw-client ``ping`` are made once each (for ddtrace also ``set`` and ``aset``).
docs/observability.md tells the same story.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ServerProcess

ROOT = Path(__file__).resolve().parent.parent


def probe(
    tool: str,
    server: ServerProcess,
    *needs: str,
    runner: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Any:
    """What ``tests/apm_probe.py TOOL`` printed, run after ``runner`` (a wrapper
    command such as ``ddtrace-run``) with ``env`` added to the environment."""
    for module in needs:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    done = subprocess.run(
        [*runner, sys.executable, "-m", "tests.apm_probe", tool, server.url],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
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


def test_ddtrace_by_default_sees_only_the_raw_client(redis_server: ServerProcess) -> None:
    """ddtrace-run's defaults: Django cache tracing is off (DD_DJANGO_TRACING_MINIMAL),
    and its redis integration wraps execute_command, which cache calls do not use."""
    seen = probe("ddtrace_default", redis_server, "ddtrace")
    assert seen == {"spans": [["redis.command", "PING", "redis", None]], "one_trace": True}


def test_ddtrace_cache_tracing_sees_only_sync_calls(redis_server: ServerProcess) -> None:
    """DD_DJANGO_INSTRUMENT_CACHES=true wraps the backend class's sync get/set/...:
    the sync get and set are django.cache spans; aget and aset are unseen."""
    seen = probe("ddtrace_caches", redis_server, "ddtrace")
    assert seen == {
        "spans": [
            ["django.cache", "django_asyncredis.cache.get", "django", None],
            ["django.cache", "django_asyncredis.cache.set", "django", None],
            ["redis.command", "PING", "redis", None],
        ],
        "one_trace": True,
    }


def test_ddtrace_receives_our_opentelemetry_spans_for_both_apis(
    redis_server: ServerProcess,
) -> None:
    """DD_TRACE_OTEL_ENABLED=true makes ddtrace the OpenTelemetry tracer provider: our
    spans (the [otel] extra) arrive in the same trace, for get, set, aget and aset."""
    seen = probe("ddtrace_otel", redis_server, "ddtrace", "opentelemetry")
    assert seen == {
        "spans": [
            ["django.cache", "django_asyncredis.cache.get", "django", None],
            ["client", "get", None, "sync"],
            ["django.cache", "django_asyncredis.cache.set", "django", None],
            ["client", "set", None, "sync"],
            ["client", "get", None, "async"],
            ["client", "set", None, "async"],
            ["redis.command", "PING", "redis", None],
        ],
        "one_trace": True,
    }


def test_ddtrace_run_with_opentelemetry_gets_each_call_once(redis_server: ServerProcess) -> None:
    """The documented setup: ``DD_TRACE_OTEL_ENABLED=true ddtrace-run ...`` with ddtrace's
    cache tracing left off: one span of ours per call, both APIs, one trace."""
    from tests.apm_probe import DDTRACE_QUIET

    ddtrace_run = Path(sys.executable).with_name("ddtrace-run")
    seen = probe(
        "ddtrace_default",
        redis_server,
        "ddtrace",
        "opentelemetry",
        runner=[str(ddtrace_run)],
        env={**DDTRACE_QUIET, "DD_TRACE_OTEL_ENABLED": "true"},
    )
    assert seen == {
        "spans": [
            ["client", "get", None, "sync"],
            ["client", "set", None, "sync"],
            ["client", "get", None, "async"],
            ["client", "set", None, "async"],
            ["redis.command", "PING", "redis", None],
        ],
        "one_trace": True,
    }
