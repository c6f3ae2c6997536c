"""OpenTelemetry: a span per cache call with the Redis semantic conventions, and metrics.

Checked with the SDK's in-memory exporters. The tracer and meter providers are
process-wide and can be set once, so one session fixture sets them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from django_asyncredis import ConnectionInterrupted, RedisCache
from tests.conftest import AsyncAPI
from tests.servers import ServerProcess


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        self.gate = Gate(SimpleSpanProcessor(self.spans))


class Gate(SpanProcessor):
    """Passes finished spans on only while a test of this module runs: the provider
    stays installed for the session, and later tests must not fill the exporter."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.open = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.open:
            self.inner.on_end(span)


_telemetry: Telemetry | None = None


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """The SDK installed once for the session; spans cleared for each test."""
    global _telemetry
    if _telemetry is None:
        _telemetry = Telemetry()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(_telemetry.gate)
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[_telemetry.metrics]))
    _telemetry.spans.clear()
    _telemetry.gate.open = True
    yield _telemetry
    _telemetry.gate.open = False
    _telemetry.spans.clear()


def call(api: str, cache: RedisCache, method: str, *args: Any) -> Any:
    if api == "sync":
        return getattr(cache, method)(*args)
    return asyncio.run(getattr(cache, "a" + method)(*args))


APIS = pytest.mark.parametrize("api", ["sync", "async"])


@APIS
def test_a_get_is_one_client_span_with_the_redis_conventions(
    api: str, telemetry: Telemetry, redis_server: ServerProcess
) -> None:
    """The span names the system, the server, the db and the operation, and says hit."""
    cache = RedisCache(redis_server.url, {})
    cache.set("present", 1)
    telemetry.spans.clear()
    call(api, cache, "get", "present")
    (span,) = telemetry.spans.get_finished_spans()
    assert span.name == "get"
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    assert attributes == {
        "db.system.name": "redis",
        "server.address": "127.0.0.1",
        "server.port": redis_server.port,
        "db.namespace": "0",
        "db.operation.name": "get",
        "cache.alias": str(cache._config.servers[0]),
        "cache.api": api,
        "cache.hit": True,
    }


@APIS
def test_a_miss_says_so(api: str, telemetry: Telemetry, redis_server: ServerProcess) -> None:
    """A get that finds nothing carries cache.hit False."""
    cache = RedisCache(redis_server.url, {})
    call(api, cache, "get", "absent")
    (span,) = telemetry.spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["cache.hit"] is False


@APIS
def test_a_near_cache_hit_is_a_span_too(
    api: str, telemetry: Telemetry, redis_server: ServerProcess
) -> None:
    """A near-cache hit is answered without a driver, and still traced: one span per
    get, the miss that fetched the value and the hit that found it held."""
    options = {"NEAR_CACHE": True}
    cache = RedisCache(redis_server.url, {"KEY_PREFIX": "otel-near", "OPTIONS": options})
    store = cache._near
    assert store is not None
    assert store.wait_ready(5)
    try:
        before = store.invalidations
        cache.set("k", 1, None)
        while store.invalidations == before:  # the write's echo, before the reads
            time.sleep(0.002)
        telemetry.spans.clear()
        hits = store.hits
        assert call(api, cache, "get", "k") == 1
        assert call(api, cache, "get", "k") == 1
        assert store.hits == hits + 1
        spans = telemetry.spans.get_finished_spans()
        assert [(span.name, dict(span.attributes or {})["cache.hit"]) for span in spans] == [
            ("get", True),
            ("get", True),
        ]
        assert {dict(span.attributes or {})["cache.api"] for span in spans} == {api}
    finally:
        store.stop()


@APIS
def test_a_failed_call_is_an_error_span(api: str, telemetry: Telemetry) -> None:
    """A call that raises ends its span with status ERROR and the error's type."""
    server = ServerProcess().start()
    cache = RedisCache(server.url, {"OPTIONS": {"socket_connect_timeout": 0.2}})
    server.stop()
    with pytest.raises(ConnectionInterrupted):
        call(api, cache, "set", "key", 1)
    (span,) = telemetry.spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "ConnectionInterrupted"


