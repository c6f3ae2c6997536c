"""A change's cost, measured in one process: this tree against a git revision.

Run ``python tests/benchmarks/before_after.py REV [--slices N] [--workloads ...]``;
it starts its own server. Not a test: it reports and asserts nothing.

Why one process: on a shared machine the throughput of two runs one after the
other varies by more than any change measures. Here the revision's package is
exported (``git archive``) under another name, ``django_asyncredis_before``,
and both caches run side by side, alternating in short slices (400 sync calls,
or 1,600 async calls over 64 tasks), the order flipping each slice: a slowdown
of the machine hits both alike. Reported: the median over slices of each
one's throughput and CPU time per call (``time.process_time``), and the ratios
slice by slice, new over before (and over raw redis-py for the 10 KB sets, its
value pickled per call like ours, or pickled beforehand: "raw pre-pickled").

Workloads: ``get`` (100 B, sync), ``aget`` (100 B, 64 tasks), ``set10k`` (sync)
and ``aset10k`` (64 tasks), each 10 KB of random bytes, pickled.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import pickle
import random
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SYNC_SLICE = 400
ASYNC_SLICE = 1600
TASKS = 64
SMALL = random.Random(1).randbytes(100)
LARGE = random.Random(2).randbytes(10 * 1024)
PICKLED = pickle.dumps(LARGE, pickle.HIGHEST_PROTOCOL)
Sample = tuple[float, float]  # wall seconds, CPU seconds of one slice


def export(revision: str, into: Path) -> None:
    """The revision's package, renamed so that both can be imported at once."""
    archive = subprocess.run(
        ["git", "archive", revision, "src/django_asyncredis"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = into / "django_asyncredis_before"
    (into / "src" / "django_asyncredis").rename(package)
    for path in package.rglob("*.py"):
        text = re.sub(r"\bdjango_asyncredis\b", "django_asyncredis_before", path.read_text())
        path.write_text(text)


def configure(port: int) -> dict[str, Any]:
    import django
    from django.conf import settings

    location = f"redis://127.0.0.1:{port}/0"
    settings.configure(
        CACHES={
            "before": {
                "BACKEND": "django_asyncredis_before.RedisCache",
                "LOCATION": location,
                "KEY_PREFIX": "before",
            },
            "new": {"BACKEND": "django_asyncredis.RedisCache", "LOCATION": location},
        },
        USE_TZ=True,
    )
    django.setup()
    from django.core.cache import caches

    return {"before": caches["before"], "new": caches["new"]}


def sync_calls(workload: str, caches: dict[str, Any], raw: Any) -> dict[str, Callable[[], Any]]:
    before, new = caches["before"], caches["new"]
    if workload == "get":
        before.set("small", SMALL, 300)
        new.set("small", SMALL, 300)
        return {"before": lambda: before.get("small"), "new": lambda: new.get("small")}
    return {
        "before": lambda: before.set("large", LARGE, 300),
        "new": lambda: new.set("large", LARGE, 300),
        "raw": lambda: raw.set("raw:large", pickle.dumps(LARGE, pickle.HIGHEST_PROTOCOL), ex=300),
        "raw pre-pickled": lambda: raw.set("raw:large", PICKLED, ex=300),
    }


def async_calls(
    workload: str, caches: dict[str, Any], raw: Any
) -> dict[str, Callable[[], Coroutine[Any, Any, Any]]]:
    before, new = caches["before"], caches["new"]
    if workload == "aget":
        return {"before": lambda: before.aget("small"), "new": lambda: new.aget("small")}
    return {
        "before": lambda: before.aset("large", LARGE, 300),
        "new": lambda: new.aset("large", LARGE, 300),
        "raw": lambda: raw.set("raw:large", pickle.dumps(LARGE, pickle.HIGHEST_PROTOCOL), ex=300),
        "raw pre-pickled": lambda: raw.set("raw:large", PICKLED, ex=300),
    }


def sync_slice(call: Callable[[], Any]) -> Sample:
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(SYNC_SLICE):
        call()
    return time.perf_counter() - wall, time.process_time() - cpu


async def async_slice(call: Callable[[], Coroutine[Any, Any, Any]]) -> Sample:
    async def worker() -> None:
        for _ in range(ASYNC_SLICE // TASKS):
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(TASKS)))
    return time.perf_counter() - wall, time.process_time() - cpu


def report(workload: str, samples: dict[str, list[Sample]], calls: int) -> None:
    for name, runs in samples.items():
        wall = statistics.median(run[0] for run in runs)
        cpu = statistics.median(run[1] for run in runs)
        print(
            f"{workload:8s} {name:16s} {calls / wall:8.0f} calls/s "
            f"{cpu / calls * 1e6:6.1f} us CPU/call"
        )
    for reference in [name for name in samples if name != "new"]:
        pairs = list(zip(samples[reference], samples["new"], strict=True))
        speed = statistics.median(old[0] / new[0] for old, new in pairs)
        cpu = statistics.median(new[1] / old[1] for old, new in pairs)
        print(
            f"{workload:8s} new / {reference}: throughput {speed:.3f}x, CPU per call {cpu:.3f}x "
            f"(medians of {len(pairs)} slices)"
        )


def measure(workload: str, slices: int, caches: dict[str, Any], port: int) -> None:
    import redis
    import redis.asyncio

    if workload in ("get", "set10k"):
        calls = sync_calls(workload, caches, redis.Redis(port=port))
        samples: dict[str, list[Sample]] = {name: [] for name in calls}
        for name in calls:
            sync_slice(calls[name])  # warm-up
        for index in range(slices):
            for name in list(calls)[:: 1 if index % 2 == 0 else -1]:
                samples[name].append(sync_slice(calls[name]))
        report(workload, samples, SYNC_SLICE)
        return

    async def main() -> None:
        raw = redis.asyncio.Redis(port=port, max_connections=TASKS)
        try:
            calls = async_calls(workload, caches, raw)
            for name in calls:
                samples[name] = []
                await async_slice(calls[name])  # warm-up
            for index in range(slices):
                for name in list(calls)[:: 1 if index % 2 == 0 else -1]:
                    samples[name].append(await async_slice(calls[name]))
        finally:
            await raw.aclose()

    samples = {}
    asyncio.run(main())
    report(workload, samples, ASYNC_SLICE)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the git revision to compare this tree with")
    parser.add_argument("--slices", type=int, default=40, help="slices per contender")
    parser.add_argument("--workloads", default="get,aget,set10k,aset10k")
    args = parser.parse_args(argv)
    from tests.servers import ServerProcess

    with tempfile.TemporaryDirectory(prefix="asyncredis-before-") as directory:
        export(args.revision, Path(directory))
        sys.path.insert(0, directory)
        server = ServerProcess().start()
        try:
            caches = configure(server.port)
            for workload in args.workloads.split(","):
                measure(workload, args.slices, caches, server.port)
        finally:
            server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
