"""Dropping queues (for a replacement now, for a prune later) so that no message the broker took is lost.

For the queues an apply drops in one vhost, in this order:

1. **Cut** every binding whose destination is the queue (declared or not; the declared ones are created
   again with the new queue). A message published by a route from then on is unroutable: returned to a
   ``mandatory`` publisher, dropped otherwise, as for any queue that is not there.
2. **Fence** each quorum queue: a policy ``topo.fence.<queue>`` on exactly that queue, above every other
   policy of the vhost, with ``max-length: 0`` and ``overflow: reject-publish``. A quorum queue takes
   ``overflow`` from the policy before its own argument and the lower ``max-length``, so the broker refuses
   (nacks) messages published to it by name through the default exchange, which no binding can cut.
   RabbitMQ enforces this limit only once the queue holds more than it, and tells each publisher
   asynchronously: apply publishes a first probe (taken: now the queue is over its limit) and a second
   one on another channel, which must be refused (the fence holds).
   Classic queues need no fence: their delete carries ``if-empty`` and ``if-unused``, so the broker itself
   refuses, atomically, to delete one that got a message or a consumer.
3. **Count** each queue exactly (an AMQP passive declare): a classic queue must hold nothing, a fenced
   quorum queue exactly apply's probe, and none may have a consumer.
4. If anything arrived, or the fence did not hold, or the broker refused a delete: **stop**, put back what
   was cut (bindings, fences, probes) and raise :class:`~topo.errors.UnsafeChange` saying what arrived
   where; nothing is lost, and the next apply converges. Otherwise **delete** every queue, and remove
   each fence right after its queue (before the new queue is declared, which it would otherwise fence):
   a classic queue over HTTP with ``if-empty`` and ``if-unused`` (the broker refuses atomically if a
   message or a consumer arrived since); a quorum queue over AMQP, on one connection per vhost, **counted
   once more** (a passive declare, ~0.2 ms) and, when it still holds only apply's probe, deleted at once
   with ``queue.delete`` (RabbitMQ refuses ``if-empty`` and ``if-unused`` for a quorum queue). A count
   that changed stops apply as in 4, with nothing lost.
5. **Check what the delete took.** ``Queue.DeleteOk`` carries ``message_count``: for a quorum queue,
   RabbitMQ 3.10 counts the queue's ready messages inside the delete, just before it removes the queue's
   Raft cluster (``rabbit_quorum_queue:delete/4``: ``stat/1``, then ``ra:delete_cluster/2``); it equals
   the passive declare's count of a queue left alone (checked on 3.10.8: 0, 1, 7, 500 messages). When that
   count is more than apply's probe, messages landed in the instant between apply's last count and the
   delete and went with the queue: apply makes the rest of its changes (the new queue is declared, so
   nothing more is lost) and then raises :class:`~topo.errors.MessagesLost` saying how many, from which
   queue, and why. Less than the probe (RabbitMQ answers 0 when the queue's leader does not answer its
   count within 250 ms) means apply cannot tell, and it says that too.

What RabbitMQ itself leaves open (3.10): a publish that a channel had already sent on to the quorum
queue before that channel learnt of the fence is still taken. The last count and the count inside the
delete see it, except in the broker's own instant between that count and the removal of the queue's Raft
cluster (the delete is a command in that log: what is appended before it goes with the queue, uncounted).
Measured here from the client, the last count and the delete together take about 2 ms; before, when the
quorum queue was deleted over HTTP, the silent window ran from the count in step 3 to the delete: 5 ms
for one queue, about 150 ms each when 40 are replaced at once. The broker also
confirms, without delivering, a publish that is on its way to a queue at the instant the queue is deleted
(for every queue type: rabbit_channel treats it as routed nowhere).

An apply killed half-way may leave a fence; the next plan shows its removal, and apply removes it first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from topo.broker.port import NO_AMQP_URL, PROBE_HEADER, PROBE_ID_PREFIX, Broker, DropCheck, ListedBinding, NoExactCount
from topo.errors import BrokerError, MessagesLost, TopoError, UnsafeChange
from topo.model import Binding, BindingKey, Policy, Queue
from topo.plan.model import Change
from topo.plan.safety import FENCE_PREFIX, FENCE_RELAXED, fence_policy, listing

__all__ = ["BindingIndex", "Miscount", "QueueDrop", "clear_fence", "fence_priority", "lost", "refused", "remove_fence"]


class BindingIndex:
    """A vhost's bindings as the broker lists them (with the ``properties_key`` a delete needs), read once
    per apply (``GET /api/bindings/{vhost}``) instead of once per binding deleted."""

    def __init__(self, broker: Broker, vhost: str) -> None:
        self.broker = broker
        self.vhost = vhost
        self._items: dict[BindingKey, ListedBinding] = {
            listed.binding.key: listed for listed in broker.bindings(vhost) if listed.binding.source
        }

    def delete(self, binding: Binding) -> None:
        """Delete ``binding`` (nothing when the broker does not have it)."""
        listed = self._items.pop(binding.key, None)
        if listed is not None:
            self.broker.delete_binding(self.vhost, listed)

    def cut(self, queue: str) -> list[ListedBinding]:
        """Delete every binding whose destination is ``queue``; returns them, to put them back."""
        cut = [listed for key, listed in self._items.items() if key[1] == "queue" and key[2] == queue]
        for listed in cut:
            self.broker.delete_binding(self.vhost, listed)
            del self._items[listed.binding.key]
        return cut

    def restore(self, items: Sequence[ListedBinding]) -> None:
        """Create ``items`` (bindings :meth:`cut` returned) again."""
        for listed in items:
            self.broker.add_binding(self.vhost, listed.binding)
            self._items[listed.binding.key] = listed


def remove_fence(broker: Broker, vhost: str, name: str, *, relax: bool = True) -> None:
    """Remove fence policy ``name``. With ``relax`` (the queue stays), first widen its limit, so that the
    publishers the fence refused are told to publish again: RabbitMQ tells them only when the queue falls
    below its limit, never when the policy goes."""
    if relax:
        current = broker.policy(vhost, name)
        if current is None:
            return
        broker.put_policy(vhost, Policy(name, current.pattern, current.apply_to, current.priority, FENCE_RELAXED))
    broker.delete_policy(vhost, name)


def clear_fence(broker: Broker, vhost: str, name: str, queue: str) -> None:
    """Remove fence policy ``name`` that an interrupted apply left on ``queue``, and the probes it left at
    the head of the queue (while the fence held, nothing else got in before them)."""
    if broker.amqp.available:
        broker.amqp.remove_probes(vhost, queue, 2, None)
    remove_fence(broker, vhost, name)


def fence_priority(broker: Broker, vhost: str) -> int:
    """One above every policy of the vhost (equal priorities apply in no defined order)."""
    priorities = [p.priority for p in broker.policies(vhost) if not p.name.startswith(FENCE_PREFIX)]
    return max(priorities, default=0) + 1


def _problem(name: str, queue_type: str, check: DropCheck | NoExactCount | None, *, in_use: bool = False) -> str | None:
    """What stops apply from deleting queue ``name`` now (``check``: its last look; or why AMQP could not
    look; ``None``: no AMQP URL), in words; ``None`` when it may go. ``in_use``: its consumers do not stop
    it (a migration: the delete cancels them, and they consume the new queue)."""
    if queue_type not in ("classic", "quorum"):  # the plan blocks these; this holds if it did not see one
        return f"it is a {queue_type}, whose messages cannot be counted exactly: apply never drops one"
    if not isinstance(check, DropCheck):
        if queue_type == "classic":
            return None  # the broker's if-empty and if-unused guards still hold
        why = check.reason if check is not None else NO_AMQP_URL
        return f"{why}, so apply could not check that its fence holds"
    if not check.exists or check.probe == "unroutable":
        return None  # gone already: nothing to drop
    found: list[str] = []
    if check.probe is None:
        if check.ready:
            found.append(f"{check.ready} message{'s' if check.ready != 1 else ''} arrived after apply counted it")
    elif check.probe == "refused":
        found.append(
            f"{check.ready} message{'s' if check.ready != 1 else ''} arrived after apply counted it (then the "
            "fence refused apply's probe)"
        )
    elif check.fence_holds is False:
        found.append(
            "its fence did not hold: the broker took a second probe (does a policy of a higher priority apply to it?)"
        )
    elif check.ready > 1:
        arrived = check.ready - 1
        found.append(f"{arrived} message{'s' if arrived != 1 else ''} arrived after apply counted it")
    elif check.ready == 0:
        found.append(
            "the broker did not count apply's probe in it (RabbitMQ answers 0 for a quorum queue whose "
            "leader is slow to answer), so apply cannot know that it is empty"
        )
    if check.consumers and not in_use:
        found.append(f"{check.consumers} consumer{'s' if check.consumers != 1 else ''} started reading it")
    return "; ".join(found) or None


def _probes_taken(check: DropCheck | None) -> int:
    if check is None:
        return 0
    return (check.probe == "taken") + (check.fence_holds is False)


class QueueDrop:
    """The queues of one vhost that an apply drops: :meth:`prepare` cuts, fences and counts them,
    :attr:`problems` says what stops them, :meth:`put_back` undoes the preparation, :meth:`delete` deletes
    them. The writer prepares every vhost before it deletes any queue."""

    def __init__(
        self, broker: Broker, vhost: str, changes: Sequence[Change], bindings: BindingIndex, *, in_use: bool = False
    ) -> None:
        self.broker = broker
        self.in_use = in_use  # consumers do not stop the delete (a migration's old queue: they are cancelled)
        self.vhost = vhost
        self.changes = {c.address.name: c for c in changes}
        self.types = {n: c.before.type if isinstance(c.before, Queue) else "classic" for n, c in self.changes.items()}
        self.bindings = bindings
        self.cut: dict[str, list[ListedBinding]] = {}
        self.fences: dict[str, str] = {}  # queue -> fence policy name
        self.checks: dict[str, DropCheck] | None = None
        self.no_check: NoExactCount | None = None  # why AMQP could not look, when it could not
        self.problems: list[tuple[str, str]] = []  # (queue, what stops it)
        self.left: list[str] = []  # what put_back could not undo, in words
        self.probe_id = f"{PROBE_ID_PREFIX}{uuid.uuid4()}"
        self.cluster: str | None = None

    def prepare(self, cluster: str | None) -> None:
        """Cut each queue off, fence the quorum ones, then count them all; sets :attr:`problems`."""
        broker, vhost = self.broker, self.vhost
        self.cluster = cluster
        for name in self.changes:
            self.cut[name] = self.bindings.cut(name)
        quorum = [n for n in self.changes if self.types[n] == "quorum"]
        if quorum:
            priority = fence_priority(broker, vhost)
            for name in quorum:
                fence = fence_policy(name, priority)
                broker.put_policy(vhost, fence)
                self.fences[name] = fence.name
        if broker.amqp.available:
            fenced = {n: n in self.fences for n in self.changes}
            checked = broker.amqp.check_drops(vhost, fenced, self.probe_id, cluster=cluster)
            if isinstance(checked, NoExactCount):
                self.no_check = checked
            else:
                self.checks = checked
        for name in self.changes:
            check = self.checks.get(name) if self.checks is not None else self.no_check
            text = _problem(name, self.types[name], check, in_use=self.in_use)
            if text:
                self.problems.append((name, text))

    def put_back(self, queues: Sequence[str] | None = None) -> None:
        """Undo the cut, the fence and the probes of ``queues`` (default: all not deleted)."""
        broker, vhost = self.broker, self.vhost
        for name in list(self.cut) if queues is None else queues:
            check = self.checks.get(name) if self.checks else None
            taken = _probes_taken(check)
            if taken and broker.amqp.available:
                stays, moved = broker.amqp.remove_probes(vhost, name, taken, self.probe_id)
                if moved:
                    self.left.append(
                        f"to take its probe back, apply took {moved} message{'s' if moved != 1 else ''} out of "
                        f"queue {name!r} of vhost {vhost!r} and put {'it' if moved == 1 else 'them'} back, in "
                        "order, at the head of the queue (now marked redelivered)"
                    )
                if stays:
                    self.left.append(
                        f"{stays} probe message{'s' if stays != 1 else ''} of apply (header {PROBE_HEADER}) "
                        f"stay{'s' if stays == 1 else ''} in queue {name!r} of vhost {vhost!r}, behind messages "
                        "that are not apply's: its consumers will get them; drop them"
                    )
            if name in self.fences:
                remove_fence(broker, vhost, self.fences.pop(name))
            self.bindings.restore(self.cut.pop(name, []))

    def delete(self, on_deleted: Callable[[Change], None], on_miscount: Callable[[Miscount], None]) -> None:
        """Delete every prepared queue: the quorum ones first, over AMQP, then the classic ones; each fence
        right after its queues. Something that arrived in a queue since it was counted stops it: what is not
        deleted yet is put back, and UnsafeChange raised.

        A quorum queue is counted once more and deleted at once on the same AMQP connection; the broker's
        ``Queue.DeleteOk`` says how many ready messages it deleted with the queue. When that is not apply's
        own probe alone (messages came in the instant between the last count and the delete), ``on_miscount``
        is told, and the writer raises :class:`~topo.errors.MessagesLost` once the apply is done. A classic
        queue's delete carries ``if-empty`` and ``if-unused``: the broker refuses it atomically."""
        broker, vhost = self.broker, self.vhost
        quorum = [name for name in self.cut if self.types[name] == "quorum"]
        if quorum:
            expected = {name: self._probes_in(name) for name in quorum}
            if self.in_use:
                done, failed = broker.amqp.delete_if_counted(vhost, expected, cluster=self.cluster, in_use=True)
            else:
                done, failed = broker.amqp.delete_if_counted(vhost, expected, cluster=self.cluster)
            for result in done:
                if result.counted is not None and not result.deleted:  # it counted otherwise: stopped there
                    self.put_back([name for name in self.cut])
                    self.problems.append((result.name, self._arrived(result.name, result.counted)))
                    raise refused([self])
                self._gone(result.name, on_deleted)
                if result.message_count is not None and result.message_count != expected[result.name]:
                    on_miscount(Miscount(vhost, result.name, result.message_count, expected[result.name]))
            if failed is not None and len(done) < len(quorum):  # (a failure after the last delete changes nothing)
                why = f"{failed.reason}, so apply could not delete it over AMQP and count what went with it"
                self.problems.append((quorum[len(done)], why))
                self.put_back([name for name in self.cut])
                raise refused([self])
        names = list(self.cut)
        for index, name in enumerate(names):
            try:
                broker.delete_queue(vhost, name, if_empty=True, if_unused=not self.in_use)
            except BrokerError as exc:
                if exc.status != 400:
                    raise
                self.put_back(names[index:])
                why = exc.message.split(": ", 1)[-1]
                self.problems.append((name, f"the broker refused to delete it ({why})"))
                raise refused([self]) from None
            self._gone(name, on_deleted)

    def _gone(self, name: str, on_deleted: Callable[[Change], None]) -> None:
        if name in self.fences:  # before the new queue is declared, which the fence would match too
            remove_fence(self.broker, self.vhost, self.fences.pop(name), relax=False)
        del self.cut[name]
        on_deleted(self.changes[name])

    def _probes_in(self, name: str) -> int:
        """How many ready messages apply's last look allows in queue ``name``: its own probes."""
        check = self.checks.get(name) if self.checks is not None else None
        return _probes_taken(check) if check is not None and check.exists else 0

    def _arrived(self, name: str, counted: tuple[int, int]) -> str:
        """What the count just before the delete of ``name`` found, in the words of the last look."""
        check = self.checks.get(name) if self.checks is not None else None
        probe = check.probe if check is not None else None
        holds = check.fence_holds if check is not None else None
        again = DropCheck(True, counted[0], counted[1], probe, holds)
        return (
            _problem(name, self.types[name], again, in_use=self.in_use) or "it changed"
        ) + " (apply's count just before the delete)"


