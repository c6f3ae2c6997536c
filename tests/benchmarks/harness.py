"""Timing loops and statistics.

Each measurement is bounded twice: by time (``duration`` seconds, so the run
length does not depend on how fast a contender is) and by count (``max_ops``,
a safety net). Throughput and latency are computed from the operations that
actually completed and the time they actually took, measured with
``time.perf_counter``.

Every measurement alternates the contenders of one scenario in ``slices``
short slices (see ``measure_sync``), after an untimed warm-up of each at full
concurrency, then one ``gc.collect()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from asgiref.sync import ThreadSensitiveContext, sync_to_async

from tests.benchmarks.contenders import (
    VIEW_CALLS,
    AsgiView,
    AsyncCall,
    AsyncFactory,
    SyncCall,
    SyncFactory,
    check,
)

#: Sync calls between two looks at the clock: keeps the clock out of the loop's cost.
SYNC_BATCH = 50

T = TypeVar("T")


def serpentine(order: Sequence[T], number: int) -> list[T]:
    """The order of slice ``number``: forwards, then backwards, and so on.

    Cycling through the same order would give each contender the same
    predecessor in every slice of every round (rotating the order between
    rounds does not change who follows whom), and the end-to-end run showed
    that this matters: the view measured right after the no-cache view came
    out about 4% slower, whichever it was. Going back and forth, every
    contender follows both of its neighbours.
    """
    return list(order) if number % 2 == 0 else list(reversed(order))


@dataclass(frozen=True)
class Timing:
    duration: float  # seconds timed per measurement
    warmup: float  # seconds of the same workload, untimed, just before
    max_ops: int  # per measurement, whatever the concurrency
    slices: int = 1  # contenders of a scenario alternate in this many slices per round


@dataclass
class Sample:
    ops: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # one-thread sync only: time.thread_time of the caller
    latencies: list[float] = field(default_factory=list)  # seconds per call, when recorded
    #: Async only: server connections the contender opened for this scenario
    #: (connected clients after its warm-up at full concurrency, minus before).
    connections: int = 0

    def add(self, other: Sample) -> None:
        self.ops += other.ops
        self.seconds += other.seconds
        self.cpu_seconds += other.cpu_seconds
        self.latencies.extend(other.latencies)

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def microseconds_per_op(self) -> float:
        return self.seconds / self.ops * 1e6

    @property
    def cpu_microseconds_per_op(self) -> float:
        return self.cpu_seconds / self.ops * 1e6

    def percentile_us(self, fraction: float) -> float:
        """The latency below which ``fraction`` of the calls completed, in µs."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1e6


# Async: one event loop per scenario and round, shared by its contenders.


def _connected_clients(url: str) -> int:
    """The server's connected clients, outside the timed slices (a blocking call:
    the harness's own, between phases), not counting the one asking."""
    import redis

    with redis.Redis.from_url(url) as admin:
        return int(admin.info("clients")["connected_clients"]) - 1


async def _worker(
    call: AsyncCall, start: int, budget: int, deadline: float, latencies: list[float]
) -> int:
    """Calls until the deadline. The call in flight at the deadline is finished
    (never cancelled: that would break a connection) and counted, and the phase
    lasts until the last one ends: with calls that take a good part of a slice
    (aset_many at 16 tasks), not counting them would under-count badly, while
    counting them over the time they took is exact for one task and, for many,
    only lets the last calls of the phase run with fewer beside them."""
    done = 0
    clock = time.perf_counter
    record = latencies.append
    n = start
    ended = clock()
    while done < budget and ended < deadline:
        began = ended
        await call(n)
        ended = clock()
        record(ended - began)
        n += 1
        done += 1
    return done


