"""Run Django's own generic cache tests against django_asyncredis, through both APIs.

``nox -s django_contract`` runs this script once per Django LTS:

1. take Django's ``tests/cache`` package from the sdist of the installed Django
   (downloaded once, kept under tests/contract/_django/);
2. start a throwaway Redis/Valkey server (tests/servers.py);
3. run ``BaseCacheTests`` (and the one test of Django's ``RedisCacheTests``
   that is not about Django's client) on ``django_asyncredis.RedisCache`` the
   way Django's suite runs them on its own Redis backend: once as written,
   through the sync API, and once translated to the async API (asyncify.py), so
   both APIs meet the very same contract;
4. print one summary line per API, and the same counts as rows of the table
   in docs/contract.md; exit 1 if any test failed or errored.

Options: ``-k SUBSTRING`` runs only the matching tests, ``--api sync|async``
only one API, ``-v`` prints one line per test. Tests where the backend
deliberately differs are skipped with their reason (differences.py).
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
import unittest
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
WORK_DIR = HERE / "_django"
BACKEND = "django_asyncredis.RedisCache"
APIS = ("sync", "async")
#: The tests of Django's own ``RedisCacheTests`` that hold for any Redis backend:
#: they use only BaseCache's public API. Its others inspect Django's client
#: (``cache._cache``, its pools, its serializer, ``RedisCacheClient.get_client``)
#: and have no counterpart in ours.
REDIS_CACHE_TESTS = ("test_get_backend_timeout_method",)
#: The test module of the generated classes, so test ids read ``contract.SyncRedisCacheTests...``.
TEST_MODULE = "contract"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    # The repo root, for tests.servers and this package (run as a script, only
    # tests/contract/ is on the path).
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import django

    from tests.contract.django_sources import cache_test_root
    from tests.servers import ServerProcess

    sys.path.insert(0, str(cache_test_root(django.__version__, WORK_DIR)))
    server = ServerProcess().start()
    try:
        _configure_django(server.url)
        started = time.monotonic()
        outcomes = _run(args, server.url, WORK_DIR / f"django-{django.__version__}")
    finally:
        server.stop()
    return _report(outcomes, django.__version__, server.binary, time.monotonic() - started)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="pattern", help="run only the tests whose name contains this")
    parser.add_argument("--api", choices=APIS, help="run only this API (default: both)")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per test")
    return parser.parse_args(argv)


def _configure_django(location: str) -> None:
    """Minimal settings: Django's test app ``cache`` (its ``Poll`` model is cached
    by the model-instance tests) on in-memory SQLite, and our backend as default."""
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="django-asyncredis-contract",
        INSTALLED_APPS=["cache"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={"default": {"BACKEND": BACKEND, "LOCATION": location}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=True,
    )
    django.setup()


def _run(args: argparse.Namespace, location: str, work_dir: Path) -> dict[str, tuple[str, str]]:
    """Run the selected APIs in one test run (one test database); return the outcomes.

    The translated async classes are written to ``work_dir`` (``async_*.py``),
    to read or debug what actually ran.
    """
    from django.test.runner import DiscoverRunner

    from tests.contract.asyncify import build_async_class

    django_tests = importlib.import_module("cache.tests")
    loader = unittest.TestLoader()
    if args.pattern:
        loader.testNamePatterns = [f"*{args.pattern}*"]
    suite = unittest.TestSuite()
    for api in (args.api,) if args.api else APIS:
        if api == "sync":
            mixins = (django_tests.BaseCacheTests, _methods_of(django_tests.RedisCacheTests))
        else:
            mixins = (
                build_async_class(django_tests, "BaseCacheTests", work_dir),
                build_async_class(django_tests, "RedisCacheTests", work_dir, REDIS_CACHE_TESTS),
            )
        test_class = _contract_class(django_tests, mixins, api, location)
        suite.addTests(loader.loadTestsFromTestCase(test_class))

    runner = DiscoverRunner(verbosity=0, interactive=False)
    runner.setup_test_environment()
    old_config = runner.setup_databases(aliases={"default"}, serialized_aliases=set())
    try:
        result = unittest.TextTestRunner(
            stream=sys.stderr, verbosity=2 if args.verbose else 1, resultclass=_Outcomes
        ).run(suite)
    finally:
        runner.teardown_databases(old_config)
        runner.teardown_test_environment()
    assert isinstance(result, _Outcomes)
    return result.outcomes


def _methods_of(test_class: type) -> type:
    """A mixin with just the ``REDIS_CACHE_TESTS`` of Django's ``RedisCacheTests``."""
    methods = {name: vars(test_class)[name] for name in REDIS_CACHE_TESTS}
    return type("RedisCacheTestsSubset", (), methods)


