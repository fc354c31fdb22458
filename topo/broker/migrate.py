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
4. **Delete the old queue**, once no consumer of it holds a message:

   a. **Fence** it: the drop protocol's fence policy (``topo.fence.<queue>``: ``max-length: 0``,
      ``overflow: reject-publish``), on a classic queue too. A classic queue checks the limit itself, before
      it takes or delivers a message, so once one probe published to it by name is refused (checked here,
      the probe tried again while RabbitMQ is still applying the policy), every later publish is refused
      (a publisher with confirms sees a nack), and nothing new can reach its consumers.
   b. **Settle**: wait until its consumers hold no unacknowledged message, moving to the holding queue
      whatever they requeue meanwhile (a ``nack``/``reject`` with requeue, a channel that closes): from
      before the fence, apply's own consumer of a classic queue, above every other (``x-priority``:
      :meth:`~topo.broker.port.Amqp.catch_requeues`), is the first to get a message that becomes ready
      there, so a consumer that requeues and stays subscribed does not get it back; it moves each with its
      ack in one transaction (and a passive declare finds what is left, moved as in step 3). Up to
      ``--migrate-wait`` seconds (:attr:`~topo.broker.executors.Run.migrate_wait`, 60 by default). Past that,
      apply stops **before** the delete (:class:`MigrationFailed`, naming the queue, the count and the
      consumers' connections), the fence removed: nothing is lost, and the same apply run again finishes.
   c. **Delete** it, empty, by the drop protocol (:mod:`topo.broker.drop`): a quorum queue is fenced there
      (a publish to it by name is refused), counted and deleted with the count checked; a classic one is
      deleted with ``if-empty``. Whatever was published to it by name meanwhile is moved too, and the delete
      tried again. Its consumers are cancelled by the delete (``Basic.Cancel``); topo's runtime subscribes
      again once the queue is there again. The fence goes with the queue, before the new one is declared.

   Why a zero read in 4b can be trusted. Only the Management API counts unacknowledged messages, from
   statistics that lag: a classic queue emits its figures at most ``collect_statistics_interval`` (5 s by
   default) after a change, a quorum queue's leader at each ``quorum_tick_interval`` (5 s), and the
   Management plugin collects what was emitted at most ``collect_statistics_interval`` later; the sample
   timestamps it shows (``messages_unacknowledged_details.samples``) are those collection times rounded to
   the requested increment (seen on 3.10.8: ahead of the clock), not the instant the queue counted, so they
   prove no freshness. Once the fence holds, ready + unacknowledged can only fall: no publish gets in, a
   requeue turns one kind into the other, an ack or apply's move removes one. So a figure the queue counted
   *after* the fence held that says 0 ready and 0 unacknowledged stays true until the delete; one counted
   before could be stale (a publish by name delivered to a consumer just before the fence: seen here, a
   quorum queue's statistics said 0 for 7 s while a consumer held 5). Apply therefore reads the figures only
   from :attr:`~topo.broker.port.Broker.stats_lag` seconds (10: twice the default interval) after the fence
   held: the queue has emitted, and the plugin collected, a count taken after it. A broker configured with
   a longer interval needs a longer lag (``--stats-interval SECONDS``: twice that); a zero read sooner is
   never taken.
   Between the figures and the delete, the exact count (an AMQP passive declare) must still say 0 ready.

   What stays open for a **quorum** old queue: RabbitMQ applies its ``max-length`` to ready messages only,
   so a consumer with room still gets a message published by name through the fence. Its consumers having
   settled, they have room: the drop protocol's probes then reach a consumer, it finds that the fence does
   not hold, and apply stops before the delete with nothing lost; stop the old queue's consumers (or the
   publishers by name) for such a migration.
5. **Declare the new queue** (no bindings yet).
6. **Give back the old messages**: move ``topo.migrate.old.q`` to ``q``, then delete it (empty).
7. **Give back the new ones**: move ``topo.migrate.new.q`` to ``q``; move its bindings to ``q`` (added,
   then deleted); move what came in meanwhile; delete it (empty).

Order: every message of the old queue comes before every message published during the migration (the old
ones reach the new queue in step 6, the new ones in step 7, each move keeping the order of its source; what a
consumer requeued in step 4b comes after the rest of the old queue, as a requeue does in any queue);
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

import time
import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

from topo.broker.drop import BindingIndex, QueueDrop, fence_priority, refused, remove_fence
from topo.broker.executors import Run
from topo.broker.port import PROBE_ID_PREFIX, Broker, Catching, Held, NoExactCount
from topo.definitions import queue_definition
from topo.errors import ApplyFailed, BrokerError
from topo.model import Binding, Queue
from topo.plan.migrate import holding_queue, holding_queues
from topo.plan.model import Change
from topo.plan.safety import fence_policy

__all__ = ["MigrationCounts", "migrate_queue", "migrate_queues"]

_ATTEMPTS = 5
"""How often the old queue's delete is tried again after a publish by name got into it meanwhile."""

_POLL = 0.5
"""Seconds between two looks at the old queue while its consumers settle what they hold."""

_FENCE_TRIES = 5
"""How often a classic queue's fence is probed before apply gives up (RabbitMQ applies a policy to the
queue an instant after it stores it)."""


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


def _count_holding(broker: Broker, vhost: str, queue: str, cluster: str | None) -> int:
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


def _fence(run: Run, change: Change) -> None:
    """Fence the old queue (step 4a). A classic queue checks its length limit itself, before it takes (or
    delivers) a message: once one probe by name is refused, every later publish is refused too. A quorum
    queue's fence is checked by the drop protocol (step 4c)."""
    vhost, name = change.vhost, change.address.name
    fence = fence_policy(name, fence_priority(run.broker, vhost))
    run.broker.put_policy(vhost, fence)
    if not isinstance(change.before, Queue) or change.before.type != "classic":
        return
    for _ in range(_FENCE_TRIES):
        probe_id = f"{PROBE_ID_PREFIX}{uuid.uuid4()}"
        checked = run.broker.amqp.check_drops(vhost, {name: True}, probe_id, cluster=run.cluster)
        if isinstance(checked, NoExactCount):
            raise _failed(f"apply could not check the fence of queue {name!r} in vhost {vhost!r}: {checked.reason}")
        check = checked.get(name)
        if check is None or not check.exists or (check.probe == "refused" and check.fence_holds):
            return
        taken = (check.probe == "taken") + (check.fence_holds is False)
        run.broker.amqp.remove_probes(vhost, name, taken, probe_id)  # (a consumer may have got one: it says "drop it")
        time.sleep(0.2)
    raise _failed(
        f"the fence of queue {name!r} in vhost {vhost!r} (policy {fence.name!r}) did not hold: the queue still took "
        "a message published to it by name (does a policy of a higher priority apply to it?)"
    )


def _settle(run: Run, change: Change, stash: str, caught: Catching | None) -> int:
    """Wait until no consumer of the old queue holds a message (step 4b), moving to ``stash`` what they
    requeue meanwhile (with ``caught``, apply's own consumer of the queue catches it first); how many were
    moved here. Called once the queue is fenced (:func:`_fence`): a figure of the statistics is trusted only
    when it was read ``stats_lag`` seconds after that (the run's, else the broker's)."""
    vhost, name = change.vhost, change.address.name
    broker = run.broker
    lag = run.stats_lag if run.stats_lag is not None else broker.stats_lag
    fenced = time.monotonic()
    trusted, deadline = fenced + lag, fenced + max(run.migrate_wait, lag)
    moved = 0
    while True:
        counted = _exists(broker, vhost, [name], run.cluster)
        if name not in counted:
            return moved  # gone already
        if counted[name][0]:  # requeued (and not caught yet), or published by name before the fence held
            moved += _move(run, vhost, name, stash, alone=caught is None)
            continue
        now = time.monotonic()
        held = broker.held(vhost, name) if now >= trusted else None
        if now >= trusted and (held is None or (held.ready == 0 and held.unacked == 0)):
            return moved
        if now >= deadline:
            raise _unsettled(vhost, name, held, run.migrate_wait)
        time.sleep(_POLL)


def _unsettled(vhost: str, name: str, held: Held | None, waited: float) -> MigrationFailed:
    if held is not None and held.unacked is None:
        what = "the Management API gives no unacknowledged count for it (statistics off?)"
    else:
        count = held.unacked if held is not None else 0
        what = f"its consumers still hold {count} unacknowledged message{'s' if count != 1 else ''}"
        if held is not None and held.ready:
            what += f" ({held.ready} ready)"
    connections = held.connections if held is not None else ()
    whose = (
        f"; consumers' connections: {', '.join(repr(c) for c in connections)}"
        if connections
        else "; no consumer is listed: a channel that cancelled its consumer, or took them by basic.get, holds them"
    )
    return MigrationFailed(
        f"apply stopped before it deleted queue {name!r} in vhost {vhost!r}: after {waited:g} s, {what}{whose}. "
        "A message one of them requeued after the delete would be lost, so the old queue stays",
        hint="nothing was lost: have the consumers acknowledge or requeue what they hold (or stop them), then run "
        "the same `topo apply --migrate` again: it finishes the migration (--migrate-wait SECONDS waits longer)",
    )


def _drop_old(run: Run, change: Change, stash: str) -> int:
    """Fence the old queue, wait until its consumers hold nothing, then delete it (empty) by the drop
    protocol, moving to ``stash`` what they requeued or a publish by name put in it meanwhile; how many
    such messages were moved. From before the fence to the end of the wait, apply's own consumer of a
    classic queue, above every other (:meth:`~topo.broker.port.Amqp.catch_requeues`), catches what they
    requeue, which would otherwise go back to them. The fence goes with the queue (before the new queue is
    declared, which it would fence too); when apply stops, it is removed."""
    broker, vhost, name = run.broker, change.vhost, change.address.name
    classic = isinstance(change.before, Queue) and change.before.type == "classic"
    catcher = broker.amqp.catch_requeues(vhost, name, stash, cluster=run.cluster) if classic else nullcontext(None)
    gone = False
    try:
        with catcher as caught:
            _fence(run, change)
            moved = _settle(run, change, stash, caught)
        if caught is not None:
            moved += caught.moved
            if caught.failed is not None:
                raise _failed(
                    f"moving what the consumers of queue {name!r} in vhost {vhost!r} requeued stopped: "
                    f"{caught.failed.reason}"
                )
        moved += _delete_old(run, change, stash)
        gone = True
    finally:
        remove_fence(broker, vhost, fence_policy(name, 0).name, relax=not gone)
    return moved


def _delete_old(run: Run, change: Change, stash: str) -> int:
    """Delete the old queue (empty, fenced, its consumers holding nothing) by the drop protocol, moving to
    ``stash`` what got in meanwhile; how many such messages were moved."""
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
            counts.may_repeat = _count_holding(broker, vhost, hold_name, run.cluster)
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
            racing = _count_holding(broker, vhost, hold_name, run.cluster)
            counts.may_reorder = racing
            counts.may_repeat += racing
        counts.returned_new += _move(run, vhost, hold_name, name, alone=False)
        _delete_empty(run, vhost, hold)
    run.notes.append(counts.note(vhost, name))
    return counts
