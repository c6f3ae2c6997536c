"""PNG charts of a run, from its JSON document (matplotlib, no display needed).

``run.py`` calls ``write_all`` at the end of a run; to redraw them from a saved
run: ``python tests/benchmarks/charts.py [results.json] [directory]``.

Four charts, each a few tens of KB: async throughput and p99 against the
number of tasks (aget/aset, 100 B); every async scenario as a ratio to raw
redis.asyncio; sync latency and throughput; end to end.
"""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.benchmarks import contenders as c  # noqa: E402
from tests.benchmarks import e2e  # noqa: E402

COLOURS = {
    c.ASYNCREDIS: "#1f77b4",
    c.ASYNCREDIS_POOLED: "#9467bd",
    c.RAW_ASYNC: "#444444",
    c.RAW_ASYNC_BLOCKING: "#999999",
    c.VALKEY: "#d62728",
    c.BUILTIN: "#2ca02c",
    c.DJANGO_REDIS: "#ff7f0e",
    c.RAW_SYNC: "#444444",
    e2e.RAW_VIEW: "#444444",
    e2e.NO_CACHE: "#bbbbbb",
}
DPI = 90

Rows = list[dict[str, Any]]


def _rows(content: dict[str, Any], table: str) -> Rows:
    found: Rows = content["tables"].get(table, {}).get("rows", [])
    return found


def _value(rows: Rows, scenario: str, contender: str, key: str = "value") -> dict[str, float]:
    for row in rows:
        if row["scenario"] == scenario and row["contender"] == contender:
            if key == "value":
                return row["value"]  # type: ignore[no-any-return]
            return row["extra"][key]  # type: ignore[no-any-return]
    return {"median": math.nan, "low": math.nan, "high": math.nan}


def _ratio(rows: Rows, refs: Sequence[str], scenario: str, contender: str, ref: str) -> Any:
    for row in rows:
        if row["scenario"] == scenario and row["contender"] == contender:
            return row["ratios"][list(refs).index(ref)]
    return None


def _subtitle(content: dict[str, Any]) -> str:
    header = content["header"]
    return (
        f"{header['cpu_count']} CPUs ({header['cpu']}), {header['python']}, {header['server']}; "
        f"{content['settings']['rounds']} rounds, medians"
    )


def _save(figure: Figure, path: Path) -> Path:
    """A PNG with a palette of a few dozen colours: a third of the size, same look."""
    from PIL import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    buffer.seek(0)
    with Image.open(buffer) as image:
        paletted = image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
        path.parent.mkdir(parents=True, exist_ok=True)
        paletted.save(path, format="PNG", optimize=True)
    return path


def async_concurrency(content: dict[str, Any], path: Path) -> Path | None:
    rows = _rows(content, "async")
    if not rows:
        return None
    levels = sorted(
        {
            int(r["scenario"].rsplit("x", 1)[1])
            for r in rows
            if r["scenario"].startswith("aget 100B")
        }
    )
    figure, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    for column, op in enumerate(("aget", "aset")):
        top: Axes = axes[0][column]
        bottom: Axes = axes[1][column]
        for contender in c.ASYNC_CONTENDERS:
            scenarios = [f"{op} 100B x{level}" for level in levels]
            throughput = [_value(rows, s, contender) for s in scenarios]
            p99 = [_value(rows, s, contender, "p99 us") for s in scenarios]
            style: dict[str, Any] = {"color": COLOURS[contender], "marker": "o", "label": contender}
            if contender == c.RAW_ASYNC_BLOCKING:
                style["linestyle"] = "--"
            top.errorbar(
                levels,
                [t["median"] for t in throughput],
                yerr=[
                    [t["median"] - t["low"] for t in throughput],
                    [t["high"] - t["median"] for t in throughput],
                ],
                capsize=3,
                **style,
            )
            bottom.plot(levels, [v["median"] / 1000 for v in p99], **style)
        top.set_title(f"{op}, 100 B values: throughput (ops/s)")
        bottom.set_title(f"{op}, 100 B values: p99 latency (ms)")
        bottom.set_yscale("log")
        bottom.set_xlabel("concurrent tasks on one event loop")
        for ax in (top, bottom):
            ax.set_xscale("log", base=2)
            ax.set_xticks(levels, [str(level) for level in levels])
            ax.grid(True, alpha=0.3)
        top.set_ylim(bottom=0)
    axes[0][0].legend(fontsize=8)
    figure.suptitle(f"Async throughput and tail latency\n{_subtitle(content)}", fontsize=10)
    figure.tight_layout()
    return _save(figure, path)


