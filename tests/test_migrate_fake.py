"""The migration (``apply --migrate``) on the in-memory broker (tests/fakebroker.py): milliseconds, no node.
The real engine, phases, migration protocol and adapter run; the fake moves messages in one batch. These
pin the order of the writes and that a failure at any write of a migration leaves a state the next
``apply --migrate`` converges from, every message once, in order. The behaviours are tested against a
real node in tests/test_migrate_broker.py and tests/test_migrate_kill.py."""

from __future__ import annotations

from typing import Any

import pytest
from fakebroker import FakeRabbit
from support import build_vhost

from topo import engine
from topo.broker.migrate import MigrationFailed
from topo.errors import TopoError
from topo.model import Binding, Exchange, Queue, Topology

V = "v"


def topology(queue_type: str) -> Topology:
    return Topology(
        {V: build_vhost(V, Exchange("ex", "direct"), Queue("work", queue_type), Binding("ex", "work", routing_key="k"))}
    )


def _ready(fake: FakeRabbit) -> FakeRabbit:
    engine.apply(fake.broker(), topology("classic"))
    fake.publish(V, "work", 50)
    return fake


def _ids(fake: FakeRabbit, queue: str = "work") -> list[str]:
    return [m.message_id for m in fake.vhost(V).queues[queue].messages]


def test_a_migration_moves_every_message_then_plans_no_changes() -> None:
    fake = _ready(FakeRabbit())
    fake.log.clear()
    engine.apply(fake.broker(), topology("quorum"), migrate=True)
    assert _ids(fake) == [f"m{i}" for i in range(50)]
    assert fake.vhost(V).queues["work"].arguments.get("x-queue-type") == "quorum"
    assert set(fake.vhost(V).queues) == {"work"}  # the holding queues are gone
    assert engine.plan(fake.broker(), topology("quorum")).empty
    writes = fake.writes()
    assert writes[0] == "POST /definitions/v"  # the holding queues
    assert writes[1:3] == ["POST /bindings/v/e/ex/q/topo.migrate.new.work", "DELETE /bindings/v/e/ex/q/work/k"]


def _reference_writes() -> int:
    fake = _ready(FakeRabbit())
    fake.log.clear()
    engine.apply(fake.broker(), topology("quorum"), migrate=True)
    return len(fake.writes())


@pytest.mark.parametrize("number", range(_reference_writes()))
def test_a_failure_at_any_write_of_a_migration_is_finished_by_the_next_apply(number: int) -> None:
    fake = _ready(FakeRabbit())
    fake.fail_write(number)
    with pytest.raises(TopoError):
        engine.apply(fake.broker(), topology("quorum"), migrate=True)
    engine.apply(fake.broker(), topology("quorum"), migrate=True)
    assert engine.plan(fake.broker(), topology("quorum")).empty
    assert _ids(fake) == [f"m{i}" for i in range(50)]


def test_a_consumer_holding_messages_stops_the_migration_before_the_delete_and_the_next_apply_finishes() -> None:
    fake = _ready(FakeRabbit())
    fake.vhost(V).queues["work"].unacked = 3  # delivered to a consumer, not acknowledged
    with pytest.raises(MigrationFailed, match="its consumers still hold 3 unacknowledged messages") as failed:
        engine.apply(fake.broker(), topology("quorum"), migrate=True, migrate_wait=0)
    assert "run the same `topo apply --migrate` again" in (failed.value.hint or "")
    assert fake.vhost(V).queues["work"].type == "classic"  # the old queue stays
    assert not fake.vhost(V).policies  # its fence is removed
    fake.vhost(V).queues["work"].unacked = 0  # the consumer acknowledged them
    engine.apply(fake.broker(), topology("quorum"), migrate=True, migrate_wait=0)
    assert engine.plan(fake.broker(), topology("quorum")).empty
    assert _ids(fake) == [f"m{i}" for i in range(50)]


def test_the_stats_interval_given_to_apply_is_the_lag_a_migration_allows_its_statistics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from topo.broker import migrate as protocol

    lags: list[float | None] = []
    real = protocol._settle

    def settle(run: Any, change: Any, stash: str, caught: Any) -> int:
        lags.append(run.stats_lag)
        return real(run, change, stash, caught)

    monkeypatch.setattr(protocol, "_settle", settle)
    fake = _ready(FakeRabbit())
    engine.apply(fake.broker(), topology("quorum"), migrate=True, stats_interval=0.01)
    assert lags == [0.02]  # twice the interval: the queue emits, then the Management plugin collects


def test_publishes_racing_the_route_moves_are_bounded_and_reported() -> None:
    """RabbitMQ moves a binding as an add and a delete: a message published between the two reaches both
    queues. Here one does so as the routes move away (step 2: it comes twice), and, as they move back
    (step 7), one reaches the holding queue just before one published after it goes straight into the
    queue (it comes after it). Apply's note bounds both from the holding queue's exact count."""
    fake = _ready(FakeRabbit())
    hold = "topo.migrate.new.work"
    fake.on("DELETE", r"/bindings/v/e/ex/q/work/", lambda: [fake.publish(V, q, 1, "twice") for q in ("work", hold)])
    fake.on(
        "DELETE",
        rf"/bindings/v/e/ex/q/{hold}/",
        lambda: [fake.publish(V, hold, 1, "held"), fake.publish(V, "work", 1, "straight")],
    )
    notes: list[str] = []
    engine.apply(fake.broker(), topology("quorum"), migrate=True, notes=notes)
    ids = _ids(fake)
    assert ids[:51] == [f"m{i}" for i in range(50)] + ["twice0"]  # the old queue's, then its copy of the race
    assert ids[51:] == ["twice0", "straight0", "held0"]  # the other copy; then one overtaken
    [note] = notes
    assert "queue 'work' in vhost 'v' migrated" in note
    assert "at most 2 may have come twice, and at most 1 after messages published just after them" in note


def test_a_migration_no_publish_raced_says_so() -> None:
    fake = _ready(FakeRabbit())
    notes: list[str] = []
    engine.apply(fake.broker(), topology("quorum"), migrate=True, notes=notes)
    assert notes == [
        "queue 'work' in vhost 'v' migrated: 50 message(s) it held, then 0 published meanwhile, moved into the "
        "new queue; no publish raced the moves of its routes (none came twice, none out of order)."
    ]