@dataclass(frozen=True)
class Miscount:
    """A quorum queue whose delete counted other than apply's last look: RabbitMQ's ``Queue.DeleteOk``
    said ``counted`` ready messages went with it, where apply expected ``expected`` (its own probes)."""

    vhost: str
    queue: str
    counted: int
    expected: int


_WHY_DROPPED = (
    " A publisher kept publishing to the queue by name through the default exchange during the replacement: its "
    "channel had sent those messages on before it learnt of apply's fence, and they landed in the instant between "
    "apply's last count and the delete"
)


def lost(miscounts: Sequence[Miscount], *, stopped: TopoError | None = None) -> MessagesLost:
    """The error for quorum queues whose delete took more (or other) than apply's probes with it: after
    every change was made, or with ``stopped``, the error that stopped apply afterwards."""
    items = []
    for m in miscounts:
        where = f"quorum queue {m.queue!r} in vhost {m.vhost!r}"
        probes = "its probe" if m.expected == 1 else f"{m.expected} probes"
        if m.counted > m.expected:
            extra = m.counted - m.expected
            items.append(
                f"{where}: RabbitMQ deleted {_plural(extra, 'message')} with it besides apply's probe (its delete "
                f"counted {m.counted}; apply's count an instant before found {probes} alone)"
            )
        else:
            items.append(
                f"{where}: RabbitMQ's delete counted {m.counted} where apply's count an instant before found "
                f"{probes}, so apply cannot tell what went with it (RabbitMQ answers 0 when the queue's leader is "
                "slow to answer; a consumer that started meanwhile would have taken the probe and what came after)"
            )
    dropped = sum(max(m.counted - m.expected, 0) for m in miscounts)
    lead = "apply made every change, but " if stopped is None else f"{stopped.message}. Before that, "
    if dropped:
        what = f"RabbitMQ dropped {_plural(dropped, 'message')} as it deleted a quorum queue apply replaced"
    else:
        what = "apply cannot tell whether RabbitMQ dropped messages as it deleted a quorum queue apply replaced"
    return MessagesLost(
        lead + what + ": " + listing(items) + "." + (_WHY_DROPPED + "." if dropped else ""),
        hint=(f"{stopped.hint}; " if stopped is not None and stopped.hint else "")
        + "find the publisher that sends to the queue through the default exchange (routing key: the queue's "
        "name) and have it publish again what it sent during the apply; stop such publishers (or publish through "
        "an exchange) before a quorum queue is replaced",
        details=tuple(items) + tuple(getattr(stopped, "details", ())),
        dropped=dropped,
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def refused(drops: Sequence[QueueDrop]) -> UnsafeChange:
    """The error for the problems of ``drops`` (after they were put back)."""
    items = [f"queue {name!r} in vhost {d.vhost!r}: {text}" for d in drops for name, text in d.problems]
    left = [text for d in drops for text in d.left]
    return UnsafeChange(
        "refusing to delete a queue that got messages or consumers while apply was replacing it: "
        + listing(items)
        + ". What apply had cut (bindings, fences) was put back: nothing was lost"
        + ("; " + "; ".join(left) if left else ""),
        hint="something still publishes to (or reads) the queue: stop it, drain the queue, then run `topo apply` again",
        details=tuple(items) + tuple(left),
    )
