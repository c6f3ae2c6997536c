"""Timing loops and statistics.

Each measurement is bounded twice: by time (``duration`` seconds, so the run
length does not depend on how fast a contender is) and by count (``max_ops``,
a safety net). Throughput and latency are computed from the operations that
actually completed and the time they actually took, measured with
``time.perf_counter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.benchmarks.contenders import VALUE, AsyncFactory, SyncFactory

#: Sync calls between two looks at the clock: keeps the clock out of the loop's cost.
SYNC_BATCH = 50


@dataclass(frozen=True)
class Timing:
    duration: float  # seconds timed per measurement
    warmup: float  # seconds of the same workload, untimed, just before
    max_ops: int  # per measurement, whatever the concurrency
    slices: int = 1  # contenders of a scenario alternate in this many slices per round


@dataclass(frozen=True)
class Sample:
    ops: int
    seconds: float
    cpu_seconds: float = 0.0  # sync only: CPU time of the calling thread (time.thread_time)

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds

    @property
    def microseconds_per_op(self) -> float:
        return self.seconds / self.ops * 1e6

    @property
    def cpu_microseconds_per_op(self) -> float:
        return self.cpu_seconds / self.ops * 1e6


def _check(op: str, result: Any) -> None:
    """A get that finds nothing skips the decoding: refuse to time that."""
    if op.endswith("get") and result != VALUE:
        raise RuntimeError(f"{op} returned {result!r:.60}, not the stored value")


# Async: one event loop per scenario and round, shared by its contenders.


async def _worker(
    call: Callable[[str], Awaitable[Any]],
    keys: Sequence[str],
    start: int,
    budget: int,
    deadline: float,
) -> int:
    """Counts the calls that completed by the deadline. The one in flight at the
    deadline is finished (never cancelled: that would break a connection) but
    not counted, so a slow contender's longer tail does not dilute its rate."""
    count = len(keys)
    index = start % count
    done = 0
    clock = time.perf_counter
    while done < budget:
        await call(keys[index])
        if clock() > deadline:
            break
        index += 1
        if index == count:
            index = 0
        done += 1
    return done


async def _phase(
    call: Callable[[str], Awaitable[Any]],
    keys: Sequence[str],
    tasks: int,
    seconds: float,
    max_ops: int,
) -> Sample:
    """``tasks`` concurrent callers for ``seconds``: the calls that completed in
    that window over the window (or, if the count bound was hit first, over
    the time it took)."""
    budget = max(1, max_ops // tasks)
    stride = len(keys) // tasks or 1  # tasks start on different keys
    start = time.perf_counter()
    deadline = start + seconds
    done = await asyncio.gather(
        *(_worker(call, keys, n * stride, budget, deadline) for n in range(tasks))
    )
    return Sample(sum(done), min(seconds, time.perf_counter() - start))


async def _measure_async(
    factories: Mapping[str, AsyncFactory],
    order: Sequence[str],
    url: str,
    op: str,
    tasks: int,
    timing: Timing,
) -> dict[str, Sample]:
    async with contextlib.AsyncExitStack() as stack:
        runs: dict[str, tuple[Callable[[str], Awaitable[Any]], Sequence[str]]] = {}
        for name in order:
            ops = await stack.enter_async_context(factories[name](url))
            call = ops.get if op == "aget" else ops.set
            _check(op, await call(ops.keys[0]))
            # The warm-up runs at full concurrency, so every connection the
            # timed slices need is already open.
            await _phase(call, ops.keys, tasks, timing.warmup, timing.max_ops)
            runs[name] = (call, ops.keys)
        gc.collect()
        done = dict.fromkeys(order, 0)
        seconds = dict.fromkeys(order, 0.0)
        for _ in range(timing.slices):
            for name in order:
                call, keys = runs[name]
                part = await _phase(
                    call, keys, tasks, timing.duration / timing.slices, timing.max_ops
                )
                done[name] += part.ops
                seconds[name] += part.seconds
        return {name: Sample(done[name], seconds[name]) for name in order}


def measure_async(
    factories: Mapping[str, AsyncFactory],
    order: Sequence[str],
    url: str,
    op: str,
    tasks: int,
    timing: Timing,
) -> dict[str, Sample]:
    """Every contender of one async scenario, on one fresh event loop
    (``asyncio.run``), alternating in ``timing.slices`` slices.

    One loop for all contenders of a scenario, so the ratio compares clients,
    not loops; a fresh loop per scenario and round, so no state (connections,
    tasks, the built-in's executor queue) builds up across the run. The
    loop's start and the connections' setup fall in the untimed warm-up.
    Alternating slices: see ``measure_sync``.
    """
    return asyncio.run(_measure_async(factories, order, url, op, tasks, timing))


# Sync: single thread, the caller's.


def _sync_phase(
    call: Callable[[str], Any], keys: Sequence[str], seconds: float, max_ops: int
) -> Sample:
    """Wall time and the thread's CPU time: the wall time of a round trip varies
    with the scheduler, the CPU the client spends on it (its own overhead, plus
    the send and receive system calls) hardly does."""
    batches = [keys[i : i + SYNC_BATCH] for i in range(0, len(keys), SYNC_BATCH)]
    clock = time.perf_counter
    done = 0
    cpu_start = time.thread_time()
    start = clock()
    deadline = start + seconds
    while done < max_ops:
        for batch in batches:
            for key in batch:
                call(key)
            done += len(batch)
            if clock() >= deadline or done >= max_ops:
                return Sample(done, clock() - start, time.thread_time() - cpu_start)
    return Sample(done, clock() - start, time.thread_time() - cpu_start)


def measure_sync(
    factories: Mapping[str, SyncFactory], order: Sequence[str], url: str, op: str, timing: Timing
) -> dict[str, Sample]:
    """Every contender of one sync scenario, interleaved in ``timing.slices`` slices.

    A sync call's latency is mostly the round trip, whose cost on a small VM
    depends on where the scheduler put client and server at that moment (same
    CPU or not), which changes on a sub-second scale. Alternating contenders
    every few tenths of a second makes each of them see the same mix, so their
    ratio is steadier than with one long measurement each.
    """
    with contextlib.ExitStack() as stack:
        runs: dict[str, tuple[Callable[[str], Any], Sequence[str]]] = {}
        for name in order:
            ops = stack.enter_context(factories[name](url))
            call = ops.get if op == "get" else ops.set
            _check(op, call(ops.keys[0]))
            _sync_phase(call, ops.keys, timing.warmup, timing.max_ops)
            runs[name] = (call, ops.keys)
        gc.collect()
        done = dict.fromkeys(order, 0)
        seconds = dict.fromkeys(order, 0.0)
        cpu_seconds = dict.fromkeys(order, 0.0)
        for _ in range(timing.slices):
            for name in order:
                call, keys = runs[name]
                part = _sync_phase(
                    call, keys, timing.duration / timing.slices, timing.max_ops // timing.slices
                )
                done[name] += part.ops
                seconds[name] += part.seconds
                cpu_seconds[name] += part.cpu_seconds
        return {name: Sample(done[name], seconds[name], cpu_seconds[name]) for name in order}


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
