"""The results section of docs/benchmarks.md, in Markdown, from a run's JSON document.

``run.py`` writes ``results()`` to docs/_generated/benchmarks-results.md after a
full run (elsewhere after a partial one), and docs/benchmarks.md includes it:
every figure of that page comes from here, none is typed by hand.
``python tests/benchmarks/markdown.py [results.json]`` prints the tables again
from a saved run, with a few more compact views.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Sequence
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
    lines = [
        f"| target | measured: median (min{DASH}max) over the rounds | met |",
        "| --- | --- | --- |",
    ]
    for target in content["targets"]:
        sign = "≥" if target["at_least"] else "≤"
        unit = target.get("unit", "x")
        if unit == "x":
            measured = f"**{_ratio(target['ratio'])}**"
        else:
            ratio = target["ratio"]
            spread = (
                f" ({ratio['low']:g}{DASH}{ratio['high']:g})"
                if ratio["low"] != ratio["high"]
                else ""
            )
            measured = f"**{ratio['median']:g}{unit}**{spread}"
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


#: The charts ``charts.write_all`` draws, by file name: their alt text.
CHARTS = {
    "bench-async.png": "aget and aset of 100 B values: throughput and p99 latency against the "
    "number of concurrent tasks, for each async contender",
    "bench-ratios.png": "Every async scenario as a ratio to raw redis.asyncio with hiredis",
    "bench-sync.png": "Sync API: latency on one thread and under ASGI, throughput on 8 threads "
    "and 8 concurrent ASGI requests",
    "bench-e2e.png": "End to end: requests per second and p99 of a Django async view under "
    "uvicorn, per backend",
}
TABLES = (
    ("Async, every contender", "async", ",.0f"),
    ("Sync latency", "sync_latency", ".1f"),
    ("Sync throughput", "sync_throughput", ",.0f"),
    ("Sync client CPU", "sync_cpu", ".1f"),
    ("End to end", "e2e", ",.0f"),
    ("Sessions end to end", "sessions", ",.0f"),
    ("Near-cache, Zipf 90/10", "near", ",.0f"),
)


def run_line(content: dict[str, Any]) -> str:
    header = content["header"]
    seconds = header.get("run_seconds", 0)
    return (
        f"These figures come from one run of `{header.get('command', 'tests/benchmarks/run.py')}` "
        f"at commit {header['django_asyncredis_revision']}, started {header['date']}, "
        f"which took {seconds // 60} min {seconds % 60} s."
    )


def machine(content: dict[str, Any]) -> str:
    header, settings = content["header"], content["settings"]
    packages = ", ".join(f"{name} {version}" for name, version in header["packages"].items())
    return "\n".join(
        [
            f"- {header['python']} on {header['platform']}",
            f"- CPU: {header['cpu']}, {header['cpu_count']} logical CPUs "
            f"({header['usable_cpus']} usable), shared by the client, the server and, end to "
            "end, uvicorn and the load generator",
            f"- load average {header['load_average_at_start']} at the start, "
            f"{header.get('load_average_at_end', '?')} at the end (1, 5, 15 min)",
            f"- server: {header['server']} ({header['server_binary']}) at {header['server_url']}",
            f"- packages: {packages}",
            f"- parsers: redis-py {header['redis_py_parser']}, "
            f"valkey-py {header['valkey_py_parser']}",
            f"- micro-benchmarks: {settings['rounds']} rounds, {settings['duration']} s timed per "
            f"contender and scenario after {settings['warmup']} s of warm-up, in "
            f"{settings['slices']} slices; end to end and sessions: {settings['e2e_rounds']} "
            f"rounds, {settings['e2e_duration']} s after {settings['e2e_warmup']} s, in "
            f"{settings['e2e_slices']} slices, {settings['e2e_connections']} connections; "
            f"CPU pinning: {settings['pin']}",
        ]
    )


def server_limit(content: dict[str, Any]) -> str:
    reference = content.get("server_reference", {})
    if "skipped" in reference:
        return f"Not measured: {reference['skipped']}."
    lines = [
        f"{reference['tool']}, `-c {reference['clients']} -P 1`, 100 B values, on the same "
        "server after the micro-benchmarks:",
        "",
    ]
    for command in ("GET", "SET"):
        figures = reference.get(command)
        if figures:
            lines.append(
                f"- {command}: {figures['ops_per_second']:,.0f} ops/s, p50 "
                f"{figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms"
            )
    return "\n".join(lines)


def near_figures(content: dict[str, Any]) -> str:
    """``tests/benchmarks/near_cache.py``'s figures from this run, if measured."""
    figures = content.get("samples", {}).get("near_figures")
    if not figures:
        return ""

    def summary(name: str) -> str:
        values = figures[name]
        median = statistics.median(values)
        return f"{median:.2f}x ({min(values):.2f}{DASH}{max(values):.2f})"

    return "\n".join(
        [
            "Measured by `tests/benchmarks/near_cache.py` (its `figures()`), on the same "
            "server after the Zipf rounds; median (min" + DASH + "max) over its rounds (for "
            "a miss, over its slices: 75 of 60 reads per cache, alternating):",
            "",
            f"- hot key, `aget` by 64 tasks, vs raw redis.asyncio `GET`: "
            f"{summary('hot_aget_vs_raw')} faster",
            f"- hot key, sync `get`, vs django-redis: {summary('hot_get_vs_django_redis')} faster",
            f"- a miss (the key fetched and stored), `aget` then `get`, time vs the same cache "
            f"without the near-cache: {summary('miss_aget_cost')}, {summary('miss_get_cost')}",
            f"- the same with `NEAR_CACHE_CHECK_TTL` off: {summary('miss_aget_cost_unchecked')}, "
            f"{summary('miss_get_cost_unchecked')}",
            f"- staleness window, write acknowledged in another process to the local drop: "
            f"p50 {figures['staleness_p50_us']:.0f} µs, p99 {figures['staleness_p99_us']:.0f} µs",
        ]
    )


def results(content: dict[str, Any], charts: Sequence[Path], directory: Path) -> str:
    """The generated results section: run, machine, targets, charts, every table.

    Chart paths are relative to ``directory`` (where the Markdown file goes), so
    the file reads right on GitHub and, with MyST's ``:relative-images:``, in Sphinx.
    """
    full = content["settings"].get("full", False)
    parts = [
        "<!-- Written by tests/benchmarks/run.py. Do not edit: rerun it. -->",
        run_line(content),
        *(
            []
            if full
            else [
                "**A partial or quick run:** not the published figures, and too short "
                "to judge a target by."
            ]
        ),
        "### Machine and versions",
        machine(content),
        "### The targets",
        "Each target is a rule in `tests/benchmarks/run.py` (`RULES`), judged on the median "
        f"of the per-round ratios; the range is their min{DASH}max over the rounds.",
        targets(content),
    ]
    if charts:
        parts.append("### Charts")
        for chart in charts:
            alt = CHARTS.get(chart.name, chart.stem)
            parts.append(f"![{alt}]({Path(os.path.relpath(chart, directory)).as_posix()})")
    for title, name, spec in TABLES:
        text = table(content, name, spec)
        if text:
            caption = content["tables"][name]["title"]
            parts.extend([f"### {title}", f"{caption}.", text])
    near = near_figures(content)
    if near:
        parts.extend(["### Near-cache: hot key, miss cost, staleness", near])
    parts.extend(["### The server's limit", server_limit(content)])
    return "\n\n".join(parts) + "\n"


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
        ("Near-cache, Zipf 90/10", table(content, "near", ",.0f")),
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
