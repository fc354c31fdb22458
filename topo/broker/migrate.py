"""Zero-loss migration of a queue whose fixed settings change (``topo apply --migrate``): the protocol.

For a queue ``q`` of a vhost, with its holding queues ``topo.migrate.old.q`` (the old queue's messages)
and ``topo.migrate.new.q`` (what is published meanwhile), both durable, of the new queue's type, without
limits (:func:`topo.plan.migrate.holding_queue`):

1. **Hold.** Declare both holding queues.
2. **Reroute.** Each binding of ``q`` (declared or not) is added to ``topo.migrate.new.q``, then deleted
   from ``q``: from then on, what a route brings lands in the new-messages holding queue. (Added before it is
   deleted: a message published in the instant between the two is routed to both, and comes twice; never
   to neither.)
3. **Hold the old messages.** Move every message of ``q`` to ``topo.migrate.old.q``, in order (over AMQP, a
   batch per transaction: see :meth:`topo.broker.port.Amqp.move`); the holding queue gets nothing else, so
   each batch must raise its count by exactly the batch.
4. **Delete the old queue**, empty, by the drop protocol (:mod:`topo.broker.drop`): a quorum queue is
   fenced (a publish to it by name is refused: a publisher with confirms sees a nack), counted and deleted
   with the count checked; a classic one is deleted with ``if-empty``. Whatever was published to it by name
   meanwhile is moved too, and the delete tried again. Its consumers are cancelled by the delete
   (``Basic.Cancel``); topo's runtime subscribes again once the queue is there again.
5. **Declare the new queue** (no bindings yet).
6. **Give back the old messages**: move ``topo.migrate.old.q`` to ``q``, then delete it (empty).
7. **Give back the new ones**: move ``topo.migrate.new.q`` to ``q``; move its bindings to ``q`` (added,
   then deleted); move what came in meanwhile; delete it (empty).

Order: every message of the old queue comes before every message published during the migration (the old
ones reach the new queue in step 6, the new ones in step 7, each move keeping the order of its source);
messages published during the migration keep their order, but for those published in the instant the
routes move back to ``q`` in step 7, which may come after messages published just after them. RabbitMQ has
no way to move several bindings at once (each is its own add and delete), so that instant cannot be
removed, only bounded: :class:`MigrationCounts` counts, right after each reroute, what the holding queue
``topo.migrate.new.q`` has (exactly: nothing but the migration takes from it). After step 2 that bounds the
messages routed to both queues (come twice); after step 7 it bounds those that reach ``q`` after messages
that came straight in (out of order, or twice). Apply reports both figures; 0 means none was.

State: the holding queues are the migration's state on the broker. If apply stops anywhere (killed, a
failure), the next plan sees them and lists the queue as a migration again, and the same apply finishes it:
each step is idempotent, and a move is atomic per batch (no message lost or duplicated by the stop).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from topo.broker.drop import BindingIndex, QueueDrop, refused
from topo.broker.executors import Run
from topo.broker.port import Broker, NoExactCount
from topo.definitions import queue_definition
from topo.errors import ApplyFailed, BrokerError
from topo.model import Binding, Queue
from topo.plan.migrate import holding_queue, holding_queues
from topo.plan.model import Change

__all__ = ["MigrationCounts", "migrate_queue", "migrate_queues"]

_ATTEMPTS = 5
"""How often the old queue's delete is tried again after a publish by name got into it meanwhile."""


