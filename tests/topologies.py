"""Redis Cluster and Sentinel topologies on loopback, started in seconds for the tests.

Each topology is made of the same throwaway servers as ``tests/servers.py``
(same binary choice: Redis 7.0+ or Valkey), wired by hand with the commands an
operator would use, so no ``redis-cli`` and no Docker are needed. Every wait is
a bounded poll: a topology that cannot come up fails with what it last saw
instead of hanging the test run.

Failover is real: ``kill_primary`` SIGKILLs a process, as a crash would, and the
cluster bus or the sentinels promote its replica on their own. ``heal()`` brings
the killed servers back as replicas, so a long-lived fixture stays whole for the
next test.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import redis
from redis.connection import Connection

from tests.servers import ServerProcess, free_port

HOST = "127.0.0.1"
CLUSTER_SLOTS = 16384

Address = tuple[str, int]
# A Cluster slot map: sorted (first slot, last slot, primary port, replica ports).
SlotMap = list[tuple[int, int, int, tuple[int, ...]]]
T = TypeVar("T")
P = TypeVar("P", bound=ServerProcess)

# Options for every data-bearing node of a topology, each saving seconds:
# - a primary delays a full sync by repl-diskless-sync-delay (5 s by default) in
#   case more replicas join the transfer; with one replica that is pure delay, at
#   start and after every failover;
# - a primary with no writes pings its replicas every repl-ping-replica-period
#   (10 s by default), and until that first byte of stream a replica's offset is 0,
#   which CLUSTER SLOTS reads as "not available yet" and leaves the replica out.
_DATA_NODE_ARGS = ("--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1")


class NotReady(Exception):
    """A polled condition does not hold yet; the message says what is missing."""


def command(port: int, *args: str | int, timeout: float = 2.0) -> Any:
    """Send one command to ``127.0.0.1:port`` on a fresh connection; return the raw reply.

    The reply is exactly what the server sent in RESP2 (decoded strings, nested
    lists), with none of redis-py's per-command reshaping: those parsers differ
    between redis-py versions and between RESP2 and RESP3, and the helpers below
    need the documented wire format of CLUSTER SLOTS or SENTINEL REPLICAS.
    """
    connection = Connection(
        host=HOST,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        protocol=2,
    )
    try:
        connection.send_command(*args)
        return connection.read_response()
    finally:
        connection.disconnect()


def poll(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call ``check`` until it returns instead of raising NotReady or a connection error.

    Bounded by ``timeout``; on expiry, raise TimeoutError naming ``what`` and the
    last reason, which is what one needs to see in a failed CI log.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            return check()
        except (NotReady, OSError, redis.RedisError) as error:
            last = error
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not reached within {timeout} s (last: {last})")
        time.sleep(interval)


def _info(port: int, section: str) -> dict[str, str]:
    """INFO ``section`` (or CLUSTER INFO when ``section`` is "cluster-info") as a dict."""
    text = (
        command(port, "CLUSTER", "INFO")
        if section == "cluster-info"
        else command(port, "INFO", section)
    )
    fields = {}
    for line in str(text).splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _pairs(flat: Sequence[Any]) -> dict[str, Any]:
    """A RESP2 flat [key, value, key, value, ...] reply (SENTINEL MASTER/REPLICAS) as a dict."""
    return {str(flat[i]): flat[i + 1] for i in range(0, len(flat) - 1, 2)}


def wait_for_replication(pairs: Sequence[tuple[int, int]], timeout: float = 10.0) -> None:
    """Wait until each (primary port, replica port) replica has caught up with what its
    primary had written when this was called, so a test can kill the primary and
    still expect its last writes on the replica (replication is asynchronous).
    """
    targets = [
        (primary, replica, int(_info(primary, "replication")["master_repl_offset"]))
        for primary, replica in pairs
    ]

    def caught_up() -> None:
        for primary, replica, offset in targets:
            info = _info(replica, "replication")
            if (
                info.get("master_link_status") != "up"
                or int(info.get("master_repl_offset", -1)) < offset
            ):
                raise NotReady(f"replica {replica} behind {primary} (offset {offset}): {info}")

    poll(caught_up, timeout, "replicas caught up")


def _owner(slot_map: SlotMap, slot: int) -> int:
    """The port of the primary serving ``slot`` in a Cluster slot map."""
    for first, last, primary, _ in slot_map:
        if first <= slot <= last:
            return primary
    raise NotReady(f"slot {slot} is not served")


def _alive(node: ServerProcess) -> bool:
    return node.process is not None and node.process.poll() is None


def _kill(node: ServerProcess) -> None:
    """SIGKILL, as a crash or an OOM kill would: no shutdown handshake, no final save."""
    assert node.process is not None, "the node is not running"
    node.process.kill()
    node.process.wait(5)


def _start_fresh(make: Callable[[int], P], attempts: int = 3) -> P:
    """Start ``make(port)`` on a free port, retrying on new ports if one was taken meanwhile.

    free_port() closes its probe socket before the server binds, so another
    process (another test run, say) can grab the port in between; the server
    then exits at start and ServerProcess raises RuntimeError.
    """
    for attempt in range(attempts):
        node = make(free_port())
        try:
            node.start()
        except RuntimeError:
            node.stop()
            if attempt == attempts - 1:
                raise
        else:
            return node
    raise AssertionError("unreachable")


class _Topology:
    """Context-manager plumbing shared by the topologies."""

    def start(self, timeout: float = 30.0) -> object:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- Redis Cluster --------------------------------------------------------------------------


class Cluster(_Topology):
    """``primaries`` cluster-enabled primaries, each with ``replicas_per_primary`` replicas.

    Slots are split into ``primaries`` equal ranges; ``primaries[i]`` is always the
    node currently serving range ``i``, so after a failover index ``i`` names the
    promoted replica. The node timeout is short (1 s) so a killed primary is
    failed over in a couple of seconds instead of the default fifteen or more.
    """

    def __init__(
        self,
        primaries: int = 3,
        replicas_per_primary: int = 1,
        node_timeout_ms: int = 1000,
    ) -> None:
        if not 1 <= primaries <= CLUSTER_SLOTS:
            raise ValueError("primaries must be between 1 and 16384")
        self.primary_count = primaries
        self.replicas_per_primary = replicas_per_primary
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[ServerProcess] = []
        self._bus_ports: dict[int, int] = {}  # client port -> cluster bus port
        self._killed: dict[Address, list[tuple[int, int]]] = {}  # killed primary -> its slots
        self.slot_ranges = [
            (i * CLUSTER_SLOTS // primaries, (i + 1) * CLUSTER_SLOTS // primaries - 1)
            for i in range(primaries)
        ]

    # Lifecycle ---------------------------------------------------------------------------

    def _make_node(self, port: int) -> ServerProcess:
        node = ServerProcess(port=port)
        self._bus_ports[port] = free_port()
        node.extra_args += [
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(node.directory / f"nodes-{port}.conf"),
            "--cluster-node-timeout", str(self.node_timeout_ms),
            # The bus port defaults to port + 10000, which may be taken or past
            # 65535 for an ephemeral port: pick a free one explicitly (Redis 7.0+).
            "--cluster-port", str(self._bus_ports[port]),
            # Name 127.0.0.1 in CLUSTER SLOTS and redirections from the start,
            # rather than whatever address a node learns from its peers.
            "--cluster-announce-ip", HOST,
            # A replica may always take over, however long its link was down:
            # the tests want the failover, not data-freshness guarantees.
            "--cluster-replica-validity-factor", "0",
            *_DATA_NODE_ARGS,
        ]  # fmt: skip
        return node

    def start(self, timeout: float = 30.0) -> Cluster:
        """Start every node, assign the slots, meet, replicate; return when all agree.

        Each primary gets a distinct config epoch before the MEETs (as
        ``redis-cli --cluster create`` does), so the nodes need not resolve epoch
        collisions first. Replicas are attached only once every node knows every
        other, since CLUSTER REPLICATE needs the primary's ID to be known.
        """
        try:
            total = self.primary_count * (1 + self.replicas_per_primary)
            for _ in range(total):  # one by one, so stop() sees each started node
                self.nodes.append(_start_fresh(self._make_node))
            ids = [str(command(node.port, "CLUSTER", "MYID")) for node in self.nodes]
            for i, (first, last) in enumerate(self.slot_ranges):
                port = self.nodes[i].port
                command(port, "CLUSTER", "ADDSLOTSRANGE", first, last)
                command(port, "CLUSTER", "SET-CONFIG-EPOCH", i + 1)
            for node in self.nodes[1:]:
                command(
                    self.nodes[0].port,
                    "CLUSTER",
                    "MEET",
                    HOST,
                    node.port,
                    self._bus_ports[node.port],
                )

            def everyone_knows_everyone() -> None:
                for node in self.nodes:
                    known = self._cluster_nodes(node.port)
                    missing = [i for i in ids if i not in known or "handshake" in known[i]]
                    if missing:
                        raise NotReady(f"{node.port} does not know {missing} yet")

            poll(everyone_knows_everyone, timeout, "every cluster node knows every other")
            for r, replica in enumerate(self.nodes[self.primary_count :]):
                primary_id = ids[r % self.primary_count]
                command(replica.port, "CLUSTER", "REPLICATE", primary_id)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []

    # Views of the current topology ----------------------------------------------------------

    @property
    def live_nodes(self) -> list[ServerProcess]:
        return [node for node in self.nodes if _alive(node)]

    @property
    def startup_nodes(self) -> list[Address]:
        """Every live node, as a cluster client's startup nodes (any one would do)."""
        return [(HOST, node.port) for node in self.live_nodes]

    @property
    def primaries(self) -> list[Address]:
        """The primary serving the first slot of each slot range, as a live node sees it.

        Indexed by range, not by node, so ``primaries[i]`` after a failover is
        the replica that took range ``i`` over.
        """
        slot_map = self._slot_map(self._any_live())
        return [(HOST, _owner(slot_map, first)) for first, _ in self.slot_ranges]

    @property
    def replicas(self) -> list[Address]:
        """The replicas in the slot map, grouped by the slot range of their primary."""
        return [
            (HOST, port) for _, _, _, ports in self._slot_map(self._any_live()) for port in ports
        ]

    def _any_live(self) -> int:
        for node in self.live_nodes:
            return node.port
        raise RuntimeError("no cluster node is running")

    @staticmethod
    def _cluster_nodes(port: int) -> dict[str, str]:
        """CLUSTER NODES as {node id: flags}."""
        table = {}
        for line in str(command(port, "CLUSTER", "NODES")).splitlines():
            fields = line.split()
            if len(fields) >= 3:
                table[fields[0]] = fields[2]
        return table

    @staticmethod
    def _slot_map(port: int) -> SlotMap:
        """CLUSTER SLOTS as sorted (first, last, primary port, replica ports), comparable as is."""
        entries = []
        for first, last, primary, *replicas in command(port, "CLUSTER", "SLOTS"):
            ports = tuple(sorted(int(replica[1]) for replica in replicas))
            entries.append((int(first), int(last), int(primary[1]), ports))
        return sorted(entries)

    # Health --------------------------------------------------------------------------------

    def _check_healthy(self) -> SlotMap:
        """Raise NotReady unless every live node serves all slots and shares one slot map.

        The shared map must cover all 16384 slots with live primaries and list
        every other live node as a replica, and each replica's link to its
        primary must be up (initial sync done), so a read from a replica sees
        what was written before.
        """
        live = [node.port for node in self.live_nodes]
        if not live:
            raise NotReady("no live node")
        reference = None
        for port in live:
            info = _info(port, "cluster-info")
            if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(
                CLUSTER_SLOTS
            ):
                raise NotReady(f"{port}: {info}")
            slot_map = self._slot_map(port)
            if reference is None:
                reference = slot_map
            elif slot_map != reference:
                raise NotReady(f"{port} sees {slot_map}, {live[0]} sees {reference}")
        assert reference is not None
        if sum(last - first + 1 for first, last, _, _ in reference) != CLUSTER_SLOTS:
            raise NotReady(f"slots not all covered: {reference}")
        primaries = {primary for _, _, primary, _ in reference}
        replicas = {port: primary for _, _, primary, ports in reference for port in ports}
        if not primaries <= set(live) or set(replicas) != set(live) - primaries:
            raise NotReady(f"slot map {reference} does not match the live nodes {live}")
        for port, primary in replicas.items():
            info = _info(port, "replication")
            if info.get("master_link_status") != "up" or info.get("master_port") != str(primary):
                raise NotReady(f"replica {port} not in sync with {primary}: {info}")
        return reference

    def wait_healthy(self, timeout: float = 30.0) -> SlotMap:
        """Return the slot map once the live nodes form a healthy cluster (see _check_healthy)."""
        return poll(self._check_healthy, timeout, "cluster ok, one slot map, replicas in sync")

    # Faults --------------------------------------------------------------------------------

    def kill_primary(self, index: int = 0) -> Address:
        """SIGKILL the primary of slot range ``index``; return its address.

        Its replica is promoted by the cluster itself once the other primaries
        agree it failed (node timeout, then an election): see wait_for_failover.
        """
        address = self.primaries[index]
        self._killed[address] = [
            (first, last)
            for first, last, primary, _ in self._slot_map(address[1])
            if primary == address[1]
        ]
        _kill(self._node(address[1]))
        return address

    def wait_for_failover(self, killed: Address, timeout: float = 30.0) -> Address:
        """Wait until another node serves the slots of ``killed`` and the cluster is ok again.

        Returns the new primary of those slots.
        """

        if killed not in self._killed:
            raise RuntimeError(f"{killed} was not killed by kill_primary()")
        ranges = self._killed[killed]

        def promoted() -> Address:
            slot_map = self._check_healthy()
            owners = {_owner(slot_map, slot) for first, last in ranges for slot in (first, last)}
            if killed[1] in owners:
                raise NotReady(f"slots {ranges} still owned by the killed {killed}")
            return (HOST, _owner(slot_map, ranges[0][0]))

        return poll(promoted, timeout, f"failover of {killed}")

    def heal(self, timeout: float = 30.0) -> SlotMap:
        """Restart every killed node and wait until it is back as a replica in sync.

        A restarted node keeps its ID and its nodes.conf; the others tell it its
        slots now belong to a newer epoch, so it demotes itself and replicates
        the node that took over, as a repaired machine would in production.
        """
        for node in self.nodes:
            if not _alive(node):
                node.start()
        self._killed.clear()
        return self.wait_healthy(timeout)

    def wait_for_replication(self, timeout: float = 10.0) -> None:
        """Wait until every replica has what its primary had written so far."""
        pairs = [
            (primary, replica)
            for _, _, primary, replicas in self._check_healthy()
            for replica in replicas
        ]
        wait_for_replication(pairs, timeout)

    def flush(self) -> None:
        """FLUSHALL on every primary, so the next test starts on an empty keyspace."""
        for node in self.live_nodes:
            if command(node.port, "ROLE")[0] == "master":
                command(node.port, "FLUSHALL")

    def reset(self, timeout: float = 30.0) -> None:
        """Back to the layout ``start()`` made, for the next test: heal, flush, then
        cancel half-done slot migrations and give every slot back to the primary
        that serves most of its range.

        A test may kill nodes or move slots (MOVED/ASK tests do); resetting makes
        the shared fixture's ``primaries[i]`` mean range ``i`` again. Slots move
        the way a resharding tool moves them (IMPORTING, MIGRATING, then NODE on
        the new owner first): the new owner then takes a fresh config epoch, so
        every node, replicas included, accepts it. No key moves, as all were
        flushed.
        """
        slot_map = self.heal(timeout)
        primaries = sorted({primary for _, _, primary, _ in slot_map})
        ids = {}
        changed = False
        for port in primaries:
            command(port, "FLUSHALL")
            myself = next(
                line
                for line in str(command(port, "CLUSTER", "NODES")).splitlines()
                if "myself" in line.split()[2]
            )
            ids[port] = myself.split()[0]
            # Only primaries: Valkey 8+ copies the migration state to replicas,
            # which refuse SETSLOT and get the primary's STABLE by replication.
            for slot in re.findall(r"\[(\d+)-[<>]-", myself):
                command(port, "CLUSTER", "SETSLOT", slot, "STABLE")
                changed = True
        for first, last in self.slot_ranges:
            served = Counter[int]()
            for start, end, primary, _ in slot_map:
                overlap = min(end, last) - max(start, first) + 1
                if overlap > 0:
                    served[primary] += overlap
            target = served.most_common(1)[0][0]
            for start, end, source, _ in slot_map:
                if source == target:
                    continue
                others = [port for port in primaries if port not in (target, source)]
                for slot in range(max(start, first), min(end, last) + 1):
                    command(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
                    command(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
                    for port in [target, source, *others]:
                        command(port, "CLUSTER", "SETSLOT", slot, "NODE", ids[target])
                    changed = True
        if changed:
            self.wait_healthy(timeout)

    def _node(self, port: int) -> ServerProcess:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(f"no node on port {port}")


# -- Sentinel ---------------------------------------------------------------------------


class SentinelProcess(ServerProcess):
    """One sentinel: the same server binary run as ``<binary> <config> --sentinel``.

    ServerProcess cannot start it as is: sentinel mode needs a config file as the
    first argument, and it rewrites that file as it learns the topology (so the
    file lives in the process's own writable directory).
    """

    def __init__(self, service_name: str, primary_port: int, port: int, settings: str) -> None:
        super().__init__(port=port)
        self.service_name = service_name
        self.primary_port = primary_port
        self.settings = settings

    @property
    def config_file(self) -> Path:
        return self.directory / "sentinel.conf"

    def start(self, timeout: float = 10.0) -> SentinelProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.config_file.exists():  # on a restart, keep what it learned
            self.config_file.write_text(
                f"port {self.port}\n"
                f"bind {HOST}\n"
                "protected-mode no\n"
                f"dir {self.directory}\n"
                f"sentinel monitor {self.service_name} {HOST} {self.primary_port} 2\n"
                f"{self.settings}"
            )
        log_path = self.directory / "server.log"
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, str(self.config_file), "--sentinel"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def answers() -> None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"sentinel exited at start:\n{log_path.read_text()}")
            if not self.ping():
                raise NotReady("no PONG")

        try:
            poll(answers, timeout, f"sentinel on port {self.port} answers PING", interval=0.02)
        except (TimeoutError, RuntimeError):
            self.stop()
            raise
        return self


class Sentinel(_Topology):
    """A primary, ``replicas`` replicas and ``sentinel_count`` sentinels monitoring them.

    The quorum is a majority of the sentinels; ``down-after-milliseconds`` is 1 s
    and ``failover-timeout`` 3 s, so a killed primary is replaced within seconds.
    Mind that a sentinel refuses a second failover of the same service within
    twice failover-timeout (6 s) of the previous one.
    """

    def __init__(
        self,
        service_name: str = "mymaster",
        replicas: int = 1,
        sentinel_count: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
    ) -> None:
        self.service_name = service_name
        self.replica_count = replicas
        self.sentinel_count = sentinel_count
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.nodes: list[ServerProcess] = []
        self.sentinel_processes: list[SentinelProcess] = []
        self._killed: Address | None = None

    def start(self, timeout: float = 30.0) -> Sentinel:
        """Primary, then replicas (in sync), then sentinels; return once every sentinel
        sees the primary, every replica and every other sentinel.

        Replicas are in sync before the sentinels start because a sentinel learns
        replicas from the primary's INFO, which it asks for at connect time and
        then only every 10 s.
        """
        try:
            primary = _start_fresh(lambda port: ServerProcess(_DATA_NODE_ARGS, port))
            self.nodes = [primary]
            for _ in range(self.replica_count):
                self.nodes.append(_start_fresh(lambda port: self._make_replica(port, primary.port)))
            poll(self._check_replicas_in_sync, timeout, "replicas in sync with the primary")
            settings = (
                f"sentinel down-after-milliseconds {self.service_name} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.service_name} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {self.service_name} 1\n"
            )
            for _ in range(self.sentinel_count):
                self.sentinel_processes.append(
                    _start_fresh(
                        lambda port: SentinelProcess(
                            self.service_name, primary.port, port, settings
                        )
                    )
                )
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        # Sentinels first, so none of them starts a failover while the data nodes go.
        for process in [*self.sentinel_processes, *self.nodes]:
            process.stop()
        self.sentinel_processes = []
        self.nodes = []

    @staticmethod
    def _make_replica(port: int, primary_port: int) -> ServerProcess:
        return ServerProcess(["--replicaof", HOST, str(primary_port), *_DATA_NODE_ARGS], port)

    # Views ---------------------------------------------------------------------------------

    @property
    def sentinels(self) -> list[Address]:
        return [(HOST, process.port) for process in self.sentinel_processes if _alive(process)]

    def primary_address(self) -> Address:
        """The primary as the first answering sentinel names it (GET-MASTER-ADDR-BY-NAME)."""
        error: BaseException | None = None
        for _, port in self.sentinels:
            try:
                host, primary_port = command(
                    port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service_name
                )
                return (str(host), int(primary_port))
            except (OSError, redis.RedisError, TypeError, ValueError) as caught:
                error = caught
        raise RuntimeError(f"no sentinel answered: {error}")

    def replica_addresses(self) -> list[Address]:
        """The live data nodes other than the current primary."""
        primary = self.primary_address()
        return [
            (HOST, node.port)
            for node in self.nodes
            if _alive(node) and (HOST, node.port) != primary
        ]

    # Health --------------------------------------------------------------------------------

    def _check_replicas_in_sync(self) -> None:
        for node in self.nodes[1:]:
            info = _info(node.port, "replication")
            if info.get("master_link_status") != "up":
                raise NotReady(f"replica {node.port}: {info}")

    def _sentinel_view(self, port: int) -> tuple[Address, str, int, dict[int, dict[str, Any]]]:
        """(primary, primary flags, number of other sentinels, {replica port: fields})."""
        host, primary_port = command(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service_name)
        master = _pairs(command(port, "SENTINEL", "MASTER", self.service_name))
        replicas = {
            int(fields["port"]): fields
            for fields in map(_pairs, command(port, "SENTINEL", "REPLICAS", self.service_name))
        }
        others = int(master.get("num-other-sentinels", 0))
        return (str(host), int(primary_port)), str(master.get("flags")), others, replicas

    def _check_healthy(self) -> Address:
        """Raise NotReady unless every sentinel agrees on a primary that answers as one,
        sees every other sentinel and every live data node as a replica in sync."""
        primary: Address | None = None
        for _, port in self.sentinels:
            address, flags, others, replicas = self._sentinel_view(port)
            if primary is None:
                primary = address
            if address != primary or flags != "master":
                raise NotReady(f"sentinel {port} sees {address} ({flags}), another {primary}")
            if others != len(self.sentinels) - 1:
                raise NotReady(f"sentinel {port} knows {others} other sentinels")
            for node in self.nodes:
                if node.port == address[1] or not _alive(node):
                    continue
                fields = replicas.get(node.port)
                if (
                    fields is None
                    or fields.get("flags") != "slave"
                    or fields.get("master-link-status") != "ok"
                    or int(fields.get("master-port", 0)) != address[1]
                ):
                    raise NotReady(f"sentinel {port} sees replica {node.port} as {fields}")
        if primary is None:
            raise NotReady("no sentinel running")
        if not _alive(self._node(primary[1])):
            raise NotReady(f"primary {primary} is not running")
        role = command(primary[1], "ROLE")
        if role[0] != "master":
            raise NotReady(f"{primary} says it is a {role[0]}")
        return primary

    def wait_healthy(self, timeout: float = 30.0) -> Address:
        return poll(self._check_healthy, timeout, "sentinels agree on a sane topology")

    # Faults --------------------------------------------------------------------------------

    def kill_primary(self) -> Address:
        """SIGKILL the current primary; return its address. See wait_for_failover."""
        address = self.primary_address()
        _kill(self._node(address[1]))
        self._killed = address
        return address

    def wait_for_failover(self, timeout: float = 30.0) -> Address:
        """Wait until every sentinel names a new, running primary; return its address.

        The sentinels must first agree the primary is down (down-after, then a
        quorum), elect a leader, promote a replica and spread the new
        configuration over the new primary's hello channel.
        """
        killed = self._killed
        if killed is None:
            raise RuntimeError("kill_primary() first")

        def promoted() -> Address:
            addresses = set()
            for _, port in self.sentinels:
                host, primary_port = command(
                    port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service_name
                )
                addresses.add((str(host), int(primary_port)))
            if len(addresses) != 1 or killed in addresses:
                raise NotReady(f"sentinels name {sorted(addresses)}; killed {killed}")
            (address,) = addresses
            role = command(address[1], "ROLE")
            if role[0] != "master":
                raise NotReady(f"{address} is still a {role[0]}")
            return address

        return poll(promoted, timeout, f"sentinel failover from {killed}")

    def heal(self, timeout: float = 30.0) -> None:
        """Restart every killed data node as a replica of the current primary and wait
        until the sentinels see it in sync.

        It is started with ``--replicaof`` rather than left for the sentinels to
        convert: they wait 8 s before reconfiguring a returning old primary.
        """
        dead = [node for node in self.nodes if not _alive(node)]
        if dead:
            primary = self.primary_address()
            for node in dead:
                node.extra_args = ["--replicaof", primary[0], str(primary[1]), *_DATA_NODE_ARGS]
                node.start()
        self._killed = None
        self.wait_healthy(timeout)

    def wait_for_replication(self, timeout: float = 10.0) -> None:
        """Wait until every live replica has what the primary had written so far."""
        primary = self.primary_address()[1]
        wait_for_replication([(primary, port) for _, port in self.replica_addresses()], timeout)

    def flush(self) -> None:
        """FLUSHALL on the primary (the replicas follow), so the next test starts empty."""
        command(self.primary_address()[1], "FLUSHALL")

    def reset(self, timeout: float = 30.0) -> None:
        """Whole and empty again for the next test: heal, then flush."""
        self.heal(timeout)
        self.flush()

    def _node(self, port: int) -> ServerProcess:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(f"no data node on port {port}")
