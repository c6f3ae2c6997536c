"""Stats of a cache: calls, hits, misses, errors by kind and latency, per operation.

Counted by the drivers themselves: ``AsyncCore`` and ``SyncAdapter`` carry a
``Meter`` that they tell when a call begins and ends, so each call of either
API is counted once, whatever topology runs it. The counters live in a
process-wide registry keyed by the cache alias, not on the backend: Django builds
a backend per async context under ASGI, and a counter on it would be thrown away
with every request.

Each thread counts in its own tables, without a lock (see ``CacheStats``); a
read sums them. Counts stay exact across threads and event loops; the cost of
counting is measured in docs/benchmarks.md.
"""

from __future__ import annotations

import threading
import time
import weakref
from bisect import bisect_left
from typing import Any, TypeVar

from django_asyncredis import _otel
from django_asyncredis._config import CacheConfig, alias_of
from django_asyncredis._core import AsyncCore
from django_asyncredis._near_stats import NearCounters
from django_asyncredis._operations import Operation
from django_asyncredis._pools import pool_gauges, servers_in_use
from django_asyncredis._sync import SyncAdapter

T = TypeVar("T")

#: Upper bounds of the latency buckets, in seconds (the last bucket is +Inf).
BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

FIRST_BOUND = BUCKETS[0]

#: Operations whose result says hit or miss: ``get`` (the default back means a
#: miss) and ``get_many`` (each requested key absent from the result is a miss).
_SINGLE_READS = frozenset({"get", "get_from_primary"})
_MANY_READS = frozenset({"get_many"})

#: The error kind counted when ignore-exceptions mode swallowed the failure (the
#: core hands back the fallback and keeps the exception to itself).
IGNORED = "ignored"

#: The clock of the latency histograms.
clock = time.perf_counter


class _Counters:
    """One operation on one API: how often, with what outcome, how fast."""

    __slots__ = ("buckets", "errors", "hits", "misses", "seconds")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.seconds = 0.0
        self.errors: dict[str, int] = {}
        self.buckets = [0] * (len(BUCKETS) + 1)

    @property
    def calls(self) -> int:
        """Every call lands in one latency bucket: their sum is the call count (one
        increment less per call)."""
        return sum(self.buckets)

    def add(self, other: _Counters, sign: int = 1) -> None:
        """Add (or, with ``sign=-1``, subtract) another's counts to these."""
        self.hits += sign * other.hits
        self.misses += sign * other.misses
        self.seconds += sign * other.seconds
        for kind, count in list(other.errors.items()):
            left = self.errors.get(kind, 0) + sign * count
            if left:
                self.errors[kind] = left
            else:
                self.errors.pop(kind, None)
        buckets = self.buckets
        for index, count in enumerate(list(other.buckets)):
            buckets[index] += sign * count

    def as_dict(self) -> dict[str, Any]:
        bounds = [*(str(bound) for bound in BUCKETS), "+Inf"]
        return {
            "calls": self.calls,
            "hits": self.hits,
            "misses": self.misses,
            "errors": dict(self.errors),
            "latency": {
                "count": self.calls,
                "sum_seconds": self.seconds,
                "buckets": dict(zip(bounds, self.buckets, strict=True)),
            },
        }


#: One thread's counters: api ("async", "sync") -> operation name -> counters.
_Tables = dict[str, dict[str, _Counters]]


class _Shard:
    """The handle a thread keeps (in a ``threading.local``) to its own counters;
    collected when the thread ends, which folds its counts into the retired ones."""

    __slots__ = ("__weakref__", "tables")

    def __init__(self, tables: _Tables) -> None:
        self.tables = tables


