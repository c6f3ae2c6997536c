"""OpenTelemetry: a span per cache call, and the stats as metrics.

Optional (``pip install django-asyncredis[otel]``): the API is imported once,
here; without it ``tracing_for`` is None and the cache pays nothing. With it, a
call opens a CLIENT span carrying the database semantic conventions
(``db.system.name`` "redis", ``server.address``, ``server.port``,
``db.namespace`` the db number, ``db.operation.name``) and ``cache.hit``, and
records ``db.client.operation.duration``. The counters of ``_stats`` are
exported as observable counters read at collection time, so they cost nothing
per call.

Without an SDK (``opentelemetry-api`` alone, no tracer provider set) the spans
would all be no-ops that still cost about 2 µs a call, so none are started until
a provider is set.

Spans are started, not made current: a cache call has no child spans, and not
touching the context keeps the async path free of context switches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # the extra is not installed: no tracing, at no cost
    trace = None  # type: ignore[assignment]
    metrics = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from django_asyncredis._config import CacheConfig
    from django_asyncredis._stats import CacheStats

INSTRUMENTATION = "django_asyncredis"

AVAILABLE = trace is not None


class _Call:
    """One traced call: its span, ended with the outcome."""

    __slots__ = ("_attributes", "_span", "_tracing")

    def __init__(self, tracing: Tracing, span: Any, attributes: dict[str, Any]) -> None:
        self._tracing = tracing
        self._span = span
        self._attributes = attributes

    def end(self, seconds: float, hits: int, misses: int, error: str | None) -> None:
        span = self._span
        if span.is_recording():
            if hits or misses:
                span.set_attribute("cache.hit", hits > 0 and misses == 0)
                if hits + misses > 1:
                    span.set_attribute("cache.hits", hits)
                    span.set_attribute("cache.misses", misses)
            if error is not None:
                span.set_attribute("error.type", error)
                span.set_status(Status(StatusCode.ERROR))
        span.end()
        attributes = self._attributes
        if error is not None:
            attributes = {**attributes, "error.type": error}
        self._tracing.duration.record(seconds, attributes)


class Tracing:
    """Spans and the duration histogram of one cache configuration."""

    __slots__ = ("attributes", "duration", "tracer")

    def __init__(self, config: CacheConfig, alias: str) -> None:
        leader = config.servers[0] if config.mode != "sentinel" else config.template
        assert leader is not None
        self.attributes: dict[str, Any] = {
            "db.system.name": "redis",
            "server.address": leader.path if leader.scheme == "unix" else leader.host,
            "db.namespace": str(dict(leader.connection).get("db", 0)),
            "cache.alias": alias,
        }
        if leader.scheme != "unix":
            self.attributes["server.port"] = leader.port
        self.tracer = trace.get_tracer(INSTRUMENTATION)
        self.duration = _instruments()["duration"]

    def start(self, operation: str, api: str) -> _Call:
        attributes = {**self.attributes, "db.operation.name": operation, "cache.api": api}
        span = self.tracer.start_span(operation, kind=SpanKind.CLIENT, attributes=attributes)
        return _Call(self, span, attributes)


_tracings: dict[int, tuple[Any, Tracing]] = {}
_meter_instruments: dict[str, Any] = {}
_instruments_lock = threading.Lock()


def tracing_for(config: CacheConfig, stats: CacheStats) -> Tracing | None:
    """The tracing of ``config``, or None when OpenTelemetry is absent, switched off,
    or has no SDK configured yet (asked again for each backend Django builds: per
    request under ASGI, per thread under WSGI)."""
    if not AVAILABLE or not config.opentelemetry:
        return None
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return None  # the API alone: every span would be a no-op, at a cost per call
    known = _tracings.get(id(config))
    if known is not None and known[0] is config:
        return known[1]
    tracing = Tracing(config, stats.alias)
    if len(_tracings) >= 256:
        _tracings.clear()
    _tracings[id(config)] = (config, tracing)
    return tracing


def _instruments() -> dict[str, Any]:
    """The meter's instruments, created once per process: the per-call duration
    histogram, and observable counters that read the stats registry."""
    with _instruments_lock:
        if not _meter_instruments:
            _create_instruments()
    return _meter_instruments


def _create_instruments() -> None:
    """The duration histogram, and observable counters that read the stats registry."""
    meter = metrics.get_meter(INSTRUMENTATION)
    _meter_instruments["duration"] = meter.create_histogram(
        "db.client.operation.duration",
        unit="s",
        description="Duration of django-asyncredis cache calls.",
    )
    for field, description in (
        ("calls", "Cache calls."),
        ("hits", "Cache reads that found their key."),
        ("misses", "Cache reads that did not find their key."),
        ("errors", "Cache calls that failed (or were ignored), by error.type."),
    ):
        _meter_instruments[field] = meter.create_observable_counter(
            f"django_asyncredis.cache.{field}",
            callbacks=[_observer(field)],
            description=description,
        )
    _create_pool_instruments(meter)
    _create_near_instruments(meter)


def _create_near_instruments(meter: Any) -> None:
    """The near-caches' counters and levels, by alias."""
    from django_asyncredis._near_stats import NEAR_COUNTERS, NEAR_LEVELS

    _create_observables(
        meter,
        "near_cache",
        NEAR_LEVELS,
        NEAR_COUNTERS,
        _near_observer,
        {field: "By" if field == "bytes" else "1" for field in NEAR_LEVELS},
    )


