"""A django-debug-toolbar panel with the request's cache calls, on both APIs.

The toolbar's own cache panel wraps the cache's sync method names, so the native
async calls (``aget``, ...) never reach it. This panel reads ``cache.stats``
instead: a snapshot when the request starts, the difference when it ends. The
counters are process-wide, so calls that other requests make meanwhile are
counted too; on the development server, one request at a time, they are the
request's own. Add it to ``DEBUG_TOOLBAR_PANELS`` (docs/observability.md).
"""

from __future__ import annotations

from typing import Any

from debug_toolbar.panels import Panel
from django.utils.html import format_html, format_html_join

from django_asyncredis._stats import all_stats

Row = tuple[str, str, str]  # alias, api, operation


def _snapshot() -> dict[Row, tuple[int, int, int, int, float]]:
    """(calls, hits, misses, errors, seconds) of every operation of every cache."""
    return {
        (stats.alias, api, name): (
            c.calls,
            c.hits,
            c.misses,
            sum(c.errors.values()),
            c.seconds,
        )
        for stats in all_stats()
        for api, name, c in stats.rows()
    }


class AsyncRedisPanel(Panel):
    """Cache calls per alias, API and operation during the request."""

    is_async = True  # the toolbar disables panels without it under ASGI
    title = "Cache (django-asyncredis)"
    nav_title = "asyncredis"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._before: dict[Row, tuple[int, int, int, int, float]] = {}

    def enable_instrumentation(self) -> None:
        self._before = _snapshot()

    def generate_stats(self, request: Any, response: Any) -> None:
        rows = []
        for key, now in sorted(_snapshot().items()):
            was = self._before.get(key, (0, 0, 0, 0, 0.0))
            calls, hits, misses, errors = (now[i] - was[i] for i in range(4))
            if calls:
                ms = round((now[4] - was[4]) * 1000, 3)
                rows.append([*key, calls, hits, misses, errors, ms])
        self.record_stats({"rows": rows, "calls": sum(row[3] for row in rows)})

    @property
    def nav_subtitle(self) -> str:
        calls = self.get_stats().get("calls", 0)
        return f"{calls} call{'' if calls == 1 else 's'}"

    @property
    def content(self) -> str:
        rows = self.get_stats().get("rows", [])
        body = format_html_join(
            "\n",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td></tr>",
            rows,
        )
        return str(
            format_html(
                "<table><thead><tr><th>alias</th><th>API</th><th>operation</th>"
                "<th>calls</th><th>hits</th><th>misses</th><th>errors</th><th>ms</th>"
                "</tr></thead><tbody>{}</tbody></table>",
                body,
            )
        )