async def _phase(call: AsyncCall, tasks: int, seconds: float, max_ops: int) -> Sample:
    """``tasks`` concurrent callers for ``seconds``: the calls made over the time
    they took (``seconds`` and the last calls' tail)."""
    budget = max(1, max_ops // tasks)
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    done = await asyncio.gather(
        # Tasks start far apart in the key space (each contender takes n % keys).
        *(_worker(call, n * 7919, budget, deadline, latencies) for n in range(tasks))
    )
    return Sample(sum(done), time.perf_counter() - start, latencies=latencies)


async def _measure_async(
    factories: Mapping[str, AsyncFactory],
    order: Sequence[str],
    url: str,
    op: str,
    size: int,
    tasks: int,
    timing: Timing,
) -> dict[str, Sample]:
    async with contextlib.AsyncExitStack() as stack:
        calls: dict[str, AsyncCall] = {}
        opened: dict[str, int] = {}
        for name in order:
            before = _connected_clients(url)
            contender = await stack.enter_async_context(factories[name](url))
            call = contender.call(op, size)
            check(op, size, await call(0))
            # The warm-up runs at full concurrency, so every connection the
            # timed slices need is already open.
            await _phase(call, tasks, timing.warmup, timing.max_ops)
            calls[name] = call
            opened[name] = _connected_clients(url) - before
        gc.collect()
        samples = {name: Sample(connections=opened[name]) for name in order}
        for number in range(timing.slices):
            for name in serpentine(order, number):
                samples[name].add(
                    await _phase(
                        calls[name], tasks, timing.duration / timing.slices, timing.max_ops
                    )
                )
        return samples


def measure_async(
    factories: Mapping[str, AsyncFactory],
    order: Sequence[str],
    url: str,
    op: str,
    size: int,
    tasks: int,
    timing: Timing,
) -> dict[str, Sample]:
    """Every contender of one async scenario, on one fresh event loop
    (``asyncio.run``), alternating in ``timing.slices`` slices.

    One loop for all contenders of a scenario, so the ratio compares clients,
    not loops; a fresh loop per scenario and round, so no state (connections,
    tasks, the built-in's executor queue) builds up across the run. The
    loop's start and the connections' setup fall in the untimed warm-up.
    """
    return asyncio.run(_measure_async(factories, order, url, op, size, tasks, timing))


# Sync, one thread: the caller's.


def _sync_phase(call: SyncCall, seconds: float, max_ops: int) -> Sample:
    """Wall time and the thread's CPU time: the wall time of a round trip varies
    with the scheduler, the CPU the client spends on it (its own overhead, plus
    the send and receive system calls) hardly does."""
    clock = time.perf_counter
    done = 0
    cpu_start = time.thread_time()
    start = clock()
    deadline = start + seconds
    while done < max_ops:
        for n in range(done, done + SYNC_BATCH):
            call(n)
        done += SYNC_BATCH
        if clock() >= deadline:
            break
    return Sample(done, clock() - start, time.thread_time() - cpu_start)


def measure_sync(
    factories: Mapping[str, SyncFactory],
    order: Sequence[str],
    url: str,
    op: str,
    timing: Timing,
    size: int = 100,
) -> dict[str, Sample]:
    """Every contender of one sync scenario, interleaved in ``timing.slices`` slices.

    A sync call's latency is mostly the round trip, whose cost on a small VM
    depends on where the scheduler put client and server at that moment (same
    CPU or not), which changes on a sub-second scale. Alternating contenders
    every few tenths of a second makes each of them see the same mix, so their
    ratio is steadier than with one long measurement each.
    """
    with contextlib.ExitStack() as stack:
        calls: dict[str, SyncCall] = {}
        for name in order:
            call = stack.enter_context(factories[name](url)).call(op, size)
            check(op, size, call(0))
            _sync_phase(call, timing.warmup, timing.max_ops)
            calls[name] = call
        gc.collect()
        samples = {name: Sample() for name in order}
        for number in range(timing.slices):
            for name in serpentine(order, number):
                samples[name].add(
                    _sync_phase(
                        calls[name],
                        timing.duration / timing.slices,
                        timing.max_ops // timing.slices,
                    )
                )
        return samples


# Sync, several threads: a threaded WSGI server's workers.


def _thread_loop(call: SyncCall, start: int, deadline: float, budget: int) -> int:
    clock = time.perf_counter
    done = 0
    n = start
    while done < budget and clock() < deadline:
        call(n)
        n += 1
        done += 1
    return done


def _threads_phase(
    executor: ThreadPoolExecutor, calls: Sequence[SyncCall], seconds: float, max_ops: int
) -> Sample:
    budget = max(1, max_ops // len(calls))
    start = time.perf_counter()
    deadline = start + seconds
    futures = [
        executor.submit(_thread_loop, call, n * 7919, deadline, budget)
        for n, call in enumerate(calls)
    ]
    done = sum(future.result() for future in futures)
    return Sample(done, time.perf_counter() - start)


def measure_threads(
    factories: Mapping[str, SyncFactory],
    order: Sequence[str],
    url: str,
    op: str,
    threads: int,
    timing: Timing,
) -> dict[str, Sample]:
    """``threads`` threads calling one contender, each with its own instance (Django's
    cache handler gives each thread its own), the contenders alternating in slices."""
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(threads) as executor:
        calls: dict[str, list[SyncCall]] = {}
        for name in order:
            per_thread = [
                stack.enter_context(factories[name](url)).call(op, 100) for _ in range(threads)
            ]
            check(op, 100, per_thread[0](0))
            _threads_phase(executor, per_thread, timing.warmup, timing.max_ops)
            calls[name] = per_thread
        gc.collect()
        samples = {name: Sample() for name in order}
        for number in range(timing.slices):
            for name in serpentine(order, number):
                samples[name].add(
                    _threads_phase(
                        executor, calls[name], timing.duration / timing.slices, timing.max_ops
                    )
                )
        return samples


# Sync code under ASGI: each "request" runs a sync view through sync_to_async.


async def _request_loop(
    view: Callable[[int], Awaitable[Any]],
    start: int,
    deadline: float,
    budget: int,
    latencies: list[float],
) -> int:
    """As Django's ASGIHandler does for each request: a new ThreadSensitiveContext
    (so a new single-thread executor), and the sync view run in it."""
    clock = time.perf_counter
    done = 0
    n = start
    ended = clock()
    while done < budget and ended < deadline:
        began = ended
        async with ThreadSensitiveContext():
            await view(n)
        ended = clock()
        latencies.append((ended - began) / VIEW_CALLS)
        n += VIEW_CALLS
        done += VIEW_CALLS
    return done


async def _asgi_phase(
    view: Callable[[int], Awaitable[Any]], tasks: int, seconds: float, max_ops: int
) -> Sample:
    budget = max(1, max_ops // tasks)
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    done = await asyncio.gather(
        *(_request_loop(view, n * 7919, deadline, budget, latencies) for n in range(tasks))
    )
    return Sample(sum(done), time.perf_counter() - start, latencies=latencies)


async def _measure_asgi(
    views: Mapping[str, AsgiView], order: Sequence[str], op: str, tasks: int, timing: Timing
) -> dict[str, Sample]:
    wrapped: dict[str, Callable[[int], Awaitable[Any]]] = {}
    for name in order:
        view = sync_to_async(views[name], thread_sensitive=True)
        async with ThreadSensitiveContext():
            check(op, 100, await view(0))
        await _asgi_phase(view, tasks, timing.warmup, timing.max_ops)
        wrapped[name] = view
    gc.collect()
    samples = {name: Sample() for name in order}
    for number in range(timing.slices):
        for name in serpentine(order, number):
            samples[name].add(
                await _asgi_phase(
                    wrapped[name], tasks, timing.duration / timing.slices, timing.max_ops
                )
            )
    return samples


def measure_asgi(
    views: Mapping[str, AsgiView], order: Sequence[str], op: str, tasks: int, timing: Timing
) -> dict[str, Sample]:
    """``tasks`` concurrent requests, each running a sync view of VIEW_CALLS cache
    calls in asgiref's thread, as a sync view under ASGI does; per cache call."""
    return asyncio.run(_measure_asgi(views, order, op, tasks, timing))


# Statistics.


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        return cls(statistics.median(values), min(values), max(values))


def paired_ratio(values: Sequence[float], references: Sequence[float]) -> Summary:
    """Ratios taken round by round, then summarised: each pair ran within seconds of
    each other, so slow drift of the machine cancels out of the ratio."""
    return Summary.of(
        [value / reference for value, reference in zip(values, references, strict=True)]
    )