class CacheStats:
    """The stats of one cache alias: ``cache.stats.as_dict()``, ``cache.stats.reset()``.

    Shared by every backend instance of the alias, in every thread and loop.

    Each thread counts in its own tables, without a lock: only that thread writes
    them, and a call (no ``await`` inside ``record``) is never interleaved with
    another of the same thread, so no increment is lost. Readers sum the tables
    of every thread under the lock (which writers take only to add an operation
    they have not counted before). ``reset()`` does not touch the threads' tables:
    it records the sums at that instant as a baseline that reads subtract, so an
    increment made during a reset is counted exactly once, before or after it.
    """

    def __init__(self, alias: str, enabled: bool) -> None:
        self.alias = alias
        self.enabled = enabled
        #: The settings last seen for this alias: their servers' pools are reported.
        self.config: CacheConfig | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        #: The tables of every live thread that has counted something.
        self._live: list[_Tables] = []
        #: The counts of threads that have ended.
        self._retired: _Tables = {"async": {}, "sync": {}}
        #: Tables of threads just ended, folded into ``_retired`` by the next read.
        self._ended: list[_Tables] = []
        #: The sums at the last reset, subtracted from every read.
        self._baseline: _Tables = {"async": {}, "sync": {}}
        #: The near-cache's counters (NEAR_CACHE), read from its stores (``_near_stats``).
        self.near = NearCounters()

    def table(self, api: str) -> dict[str, _Counters]:
        """This thread's counters on ``api``, by operation (its shard's table)."""
        try:
            return self._local.shard.tables[api]  # type: ignore[no-any-return]
        except AttributeError:
            return self._new_shard()[api]

    def counters(self, api: str, name: str) -> _Counters:
        """This thread's counters of operation ``name`` on ``api`` ("async" or
        "sync"), made on first use (``Meter.end`` finds them without this call)."""
        table = self.table(api)
        counters = table.get(name)
        if counters is None:
            with self._lock:  # readers iterate the table under the lock
                counters = table[name] = _Counters()
        return counters

    def count_error(self, counters: _Counters, kind: str) -> None:
        """Count an error of ``kind`` on this thread's ``counters``."""
        errors = counters.errors
        with self._lock:  # rare; a reader copies this dict under the lock
            errors[kind] = errors.get(kind, 0) + 1

    def _new_shard(self) -> _Tables:
        tables: _Tables = {"async": {}, "sync": {}}
        shard = _Shard(tables)
        with self._lock:
            self._live.append(tables)
        weakref.finalize(shard, self._retire, tables)
        self._local.shard = shard
        return tables

    def _retire(self, tables: _Tables) -> None:
        """A thread ended (its ``threading.local`` let go of its shard). No lock
        here: a finalizer may run in any thread, one holding the lock included;
        ``list.append`` is atomic, and the next read folds the tables in."""
        self._ended.append(tables)

    def _fold_ended(self) -> None:
        """Move the counts of ended threads to ``_retired`` (with the lock held)."""
        while self._ended:
            tables = self._ended.pop()
            _merge(self._retired, tables)
            self._live = [live for live in self._live if live is not tables]

    def _sums(self) -> _Tables:
        """Every thread's counts since the last reset (call with the lock held)."""
        self._fold_ended()
        sums: _Tables = {"async": {}, "sync": {}}
        for tables in [*self._live, self._retired]:
            _merge(sums, tables)
        _merge(sums, self._baseline, sign=-1)
        return {
            api: {name: counters for name, counters in table.items() if counters.calls}
            for api, table in sums.items()
        }

    def as_dict(self) -> dict[str, Any]:
        """A snapshot: ``{"alias", "enabled", "totals", "operations": {api: {name: ...}}}``."""
        with self._lock:
            sums = self._sums()
        operations = {
            api: {name: table[name].as_dict() for name in sorted(table)}
            for api, table in sums.items()
        }
        totals = {"calls": 0, "hits": 0, "misses": 0, "errors": 0}
        for table in sums.values():
            for counters in table.values():
                totals["calls"] += counters.calls
                totals["hits"] += counters.hits
                totals["misses"] += counters.misses
                totals["errors"] += sum(counters.errors.values())
        reads = totals["hits"] + totals["misses"]
        return {
            "alias": self.alias,
            "enabled": self.enabled,
            "totals": {**totals, "hit_ratio": totals["hits"] / reads if reads else None},
            "operations": operations,
            "pools": self.pools(),
            "near_cache": self.near.read(),
        }

    def pools(self) -> list[dict[str, Any]]:
        """The gauges of this cache's connection pools (``_pools.pool_gauges``: one
        per event loop and the sync pool, counted where connections open and close
        and where callers wait, not per command), by server."""
        config = self.config
        if config is None:
            return []
        servers = sorted(servers_in_use(config), key=str)
        return [vars(gauges) for server in servers for gauges in pool_gauges(server)]

    def rows(self) -> list[tuple[str, str, _Counters]]:
        """(api, operation, a copy of its counters): for exporters (OTel, Prometheus)."""
        with self._lock:
            sums = self._sums()
        return [
            (api, name, counters) for api, table in sums.items() for name, counters in table.items()
        ]

    def reset(self) -> None:
        """Start counting from zero (for every backend instance of this alias)."""
        with self._lock:
            self._fold_ended()
            baseline: _Tables = {"async": {}, "sync": {}}
            for tables in [*self._live, self._retired]:
                _merge(baseline, tables)
            self._baseline = baseline
        self.near.reset()


