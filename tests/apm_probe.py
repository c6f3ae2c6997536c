"""What an APM tool sees of our cache: run as ``python -m tests.apm_probe TOOL URL``.

Each tool patches Django or redis-py process-wide, so each probe runs in a child
process of its own (tests/test_apm.py). It makes one sync ``get``, one async
``aget`` (the ddtrace probes also a ``set`` and an ``aset``) and one raw-client
``ping`` (``get_redis_connection``), and prints as JSON what the tool recorded.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import django
from django.conf import settings


def configure(url: str, **extra: Any) -> None:
    settings.configure(
        INSTALLED_APPS=["django_asyncredis", *extra.pop("apps", [])],
        CACHES={"default": {"BACKEND": "django_asyncredis.RedisCache", "LOCATION": url}},
        SECRET_KEY="apm-probe",
        USE_TZ=True,
        **extra,
    )
    django.setup()


def calls() -> None:
    from django.core.cache import caches

    from django_asyncredis import get_redis_connection

    cache = caches["default"]
    cache.get("probe:sync")
    asyncio.run(cache.aget("probe:async"))
    get_redis_connection("default").ping()


def sentry(url: str) -> dict[str, Any]:
    """Sentry's Django integration with cache_spans=True, events kept in memory."""
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    configure(url)
    events: list[Any] = []

    class InMemory(sentry_sdk.transport.Transport):
        def capture_envelope(self, envelope: Any) -> None:
            events.append(envelope)

    sentry_sdk.init(
        dsn="https://public@sentry.invalid/1",
        integrations=[DjangoIntegration(cache_spans=True)],
        traces_sample_rate=1.0,
        default_integrations=False,
        transport=InMemory,
    )
    with sentry_sdk.start_transaction(name="probe"):
        calls()
    sentry_sdk.flush()
    spans = [
        {"op": span["op"], "description": span.get("description")}
        for envelope in events
        for item in envelope.items
        if item.type == "transaction"
        for span in item.payload.json["spans"]
    ]
    return {"spans": spans}


def sentry_otel(url: str) -> dict[str, Any]:
    """Sentry fed by OpenTelemetry (its SentrySpanProcessor): our spans, both APIs."""
    import sentry_sdk
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from sentry_sdk.integrations.opentelemetry import SentrySpanProcessor

    events: list[Any] = []

    class InMemory(sentry_sdk.transport.Transport):
        def capture_envelope(self, envelope: Any) -> None:
            events.append(envelope)

    sentry_sdk.init(
        dsn="https://public@sentry.invalid/1",
        traces_sample_rate=1.0,
        default_integrations=False,
        transport=InMemory,
        instrumenter="otel",
    )
    provider = TracerProvider()
    provider.add_span_processor(SentrySpanProcessor())
    trace.set_tracer_provider(provider)
    configure(url)
    with trace.get_tracer("probe").start_as_current_span("request"):
        calls()
    sentry_sdk.flush()
    spans = [
        {"op": span["op"], "description": span.get("description")}
        for envelope in events
        for item in envelope.items
        if item.type == "transaction"
        for span in item.payload.json["spans"]
    ]
    return {"spans": spans}


