"""The benchmark run's bookkeeping: which runs may write the docs, how a target is judged,
and what the generated results section holds. No timing here: the figures are
synthetic, the point is that the page's numbers can only come from the script."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks import markdown, near_zipf, report, run
from tests.benchmarks.harness import Summary


@pytest.mark.parametrize(
    "argv",
    [["--quick"], ["--parts", "async,sync"], ["--rounds", "2"], ["--e2e-duration", "0.5"]],
)
def test_a_partial_or_quick_run_never_writes_the_docs(argv: list[str]) -> None:
    """Anything short of a full run of every part writes its results beside the JSON file."""
    args = run.parse_args(argv)
    assert args.full is False
    assert not args.charts.resolve().is_relative_to(run.ROOT / "docs")


def test_a_partial_run_refuses_to_draw_charts_into_the_docs() -> None:
    """Pointing a quick run's charts into docs/ is an error, not a silent overwrite."""
    with pytest.raises(SystemExit):
        run.parse_args(["--quick", "--charts", str(run.DOCS_CHARTS)])


def test_the_default_run_is_full_and_writes_the_docs() -> None:
    """``nox -s bench`` without arguments is the run that owns the published figures."""
    args = run.parse_args([])
    assert args.full is True
    assert args.charts == run.DOCS_CHARTS


def test_a_latency_rule_against_a_speed_takes_the_ratio_per_round_the_other_way() -> None:
    """An inverse rule divides the reference's latency by ours, round by round."""
    rule = run.Rule("speed", "sync", "us_per_call", "s", "ours", "raw", 0.95, True, inverse=True)
    samples = {"sync": {"us_per_call": {"s": {"ours": [100.0, 50.0], "raw": [90.0, 60.0]}}}}
    target = rule.evaluate(samples)
    assert target is not None
    assert (target.ratio.low, target.ratio.high) == (0.9, 1.2)
    assert target.met is True  # median 1.05 >= 0.95


def test_a_rule_whose_scenario_did_not_run_is_left_out() -> None:
    """A target of a part not run (--parts) is absent, not judged on nothing."""
    assert run.build_targets({"async": {}, "sync": {}, "e2e": {}, "sessions": {}}) == []


def _content(full: bool) -> dict[str, Any]:
    header = {
        "command": "python tests/benchmarks/run.py",
        "django_asyncredis_revision": "abc1234",
        "date": "2026-01-01T00:00:00+00:00",
        "run_seconds": 605,
        "python": "CPython 3.11",
        "platform": "Linux",
        "cpu": "CPU",
        "cpu_count": 2,
        "usable_cpus": 2,
        "load_average_at_start": [0.1, 0.1, 0.1],
        "load_average_at_end": [1.0, 0.5, 0.2],
        "server": "redis 7",
        "server_binary": "redis-server",
        "server_url": "redis://127.0.0.1:1",
        "packages": {"redis": "8"},
        "redis_py_parser": "_HiredisParser",
        "valkey_py_parser": "not installed",
    }
    settings = {
        "full": full,
        **dict.fromkeys(("rounds", "slices", "e2e_rounds", "e2e_slices", "e2e_connections"), 1),
        **dict.fromkeys(("duration", "warmup", "e2e_duration", "e2e_warmup"), 0.1),
        "pin": "none",
    }
    target = report.Target("`aget 100B x64` throughput vs raw", Summary(6.5, 6.1, 6.9), 6.0, True)
    return {
        "header": header,
        "settings": settings,
        "tables": {},
        "server_reference": {"skipped": "not run (--parts)"},
        "targets": [
            {
                "description": target.description,
                "ratio": {"median": 6.5, "low": 6.1, "high": 6.9},
                "bound": 6.0,
                "at_least": True,
                "unit": "x",
                "met": target.met,
            }
        ],
    }


def test_the_results_section_states_command_commit_date_and_run_time(tmp_path: Path) -> None:
    """The generated section opens with the run it came from."""
    text = markdown.results(_content(full=True), [], tmp_path)
    assert (
        "one run of `python tests/benchmarks/run.py` at commit abc1234, started "
        "2026-01-01T00:00:00+00:00, which took 10 min 5 s." in text
    )
    assert (
        f"| `aget 100B x64` throughput vs raw ≥ 6x | **6.50x (6.10{markdown.DASH}6.90)** | yes |"
        in text
    )
    assert "partial or quick run" not in text


def test_a_quick_runs_section_says_it_is_not_the_published_figures(tmp_path: Path) -> None:
    """A partial run's Markdown is marked as such, whoever reads it."""
    assert "**A partial or quick run:**" in markdown.results(_content(full=False), [], tmp_path)


def test_chart_paths_are_relative_to_the_generated_file(tmp_path: Path) -> None:
    """docs/_generated/ points at docs/_static/ as ../_static/, for GitHub and for Sphinx."""
    chart = tmp_path / "_static" / "bench-async.png"
    text = markdown.results(_content(full=True), [chart], tmp_path / "_generated")
    assert "](../_static/bench-async.png)" in text


def test_the_near_cache_part_is_rated_against_the_same_backend_without_it(tmp_path: Path) -> None:
    """The Zipf 90/10 table holds the near-cache's calls/s, its hit ratio and the
    per-round ratio against the plain backend, and reaches the generated section."""
    scenario = near_zipf.ASYNC_SCENARIO
    near = {
        "ops_per_second": {scenario: {near_zipf.NEAR: [30.0, 40.0], near_zipf.PLAIN: [20.0, 20.0]}},
        "near_hit_percent": {
            scenario: {near_zipf.NEAR: [60.0, 70.0], near_zipf.PLAIN: [math.nan, math.nan]}
        },
    }
    tables, ratios = run.build_tables({}, {}, {}, {}, near)
    assert ratios[scenario, near_zipf.NEAR, near_zipf.PLAIN] == Summary(1.75, 1.5, 2.0)
    content = _content(full=False)
    content["tables"] = report.document({}, {}, {}, tables, [], {})["tables"]
    text = markdown.results(content, [], tmp_path)
    assert "### Near-cache, Zipf 90/10" in text
    row = (
        f"|  | {near_zipf.NEAR} | 35 (30{markdown.DASH}40) | 65 | 1.75x (1.50{markdown.DASH}2.00) |"
    )
    assert row in text
