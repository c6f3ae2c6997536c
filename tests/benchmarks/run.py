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

Usage: ``python tests/benchmarks/run.py [--quick] [--rounds N] [--duration S]
[--warmup S] [--slices N] [--pin none|shared|split] [--url redis://...]
[--json PATH] [--check]`` (``--help`` explains each). Without ``--url`` (or
REDIS_URL) a throwaway server is started on 127.0.0.1 (``tests/servers.py``).
docs/benchmarks.md describes the method and holds the figures of a full run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make ``tests.*`` importable
    sys.path.insert(0, str(ROOT))

from tests.benchmarks import contenders as c  # noqa: E402
from tests.benchmarks import report  # noqa: E402
from tests.benchmarks.harness import (  # noqa: E402
    Summary,
    Timing,
    measure_async,
    measure_sync,
    paired_ratio,
)

ASYNC_SCENARIOS = (("aget", 1), ("aget", 64), ("aset", 1), ("aset", 64))
SYNC_SCENARIOS = ("get", "set")
DEFAULT_JSON = ROOT / "tests" / "benchmarks" / "results" / "latest.json"

FULL = {"rounds": 7, "duration": 1.0, "warmup": 0.25, "slices": 10}
QUICK = {"rounds": 2, "duration": 0.2, "warmup": 0.05, "slices": 4}
MAX_OPS = 1_000_000  # per measurement: a bound on the load, never reached in practice
PIN_CHOICES = ("none", "shared", "split")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 short rounds: a smoke test")
    parser.add_argument("--rounds", type=int, help=f"default {FULL['rounds']}")
    parser.add_argument("--duration", type=float, help="seconds timed per measurement")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per measurement")
    parser.add_argument(
        "--slices", type=int, help="contenders of a scenario alternate in this many slices"
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("REDIS_URL"),
        help="an existing server (default: REDIS_URL, else a throwaway one on 127.0.0.1)",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON}")
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
    if args.rounds < 1 or args.slices < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--rounds and --slices must be >= 1, --duration > 0 and --warmup >= 0")
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
    client's own cost more plainly. Threads started later (the built-in's
    ``sync_to_async`` executor) inherit the client's placement.
    """
    if mode == "none":
        return
    if mode == "split" and (server_pid is None or len(os.sched_getaffinity(0)) < 2):
        raise SystemExit("--pin split needs two CPUs and a server started by this script")
    server_cpu = 1 if mode == "split" else 0
    os.sched_setaffinity(0, {0})
    if server_pid is not None:
        os.sched_setaffinity(server_pid, {server_cpu})


def rotated(names: list[str], shift: int) -> list[str]:
    shift %= len(names)
    return names[shift:] + names[:shift]


Samples = dict[str, dict[str, list[float]]]


def run_rounds(url: str, args: argparse.Namespace) -> tuple[Samples, Samples, Samples]:
    """Every round runs every scenario, and within it every contender once."""
    timing = Timing(duration=args.duration, warmup=args.warmup, max_ops=MAX_OPS, slices=args.slices)
    throughput: Samples = {
        f"{op} x{tasks}": {name: [] for name in c.ASYNC_CONTENDERS} for op, tasks in ASYNC_SCENARIOS
    }
    latency: Samples = {op: {name: [] for name in c.SYNC_CONTENDERS} for op in SYNC_SCENARIOS}
    cpu: Samples = {op: {name: [] for name in c.SYNC_CONTENDERS} for op in SYNC_SCENARIOS}
    started = time.monotonic()
    for round_number in range(args.rounds):
        for index, (op, tasks) in enumerate(ASYNC_SCENARIOS):
            order = rotated(list(c.ASYNC_CONTENDERS), round_number + index)
            samples = measure_async(c.ASYNC_CONTENDERS, order, url, op, tasks, timing)
            for name, sample in samples.items():
                throughput[f"{op} x{tasks}"][name].append(sample.ops_per_second)
        for index, op in enumerate(SYNC_SCENARIOS):
            order = rotated(list(c.SYNC_CONTENDERS), round_number + index)
            for name, sample in measure_sync(c.SYNC_CONTENDERS, order, url, op, timing).items():
                latency[op][name].append(sample.microseconds_per_op)
                cpu[op][name].append(sample.cpu_microseconds_per_op)
        print(
            f"round {round_number + 1}/{args.rounds} done ({time.monotonic() - started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    return throughput, latency, cpu


def build_rows(
    samples: Samples, references: tuple[str, ...]
) -> tuple[list[report.Row], dict[tuple[str, str, str], Summary]]:
    rows = []
    ratios: dict[tuple[str, str, str], Summary] = {}
    for scenario, by_name in samples.items():
        for name, values in by_name.items():
            row_ratios: list[Summary | None] = []
            for reference in references:
                if name == reference:
                    row_ratios.append(None)
                    continue
                ratio = paired_ratio(values, by_name[reference])
                ratios[scenario, name, reference] = ratio
                row_ratios.append(ratio)
            rows.append(report.Row(scenario, name, Summary.of(values), tuple(row_ratios)))
    return rows, ratios


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    server = None
    url = args.url
    if not url:
        from tests.servers import ServerProcess

        server = ServerProcess().start()
        url = server.url
    try:
        pin(args.pin, server.process.pid if server and server.process else None)
        configure_django(url)
        header = report.machine_header(url, server.binary if server else None, ROOT)
        settings = {
            "quick": args.quick,
            "rounds": args.rounds,
            "duration": args.duration,
            "warmup": args.warmup,
            "slices": args.slices,
            "pin": args.pin,
            "max_ops": MAX_OPS,
            "value": f"{len(c.VALUE)}-byte bytes, pickled ({len(c.PICKLED)} bytes stored)",
            "keys": c.KEY_COUNT,
            "timeout": c.TIMEOUT,
            "async_scenarios": [f"{op} x{tasks}" for op, tasks in ASYNC_SCENARIOS],
            "raw_async_max_connections": c.RAW_MAX_CONNECTIONS,
        }
        report.print_header(header, settings)
        c.populate(url)
        throughput, latency, cpu = run_rounds(url, args)
        # Another busy process during the run shows here (the ratios are meant to survive it).
        header["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
        print(f"load average at the end: {header['load_average_at_end']}", file=sys.stderr)
    finally:
        if server is not None:
            server.stop()

    async_rows, async_ratios = build_rows(throughput, (c.RAW_ASYNC, c.BUILTIN))
    sync_rows, sync_ratios = build_rows(latency, (c.DJANGO_REDIS,))
    cpu_rows, _ = build_rows(cpu, (c.DJANGO_REDIS,))
    report.print_table(
        "Async throughput, ops/s (higher is better); ratios: median [min-max] of per-round ratios",
        ",.0f",
        (f"vs {c.RAW_ASYNC}", f"vs {c.BUILTIN}"),
        async_rows,
    )
    report.print_table(
        "Sync latency, us per call, one thread (lower is better)",
        ".1f",
        (f"vs {c.DJANGO_REDIS}",),
        sync_rows,
    )
    report.print_table(
        "Sync client CPU, us per call (time.thread_time: the client's own cost, "
        "steadier than latency)",
        ".1f",
        (f"vs {c.DJANGO_REDIS}",),
        cpu_rows,
    )
    targets = [
        report.Target(
            f"{c.ASYNCREDIS} aget x64 vs {c.RAW_ASYNC}",
            async_ratios["aget x64", c.ASYNCREDIS, c.RAW_ASYNC],
            0.9,
            at_least=True,
        ),
        report.Target(
            f"{c.ASYNCREDIS} aget x64 vs {c.BUILTIN}",
            async_ratios["aget x64", c.ASYNCREDIS, c.BUILTIN],
            3.0,
            at_least=True,
        ),
        report.Target(
            f"{c.ASYNCREDIS} sync get latency vs {c.DJANGO_REDIS}",
            sync_ratios["get", c.ASYNCREDIS, c.DJANGO_REDIS],
            1.1,
            at_least=False,
        ),
    ]
    report.print_targets(targets)
    report.write_json(
        args.json,
        header,
        settings,
        {
            "async_ops_per_second": throughput,
            "sync_microseconds_per_call": latency,
            "sync_client_cpu_microseconds_per_call": cpu,
        },
        {"async": async_rows, "sync": sync_rows, "sync_client_cpu": cpu_rows},
        targets,
    )
    if args.check and not all(target.met for target in targets):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