def debug_toolbar(url: str) -> dict[str, Any]:
    """django-debug-toolbar on one ASGI request to an async view that makes an
    ``aget`` and a ``get``: what its cache panel and ours recorded."""
    configure(
        url,
        apps=["django.contrib.staticfiles", "debug_toolbar"],
        DEBUG=True,
        INTERNAL_IPS=["127.0.0.1"],
        ROOT_URLCONF="tests.apm_toolbar_urls",
        STATIC_URL="/static/",
        MIDDLEWARE=["debug_toolbar.middleware.DebugToolbarMiddleware"],
        TEMPLATES=[
            {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
        ],
        DEBUG_TOOLBAR_PANELS=[
            "debug_toolbar.panels.cache.CachePanel",
            "django_asyncredis.toolbar.AsyncRedisPanel",
        ],
        DEBUG_TOOLBAR_CONFIG={"IS_RUNNING_TESTS": False},
    )
    from debug_toolbar.store import get_store
    from django.test import AsyncClient

    response = asyncio.run(AsyncClient().get("/probe"))
    assert response.status_code == 200, response.status_code
    store = get_store()
    (request_id,) = store.request_ids()
    theirs = store.panel(request_id, "CachePanel")
    ours = store.panel(request_id, "AsyncRedisPanel")
    return {
        "toolbar": {name: n for name, n in theirs["counts"].items() if n},
        "ours": [row[:7] for row in ours["rows"]],
    }


def otel_redis(url: str) -> dict[str, Any]:
    """opentelemetry-instrumentation-redis, spans to an in-memory exporter."""
    from opentelemetry import trace
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    configure(url)
    calls()
    spans = exporter.get_finished_spans()
    return {"spans": [[span.instrumentation_scope.name, span.name] for span in spans]}


def both_apis() -> None:
    """A sync get and set, an async aget and aset, a raw-client ping."""
    from django.core.cache import caches

    from django_asyncredis import get_redis_connection

    cache = caches["default"]
    cache.get("probe:sync")
    cache.set("probe:sync", 1)

    async def async_calls() -> None:
        await cache.aget("probe:async")
        await cache.aset("probe:async", 1)

    asyncio.run(async_calls())
    get_redis_connection("default").ping()


#: ddtrace kept quiet: no agent (traces are dropped by the probe's filter once
#: read), no telemetry, remote configuration or crash tracker.
DDTRACE_QUIET = {
    "DD_TRACE_AGENT_URL": "http://127.0.0.1:9",
    "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
    "DD_REMOTE_CONFIGURATION_ENABLED": "false",
    "DD_CRASHTRACKING_ENABLED": "false",
}


def ddtrace_spans(url: str, **env: str) -> dict[str, Any]:
    """``import ddtrace.auto`` (what ``ddtrace-run`` does: every integration patched,
    Django's and redis's among them) with ``env``; the spans of one trace around
    ``both_apis``, read by a TraceFilter: [name, resource, component, cache.api]."""
    import os

    os.environ.update({**DDTRACE_QUIET, **env})
    import ddtrace.auto  # noqa: F401
    from ddtrace.trace import TraceFilter, tracer

    finished: list[Any] = []

    class Keep(TraceFilter):
        def process_trace(self, trace: list[Any]) -> None:
            """Keep the spans; returning None drops the trace: nothing is sent."""
            finished.extend(trace)

    tracer.configure(trace_processors=[Keep()])
    configure(url)
    with tracer.trace("probe"):
        both_apis()
    tracer.flush()
    (root,) = (span for span in finished if span.name == "probe")
    return {
        "spans": [
            [span.name, span.resource, span.get_tag("component"), span.get_tag("cache.api")]
            for span in finished
            if span is not root
        ],
        "one_trace": all(span.trace_id == root.trace_id for span in finished),
    }


def ddtrace_default(url: str) -> dict[str, Any]:
    """ddtrace as installed: its Django integration's cache tracing is off by default."""
    return ddtrace_spans(url)


def ddtrace_caches(url: str) -> dict[str, Any]:
    """ddtrace with its Django cache tracing on (``DD_DJANGO_INSTRUMENT_CACHES``)."""
    return ddtrace_spans(url, DD_DJANGO_INSTRUMENT_CACHES="true")


def ddtrace_otel(url: str) -> dict[str, Any]:
    """ddtrace receiving OpenTelemetry API spans (``DD_TRACE_OTEL_ENABLED``): ours."""
    return ddtrace_spans(url, DD_DJANGO_INSTRUMENT_CACHES="true", DD_TRACE_OTEL_ENABLED="true")


if __name__ == "__main__":
    tool, location = sys.argv[1], sys.argv[2]
    probes = {
        "sentry": sentry,
        "sentry_otel": sentry_otel,
        "debug_toolbar": debug_toolbar,
        "otel_redis": otel_redis,
        "ddtrace_default": ddtrace_default,
        "ddtrace_caches": ddtrace_caches,
        "ddtrace_otel": ddtrace_otel,
    }
    print(json.dumps(probes[tool](location)))
