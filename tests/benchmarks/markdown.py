"""The result tables of docs/benchmarks.md, in Markdown, from a run's JSON document.

``python tests/benchmarks/markdown.py [results.json]`` prints them; the
commentary around them in the doc is written by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DASH = "\N{EN DASH}"  # ranges, as in the rest of the docs
ROOT = Path(__file__).resolve().parents[2]


def _ratio(ratio: dict[str, float] | None) -> str:
    if not ratio:
        return ""
    return f"{ratio['median']:.2f}x ({ratio['low']:.2f}{DASH}{ratio['high']:.2f})"


def _number(value: float, spec: str) -> str:
    return DASH if value != value else f"{value:{spec}}"  # NaN: no sample


def targets(content: dict[str, Any]) -> str:
    lines = ["| target | measured | met |", "| --- | --- | --- |"]
    for target in content["targets"]:
        sign = "≥" if target["at_least"] else "≤"
        unit = target.get("unit", "x")
        if unit == "x":
            measured = f"**{_ratio(target['ratio'])}**"
        else:
            measured = f"**{target['ratio']['median']:g}{unit}**"
        lines.append(
            f"| {target['description']} {sign} {target['bound']:g}{unit} | {measured} | "
            f"{'yes' if target['met'] else '**no**'} |"
        )
    return "\n".join(lines)


def table(content: dict[str, Any], name: str, spec: str, extras: bool = True) -> str:
    data = content["tables"].get(name)
    if not data:
        return ""
    rows = data["rows"]
    extra_names = list(rows[0]["extra"]) if extras and rows else []
    head = ["scenario", "contender", data["unit"], *extra_names]
    head += [f"vs {reference}" for reference in data["references"]]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    previous = None
    for row in rows:
        scenario = f"`{row['scenario']}`" if row["scenario"] != previous else ""
        previous = row["scenario"]
        value = row["value"]
        cells = [
            scenario,
            row["contender"],
            f"{_number(value['median'], spec)} ({_number(value['low'], spec)}{DASH}"
            f"{_number(value['high'], spec)})",
            *(_number(row["extra"][extra]["median"], ".0f") for extra in extra_names),
            *(_ratio(ratio) for ratio in row["ratios"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ours(content: dict[str, Any]) -> str:
    """django-asyncredis alone, every async scenario, as ratios: the doc's summary."""
    data = content["tables"].get("async")
    if not data:
        return ""
    references = data["references"]
    lines = [
        "| scenario | " + " | ".join(f"vs {ref}" for ref in references) + " | p99, µs |",
        "|" + " --- |" * (len(references) + 2),
    ]
    for row in data["rows"]:
        if row["contender"] != "django-asyncredis":
            continue
        cells = [f"`{row['scenario']}`", *(_ratio(r) for r in row["ratios"])]
        cells.append(_number(row["extra"]["p99 us"]["median"], ",.0f"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def matrix(content: dict[str, Any], name: str, spec: str, extra: str | None = None) -> str:
    """One row per scenario, one column per contender: the median (and one extra)."""
    data = content["tables"].get(name)
    if not data:
        return ""
    rows = data["rows"]
    contenders = list(dict.fromkeys(row["contender"] for row in rows))
    scenarios = list(dict.fromkeys(row["scenario"] for row in rows))
    cells = {(row["scenario"], row["contender"]): row for row in rows}
    lines = [
        "| scenario | " + " | ".join(contenders) + " |",
        "|" + " --- |" * (len(contenders) + 1),
    ]
    for scenario in scenarios:
        line = [f"`{scenario}`"]
        for contender in contenders:
            row = cells.get((scenario, contender))
            if row is None:
                line.append("")
                continue
            text = _number(row["value"]["median"], spec)
            if extra:
                text += f" ({_number(row['extra'][extra]['median'] / 1000, '.1f')})"
            line.append(text)
        lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else ROOT / "tests" / "benchmarks" / "results" / "latest.json"
    content = json.loads(source.read_text(encoding="utf-8"))
    for title, text in (
        ("Targets", targets(content)),
        ("django-asyncredis, async", ours(content)),
        ("Async matrix: ops/s (p99 ms)", matrix(content, "async", ",.0f", "p99 us")),
        ("Sync latency matrix", matrix(content, "sync_latency", ".1f")),
        ("Sync throughput matrix", matrix(content, "sync_throughput", ",.0f")),
        ("Async", table(content, "async", ",.0f")),
        ("Sync latency", table(content, "sync_latency", ".1f")),
        ("Sync throughput", table(content, "sync_throughput", ",.0f")),
        ("Sync client CPU", table(content, "sync_cpu", ".1f")),
        ("End to end", table(content, "e2e", ",.0f")),
        ("Sessions end to end", table(content, "sessions", ",.0f")),
    ):
        print(f"## {title}\n\n{text}\n")
    reference = content.get("server_reference", {})
    print("## Server limit\n")
    if "skipped" in reference:
        print(f"skipped: {reference['skipped']}")
    else:
        for command in ("GET", "SET"):
            figures = reference.get(command)
            if figures:
                print(
                    f"- {command}: {figures['ops_per_second']:,.0f} ops/s, p50 "
                    f"{figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms"
                )
    header = content["header"]
    print(f"\n## Header\n\n{json.dumps(header, indent=1)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
