"""The routing generators (``_routing.py``) driven by hand: what each driver does
with them is only to perform their ``Send``s and ``Sleep``s, so their decisions
read here step by step, without a server."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError, MovedError

from django_asyncredis import _routing
from django_asyncredis._config import parse
from django_asyncredis._operations import Sleep
from django_asyncredis.errors import ConnectionInterrupted, ReplyLostError

#: A CLUSTER SLOTS reply: two primaries sharing the slots.
SLOTS = [[0, 8191, [b"10.0.0.1", 7000]], [8192, 16383, [b"10.0.0.2", 7000]]]


def cluster() -> Any:
    return parse("redis+cluster://127.0.0.1:7000", {})


def test_a_stale_cluster_map_is_refreshed_by_a_send_of_cluster_slots() -> None:
    """Before its first command a cluster's map is fetched, as a plain send."""
    route = _routing.execute(cluster(), ("GET", "k"))
    step = route.send(None)
    assert (step.server.port, step.request) == (7000, ("CLUSTER", "SLOTS"))
    step = route.send(SLOTS)
    assert step.request == ("GET", "k")
    assert step.server.host in {"10.0.0.1", "10.0.0.2"}


def test_moved_refreshes_the_map_and_sends_the_command_again() -> None:
    """A MOVED reply marks the map stale: refreshed, then the command is sent again."""
    config = cluster()
    route = _routing.execute(config, ("GET", "k"))
    route.send(None)
    route.send(SLOTS)
    step = route.throw(MovedError("1 10.0.0.2:7000"))
    assert step.request == ("CLUSTER", "SLOTS")
    assert route.send(SLOTS).request == ("GET", "k")
    with pytest.raises(StopIteration) as done:
        route.send(b"value")
    assert done.value.value == b"value"


def test_reply_lost_passes_through_the_retry_loop_untouched() -> None:
    """A command that may have run is never sent again, elsewhere or later."""
    route = _routing.execute(cluster(), ("INCRBY", "counter", 1))
    route.send(None)
    route.send(SLOTS)
    lost = ReplyLostError("the reply was lost")
    with pytest.raises(ReplyLostError) as raised:
        route.throw(lost)
    assert raised.value is lost


def test_a_cluster_that_stays_down_is_retried_five_times_with_growing_pauses() -> None:
    """Connection errors: five attempts, pauses doubling from 50 ms, then the error."""
    pauses, error = refuse_every_send(_routing.execute(cluster(), ("GET", "k")))
    assert pauses == [0.05, 0.1, 0.2, 0.4, 0.8]
    assert isinstance(error, ConnectionInterrupted)


def refuse_every_send(route: Any) -> tuple[list[float], BaseException]:
    """Answer every send of ``route`` with a refused connection, sleep through its
    pauses; the pauses, and the error it ends with."""
    pauses = []
    step = route.send(None)
    try:
        while True:
            if isinstance(step, Sleep):
                pauses.append(step.seconds)
                step = route.send(None)
            else:
                step = route.throw(ConnectionError("refused"))
    except Exception as exc:
        return pauses, exc


def test_a_replica_that_fails_a_read_hands_it_to_the_leader() -> None:
    """With replicas, a read a replica cannot answer goes to the leader."""
    config = parse(["redis://127.0.0.1:6379", "redis://127.0.0.1:6380"], {})
    route = _routing.execute(config, ("GET", "k"))
    step = route.send(None)
    assert step.server.port == 6380
    step = route.throw(ConnectionError("refused"))
    assert step.server.port == 6379