def async_ratios(content: dict[str, Any], path: Path) -> Path | None:
    table = content["tables"].get("async")
    if not table:
        return None
    rows: Rows = table["rows"]
    refs = table["references"]
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    shown = (c.ASYNCREDIS, c.VALKEY, c.BUILTIN)
    height = 0.8 / len(shown)
    figure, ax = plt.subplots(figsize=(9, 0.42 * len(scenarios) + 1.4))
    for index, contender in enumerate(shown):
        medians, low, high, ys = [], [], [], []
        for position, scenario in enumerate(scenarios):
            ratio = _ratio(rows, refs, scenario, contender, c.RAW_ASYNC)
            if ratio is None:
                continue
            ys.append(position + (index - 1) * height)
            medians.append(ratio["median"])
            low.append(ratio["median"] - ratio["low"])
            high.append(ratio["high"] - ratio["median"])
        ax.barh(
            ys,
            medians,
            height=height,
            xerr=[low, high],
            capsize=2,
            color=COLOURS[contender],
            label=contender,
            error_kw={"elinewidth": 0.8},
        )
    ax.axvline(1.0, color="#444444", linewidth=1)
    ax.axvline(0.9, color="#444444", linewidth=1, linestyle=":")
    ax.set_yticks(range(len(scenarios)), scenarios, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(
        "throughput / raw redis.asyncio + hiredis (1.0 = the raw client; dotted: 0.9 target)"
    )
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(
        f"Every async scenario, against raw redis.asyncio\n{_subtitle(content)}", fontsize=10
    )
    figure.tight_layout()
    return _save(figure, path)


def sync(content: dict[str, Any], path: Path) -> Path | None:
    latency = _rows(content, "sync_latency")
    throughput = _rows(content, "sync_throughput")
    if not latency or not throughput:
        return None
    contenders = list(dict.fromkeys(r["contender"] for r in latency))
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, rows, title in (
        (axes[0], latency, "latency, us per call (lower is better)"),
        (axes[1], throughput, "throughput, calls/s (higher is better)"),
    ):
        scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
        width = 0.8 / len(contenders)
        for index, contender in enumerate(contenders):
            xs, values, errors_low, errors_high = [], [], [], []
            for position, scenario in enumerate(scenarios):
                value = _value(rows, scenario, contender)
                if math.isnan(value["median"]):
                    continue
                xs.append(position + (index - (len(contenders) - 1) / 2) * width)
                values.append(value["median"])
                errors_low.append(value["median"] - value["low"])
                errors_high.append(value["high"] - value["median"])
            ax.bar(
                xs,
                values,
                width=width,
                yerr=[errors_low, errors_high],
                capsize=2,
                color=COLOURS[contender],
                label=contender,
                error_kw={"elinewidth": 0.8},
            )
        ax.set_xticks(range(len(scenarios)), scenarios, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(
        f"Sync API: threads, and sync views under ASGI\n{_subtitle(content)}", fontsize=10
    )
    figure.tight_layout()
    return _save(figure, path)


def end_to_end(content: dict[str, Any], path: Path) -> Path | None:
    rows = _rows(content, "e2e")
    if not rows:
        return None
    names = [r["contender"] for r in rows]
    medians = [r["value"]["median"] for r in rows]
    figure, ax = plt.subplots(figsize=(9, 4))
    bars = ax.bar(
        range(len(rows)),
        medians,
        yerr=[
            [r["value"]["median"] - r["value"]["low"] for r in rows],
            [r["value"]["high"] - r["value"]["median"] for r in rows],
        ],
        capsize=3,
        color=[COLOURS.get(name, "#1f77b4") for name in names],
    )
    for bar, row in zip(bars, rows, strict=True):
        ax.annotate(
            f"p99 {row['extra']['p99 ms']['median']:.0f} ms",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(range(len(rows)), [n.replace(" on ", "\non ") for n in names], fontsize=8)
    ax.set_ylabel("requests/s")
    ax.grid(True, axis="y", alpha=0.3)
    settings = content["settings"]
    ax.set_title(
        f"End to end: Django async view, {e2e.SCENARIO}, uvicorn, "
        f"{settings['e2e_connections']} connections\n"
        f"{_subtitle(content).rsplit(';', 1)[0]}; {settings['e2e_rounds']} rounds, medians",
        fontsize=10,
    )
    figure.tight_layout()
    return _save(figure, path)


def write_all(content: dict[str, Any], directory: Path) -> list[Path]:
    written = [
        async_concurrency(content, directory / "bench-async.png"),
        async_ratios(content, directory / "bench-ratios.png"),
        sync(content, directory / "bench-sync.png"),
        end_to_end(content, directory / "bench-e2e.png"),
    ]
    return [path for path in written if path is not None]


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else ROOT / "tests" / "benchmarks" / "results" / "latest.json"
    directory = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "_static"
    content = json.loads(source.read_text(encoding="utf-8"))
    for path in write_all(content, directory):
        print(f"Saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