def _merge(into: _Tables, tables: _Tables, sign: int = 1) -> None:
    """Add (or subtract) ``tables``' counts into ``into``, operation by operation."""
    for api, table in tables.items():
        target = into.setdefault(api, {})
        for name, counters in list(table.items()):
            mine = target.get(name)
            if mine is None:
                mine = target[name] = _Counters()
            mine.add(counters, sign)


_registry: dict[str, CacheStats] = {}
_registry_lock = threading.Lock()
#: config identity -> (config, its stats): a backend is built per request under
#: ASGI, and finding the alias walks CACHES, so the answer is remembered.
_by_config: dict[int, tuple[CacheConfig, CacheStats]] = {}


def stats_of(config: CacheConfig) -> CacheStats:
    """The stats registered for the alias whose settings made ``config``."""
    known = _by_config.get(id(config))
    if known is not None and known[0] is config:
        return known[1]
    alias = alias_of(config)
    with _registry_lock:
        stats = _registry.get(alias)
        if stats is None:
            stats = _registry[alias] = CacheStats(alias, config.stats)
        stats.enabled = config.stats
        stats.config = config
        if len(_by_config) >= 256:
            _by_config.clear()
        _by_config[id(config)] = (config, stats)
    return stats


def all_stats() -> list[CacheStats]:
    """Every cache's stats registered in this process, by alias."""
    with _registry_lock:
        return [_registry[alias] for alias in sorted(_registry)]


def _requested(operation: Any) -> int | None:
    """How many keys a ``get_many`` asks for, read before the generator starts (and
    drops its arguments from its frame)."""
    frame = operation.gi_frame
    return len(frame.f_locals["keys"]) if frame is not None else None


