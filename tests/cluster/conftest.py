"""Fixtures for the Redis Cluster and Sentinel tests: one topology of each per session.

Started once (a few seconds each) and shared, so every test gets a topology in
a known state: after each test that used one, whatever it killed is restarted
as a replica, the data is flushed and (cluster) moved slots go back. These tests run with
``nox -s tests_cluster``, not in the default ``pytest`` run (see pyproject's
addopts), because each failover costs seconds of wall time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.topologies import Cluster, Sentinel

TOPOLOGY_FIXTURES = ("cluster", "sentinel")


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """Three primaries, one replica each, on loopback."""
    with Cluster(primaries=3, replicas_per_primary=1) as topology:
        yield topology


@pytest.fixture(scope="session")
def sentinel() -> Iterator[Sentinel]:
    """A primary, one replica and three sentinels (quorum 2) on loopback."""
    with Sentinel(service_name="mymaster", replicas=1, sentinel_count=3) as topology:
        yield topology


@pytest.fixture(autouse=True)
def _restore_topologies(request: pytest.FixtureRequest) -> Iterator[None]:
    """Reset the shared topologies a test used, so the next one starts whole and empty.

    The topologies are looked up before the test (teardown is too late to
    request a fixture), and only those the test asked for, so a test that uses
    neither starts neither.
    """
    used = [
        request.getfixturevalue(name) for name in TOPOLOGY_FIXTURES if name in request.fixturenames
    ]
    yield
    for topology in used:
        topology.reset()
