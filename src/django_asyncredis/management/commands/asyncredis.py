"""``manage.py asyncredis ping|stats|keys|clear``: look at the caches from a shell.

Uses the cache's public API and ``get_redis_connection`` only. Each subcommand
takes ``--alias`` (repeatable; default: every cache using this backend) and
``--json`` (one JSON document on stdout, for scripts).

The call counters of ``cache.stats`` are per process: this command's own process
has made no calls, so ``stats`` shows the server's side (INFO) and this
process's pool gauges; the application's counters are read in the application
(``cache.stats``, the demo's /health, OpenTelemetry).
"""

from __future__ import annotations

import json
import time
from argparse import ArgumentParser
from typing import Any

from django.core.cache import caches
from django.core.management.base import BaseCommand, CommandError

from django_asyncredis import get_redis_connection
from django_asyncredis.checks import our_caches

#: What ``stats`` reads from INFO: the essentials of a cache server's health.
INFO_FIELDS = (
    "redis_version",
    "used_memory",
    "used_memory_human",
    "maxmemory",
    "maxmemory_policy",
    "connected_clients",
    "keyspace_hits",
    "keyspace_misses",
    "evicted_keys",
    "expired_keys",
)


class Command(BaseCommand):
    help = "Ping, inspect and clear the django-asyncredis caches."

    def add_arguments(self, parser: ArgumentParser) -> None:
        common = ArgumentParser(add_help=False)
        common.add_argument(
            "--alias",
            action="append",
            dest="aliases",
            help="A CACHES alias (repeatable); default: every django-asyncredis cache.",
        )
        common.add_argument("--json", action="store_true", help="Print JSON, for machines.")
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("ping", parents=[common], help="Server version and round-trip latency.")
        actions.add_parser(
            "stats", parents=[common], help="Memory, hit ratio, evictions, clients (INFO)."
        )
        keys = actions.add_parser(
            "keys", parents=[common], help="Keys matching a pattern (SCAN, bounded)."
        )
        keys.add_argument("pattern", help="A glob, as for cache.keys(), e.g. 'session:*'.")
        keys.add_argument("--limit", type=int, default=100, help="Keys to print (100).")
        keys.add_argument(
            "--max-count", type=int, default=100_000, help="Stop counting here (100000)."
        )
        clear = actions.add_parser("clear", parents=[common], help="Delete every key (FLUSHDB).")
        clear.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Do not ask for confirmation.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        aliases = self._aliases(options["aliases"])
        action = options["action"]
        if action == "clear":
            if not options["aliases"]:
                raise CommandError("clear needs --alias: name the cache to empty.")
            report = self._clear(aliases, options["interactive"])
        elif action == "ping":
            report = {alias: _ping(alias) for alias in aliases}
        elif action == "stats":
            report = {alias: _stats(alias) for alias in aliases}
        else:
            report = {
                alias: _keys(alias, options["pattern"], options["limit"], options["max_count"])
                for alias in aliases
            }
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True, default=str))
        else:
            self.stdout.write(_text(action, report))

    def _aliases(self, chosen: list[str] | None) -> list[str]:
        ours = [alias for alias, _ in our_caches()]
        if not chosen:
            if not ours:
                raise CommandError("No cache in CACHES uses django_asyncredis.RedisCache.")
            return ours
        unknown = [alias for alias in chosen if alias not in ours]
        if unknown:
            raise CommandError(
                f"Not a django-asyncredis cache: {', '.join(unknown)} (ours: {', '.join(ours)})."
            )
        return chosen

    def _clear(self, aliases: list[str], interactive: bool) -> dict[str, Any]:
        report: dict[str, Any] = {}
        for alias in aliases:
            where = _where(alias)
            if interactive:
                answer = input(
                    f"This deletes EVERY key in {where} (cache {alias!r}), not only this "
                    "cache's. Type 'yes' to continue: "
                )
                if answer.strip().lower() != "yes":
                    report[alias] = {"cleared": False, "server": where}
                    continue
            caches[alias].clear()
            report[alias] = {"cleared": True, "server": where}
        return report


