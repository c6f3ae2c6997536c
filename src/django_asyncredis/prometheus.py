"""The stats in Prometheus's text format, for a ``/metrics`` view: no extra needed.

``prometheus_text()`` renders every cache's counters of this process (see
``_stats``) as Prometheus text exposition format 0.0.4: serve it with
``HttpResponse(prometheus_text(), content_type=CONTENT_TYPE)``. Counters restart
from zero after ``cache.stats.reset()``, which Prometheus reads as a restart.
(Projects that already run ``prometheus_client`` can expose the same numbers
from a custom collector reading ``cache.stats.as_dict()``.)
"""

from __future__ import annotations

from django_asyncredis._near_stats import NEAR_COUNTERS, NEAR_LEVELS, near_rows
from django_asyncredis._stats import BUCKETS, POOL_COUNTERS, POOL_LEVELS, all_stats, pool_rows

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_HELP = {
    "calls": "Cache calls.",
    "hits": "Cache reads that found their key.",
    "misses": "Cache reads that did not find their key.",
}

_POOL_HELP = {
    "in_use": "Connections lent out now (the multiplexed shared one included).",
    "idle": "Connections open and free now.",
    "waiters": "Callers waiting now for a connection.",
    "shared": "Multiplexed shared connections open now.",
    "waited_total": "Calls that had to wait for a connection.",
    "wait_seconds_total": "Time spent waiting for a connection.",
    "opened_total": "Connections opened.",
    "closed_total": "Connections closed.",
}


_NEAR_HELP = {
    "hits": "Near-cache reads served from process memory.",
    "misses": "Near-cache reads that went to the server.",
    "invalidations": "Keys dropped by the server's invalidation messages.",
    "write_drops": "Drops by this process's writes (one per string argument of a write).",
    "flushes": "Whole near-cache flushes (listener reconnect, FLUSHDB, lost tracking).",
    "refused_stale": "Replies not stored because their key was invalidated in flight.",
    "entries": "Entries held now.",
    "bytes": "Bytes held now (keys, values and per-entry overhead).",
    "ready": "1 while invalidations are being received and hits served, else 0.",
}


def _labels(**labels: str) -> str:
    escaped = (
        f'{name}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for name, value in labels.items()
    )
    return "{" + ",".join(escaped) + "}"


def prometheus_text() -> str:
    """Every cache's stats in this process, as Prometheus text."""
    rows = [(stats.alias, *row) for stats in all_stats() for row in stats.rows()]
    lines: list[str] = []
    for field, description in _HELP.items():
        name = f"django_asyncredis_{field}_total"
        lines += [f"# HELP {name} {description}", f"# TYPE {name} counter"]
        for alias, api, operation, counters in rows:
            labels = _labels(alias=alias, api=api, operation=operation)
            lines.append(f"{name}{labels} {getattr(counters, field)}")
    name = "django_asyncredis_errors_total"
    lines += [f"# HELP {name} Cache calls that failed (or were ignored).", f"# TYPE {name} counter"]
    for alias, api, operation, counters in rows:
        for kind, count in sorted(counters.errors.items()):
            labels = _labels(alias=alias, api=api, operation=operation, kind=kind)
            lines.append(f"{name}{labels} {count}")
    name = "django_asyncredis_duration_seconds"
    lines += [f"# HELP {name} Duration of cache calls.", f"# TYPE {name} histogram"]
    for alias, api, operation, counters in rows:
        cumulative = 0
        bounds = [*(repr(bound) for bound in BUCKETS), "+Inf"]
        for bound, count in zip(bounds, counters.buckets, strict=True):
            cumulative += count
            labels = _labels(alias=alias, api=api, operation=operation, le=bound)
            lines.append(f"{name}_bucket{labels} {cumulative}")
        labels = _labels(alias=alias, api=api, operation=operation)
        lines.append(f"{name}_sum{labels} {counters.seconds!r}")
        lines.append(f"{name}_count{labels} {counters.calls}")
    lines += _pool_lines()
    lines += _near_lines()
    return "\n".join(lines) + "\n"


def _pool_lines() -> list[str]:
    """The connection pools' gauges and counters (async pools of all loops summed)."""
    rows = pool_rows()
    lines: list[str] = []
    for field in (*POOL_LEVELS, *POOL_COUNTERS):
        kind = "gauge" if field in POOL_LEVELS else "counter"
        name = f"django_asyncredis_pool_{field}"
        lines += [f"# HELP {name} {_POOL_HELP[field]}", f"# TYPE {name} {kind}"]
        for alias, api, server, fields in rows:
            labels = _labels(alias=alias, api=api, server=server)
            lines.append(f"{name}{labels} {fields[field]!r}")
    return lines


def _near_lines() -> list[str]:
    """The near-caches' counters (since ``cache.stats.reset()``) and levels, by alias."""
    rows = near_rows()
    lines: list[str] = []
    for field in (*NEAR_COUNTERS, *NEAR_LEVELS):
        counter = field in NEAR_COUNTERS
        name = f"django_asyncredis_near_cache_{field}" + ("_total" if counter else "")
        kind = "counter" if counter else "gauge"
        lines += [f"# HELP {name} {_NEAR_HELP[field]}", f"# TYPE {name} {kind}"]
        for alias, fields in rows:
            lines.append(f"{name}{_labels(alias=alias)} {int(fields[field])}")
    return lines
