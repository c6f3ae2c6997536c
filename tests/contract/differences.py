"""Tests of Django's ``BaseCacheTests`` where django_asyncredis deliberately differs.

Each entry maps a test method name to the reason; the runner skips that test in
both the sync and the async run, with the reason as the skip message, and
docs/contract.md lists them. Only a *deliberate, documented* difference
belongs here: a failure that looks like a bug is to be fixed in the backend,
not listed.
"""

from __future__ import annotations

DELIBERATE_DIFFERENCES: dict[str, str] = {
    # From Django's RedisCacheTests (run.REDIS_CACHE_TESTS), which expects whole
    # seconds clamped at 0: get_backend_timeout(10) == 10, (-5) == 0.
    "test_get_backend_timeout_method": (
        "get_backend_timeout() is in milliseconds (10 s gives 10000) so that"
        " a timeout of 0.5 means half a second, not expire now; a negative"
        " timeout stays negative, which also means expire now"
    ),
}