@dataclass
class MigrationCounts:
    """What one migration moved, step by step (for the progress and the tests)."""

    held_old: int = 0  # old queue → its holding queue
    returned_old: int = 0  # that holding queue → the new queue
    returned_new: int = 0  # the new-messages holding queue → the new queue
    # Bounds of what a publish racing a move of the routes did (see "Order" in the module's docstring): the
    # messages that may have come twice, and those that may come after messages published just after them.
    may_repeat: int = 0
    may_reorder: int = 0

    def note(self, vhost: str, name: str) -> str:
        """What the user hears once the migration is done."""
        moved = (
            f"queue {name!r} in vhost {vhost!r} migrated: {self.returned_old} message(s) it held, then "
            f"{self.returned_new} published meanwhile, moved into the new queue"
        )
        if not (self.may_repeat or self.may_reorder):
            return f"{moved}; no publish raced the moves of its routes (none came twice, none out of order)."
        return (
            f"{moved}; some were published in the instant its routes moved (RabbitMQ cannot move several "
            f"bindings at once): at most {self.may_repeat} may have come twice, and at most {self.may_reorder} "
            "after messages published just after them."
        )


class MigrationFailed(ApplyFailed):
    """A migration step could not be made; what was moved stays moved, and the next apply resumes."""


_RESUME_HINT = (
    "nothing was lost: the messages are in the queue or its holding queues (topo.migrate.old.*, "
    "topo.migrate.new.*); fix the cause and run the same `topo apply --migrate` again: it finishes the migration"
)


def _failed(text: str) -> MigrationFailed:
    return MigrationFailed(text, hint=_RESUME_HINT)


def migrate_queues(run: Run, changes: Sequence[Change]) -> None:
    """The phase's runner: each migration in plan order."""
    for change in changes:
        migrate_queue(run, change)
        run.step(f"migrate {change.address}")


def _exists(broker: Broker, vhost: str, names: Sequence[str], cluster: str | None) -> dict[str, tuple[int, int]]:
    counted = broker.amqp.count(vhost, names, cluster=cluster)
    if isinstance(counted, NoExactCount):
        raise _failed(f"a migration in vhost {vhost!r} needs AMQP, which did not answer: {counted.reason}")
    return counted


def _declare(broker: Broker, vhost: str, queues: Sequence[Queue]) -> None:
    broker.import_definitions(vhost, {"queues": [queue_definition(q) for q in queues]})


def _held(broker: Broker, vhost: str, queue: str, cluster: str | None) -> int:
    """How many messages holding queue ``queue`` has now (exact: nothing but topo takes from it)."""
    return _exists(broker, vhost, [queue], cluster).get(queue, (0, 0))[0]


def _reroute(broker: Broker, vhost: str, source: str, target: str) -> int:
    """Add each binding of queue ``source`` to ``target``, then delete it from ``source``; how many."""
    listed = [
        b
        for b in broker.bindings(vhost)
        if b.binding.destination_type == "queue" and b.binding.destination == source and b.binding.source
    ]
    for item in listed:
        b = item.binding
        broker.add_binding(vhost, Binding(b.source, target, b.destination_type, b.routing_key, b.arguments))
        broker.delete_binding(vhost, item)
    return len(listed)


def _move(run: Run, vhost: str, source: str, target: str, *, alone: bool) -> int:
    """Move every message of ``source`` to ``target``; with ``alone`` (nothing else publishes to the
    target), each batch must raise the target's count by exactly the batch."""
    result = run.broker.amqp.move(vhost, source, target, cluster=run.cluster, exact=alone)
    if isinstance(result, NoExactCount):
        raise _failed(
            f"moving the messages of queue {source!r} to {target!r} in vhost {vhost!r} stopped: {result.reason}"
        )
    return result.moved


def _delete_empty(run: Run, vhost: str, queue: Queue) -> None:
    """Delete a holding queue that counts empty (the broker refuses a classic one that is not)."""
    where = f"holding queue {queue.name!r} in vhost {vhost!r}"
    if queue.type == "quorum":
        done, failed = run.broker.amqp.delete_if_counted(vhost, {queue.name: 0}, cluster=run.cluster)
        if failed is not None:
            raise _failed(f"{where} could not be deleted: {failed.reason}")
        for result in done:
            if result.counted is not None and not result.deleted:
                ready, consumers = result.counted
                raise _failed(f"{where} was not empty when apply deleted it ({ready} ready, {consumers} consumers)")
        return
    try:
        run.broker.delete_queue(vhost, queue.name, if_empty=True, if_unused=True)
    except BrokerError as exc:
        if exc.status != 400:
            raise
        raise _failed(f"{where} was not empty when apply deleted it ({exc.message})") from None


