"""Benchmarks against the peers, in one run, on one server: ``nox -s bench``.

Why the run is shaped like this:

- Interleaved rounds: every round measures every contender once per scenario,
  in an order that rotates from round to round, so a machine that slows down
  (another process, thermal limits, the server growing) affects all contenders
  alike instead of whichever happened to run last. Within a round the
  contenders of a scenario alternate in short slices (``--slices``), for the
  same reason on a sub-second scale.
- Medians with min-max over the rounds, and ratios taken round by round: the
  absolute figures depend on the machine, the ratios much less.
- Time-bounded measurements: each one runs for ``--duration`` seconds after a
  warm-up, so the run takes the same time whatever the contenders' speed.

Parts, in the order they run: the async and sync micro-benchmarks (in rounds),
the server's own limit (``redis-benchmark``), end to end (an ASGI app under
uvicorn, in rounds of its own), sessions (Django's session middleware
against ours, under uvicorn, with the end-to-end part's rounds and durations;
``sessions.py``), and the near-cache on a Zipf-distributed 90% read / 10%
write load against the same backend without it (``near_zipf.py``, with the
micro-benchmarks' rounds and durations). docs/benchmarks.md describes each and holds the
figures of a full run.

Usage: ``python tests/benchmarks/run.py [--quick] [--rounds N] [--duration S]
[--warmup S] [--slices N] [--e2e-rounds N] [--e2e-duration S] [--e2e-warmup S]
[--e2e-slices N] [--server-requests N] [--parts ...]
[--pin none|shared|split] [--url redis://...] [--json PATH] [--charts DIR]
[--check]`` (``--help`` explains each). Without ``--url`` (or REDIS_URL) a
throwaway server is started on 127.0.0.1 (``tests/servers.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make ``tests.*`` importable
    sys.path.insert(0, str(ROOT))

from tests.benchmarks import contenders as c  # noqa: E402
from tests.benchmarks import (  # noqa: E402
    e2e,
    markdown,
    near_cache,
    near_zipf,
    reference,
    report,
    sessions,
)
from tests.benchmarks.harness import (  # noqa: E402
    Sample,
    Summary,
    Timing,
    measure_asgi,
    measure_async,
    measure_sync,
    measure_threads,
    paired_ratio,
)

DEFAULT_JSON = ROOT / "tests" / "benchmarks" / "results" / "latest.json"
DOCS_CHARTS = ROOT / "docs" / "_static"
#: The results section of docs/benchmarks.md (included there), written by a full run only.
DOCS_RESULTS = ROOT / "docs" / "_generated" / "benchmarks-results.md"

FULL = {
    "rounds": 5,
    "duration": 0.6,
    "warmup": 0.15,
    "slices": 6,
    "e2e_rounds": 5,
    "e2e_duration": 1.6,
    "e2e_warmup": 0.4,
    "e2e_slices": 4,
    "server_requests": 200_000,
}
QUICK = {
    "rounds": 2,
    "duration": 0.06,
    "warmup": 0.02,
    "slices": 2,
    "e2e_rounds": 1,
    "e2e_duration": 0.5,
    "e2e_warmup": 0.2,
    "e2e_slices": 2,
    "server_requests": 10_000,
}
MAX_OPS = 1_000_000  # per measurement: a bound on the load, never reached in practice
PIN_CHOICES = ("none", "shared", "split")
PARTS = ("async", "sync", "server", "e2e", "sessions", "near")
THREADS = 8  # sync throughput: threads, and concurrent requests under ASGI


# The matrix. Every scenario runs in every round; see docs/benchmarks.md for the choice.

EVERY_ASYNC = (
    c.ASYNCREDIS,
    c.ASYNCREDIS_POOLED,
    c.RAW_ASYNC,
    c.RAW_ASYNC_BLOCKING,
    c.VALKEY,
    c.BUILTIN,
)
MAIN_ASYNC = (c.ASYNCREDIS, c.ASYNCREDIS_POOLED, c.RAW_ASYNC, c.VALKEY, c.BUILTIN)
#: The built-in's aget_many / aset_many await one sync_to_async hop per key
#: (BaseCache's loop): about 30 calls/s, so it only runs with one task.
NO_BUILTIN = (c.ASYNCREDIS, c.ASYNCREDIS_POOLED, c.RAW_ASYNC, c.VALKEY)
SYNC_ALL = (c.ASYNCREDIS, c.DJANGO_REDIS, c.BUILTIN, c.RAW_SYNC)
ASGI_ALL = (c.ASYNCREDIS, c.DJANGO_REDIS, c.RAW_SYNC)


@dataclass(frozen=True)
class AsyncScenario:
    op: str
    size: int
    tasks: int
    contenders: tuple[str, ...]

    @property
    def name(self) -> str:
        size = f" {size_label(self.size)}" if self.op in ("aget", "aset") else ""
        return f"{self.op}{size} x{self.tasks}"


def size_label(size: int) -> str:
    return f"{size // 1024}KB" if size >= 1024 else f"{size}B"


ASYNC_SCENARIOS = (
    *(
        AsyncScenario(op, 100, tasks, EVERY_ASYNC)
        for op in ("aget", "aset")
        for tasks in (1, 16, 64, 256)
    ),
    *(
        AsyncScenario(op, 10 * 1024, tasks, MAIN_ASYNC)
        for op in ("aget", "aset")
        for tasks in (1, 16, 64, 256)
    ),
    *(AsyncScenario(op, 100, 1, MAIN_ASYNC) for op in ("aget_many", "aset_many")),
    *(
        AsyncScenario(op, 100, tasks, NO_BUILTIN)
        for op in ("aget_many", "aset_many")
        for tasks in (16, 64)
    ),
    AsyncScenario("aincr", 100, 64, MAIN_ASYNC),
    AsyncScenario("aget_or_set hit", 100, 64, MAIN_ASYNC),
    AsyncScenario("aget_or_set miss", 100, 64, MAIN_ASYNC),
)


@dataclass(frozen=True)
class SyncScenario:
    op: str  # "get" or "set"
    mode: str  # "thread", "threads", "asgi", "asgi concurrent"
    contenders: tuple[str, ...]
    size: int = 100  # values of another size: one thread only

    @property
    def name(self) -> str:
        op = self.op if self.size == 100 else f"{self.op} {size_label(self.size)}"
        return {
            "thread": f"{op} 1 thread",
            "threads": f"{op} {THREADS} threads",
            "asgi": f"{op} ASGI x1",
            "asgi concurrent": f"{op} ASGI x{THREADS}",
        }[self.mode]


SYNC_SCENARIOS = (
    *(
        SyncScenario(op, mode, SYNC_ALL if mode.startswith("thread") else ASGI_ALL)
        for mode in ("thread", "threads", "asgi", "asgi concurrent")
        for op in ("get", "set")
    ),
    # Large writes on the sync path: the target against raw redis-py.
    SyncScenario("set", "thread", (c.ASYNCREDIS, c.DJANGO_REDIS, c.RAW_SYNC), 10 * 1024),
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 very short rounds: a smoke test")
    parser.add_argument("--rounds", type=int, help=f"default {FULL['rounds']}")
    parser.add_argument("--duration", type=float, help="seconds timed per measurement")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per measurement")
    parser.add_argument(
        "--slices", type=int, help="contenders of a scenario alternate in this many slices"
    )
    parser.add_argument("--e2e-rounds", type=int, help=f"default {FULL['e2e_rounds']}")
    parser.add_argument(
        "--e2e-duration", type=float, help="seconds of HTTP load timed per backend and round"
    )
    parser.add_argument("--e2e-warmup", type=float, help="seconds of untimed load before that")
    parser.add_argument(
        "--e2e-slices", type=int, help="backends alternate in this many slices per round"
    )
    parser.add_argument(
        "--server-requests", type=int, help="requests per command for redis-benchmark"
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated, among {', '.join(PARTS)} (default: all)",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("REDIS_URL"),
        help="an existing server (default: REDIS_URL, else a throwaway one on 127.0.0.1)",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON}")
    parser.add_argument(
        "--charts",
        type=Path,
        help=f"where to write the PNG charts (default: {DOCS_CHARTS} for a full run of every "
        "part, the JSON file's folder otherwise)",
    )
    parser.add_argument(
        "--pin",
        choices=PIN_CHOICES,
        default="none",
        help="CPU placement: none (the OS decides, default), shared (client and server on "
        "CPU 0), split (client on CPU 0, server on CPU 1; needs the server started here)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.parts = tuple(part.strip() for part in args.parts.split(",") if part.strip())
    if not set(args.parts) <= set(PARTS) or not args.parts:
        parser.error(f"--parts takes some of {', '.join(PARTS)}")
    if args.rounds < 1 or args.slices < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--rounds and --slices must be >= 1, --duration > 0 and --warmup >= 0")
    if args.e2e_rounds < 1 or args.e2e_slices < 1 or args.e2e_duration <= 0 or args.e2e_warmup < 0:
        parser.error(
            "--e2e-rounds and --e2e-slices must be >= 1, --e2e-duration > 0 and --e2e-warmup >= 0"
        )
    # Only a full run of every part, at the full settings or more, may write the docs.
    args.full = (
        not args.quick
        and set(args.parts) == set(PARTS)
        and all(getattr(args, name) >= value for name, value in FULL.items())
    )
    if args.charts is None:
        args.charts = DOCS_CHARTS if args.full else args.json.parent
    elif not args.full and args.charts.resolve().is_relative_to(ROOT / "docs"):
        parser.error("only a full run of every part writes into docs/ (--charts)")
    args.command = " ".join(["python tests/benchmarks/run.py", *argv])
    return args


def configure_django(url: str) -> None:
    import django
    from django.conf import settings

    settings.configure(INSTALLED_APPS=[], CACHES=c.caches_setting(url), USE_TZ=True)
    django.setup()


def pin(mode: str, server_pid: int | None) -> None:
    """Optional CPU placement, to tell client cost from scheduler noise.

    On a small VM a sync round trip between two CPUs costs a cross-CPU wake-up
    that varies from run to run; with client and server on one CPU ("shared")
    the round trip is mostly CPU work, so it is steadier and shows each
    client's own cost more plainly. Threads and processes started later (the
    executors, uvicorn) inherit the client's placement.
    """
    if mode == "none":
        return
    if mode == "split" and (server_pid is None or len(os.sched_getaffinity(0)) < 2):
        raise SystemExit("--pin split needs two CPUs and a server started by this script")
    server_cpu = 1 if mode == "split" else 0
    os.sched_setaffinity(0, {0})
    if server_pid is not None:
        os.sched_setaffinity(server_pid, {server_cpu})


def rotated(names: Sequence[str], shift: int) -> list[str]:
    shift %= len(names)
    return [*names[shift:], *names[:shift]]


#: kind -> scenario -> contender -> one value per round
Samples = dict[str, dict[str, dict[str, list[float]]]]


def _record(
    samples: Samples, scenario: str, results: dict[str, Sample], **kinds: Callable[[Sample], float]
) -> None:
    for kind, measure in kinds.items():
        by_name = samples.setdefault(kind, {}).setdefault(scenario, {})
        for name, sample in results.items():
            by_name.setdefault(name, []).append(measure(sample))


def _p50(sample: Sample) -> float:
    return sample.percentile_us(0.50)


def _p99(sample: Sample) -> float:
    return sample.percentile_us(0.99)


def run_rounds(url: str, args: argparse.Namespace) -> tuple[Samples, Samples]:
    """Every round runs every scenario, and within it every contender once."""
    timing = Timing(duration=args.duration, warmup=args.warmup, max_ops=MAX_OPS, slices=args.slices)
    async_samples: Samples = {}
    sync_samples: Samples = {}
    started = time.monotonic()
    for round_number in range(args.rounds):
        c.populate(url)
        if "async" in args.parts:
            for index, scenario in enumerate(ASYNC_SCENARIOS):
                order = rotated(scenario.contenders, round_number + index)
                results = measure_async(
                    c.ASYNC_CONTENDERS,
                    order,
                    url,
                    scenario.op,
                    scenario.size,
                    scenario.tasks,
                    timing,
                )
                _record(
                    async_samples,
                    scenario.name,
                    results,
                    ops_per_second=lambda s: s.ops_per_second,
                    p50_us=_p50,
                    p99_us=_p99,
                    connections=lambda s: s.connections,
                )
        if "sync" in args.parts:
            for index, sync in enumerate(SYNC_SCENARIOS):
                order = rotated(sync.contenders, round_number + index)
                if sync.mode == "thread":
                    results = measure_sync(
                        c.SYNC_CONTENDERS, order, url, sync.op, timing, sync.size
                    )
                    _record(
                        sync_samples,
                        sync.name,
                        results,
                        us_per_call=lambda s: s.microseconds_per_op,
                        cpu_us_per_call=lambda s: s.cpu_microseconds_per_op,
                    )
                elif sync.mode == "threads":
                    results = measure_threads(
                        c.SYNC_CONTENDERS, order, url, sync.op, THREADS, timing
                    )
                    _record(
                        sync_samples, sync.name, results, ops_per_second=lambda s: s.ops_per_second
                    )
                else:
                    views = {name: c.asgi_view(name, sync.op, url) for name in sync.contenders}
                    tasks = 1 if sync.mode == "asgi" else THREADS
                    results = measure_asgi(views, order, sync.op, tasks, timing)
                    if tasks == 1:
                        _record(
                            sync_samples,
                            sync.name,
                            results,
                            us_per_call=lambda s: s.microseconds_per_op,
                        )
                    else:
                        _record(
                            sync_samples,
                            sync.name,
                            results,
                            ops_per_second=lambda s: s.ops_per_second,
                            p99_us=_p99,
                        )
        print(
            f"round {round_number + 1}/{args.rounds} done ({time.monotonic() - started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    return async_samples, sync_samples


def run_e2e(url: str, args: argparse.Namespace) -> Samples:
    """The ASGI app under uvicorn, every backend in every round, order rotating."""
    samples: Samples = {}
    names = list(e2e.PATHS)
    c.populate(url)
    started = time.monotonic()
    with e2e.uvicorn_server(ROOT, url) as served:
        e2e.check_paths(served.url, list(e2e.PATHS.values()))
        for round_number in range(args.e2e_rounds):
            order = rotated(names, round_number)
            results = e2e.measure_round(
                served,
                {name: e2e.PATHS[name] for name in order},
                args.e2e_warmup,
                args.e2e_duration,
                args.e2e_slices,
            )
            for name, sample in results.items():
                for kind, value in (
                    ("requests_per_second", sample.requests_per_second),
                    ("p50_ms", sample.percentile_ms(0.50)),
                    ("p99_ms", sample.percentile_ms(0.99)),
                    ("errors", float(sample.errors)),
                    ("cpu_us_per_request", sample.cpu_us_per_request),
                ):
                    samples.setdefault(kind, {}).setdefault(e2e.SCENARIO, {}).setdefault(
                        name, []
                    ).append(value)
            print(
                f"end-to-end round {round_number + 1}/{args.e2e_rounds} done "
                f"({time.monotonic() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return samples


def run_sessions(url: str, args: argparse.Namespace) -> Samples:
    """Session middleware variants under uvicorn, every one in every round, order rotating."""
    samples: Samples = {}
    names = list(sessions.VARIANTS)
    started = time.monotonic()
    with e2e.uvicorn_server(ROOT, url, app=sessions.APP, ready_path=sessions.NEW_PATH) as served:
        keys = sessions.new_sessions(served.url, e2e.CONNECTIONS)
        for round_number in range(args.e2e_rounds):
            results = sessions.measure_round(
                served.url,
                keys,
                rotated(names, round_number),
                args.e2e_warmup,
                args.e2e_duration,
                args.e2e_slices,
            )
            for scenario, by_name in results.items():
                for name, sample in by_name.items():
                    for kind, value in (
                        ("requests_per_second", sample.requests_per_second),
                        ("p50_ms", sample.percentile_ms(0.50)),
                        ("p99_ms", sample.percentile_ms(0.99)),
                        ("errors", float(sample.errors)),
                    ):
                        samples.setdefault(kind, {}).setdefault(scenario, {}).setdefault(
                            name, []
                        ).append(value)
            print(
                f"sessions round {round_number + 1}/{args.e2e_rounds} done "
                f"({time.monotonic() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return samples


def _hit_percent_of(near: Sample) -> Callable[[Sample], float]:
    """The near-cache's hit ratio of the measurement just made, for its row only."""
    percent = near_zipf.last_hit_percent
    return lambda sample: percent if sample is near else float("nan")