def _where(alias: str) -> str:
    cache: Any = caches[alias]
    return str(cache._config.servers[0]) if cache._config.mode != "sentinel" else alias


def _ping(alias: str) -> dict[str, Any]:
    client = get_redis_connection(alias)
    try:
        start = time.perf_counter()
        client.ping()
        latency = time.perf_counter() - start
        version = client.info("server").get("redis_version")
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "server": _where(alias)}
    return {
        "ok": True,
        "server": _where(alias),
        "version": version,
        "latency_ms": round(latency * 1000, 3),
    }


def _stats(alias: str) -> dict[str, Any]:
    cache: Any = caches[alias]
    client = get_redis_connection(alias)
    info = client.info()
    server = {field: info.get(field) for field in INFO_FIELDS}
    reads = (info.get("keyspace_hits") or 0) + (info.get("keyspace_misses") or 0)
    server["hit_ratio"] = round(info["keyspace_hits"] / reads, 4) if reads else None
    server["keys"] = client.dbsize()
    return {
        "server": server,
        "address": _where(alias),
        "pools": cache.stats.pools(),
    }


def _keys(alias: str, pattern: str, limit: int, max_count: int) -> dict[str, Any]:
    shown: list[str] = []
    count = 0
    for key in caches[alias].iter_keys(pattern, itersize=1000):  # type: ignore[attr-defined]
        if count < limit:
            shown.append(str(key))
        count += 1
        if count >= max_count:
            break
    return {"pattern": pattern, "count": count, "complete": count < max_count, "keys": shown}


def _text(action: str, report: dict[str, Any]) -> str:
    """The report for a terminal: one block per alias."""
    lines: list[str] = []
    for alias, entry in report.items():
        if action == "ping":
            if entry["ok"]:
                lines.append(
                    f"{alias}: {entry['server']} Redis {entry['version']}, "
                    f"{entry['latency_ms']:.2f} ms"
                )
            else:
                lines.append(f"{alias}: {entry['server']} DOWN: {entry['error']}")
        elif action == "stats":
            server = entry["server"]
            ratio = server["hit_ratio"]
            lines.append(f"{alias}: {entry['address']}")
            lines.append(f"  memory used       {server['used_memory_human']}")
            lines.append(
                f"  maxmemory         {server['maxmemory']} ({server['maxmemory_policy']})"
            )
            lines.append(f"  keys              {server['keys']}")
            lines.append(
                "  hit ratio         "
                + (f"{ratio:.1%}" if ratio is not None else "no reads yet")
                + f" ({server['keyspace_hits']} hits, {server['keyspace_misses']} misses)"
            )
            lines.append(f"  evicted keys      {server['evicted_keys']}")
            lines.append(f"  expired keys      {server['expired_keys']}")
            lines.append(f"  connected clients {server['connected_clients']}")
            for pool in entry["pools"]:  # this process's pools (see the module's docstring)
                shared = f", {pool['shared']} shared" if pool["shared"] else ""
                lines.append(
                    f"  pool ({pool['api']}) {pool['server']}: {pool['in_use']} in use{shared}, "
                    f"{pool['idle']} idle, {pool['waiters']} waiting, "
                    f"{pool['waited_total']} waits ({pool['wait_seconds_total']:.3f} s), "
                    f"{pool['opened_total']} opened, {pool['closed_total']} closed"
                )
        elif action == "keys":
            more = "" if entry["complete"] else "+ (stopped counting)"
            lines.append(f"{alias}: {entry['count']}{more} keys match {entry['pattern']!r}")
            lines.extend(f"  {key}" for key in entry["keys"])
            if entry["count"] > len(entry["keys"]):
                lines.append(f"  ... {entry['count'] - len(entry['keys'])} more")
        else:
            state = "cleared" if entry["cleared"] else "left as it was"
            lines.append(f"{alias}: {entry['server']} {state}")
    return "\n".join(lines)