def _drop_old(run: Run, change: Change, stash: str) -> int:
    """Delete the old queue (empty) by the drop protocol, moving to ``stash`` what a publish by name put in
    it meanwhile; how many such messages were moved."""
    vhost, name = change.vhost, change.address.name
    moved = 0
    for _ in range(_ATTEMPTS):
        drop = QueueDrop(run.broker, vhost, [change], BindingIndex(run.broker, vhost), in_use=True)
        drop.prepare(run.cluster)
        if not drop.problems:
            drop.delete(lambda _c: None, run.miscounts.append)
            return moved
        drop.put_back()
        counted = _exists(run.broker, vhost, [name], run.cluster)
        if name not in counted or not counted[name][0]:
            raise refused([drop])  # what stops it is not a message (its fence did not hold, ...)
        moved += _move(run, vhost, name, stash, alone=True)
    raise _failed(
        f"queue {name!r} in vhost {vhost!r} kept getting messages published to it by name while apply migrated it"
    )


def migrate_queue(run: Run, change: Change) -> MigrationCounts:
    """Migrate ``change``'s queue (see the module's steps), from whatever step an earlier apply reached."""
    vhost, name = change.vhost, change.address.name
    new = change.after
    if not isinstance(new, Queue):
        raise TypeError("a migration holds the new queue")
    broker, counts = run.broker, MigrationCounts()
    stash_name, hold_name = holding_queues(name)
    stash, hold = holding_queue(new, stash_name), holding_queue(new, hold_name)
    present = _exists(broker, vhost, [name, stash_name, hold_name], run.cluster)
    old = change.before if isinstance(change.before, Queue) and change.before != new else None
    if name in present and old is not None:  # steps 1 to 4: the old queue is still there
        _declare(broker, vhost, [stash, hold])
        if _reroute(broker, vhost, name, hold_name):
            # what reached the holding queue while the routes moved may have reached the old queue too; the
            # routes are all off it now, and nothing takes from the holding queue: this bounds the doubles
            counts.may_repeat = _held(broker, vhost, hold_name, run.cluster)
        counts.held_old = _move(run, vhost, name, stash_name, alone=True)
        if counts.held_old < present[name][0] and not present[name][1]:  # no consumer of its own took any
            raise _failed(f"{name!r} in vhost {vhost!r} counted {present[name][0]} messages; {counts.held_old} moved")
        counts.held_old += _drop_old(run, change, stash_name)
        present = _exists(broker, vhost, [name, stash_name, hold_name], run.cluster)
    if name not in present:  # step 5
        _declare(broker, vhost, [new])
    if stash_name in present:  # step 6
        counts.returned_old = _move(run, vhost, stash_name, name, alone=False)
        held = present[stash_name][0]
        if counts.returned_old < held:  # nothing else takes from it: what it counted must all reach the queue
            raise _failed(
                f"{stash_name!r} in vhost {vhost!r} counted {held} messages; {counts.returned_old} reached {name!r}"
            )
        _delete_empty(run, vhost, stash)
    if hold_name in present:  # step 7
        counts.returned_new = _move(run, vhost, hold_name, name, alone=False)
        if _reroute(broker, vhost, hold_name, name):
            # from the first route on the queue, what the holding queue has reaches the queue after what came
            # straight in; the routes are all off it now: what it has bounds the reordered (and the doubles)
            racing = _held(broker, vhost, hold_name, run.cluster)
            counts.may_reorder = racing
            counts.may_repeat += racing
        counts.returned_new += _move(run, vhost, hold_name, name, alone=False)
        _delete_empty(run, vhost, hold)
    run.notes.append(counts.note(vhost, name))
    return counts