def run_near(url: str, args: argparse.Namespace) -> Samples:
    """The near-cache against the same backend without it, on the Zipf 90/10 load:
    async at ``near_zipf.ASYNC_TASKS`` tasks, then sync on one thread, every round."""
    timing = Timing(duration=args.duration, warmup=args.warmup, max_ops=MAX_OPS, slices=args.slices)
    samples: Samples = {}
    started = time.monotonic()
    for round_number in range(args.rounds):
        order = rotated(near_zipf.CONTENDERS, round_number)
        for scenario in (near_zipf.ASYNC_SCENARIO, near_zipf.SYNC_SCENARIO):
            if scenario == near_zipf.ASYNC_SCENARIO:
                results = measure_async(
                    near_zipf.ASYNC_FACTORIES,
                    order,
                    url,
                    near_zipf.OP,
                    near_zipf.SIZE,
                    near_zipf.ASYNC_TASKS,
                    timing,
                )
            else:
                results = measure_sync(near_zipf.SYNC_FACTORIES, order, url, near_zipf.OP, timing)
            _record(
                samples,
                scenario,
                results,
                ops_per_second=lambda s: s.ops_per_second,
                near_hit_percent=_hit_percent_of(results[near_zipf.NEAR]),
            )
        print(
            f"near-cache round {round_number + 1}/{args.rounds} done "
            f"({time.monotonic() - started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    return samples


# Tables and targets.

Ratios = dict[tuple[str, str, str], Summary]
#: The order of the rows, whatever the order of the first round.
ROW_ORDER = (
    c.ASYNCREDIS,
    c.ASYNCREDIS_POOLED,
    c.RAW_ASYNC,
    c.RAW_ASYNC_BLOCKING,
    e2e.RAW_VIEW,
    c.VALKEY,
    c.DJANGO_REDIS,
    c.BUILTIN,
    c.RAW_SYNC,
    e2e.NO_CACHE,
    sessions.DJANGO,
    sessions.OURS,
    sessions.PRELOAD,
    near_zipf.NEAR,
)


def _position(name: str) -> int:
    return ROW_ORDER.index(name) if name in ROW_ORDER else len(ROW_ORDER)


def build_rows(
    values: dict[str, dict[str, list[float]]],
    references: tuple[str, ...],
    extras: dict[str, dict[str, dict[str, list[float]]]] | None = None,
) -> tuple[list[report.Row], Ratios]:
    rows = []
    ratios: Ratios = {}
    for scenario, by_name in values.items():
        for name in sorted(by_name, key=_position):
            series = by_name[name]
            row_ratios: list[Summary | None] = []
            for ref in references:
                if name == ref or ref not in by_name:
                    row_ratios.append(None)
                    continue
                ratio = paired_ratio(series, by_name[ref])
                ratios[scenario, name, ref] = ratio
                row_ratios.append(ratio)
            extra = {
                kind: Summary.of(table[scenario][name]) for kind, table in (extras or {}).items()
            }
            rows.append(report.Row(scenario, name, Summary.of(series), tuple(row_ratios), extra))
    return rows, ratios


def build_tables(
    async_samples: Samples,
    sync_samples: Samples,
    e2e_samples: Samples,
    session_samples: Samples | None = None,
    near_samples: Samples | None = None,
) -> tuple[dict[str, report.Table], Ratios]:
    tables: dict[str, report.Table] = {}
    ratios: Ratios = {}
    if async_samples:
        rows, found = build_rows(
            async_samples["ops_per_second"],
            (c.RAW_ASYNC, c.ASYNCREDIS_POOLED, c.VALKEY, c.BUILTIN),
            {
                "p50 us": async_samples["p50_us"],
                "p99 us": async_samples["p99_us"],
                "connections": async_samples["connections"],
            },
        )
        ratios.update(found)
        tables["async"] = report.Table(
            "Async throughput, ops/s (higher is better), latency p50/p99 in us; "
            "ratios: median [min-max] of per-round throughput ratios",
            "ops/s",
            ",.0f",
            (c.RAW_ASYNC, c.ASYNCREDIS_POOLED, c.VALKEY, c.BUILTIN),
            rows,
        )
    if sync_samples:
        latency = {
            name: by_name for name, by_name in sync_samples["us_per_call"].items() if by_name
        }
        rows, found = build_rows(latency, (c.DJANGO_REDIS,))
        ratios.update(found)
        tables["sync_latency"] = report.Table(
            "Sync latency, us per call (lower is better): one thread, and one request at a "
            "time under ASGI (a sync view in asgiref's thread, per cache call)",
            "us",
            ".1f",
            (c.DJANGO_REDIS,),
            rows,
        )
        rows, found = build_rows(sync_samples["ops_per_second"], (c.DJANGO_REDIS,))
        ratios.update(found)
        tables["sync_throughput"] = report.Table(
            f"Sync throughput, calls/s (higher is better): {THREADS} threads, and {THREADS} "
            "concurrent requests under ASGI",
            "calls/s",
            ",.0f",
            (c.DJANGO_REDIS,),
            rows,
        )
        rows, _ = build_rows(sync_samples["cpu_us_per_call"], (c.DJANGO_REDIS,))
        tables["sync_cpu"] = report.Table(
            "Sync client CPU, us per call, one thread (time.thread_time: the client's own "
            "cost, steadier than latency)",
            "us",
            ".1f",
            (c.DJANGO_REDIS,),
            rows,
        )
    if e2e_samples:
        rows, found = build_rows(
            e2e_samples["requests_per_second"],
            (e2e.RAW_VIEW, e2e.NO_CACHE),
            {
                "p50 ms": e2e_samples["p50_ms"],
                "p99 ms": e2e_samples["p99_ms"],
                "errors": e2e_samples["errors"],
                **(
                    {"uvicorn CPU us/request": e2e_samples["cpu_us_per_request"]}
                    if "cpu_us_per_request" in e2e_samples
                    else {}
                ),
            },
        )
        ratios.update(found)
        tables["e2e"] = report.Table(
            f"End to end, requests/s (higher is better) with {e2e.CONNECTIONS} connections; "
            "latency p50/p99 in ms; errors: median per round; uvicorn CPU: the server "
            "process's CPU time per request (lower is better)",
            "requests/s",
            ",.0f",
            (e2e.RAW_VIEW, e2e.NO_CACHE),
            rows,
            extra_format=".1f",
        )
    if session_samples:
        rows, found = build_rows(
            session_samples["requests_per_second"],
            (sessions.DJANGO, sessions.OURS),
            {
                "p50 ms": session_samples["p50_ms"],
                "p99 ms": session_samples["p99_ms"],
                "errors": session_samples["errors"],
            },
        )
        ratios.update(found)
        tables["sessions"] = report.Table(
            f"Sessions end to end, requests/s (higher is better) with {e2e.CONNECTIONS} "
            "connections, a session each; latency p50/p99 in ms; errors: median per round",
            "requests/s",
            ",.0f",
            (sessions.DJANGO, sessions.OURS),
            rows,
            extra_format=".1f",
        )
    if near_samples:
        rows, found = build_rows(
            near_samples["ops_per_second"],
            (near_zipf.PLAIN,),
            {"near-cache hits %": near_samples["near_hit_percent"]},
        )
        ratios.update(found)
        tables["near"] = report.Table(
            f"Near-cache, calls/s (higher is better): {near_zipf.WRITE_SHARE:.0%} writes and "
            f"the rest reads over {near_zipf.ZIPF_KEYS:,} keys of {near_zipf.SIZE} B drawn "
            f"from a Zipf distribution (s = {near_zipf.ZIPF_S}), {near_zipf.ASYNC_TASKS} "
            "tasks on one loop and one thread, against the same backend without NEAR_CACHE; "
            "near-cache hits: % of its reads served locally (warm-up included)",
            "calls/s",
            ",.0f",
            (near_zipf.PLAIN,),
            rows,
        )
    return tables, ratios


@dataclass(frozen=True)
class Rule:
    """A target: one contender against a reference in one scenario, judged on the
    median of the per-round ratios of one kind of sample."""

    what: str
    part: str  # "async", "sync" or "e2e"
    kind: str  # a kind of sample, e.g. "ops_per_second"
    scenario: str
    contender: str
    reference: str
    bound: float
    at_least: bool  # met when the ratio is >= bound (else <= bound)
    #: reference / contender: a speed from a latency (``us_per_call``), so that
    #: "≥ 0.95x" reads as "at least 95% of its speed".
    inverse: bool = False

    def evaluate(self, samples: dict[str, Samples]) -> report.Target | None:
        by_name = samples.get(self.part, {}).get(self.kind, {}).get(self.scenario, {})
        if self.contender not in by_name or self.reference not in by_name:
            return None  # not measured in this run (--parts)
        value, reference = by_name[self.contender], by_name[self.reference]
        ratio = paired_ratio(reference, value) if self.inverse else paired_ratio(value, reference)
        return report.Target(f"{self.what} vs {self.reference}", ratio, self.bound, self.at_least)


A = c.ASYNCREDIS
OPS = "ops_per_second"
RULES = (
    # The multiplexed transport (the default) against the raw client and its pooled twin.
    Rule("`aget 100B x64` throughput", "async", OPS, "aget 100B x64", A, c.RAW_ASYNC, 6.0, True),
    Rule("`aset 10KB x64` throughput", "async", OPS, "aset 10KB x64", A, c.RAW_ASYNC, 1.5, True),
    Rule(
        "`aget 100B x1` p50 latency",
        "async",
        "p50_us",
        "aget 100B x1",
        A,
        c.ASYNCREDIS_POOLED,
        1.05,
        False,
    ),
    *(
        Rule(
            f"`{scenario}` p99 latency",
            "async",
            "p99_us",
            scenario,
            A,
            c.ASYNCREDIS_POOLED,
            1.0,
            False,
        )
        for scenario in ("aget 100B x256", "aset 100B x256")
    ),
    # Earlier targets that still hold meaning.
    *(
        Rule(f"`{scenario}` throughput", "async", OPS, scenario, A, c.RAW_ASYNC, 0.9, True)
        for scenario in ("aset 100B x64", "aget 10KB x64")
    ),
    *(
        Rule(f"`{scenario}` throughput", "async", OPS, scenario, A, c.VALKEY, 1.0, True)
        for scenario in ("aget 100B x64", "aset 100B x64", "aget 10KB x64", "aset 10KB x64")
    ),
    *(
        Rule(f"`{scenario}` throughput", "async", OPS, scenario, A, c.RAW_ASYNC, 0.9, True)
        for scenario in ("aget_many x1", "aget_many x16", "aset_many x1", "aset_many x16")
    ),
    Rule("`aget 100B x64` throughput", "async", OPS, "aget 100B x64", A, c.BUILTIN, 3.0, True),
    Rule(
        "sync `set 10KB`, 1 thread, speed (1 / latency)",
        "sync",
        "us_per_call",
        "set 10KB 1 thread",
        A,
        c.RAW_SYNC,
        0.95,
        True,
        inverse=True,
    ),
    Rule(
        "sync `get`, 1 thread, latency",
        "sync",
        "us_per_call",
        "get 1 thread",
        A,
        c.DJANGO_REDIS,
        1.1,
        False,
    ),
    Rule(
        f"sync `get`, {THREADS} threads, throughput",
        "sync",
        OPS,
        f"get {THREADS} threads",
        A,
        c.DJANGO_REDIS,
        0.9,
        True,
    ),
    Rule(
        "end to end requests/s",
        "e2e",
        "requests_per_second",
        e2e.SCENARIO,
        A,
        e2e.RAW_VIEW,
        1.3,
        True,
    ),
)
#: The multiplexed transport's promise: one connection per (event loop, server).
#: Each async scenario runs on one loop and one server, so under load (16 tasks
#: or more) django-asyncredis must open exactly one.
LOADED_TASKS = 16


def connection_target(async_samples: Samples) -> report.Target | None:
    by_scenario = async_samples.get("connections", {})
    opened = [
        count
        for scenario in ASYNC_SCENARIOS
        if scenario.tasks >= LOADED_TASKS and A in scenario.contenders
        for count in by_scenario.get(scenario.name, {}).get(A, [])
    ]
    if not opened:
        return None
    return report.Target(
        f"server connections django-asyncredis opened per scenario at {LOADED_TASKS} tasks or "
        "more (one loop, one server), most in any scenario and round",
        Summary(max(opened), min(opened), max(opened)),
        1,
        False,
        unit=" connections",
    )


def error_target(e2e_samples: Samples) -> report.Target | None:
    if not e2e_samples:
        return None
    errors = sum(sum(values) for values in e2e_samples["errors"][e2e.SCENARIO].values())
    return report.Target(
        "end to end, errors of all backends in all rounds",
        Summary(errors, errors, errors),
        0,
        False,
        unit=" errors",
    )


def near_targets(figures: dict[str, Any]) -> list[report.Target]:
    """The near-cache's hot-key and miss-cost targets (``near_cache.figures``)."""
    if not figures:
        return []
    return [
        report.Target(
            "near-cache hot `aget` x64 throughput vs redis.asyncio (raw) `GET`",
            Summary.of(figures["hot_aget_vs_raw"]),
            20,
            True,
        ),
        report.Target(
            "near-cache hot sync `get`, 1 thread, speed vs django-redis",
            Summary.of(figures["hot_get_vs_django_redis"]),
            10,
            True,
        ),
        report.Target(
            "near-cache miss, `aget` (1 task), time vs the same cache without it",
            Summary.of(figures["miss_aget_cost"]),
            1.1,
            False,
        ),
        report.Target(
            "near-cache miss, sync `get`, time vs the same cache without it",
            Summary.of(figures["miss_get_cost"]),
            1.1,
            False,
        ),
    ]


def build_targets(samples: dict[str, Any]) -> list[report.Target]:
    """Every rule this run has the samples for, in the order of ``RULES``."""
    found = [rule.evaluate(samples) for rule in RULES]
    found.append(connection_target(samples.get("async", {})))
    found.append(error_target(samples.get("e2e", {})))
    found.extend(near_targets(samples.get("near_figures", {})))
    return [target for target in found if target is not None]


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    run_started = time.monotonic()
    server = None
    url = args.url
    if not url:
        from tests.servers import ServerProcess

        server = ServerProcess().start()
        url = server.url
    server_reference: dict[str, Any] = {"skipped": "not run (--parts)"}
    async_samples: Samples = {}
    sync_samples: Samples = {}
    e2e_samples: Samples = {}
    session_samples: Samples = {}
    near_samples: Samples = {}
    near_figures: dict[str, Any] = {}
    try:
        pin(args.pin, server.process.pid if server and server.process else None)
        configure_django(url)
        header = report.machine_header(url, server.binary if server else None, ROOT)
        settings = {
            "quick": args.quick,
            "full": args.full,
            "parts": list(args.parts),
            "rounds": args.rounds,
            "duration": args.duration,
            "warmup": args.warmup,
            "slices": args.slices,
            "e2e_rounds": args.e2e_rounds,
            "e2e_duration": args.e2e_duration,
            "e2e_warmup": args.e2e_warmup,
            "e2e_slices": args.e2e_slices,
            "e2e_connections": e2e.CONNECTIONS,
            "pin": args.pin,
            "max_ops": MAX_OPS,
            "values": {
                size_label(size): f"{size}-byte random bytes, pickled ({len(c.PICKLED[size])} "
                f"bytes stored), {c.KEY_COUNTS[size]} keys"
                for size in c.SIZES
            },
            "timeout": c.TIMEOUT,
            "many": c.MANY,
            "async_scenarios": {s.name: list(s.contenders) for s in ASYNC_SCENARIOS},
            "sync_scenarios": {s.name: list(s.contenders) for s in SYNC_SCENARIOS},
            "asgi_view_calls": c.VIEW_CALLS,
            "raw_async_max_connections": c.RAW_MAX_CONNECTIONS,
            "near_zipf": {
                "keys": near_zipf.ZIPF_KEYS,
                "s": near_zipf.ZIPF_S,
                "write_share": near_zipf.WRITE_SHARE,
                "tasks": near_zipf.ASYNC_TASKS,
                "sequence": near_zipf.SEQUENCE,
            },
        }
        report.print_header(header, settings)
        if "async" in args.parts or "sync" in args.parts:
            async_samples, sync_samples = run_rounds(url, args)
        if "server" in args.parts:
            if server is None:
                server_reference = {
                    "skipped": "only on the suite's own server (it writes keys without expiry)"
                }
            else:
                server_reference = reference.run(url, args.server_requests)
        if "e2e" in args.parts:
            e2e_samples = run_e2e(url, args)
        if "sessions" in args.parts:
            session_samples = run_sessions(url, args)
        if "near" in args.parts:
            near_samples = run_near(url, args)
            print("near-cache: hot key, miss cost, staleness", file=sys.stderr, flush=True)
            near_figures = near_cache.figures(url)
        # Another busy process during the run shows here (the ratios are meant to survive it).
        header["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
        header["run_seconds"] = round(time.monotonic() - run_started)
        header["command"] = args.command
        print(
            f"load average at the end: {header['load_average_at_end']}; "
            f"run took {header['run_seconds']} s",
            file=sys.stderr,
        )
    finally:
        if server is not None:
            server.stop()

    tables, _ = build_tables(
        async_samples, sync_samples, e2e_samples, session_samples, near_samples
    )
    for table in tables.values():
        report.print_table(table)
    print()
    print(reference.describe(server_reference))
    samples = {
        "async": async_samples,
        "sync": sync_samples,
        "e2e": e2e_samples,
        "sessions": session_samples,
        "near": near_samples,
        "near_figures": near_figures,
    }
    targets = build_targets(samples)
    report.print_targets(targets)
    content = report.document(header, settings, samples, tables, targets, server_reference)
    report.write_json(args.json, content)
    charts_written: list[Path] = []
    try:
        from tests.benchmarks import charts
    except ImportError as exc:  # matplotlib missing: the figures are still there
        print(f"No charts: {exc}", file=sys.stderr)
    else:
        for written in charts.write_all(content, args.charts):
            charts_written.append(written)
            print(f"Saved {written}", file=sys.stderr)
    results_md = DOCS_RESULTS if args.full else args.json.parent / DOCS_RESULTS.name
    results_md.parent.mkdir(parents=True, exist_ok=True)
    results_md.write_text(markdown.results(content, charts_written, results_md.parent), "utf-8")
    print(f"Saved {results_md}", file=sys.stderr)
    if not args.full:
        print(
            f"Not a full run (--quick, --parts or shorter settings): {DOCS_RESULTS} and "
            f"{DOCS_CHARTS} left alone",
            file=sys.stderr,
        )
    if args.check and not all(target.met for target in targets):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
