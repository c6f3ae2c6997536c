"""Every developer task, one session each: ``nox -s tests``, ``nox -s demo``, ...

``tests`` and ``django_contract`` run the support matrix, ``MATRIX``: each
Python version with the Django releases tested on it (Django 6.x needs Python
3.12+). A Python nox cannot find is skipped locally and an error in CI (nox sets
``error_on_missing_interpreters`` when ``CI`` is set); ``bash .ci/python3.13``
prints a directory to put on PATH for the 3.13 sessions, building CPython 3.13
once if the machine has none. The other sessions use the interpreter nox runs
with (Python 3.11+).

The pyproject classifiers and the README's table list exactly this matrix
(tests/test_support_matrix.py checks it).
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

#: Python version -> the Django releases tested on it.
MATRIX = {"3.11": ("4.2", "5.2"), "3.13": ("5.2", "6.0", "6.1")}
DJANGO_REQUIREMENTS = {
    "4.2": "django>=4.2,<4.3",
    "5.2": "django>=5.2,<5.3",
    "6.0": "django>=6.0,<6.1",
    "6.1": "django>=6.1,<6.2",
}
#: Where the Redis Cluster and Sentinel tests run: the newest stack, whose
#: asyncio is the one furthest from 3.11's (the main suite covers 3.11).
CLUSTER_STACK = ("3.13", "6.1")
DEV = ".[dev,hiredis,msgpack,lz4,zstd]"
#: The tests whose subject is the async transport, run once per transport.
TRANSPORT_TESTS = (
    "tests/test_connections.py",
    "tests/test_faults.py",
    "tests/test_dead_connections.py",
    "tests/test_loops.py",
    "tests/test_retries.py",
    "tests/test_multiplex.py",
    "tests/test_pinned.py",
    "tests/test_tls.py",
)

_STACKS = [
    nox.param(python, django, id=f"{python}-django{django}")
    for python, djangos in MATRIX.items()
    for django in djangos
]


@nox.session
@nox.parametrize(("python", "django"), _STACKS)
def tests(session: nox.Session, django: str) -> None:
    """pytest against a throwaway real server, on every Python/Django pair of ``MATRIX``."""
    session.install(DEV, DJANGO_REQUIREMENTS[django])
    session.run("pytest", *session.posargs)
    # The default transport is the multiplexed one: the connection tests again on
    # the pooled one (its failures, cancellations, restarts, forks and loops).
    session.run(
        "pytest",
        *TRANSPORT_TESTS,
        *session.posargs,
        env={"ASYNCREDIS_TRANSPORT": "pooled"},
    )


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", DEV, "mypy>=1.13", "django-stubs>=5.1")
    session.run("mypy")


@nox.session
@nox.parametrize(("python", "django"), _STACKS)
def django_contract(session: nox.Session, django: str) -> None:
    """Django's own BaseCacheTests against our backend, through the sync and the async API."""
    session.install(DEV, DJANGO_REQUIREMENTS[django])
    session.run("python", "tests/contract/run.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the peers, interleaved in one run, reported as ratios.

    The peers are installed here (django-redis; django-valkey with libvalkey, its
    hiredis); matplotlib draws the charts. A full run of every part writes the results
    section of docs/benchmarks.md (docs/_generated/benchmarks-results.md) and the charts
    (docs/_static); ``-- --quick`` (a 30-second smoke test) or ``--parts`` write them
    next to the JSON file instead. docs/benchmarks.md describes the rest.
    """
    session.install(DEV, "django-redis", "django-valkey[libvalkey]", "matplotlib")
    session.run("python", "tests/benchmarks/run.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The example ASGI project under uvicorn, on REDIS_URL or an embedded server."""
    import signal

    session.install(DEV)
    # Ctrl-C reaches the demo too (same terminal): nox waits interrupt_timeout for
    # it to stop uvicorn and its embedded server, then sends SIGTERM. A signal for
    # nox alone (kill, or a shell that ignores SIGINT) takes the same path rather
    # than killing nox and leaving the demo running.
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, signal.default_int_handler)
    try:
        session.run(
            "python",
            "examples/run_demo.py",
            *session.posargs,
            interrupt_timeout=2,
            terminate_timeout=15,
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (Sphinx, Furo, MyST) in docs/_build/html; warnings are errors.

    The pages are Markdown, readable on GitHub as they are; docs/conf.py configures
    Sphinx and docs/index.md holds the navigation. tests/test_docs.py runs every
    code example they contain as part of ``nox -s tests``.
    """
    session.install(".[docs]")
    session.run(
        "sphinx-build",
        "-E",  # a fresh read of every page, so no warning hides in a cached one
        "-W",
        "--keep-going",
        "-n",
        "-b",
        "html",
        "-d",
        "docs/_build/doctrees",
        "docs",
        "docs/_build/html",
        *session.posargs,
    )


@nox.session(python=CLUSTER_STACK[0])
def tests_cluster(session: nox.Session) -> None:
    """Redis Cluster and Sentinel tests, on topologies the fixtures start locally.

    Not part of ``nox -s tests``: pyproject's addopts ignore tests/cluster, since
    each failover takes seconds. Replacing addopts (same options, minus the
    --ignore flags) is what lets pytest collect the directory here.
    """
    session.install(DEV, DJANGO_REQUIREMENTS[CLUSTER_STACK[1]])
    session.run(
        "pytest",
        "tests/cluster",
        "-p",
        "no:cacheprovider",
        "--override-ini",
        "addopts=-ra --strict-markers --strict-config -p no:valkey -p no:ddtrace",
        *session.posargs,
    )
