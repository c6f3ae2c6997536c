"""Smoke tests of the topologies themselves (tests/topologies.py), before any cache runs on them.

If these fail, a Cluster or Sentinel test failure says nothing about the cache
backend. Each failover is bounded: a fixture that needs more than the bound
to recover is a broken fixture, not a slow machine.
"""

from __future__ import annotations

import time

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel as SentinelClient

from tests.topologies import CLUSTER_SLOTS, Cluster, Sentinel, command

FAILOVER_BOUND = 20.0  # seconds; measured at 2-3 s on a two-core machine


def _cluster_client(cluster: Cluster) -> RedisCluster:
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster.startup_nodes],
        decode_responses=True,
    )


def test_cluster_state_ok_on_every_node(cluster: Cluster) -> None:
    assert len(cluster.primaries) == 3
    assert len(cluster.replicas) == 3
    for _, port in cluster.startup_nodes:
        info = command(port, "CLUSTER", "INFO")
        assert "cluster_state:ok" in info
        assert f"cluster_slots_ok:{CLUSTER_SLOTS}" in info
        assert "cluster_known_nodes:6" in info


def test_cluster_client_reads_back_keys_from_every_slot_range(cluster: Cluster) -> None:
    client = _cluster_client(cluster)
    try:
        keys = [f"key:{i}" for i in range(100)]
        for key in keys:
            client.set(key, key.upper())
        assert [client.get(key) for key in keys] == [key.upper() for key in keys]
        # The keys landed on every primary, so every slot range was exercised.
        assert all(int(command(port, "DBSIZE")) > 0 for _, port in cluster.primaries)
    finally:
        client.close()


def test_cluster_fails_over_a_killed_primary(cluster: Cluster) -> None:
    client = _cluster_client(cluster)
    try:
        keys = [f"before:{i}" for i in range(50)]
        for key in keys:
            client.set(key, "kept")
        cluster.wait_for_replication()
        replicas_before = set(cluster.replicas)

        started = time.monotonic()
        killed = cluster.kill_primary(1)
        promoted = cluster.wait_for_failover(killed, timeout=FAILOVER_BOUND)
        assert time.monotonic() - started < FAILOVER_BOUND

        assert promoted != killed
        assert promoted in replicas_before
        assert cluster.primaries[1] == promoted
        assert killed not in cluster.startup_nodes
        # What reached the replica before the crash survives, and the client
        # follows the new slot map to write again.
        assert [client.get(key) for key in keys] == ["kept"] * len(keys)
        for key in keys:
            client.set(key, "after")
        assert {client.get(key) for key in keys} == {"after"}
    finally:
        client.close()


def test_cluster_heal_brings_the_killed_node_back_as_a_replica(cluster: Cluster) -> None:
    killed = cluster.kill_primary(0)
    promoted = cluster.wait_for_failover(killed, timeout=FAILOVER_BOUND)
    cluster.heal()
    assert killed in cluster.replicas
    assert cluster.primaries[0] == promoted
    assert len(cluster.startup_nodes) == 6


def test_sentinels_report_the_primary(sentinel: Sentinel) -> None:
    host, port = sentinel.primary_address()
    assert command(port, "ROLE")[0] == "master"
    assert len(sentinel.sentinels) == 3
    for _, sentinel_port in sentinel.sentinels:
        assert command(
            sentinel_port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", sentinel.service_name
        ) == [host, str(port)]
    (replica,) = sentinel.replica_addresses()
    assert command(replica[1], "ROLE")[0] == "slave"


def test_redis_py_sentinel_client_reaches_primary_and_replica(sentinel: Sentinel) -> None:
    client = SentinelClient(sentinel.sentinels, socket_timeout=2)
    primary = client.master_for(sentinel.service_name, decode_responses=True)
    replica = client.slave_for(sentinel.service_name, decode_responses=True)
    try:
        assert client.discover_master(sentinel.service_name) == sentinel.primary_address()
        primary.set("greeting", "hello")
        sentinel.wait_for_replication()
        assert replica.get("greeting") == "hello"
        try:
            replica.set("greeting", "from the replica")
            raise AssertionError("a replica accepted a write")
        except redis.ReadOnlyError:
            pass
    finally:
        primary.close()
        replica.close()
        for sentinel_connection in client.sentinels:
            sentinel_connection.close()


def test_sentinels_promote_the_replica_when_the_primary_dies(sentinel: Sentinel) -> None:
    client = SentinelClient(sentinel.sentinels, socket_timeout=2)
    primary = client.master_for(sentinel.service_name, decode_responses=True)
    try:
        primary.set("survivor", "yes")
        sentinel.wait_for_replication()
        (replica,) = sentinel.replica_addresses()

        started = time.monotonic()
        killed = sentinel.kill_primary()
        promoted = sentinel.wait_for_failover(timeout=FAILOVER_BOUND)
        assert time.monotonic() - started < FAILOVER_BOUND

        assert promoted == replica != killed
        assert sentinel.primary_address() == promoted
        # The sentinel-aware client asks the sentinels again after its
        # connection to the dead primary fails.
        assert primary.get("survivor") == "yes"
        primary.set("survivor", "promoted")
        assert command(promoted[1], "GET", "survivor") == "promoted"
    finally:
        primary.close()
        for sentinel_connection in client.sentinels:
            sentinel_connection.close()


def test_cluster_reset_gives_moved_and_migrating_slots_back(cluster: Cluster) -> None:
    """Tests of MOVED and ASK leave slots elsewhere; the fixture's reset undoes that."""
    ids = {port: command(port, "CLUSTER", "MYID") for _, port in cluster.startup_nodes}
    (_, first), (_, second), (_, third) = cluster.primaries
    # Slot 0, the first of range 0, moves to the second primary ...
    command(second, "CLUSTER", "SETSLOT", 0, "IMPORTING", ids[first])
    command(first, "CLUSTER", "SETSLOT", 0, "MIGRATING", ids[second])
    for port in (second, first, third):
        command(port, "CLUSTER", "SETSLOT", 0, "NODE", ids[second])
    # ... and slot 1 is left half-migrated to the third.
    command(third, "CLUSTER", "SETSLOT", 1, "IMPORTING", ids[first])
    command(first, "CLUSTER", "SETSLOT", 1, "MIGRATING", ids[third])
    cluster.wait_healthy()
    assert cluster.primaries[0] == ("127.0.0.1", second)

    cluster.reset()

    assert [port for _, port in cluster.primaries] == [first, second, third]
    for _, port in cluster.startup_nodes:
        assert "[" not in command(port, "CLUSTER", "NODES")