class Meter:
    """Counts (and traces) the calls of one cache configuration's drivers.

    The drivers call it themselves, ``begin`` before an operation's first step
    and ``end`` or ``failed`` once it is over, rather than being wrapped: a
    wrapper cost a coroutine frame per async call, most of the stats' cost.
    Absent (None on the driver) when both STATS and OpenTelemetry are off.
    """

    __slots__ = ("_mine", "api", "stats", "tracing")

    def __init__(self, stats: CacheStats, tracing: _otel.Tracing | None, api: str) -> None:
        self.stats = stats
        self.tracing = tracing
        #: "async" or "sync": the API whose driver carries this meter.
        self.api = api
        #: ``table``: the calling thread's counters of this API, by operation (its
        #: shard's, in ``stats``: set on the thread's first call).
        self._mine = threading.local()

    def begin(self, operation: Operation[Any]) -> Started:
        """Start measuring a call of ``operation``."""
        name: str = operation.__name__  # type: ignore[attr-defined]  # a generator
        wanted = _requested(operation) if name in _MANY_READS else 0
        tracing = self.tracing
        if tracing is not None:
            return (clock(), name, wanted, tracing.start(name, self.api))
        return (clock(), name, wanted, None)

    def start(self, name: str, start: float) -> Started:
        """Start measuring a call of single-key operation ``name`` begun at ``start``
        (``clock()``) and answered without a driver: a near-cache hit."""
        tracing = self.tracing
        if tracing is not None:
            return (start, name, 0, tracing.start(name, self.api))
        return (start, name, 0, None)

    def end(self, started: Started, result: Any, fallback: Any, error: str | None = None) -> None:
        """The call returned ``result`` (``fallback`` is what a read returns on a miss).

        Counts in place, without a call on the way when this thread has counted
        the operation before: this runs once per cache call, and its cost is the
        stats' cost (docs/benchmarks.md).
        """
        start, name, wanted, span = started
        seconds = clock() - start
        try:
            counters = self._mine.table[name]
        except (AttributeError, KeyError):
            counters = self.stats.counters(self.api, name)
            self._mine.table = self.stats.table(self.api)
        counters.seconds += seconds
        # Most calls take under the first bound (a local round trip, a near hit).
        counters.buckets[0 if seconds <= FIRST_BOUND else bisect_left(BUCKETS, seconds)] += 1
        hits = misses = 0
        if error is not None:
            self.stats.count_error(counters, error)
        elif name in _SINGLE_READS:
            if result is fallback:
                misses = 1
                counters.misses += 1
            else:
                hits = 1
                counters.hits += 1
        elif name in _MANY_READS:
            hits = len(result)
            misses = (wanted or hits) - hits
            counters.hits += hits
            counters.misses += misses
        if span is not None:
            span.end(seconds, hits, misses, error)

    def ignored(self, started: Started) -> None:
        """Ignore-exceptions mode swallowed the call's failure (and gave its fallback)."""
        self.end(started, None, None, IGNORED)

    def failed(self, started: Started, exc: BaseException) -> None:
        """The call raised ``exc`` (a caller that stopped iterating early is no error)."""
        kind = None if isinstance(exc, GeneratorExit) else type(exc).__name__
        self.end(started, None, None, kind)


#: What ``Meter.begin`` hands the driver: start time, operation name, keys wanted
#: (``get_many``), span.
Started = tuple[float, str, int | None, Any]

#: config identity -> (config, tracing, its drivers): Django builds a backend per
#: request under ASGI; the drivers hold nothing of a request, so they are shared.
_drivers: dict[int, tuple[CacheConfig, Any, tuple[SyncAdapter, AsyncCore, CacheStats]]] = {}


def drivers(config: CacheConfig) -> tuple[SyncAdapter, AsyncCore, CacheStats]:
    """The sync adapter and async core a backend uses: measured unless both STATS and
    OpenTelemetry are off, in which case they carry no meter, at no cost at all."""
    stats = stats_of(config)
    tracing = _otel.tracing_for(config, stats)
    known = _drivers.get(id(config))
    if known is not None and known[0] is config and known[1] is tracing:
        return known[2]
    meter_needed = config.stats or tracing is not None
    if not config.stats:
        stats = CacheStats(stats.alias, enabled=False)  # counted nowhere anyone reads
    sync_meter = Meter(stats, tracing, "sync") if meter_needed else None
    async_meter = Meter(stats, tracing, "async") if meter_needed else None
    made = (SyncAdapter(config, sync_meter), AsyncCore(config, async_meter), stats_of(config))
    if len(_drivers) >= 256:
        _drivers.clear()
    _drivers[id(config)] = (config, tracing, made)
    return made


#: The pool fields that are levels now (gauges) and those that only grow (counters).
POOL_LEVELS = ("in_use", "idle", "waiters", "shared")
POOL_COUNTERS = ("waited_total", "wait_seconds_total", "opened_total", "closed_total")


def pool_rows() -> list[tuple[str, str, str, dict[str, float]]]:
    """(alias, api, server, fields) for every cache's pools, for the exporters: the
    async pools of all event loops summed, so each label set appears once."""
    rows = []
    for stats in all_stats():
        summed: dict[tuple[str, str], dict[str, float]] = {}
        for pool in stats.pools():
            fields = summed.setdefault(
                (pool["api"], pool["server"]), dict.fromkeys(POOL_LEVELS + POOL_COUNTERS, 0)
            )
            for field in fields:
                fields[field] += pool[field]
        rows += [
            (stats.alias, api, server, fields) for (api, server), fields in sorted(summed.items())
        ]
    return rows
