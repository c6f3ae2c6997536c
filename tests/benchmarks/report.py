"""What the run prints and saves: the machine, the versions, the tables, the targets.

Figures are meaningless without the machine and versions they came from, so
the header is printed first and saved with the numbers.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.benchmarks.harness import Summary

PACKAGES = (
    "django-asyncredis",
    "django",
    "redis",
    "hiredis",
    "django-redis",
    "django-valkey",
    "valkey",
    "libvalkey",
    "asgiref",
    "uvicorn",
)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def source_revision(root: Path) -> str:
    """The commit measured (read-only git), marked dirty when src/ has local changes:
    nox installs the working tree, not the commit."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}{' + local changes in src/' if changes else ''}"


def machine_header(url: str, server_binary: str | None, root: Path) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("server")
    finally:
        client.close()
    server_name = info.get("server_name") or ("valkey" if "valkey_version" in info else "redis")
    server_version = info.get("valkey_version") or info.get("redis_version")
    try:
        usable_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable_cpus = os.cpu_count() or 0
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus,
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
        "server": f"{server_name} {server_version}",
        "server_binary": server_binary or "external (REDIS_URL)",
        "server_url": url,
        "packages": {package: _version(package) for package in PACKAGES},
        "django_asyncredis_revision": source_revision(root),
        "redis_py_parser": _parser_name(),
        "valkey_py_parser": _valkey_parser_name(),
    }


def _parser_name() -> str:
    from redis.connection import DefaultParser

    return DefaultParser.__name__


def _valkey_parser_name() -> str:
    try:
        from valkey.asyncio.connection import DefaultParser
    except ImportError:
        return "not installed"
    return DefaultParser.__name__


def print_header(header: dict[str, Any], settings: dict[str, Any]) -> None:
    packages = ", ".join(f"{name} {version}" for name, version in header["packages"].items())
    print(f"{header['python']} on {header['platform']}")
    print(
        f"CPU: {header['cpu']}, {header['cpu_count']} logical CPUs "
        f"({header['usable_cpus']} usable), load {header['load_average_at_start']}"
    )
    print(f"Server: {header['server']} at {header['server_url']}, sharing those CPUs")
    print(f"Packages: {packages}")
    print(f"Parsers: redis-py {header['redis_py_parser']}, valkey-py {header['valkey_py_parser']}")
    print(f"django-asyncredis at {header['django_asyncredis_revision']}")
    print(
        f"Rounds: {settings['rounds']}, {settings['duration']} s timed per measurement "
        f"after {settings['warmup']} s of warm-up, in {settings['slices']} interleaved slices; "
        f"order rotating; CPU pinning: {settings['pin']}"
    )


def _ratio(summary: Summary | None) -> str:
    if summary is None:
        return ""
    return f"{summary.median:.2f}x [{summary.low:.2f}-{summary.high:.2f}]"


@dataclass(frozen=True)
class Row:
    scenario: str
    contender: str
    value: Summary
    ratios: tuple[Summary | None, ...]
    extra: dict[str, Summary] = field(default_factory=dict)  # e.g. p50 and p99


@dataclass(frozen=True)
class Table:
    title: str
    unit: str  # what ``value`` is, e.g. "ops/s"
    unit_format: str
    references: tuple[str, ...]  # the ratios' references, in ``Row.ratios`` order
    rows: list[Row]
    extra_format: str = ".0f"


def _fmt(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else f"{value:{spec}}"


def print_table(table: Table) -> None:
    print()
    print(table.title)
    extras = list(table.rows[0].extra) if table.rows else []
    head = f"{'scenario':<22} {'contender':<26} {'median':>9} {'min - max':>19}"
    head += "".join(f" {name:>8}" for name in extras)
    head += "".join(f"  {'vs ' + reference:<22}" for reference in table.references)
    print(head)
    print("-" * len(head))
    previous = None
    for row in table.rows:
        scenario = row.scenario if row.scenario != previous else ""
        previous = row.scenario
        spec = table.unit_format
        spread = f"{_fmt(row.value.low, spec)} - {_fmt(row.value.high, spec)}"
        line = f"{scenario:<22} {row.contender:<26} {_fmt(row.value.median, spec):>9} {spread:>19}"
        line += "".join(
            f" {_fmt(row.extra[name].median, table.extra_format):>8}" for name in extras
        )
        line += "".join(f"  {_ratio(ratio):<22}" for ratio in row.ratios)
        print(line.rstrip())


@dataclass(frozen=True)
class Target:
    description: str
    ratio: Summary
    bound: float
    at_least: bool  # True: ratio >= bound is met; False: ratio <= bound is met
    unit: str = "x"

    @property
    def met(self) -> bool:
        value = self.ratio.median
        return value >= self.bound if self.at_least else value <= self.bound


def print_targets(targets: Sequence[Target]) -> None:
    print()
    print("Targets (on the median of the per-round ratios)")
    for target in targets:
        sign = ">=" if target.at_least else "<="
        status = "MET   " if target.met else "MISSED"
        if target.unit == "x":
            measured = _ratio(target.ratio)
        else:
            measured = f"{target.ratio.median:g}{target.unit}"
        print(
            f"  [{status}] {target.description}: {measured} "
            f"(target {sign} {target.bound:g}{target.unit})"
        )


def _summary(summary: Summary | None) -> dict[str, float] | None:
    return asdict(summary) if summary else None


def document(
    header: dict[str, Any],
    settings: dict[str, Any],
    samples: dict[str, Any],
    tables: dict[str, Table],
    targets: Sequence[Target],
    reference: dict[str, Any],
) -> dict[str, Any]:
    """Everything needed to redo the tables and charts: raw per-round samples included."""
    return {
        "header": header,
        "settings": settings,
        "samples": samples,
        "server_reference": reference,
        "tables": {
            name: {
                "title": table.title,
                "unit": table.unit,
                "references": list(table.references),
                "rows": [
                    {
                        "scenario": row.scenario,
                        "contender": row.contender,
                        "value": asdict(row.value),
                        "ratios": [_summary(ratio) for ratio in row.ratios],
                        "extra": {name: asdict(value) for name, value in row.extra.items()},
                    }
                    for row in table.rows
                ],
            }
            for name, table in tables.items()
        },
        "targets": [
            {
                "description": target.description,
                "ratio": asdict(target.ratio),
                "bound": target.bound,
                "at_least": target.at_least,
                "unit": target.unit,
                "met": target.met,
            }
            for target in targets
        ],
    }


def write_json(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    print(f"\nSaved {path}", file=sys.stderr)