@APIS
def test_the_option_turns_spans_off(
    api: str, telemetry: Telemetry, redis_server: ServerProcess
) -> None:
    """OPENTELEMETRY False: no span, the stats still counted."""
    cache = RedisCache(redis_server.url, {"OPTIONS": {"OPENTELEMETRY": False}})
    cache.stats.reset()
    call(api, cache, "get", "absent")
    assert telemetry.spans.get_finished_spans() == ()
    assert cache.stats.as_dict()["totals"]["misses"] == 1


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


@APIS
def test_the_stats_are_exported_as_metrics(
    api: str, telemetry: Telemetry, redis_server: ServerProcess
) -> None:
    """The hit and miss counters and the duration histogram match the calls made."""
    cache = RedisCache(redis_server.url, {"OPTIONS": {"OPENTELEMETRY": True}})
    cache.stats.reset()
    cache.set("present", 1)

    def value(name: str) -> int:
        return sum(p.value for p in mine(name))

    def mine(name: str) -> list[Any]:
        return [
            p
            for p in points(telemetry.metrics, name)
            if p.attributes.get("cache.api") == api
            and p.attributes.get("db.operation.name") == "get"
            and p.attributes.get("cache.alias") == cache.stats.alias
        ]

    before = sum(p.count for p in mine("db.client.operation.duration"))
    for key in ("present", "present", "absent"):
        call(api, cache, "get", key)
    assert (value("django_asyncredis.cache.hits"), value("django_asyncredis.cache.misses")) == (
        2,
        1,
    )
    after = sum(p.count for p in mine("db.client.operation.duration"))
    assert after - before == 3


@APIS
def test_the_pool_gauges_are_exported_as_metrics(api: str, telemetry: Telemetry) -> None:
    """After one call on a server of its own, the pool reports 1 connection opened
    and 1 idle, labelled with the alias, the API and the server."""
    server = ServerProcess().start()
    try:
        options = {"OPENTELEMETRY": True, "transport": "pooled"}
        cache = RedisCache(server.url, {"OPTIONS": options})

        def value(name: str) -> list[Any]:
            return [
                p.value
                for p in points(telemetry.metrics, name)
                if p.attributes.get("cache.api") == api
                and p.attributes.get("server.address") == str(cache._config.servers[0])
                and p.attributes.get("cache.alias") == cache.stats.alias
            ]

        async def in_a_loop() -> tuple[list[Any], list[Any]]:
            await cache.aget("key")  # read while the loop (and its pool) lives
            return value("django_asyncredis.pool.opened_total"), value(
                "django_asyncredis.pool.idle"
            )

        if api == "sync":
            cache.get("key")
            opened, idle = (
                value("django_asyncredis.pool.opened_total"),
                value("django_asyncredis.pool.idle"),
            )
        else:
            opened, idle = asyncio.run(in_a_loop())
        assert (opened, idle) == ([1], [1])
    finally:
        server.stop()


@APIS
def test_the_near_cache_is_exported_as_metrics(
    api: str, telemetry: Telemetry, redis_server: ServerProcess
) -> None:
    """The near-cache's hits and misses are counters, its entries a gauge, by alias."""
    from tests.test_stats import near_alias, write_and_wait_for_the_echo

    with near_alias(redis_server.url) as cache:
        if api == "sync":
            write_and_wait_for_the_echo(cache, cache, "k", "v")
        else:
            with asyncio.Runner() as runner:
                write_and_wait_for_the_echo(AsyncAPI(cache, runner), cache, "k", "v")
        cache.stats.reset()
        call(api, cache, "get", "k")
        call(api, cache, "get", "k")

        def value(name: str) -> list[Any]:
            return [
                p.value
                for p in points(telemetry.metrics, f"django_asyncredis.near_cache.{name}")
                if p.attributes == {"cache.alias": cache.stats.alias}
            ]

        assert (value("hits"), value("misses"), value("entries"), value("ready")) == (
            [1],
            [1],
            [1],
            [1],
        )
