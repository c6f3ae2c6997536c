"""The near-cache's counters in ``cache.stats``: read from its stores when asked.

A ``NearStore`` counts its own hits, misses and invalidations (an integer added
under the lock it takes anyway), so the stats count nothing per call for it:
``NearCounters`` only knows which stores an alias uses and what they had counted
at the last ``cache.stats.reset()``, and subtracts that when read.
"""

from __future__ import annotations

import os
import threading

from django_asyncredis._near import NearStore

#: ``NearStore.stats()``'s fields that only grow, which ``reset()`` sets back to
#: zero, and those that are levels now, which it leaves.
NEAR_COUNTERS = ("hits", "misses", "invalidations", "write_drops", "flushes", "refused_stale")
NEAR_LEVELS = ("entries", "bytes", "ready")

Fields = dict[str, int | bool]


class NearCounters:
    """The near-cache stores of one cache alias (one per KEY_PREFIX; usually one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: list[NearStore] = []
        #: Each store's counters at the last reset, and the process that took them
        #: (a forked child's stores start again from zero).
        self._baseline: dict[NearStore, Fields] = {}
        self._baseline_pid = os.getpid()

    def watch(self, store: NearStore) -> None:
        """Report ``store`` (a backend of this alias uses it) from now on."""
        if store not in self._stores:
            with self._lock:
                if store not in self._stores:
                    self._stores = [*self._stores, store]

    def read(self) -> Fields | None:
        """The counters since the last ``reset()`` and the levels now, summed over
        the stores (``ready``: all of them); None when the alias has no near-cache."""
        stores = self._stores
        if not stores:
            return None
        snapshots = [(store, store.stats()) for store in stores]
        with self._lock:
            baseline = self._baseline if self._baseline_pid == os.getpid() else {}
        fields: Fields = dict.fromkeys(NEAR_COUNTERS, 0)
        fields.update(entries=0, bytes=0, ready=True)
        for store, now in snapshots:
            before = baseline.get(store, {})
            for field in NEAR_COUNTERS:
                fields[field] += now[field] - before.get(field, 0)
            fields["entries"] += now["entries"]
            fields["bytes"] += now["bytes"]
            fields["ready"] = bool(fields["ready"] and now["ready"])
        return fields

    def reset(self) -> None:
        """Count from zero: each store's counters now become the baseline."""
        with self._lock:
            self._baseline = {store: store.stats() for store in self._stores}
            self._baseline_pid = os.getpid()


def near_rows() -> list[tuple[str, Fields]]:
    """(alias, fields) for every cache with a near-cache, for the exporters."""
    from django_asyncredis._stats import all_stats

    rows = []
    for stats in all_stats():
        fields = stats.near.read()
        if fields is not None:
            rows.append((stats.alias, fields))
    return rows
