"""Every developer task, one session each: ``nox -s tests``, ``nox -s demo``, ...

Only the interpreter nox runs with is used (Python 3.11+ here); the Django
version of ``tests`` is a parameter, and CI runs both LTS releases.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

DJANGO_VERSIONS = {"4.2": "django>=4.2,<4.3", "5.2": "django>=5.2,<5.3"}
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


@nox.session
@nox.parametrize("django", list(DJANGO_VERSIONS), ids=list(DJANGO_VERSIONS))
def tests(session: nox.Session, django: str) -> None:
    """pytest against a throwaway real server; ``nox -s tests`` runs every Django LTS."""
    session.install(DEV, DJANGO_VERSIONS[django])
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
@nox.parametrize("django", list(DJANGO_VERSIONS), ids=list(DJANGO_VERSIONS))
def django_contract(session: nox.Session, django: str) -> None:
    """Django's own BaseCacheTests against our backend, through the sync and the async API."""
    session.install(DEV, DJANGO_VERSIONS[django])
    session.run("python", "tests/contract/run.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the peers, interleaved in one run, reported as ratios.

    The peers are installed here (django-redis; django-valkey with libvalkey, its
    hiredis); matplotlib draws the charts into docs/_static. ``-- --quick`` is a
    30-second smoke test; docs/benchmarks.md describes the rest.
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


@nox.session
def tests_cluster(session: nox.Session) -> None:
    """Redis Cluster and Sentinel tests, on topologies the fixtures start locally.

    Not part of ``nox -s tests``: pyproject's addopts ignore tests/cluster, since
    each failover takes seconds. Replacing addopts (same options, minus the
    --ignore flags) is what lets pytest collect the directory here.
    """
    session.install(DEV, DJANGO_VERSIONS["5.2"])
    session.run(
        "pytest",
        "tests/cluster",
        "-p",
        "no:cacheprovider",
        "--override-ini",
        "addopts=-ra --strict-markers --strict-config -p no:valkey",
        *session.posargs,
    )