def _contract_class(
    django_tests: ModuleType, mixins: tuple[type, ...], api: str, location: str
) -> type:
    """``class <Api>RedisCacheTests(*mixins, TestCase)`` with the settings of Django's
    own ``RedisCacheTests``: its cache aliases (``prefix``, ``v2``, the custom key
    functions) on our backend, without the culling caches Redis has no use for
    (it evicts by ``maxmemory-policy``), so the culling tests skip as for Django's.

    Django's ``RedisCacheTests`` also overrides ``incr_decr_type_error`` (redis-py's
    ``ResponseError``, what its backend lets through); ours raises
    ``BaseCacheTests``' default, ``TypeError``, so nothing is overridden.
    """
    from django.test import TestCase, override_settings

    from tests.contract.differences import DELIBERATE_DIFFERENCES

    name = f"{api.capitalize()}RedisCacheTests"
    namespace: dict[str, Any] = {"__module__": TEST_MODULE, "__qualname__": name}
    for test_name, reason in DELIBERATE_DIFFERENCES.items():
        test = next((vars(m)[test_name] for m in mixins if test_name in vars(m)), None)
        if test is not None:
            namespace[test_name] = unittest.skip(f"deliberate: {reason}")(test)
        else:
            print(f"note: {test_name} (in differences.py) is not a test of this Django")
    test_class = type(name, (*mixins, TestCase), namespace)
    caches = django_tests.caches_setting_for_tests(
        base={"BACKEND": BACKEND, "LOCATION": location},
        exclude=django_tests.redis_excluded_caches,
    )
    decorated: type = override_settings(CACHES=caches)(test_class)
    return decorated


class _Outcomes(unittest.TextTestResult):
    """Also records one outcome per test: passed, failed, error or skipped (with
    the reason), so a test whose subtests fail counts once."""

    _RANK: ClassVar[dict[str, int]] = {"passed": 0, "skipped": 0, "failed": 1, "error": 2}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes: dict[str, tuple[str, str]] = {}

    def _mark(self, test: unittest.TestCase, outcome: str) -> None:
        """Keep the worst outcome: a test with a failing and an erroring subtest errored."""
        previous = self.outcomes.get(test.id(), ("passed", ""))
        if self._RANK[outcome] >= self._RANK[previous[0]]:
            self.outcomes[test.id()] = (outcome, "")

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        self.outcomes[test.id()] = ("passed", "")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self._mark(test, "failed")

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self._mark(test, "error")

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._mark(test, "failed" if issubclass(err[0], test.failureException) else "error")

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self.outcomes[test.id()] = ("skipped", reason)

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self._mark(test, "failed")


def _report(outcomes: dict[str, tuple[str, str]], version: str, binary: str, took: float) -> int:
    python = platform.python_version()
    print(f"\nDjango {version} cache tests on {BACKEND} ({Path(binary).name}), {took:.1f} s")
    if not outcomes:
        print("no test ran (does -k match a test name?)")
        return 1
    failed = False
    skipped: dict[tuple[str, str], list[str]] = {}
    rows = []
    for api in APIS:
        prefix = f"{TEST_MODULE}.{api.capitalize()}RedisCacheTests"
        mine = {test_id: outcome for test_id, outcome in outcomes.items() if prefix in test_id}
        if not mine:
            continue
        counts = Counter(outcome for outcome, _ in mine.values())
        failed = failed or bool(counts["failed"] or counts["error"])
        print(
            f"{api + ':':<6} {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['error']} errors, {counts['skipped']} skipped"
        )
        rows.append(
            f"| {version} | {python} | {api} | {counts['passed']} | {counts['failed']} "
            f"| {counts['error']} | {counts['skipped']} |"
        )
        for test_id, (outcome, reason) in sorted(mine.items()):
            test_name = test_id.rsplit(".", 1)[-1]
            if outcome == "skipped":
                skipped.setdefault((test_name, reason), []).append(api)
            elif outcome != "passed":
                print(f"  {outcome}: {test_name}")
    for (test_name, reason), apis in sorted(skipped.items()):
        print(f"  skipped ({', '.join(apis)}): {test_name}: {reason}")
    print("docs/contract.md rows (Django | Python | API | passed | failed | errors | skipped):")
    print("\n".join(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