def _create_observables(
    meter: Any,
    family: str,
    levels: Iterable[str],
    totals: Iterable[str],
    observer: Callable[[str], Any],
    units: dict[str, str],
) -> None:
    """Observable gauges for a family's ``levels`` and observable counters for its
    ``totals`` (``django_asyncredis.<family>.<field>``), each read by ``observer``."""
    for create, fields in (
        (meter.create_observable_gauge, levels),
        (meter.create_observable_counter, totals),
    ):
        for field in fields:
            _meter_instruments[f"{family}.{field}"] = create(
                f"django_asyncredis.{family}.{field}",
                callbacks=[observer(field)],
                unit=units.get(field, ""),
            )


def _near_observer(field: str) -> Any:
    """A callback reporting ``field`` of every cache's near-cache, per alias."""
    from django_asyncredis._near_stats import near_rows

    def observe(options: Any) -> Iterable[Any]:
        return [
            metrics.Observation(int(fields[field]), {"cache.alias": alias})
            for alias, fields in near_rows()
        ]

    return observe


def _create_pool_instruments(meter: Any) -> None:
    """The pools' gauges: levels as gauges, totals as counters."""
    from django_asyncredis._stats import POOL_COUNTERS, POOL_LEVELS

    _create_observables(
        meter,
        "pool",
        POOL_LEVELS,
        POOL_COUNTERS,
        _pool_observer,
        {field: "s" if field == "wait_seconds_total" else "1" for field in POOL_COUNTERS},
    )


def _pool_observer(field: str) -> Any:
    """A callback reporting ``field`` of every cache's pools, per alias, api, server."""
    from django_asyncredis._stats import pool_rows

    def observe(options: Any) -> Iterable[Any]:
        return [
            metrics.Observation(
                fields[field], {"cache.alias": alias, "cache.api": api, "server.address": server}
            )
            for alias, api, server, fields in pool_rows()
        ]

    return observe


def _observer(field: str) -> Any:
    """A callback reporting ``field`` of every cache's stats, per alias, api, operation."""
    from django_asyncredis._stats import all_stats

    def observe(options: Any) -> Iterable[Any]:
        observations = []
        for stats in all_stats():
            for api, name, counters in stats.rows():
                base = {"cache.alias": stats.alias, "cache.api": api, "db.operation.name": name}
                if field == "errors":
                    for kind, count in counters.errors.items():
                        observations.append(
                            metrics.Observation(count, {**base, "error.type": kind})
                        )
                else:
                    observations.append(metrics.Observation(getattr(counters, field), base))
        return observations

    return observe
