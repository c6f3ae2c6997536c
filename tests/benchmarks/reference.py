"""The server's own limit: valkey-benchmark or redis-benchmark against the same server.

A C client with 64 connections, one command per round trip (``-P 1``), 100 B
values over 1000 keys: what the server can answer on this machine when the
client costs next to nothing. A reference line, not a contender: no Python
client can reach it, and the gap shows how much of the time is the client's.
Skipped (and said so) when neither tool is on PATH (Debian: ``redis-tools``).
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

CLIENTS = 64
TOOLS = ("valkey-benchmark", "redis-benchmark")


def run(url: str, requests: int, timeout: float = 120.0) -> dict[str, Any]:
    """GET and SET ops/s, p50 and p99 (ms), or the reason there are none."""
    tool = next((found for name in TOOLS if (found := shutil.which(name))), None)
    if tool is None:
        return {"skipped": f"neither {' nor '.join(TOOLS)} is on PATH"}
    parts = urlsplit(url)
    if parts.scheme != "redis" or parts.password:
        return {"skipped": f"only a plain redis:// URL without a password ({url})"}
    args = [
        tool,
        "-h", parts.hostname or "127.0.0.1",
        "-p", str(parts.port or 6379),
        "-c", str(CLIENTS),
        "-n", str(requests),
        "-P", "1",
        "-d", "100",
        "-r", "1000",
        "-t", "set,get",
        "--csv",
    ]  # fmt: skip
    try:
        completed = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"skipped": f"{tool} failed: {exc}"}
    if completed.returncode != 0:
        return {"skipped": f"{tool} exited {completed.returncode}: {completed.stderr[-300:]}"}
    version = subprocess.run(
        [tool, "--version"], capture_output=True, text=True, timeout=10
    ).stdout.strip()
    result: dict[str, Any] = {
        "tool": version or tool,
        "command": " ".join(args),
        "clients": CLIENTS,
        "requests": requests,
    }
    for row in csv.DictReader(io.StringIO(completed.stdout)):
        result[row["test"]] = {
            "ops_per_second": float(row["rps"]),
            "p50_ms": float(row.get("p50_latency_ms") or "nan"),
            "p99_ms": float(row.get("p99_latency_ms") or "nan"),
        }
    return result


def describe(result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"Server limit: skipped ({result['skipped']})"
    lines = [f"Server limit ({result['tool']}, -c {result['clients']} -P 1, 100 B values):"]
    for command in ("GET", "SET"):
        if command in result:
            figures = result[command]
            lines.append(
                f"  {command}: {figures['ops_per_second']:,.0f} ops/s, "
                f"p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms"
            )
    return "\n".join(lines)
