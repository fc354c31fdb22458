"""Zero-loss migration of a queue whose fixed settings change (``topo apply --migrate``), as the plan sees
it. Pure: which replacements become migrations, what blocks one, and the migrations an interrupted apply
left on the broker (its holding queues), which the next plan finishes.

A migration is a change of its own (``migrate``): the queue is replaced, and every message it holds ends
up in the new queue, in order; the protocol is :mod:`topo.broker.migrate`. While it runs, two holding
queues of the vhost carry the messages: ``topo.migrate.old.<queue>`` the old queue's, and
``topo.migrate.new.<queue>`` those published during the migration (it takes the queue's bindings). They
are the migration's state on the broker: while either exists, the migration is not finished, and the next
plan says so (a ``migrate`` change for the queue, whatever its settings), so that the same apply run again
finishes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from topo.model import Address, Binding, Queue, Topology
from topo.plan.model import Blocker, Change, Plan
from topo.plan.safety import COUNT_CODES

__all__ = [
    "NEW_PREFIX",
    "OLD_PREFIX",
    "as_migrations",
    "holding_queue",
    "holding_queues",
    "in_progress",
    "migrate_hint",
    "migrating",
    "migration_blockers",
]

OLD_PREFIX = "topo.migrate.old."
"""The holding queue of the old queue's messages: ``topo.migrate.old.<queue>``."""
NEW_PREFIX = "topo.migrate.new."
"""The holding queue of the messages published during the migration: ``topo.migrate.new.<queue>``."""

MIGRATE_FLAG = "topo apply --migrate"


def holding_queues(queue: str) -> tuple[str, str]:
    """The two holding queues of ``queue``'s migration: (the old messages', the new ones')."""
    return OLD_PREFIX + queue, NEW_PREFIX + queue


def migrating(name: str) -> str | None:
    """The queue whose migration holding queue ``name`` is (``None``: not a holding queue)."""
    for prefix in (OLD_PREFIX, NEW_PREFIX):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :]
    return None


def holding_queue(new: Queue, name: str) -> Queue:
    """A holding queue for a migration to ``new``: a durable classic queue without any argument (no limit,
    TTL or dead-lettering that could drop a message while it waits there). Classic, whatever ``new`` is: a
    move out of it is atomic per batch (an AMQP transaction's acks reach a classic queue before the broker
    learns that a killed apply's channel is gone; a quorum queue settles them asynchronously, so a kill
    could return a batch that was also committed to the target), and a moved message keeps its
    persistence (``delivery_mode``)."""
    del new  # the same holding queue for every target: its settings must never drop or duplicate a message
    return Queue(name, type="classic", durable=True, auto_delete=False)


def migrate_hint(action: str) -> str:
    """What a blocked replacement of a queue holding messages can do instead."""
    return f"or run `{MIGRATE_FLAG}` to move them into the new queue" if action == "replace" else ""


def migration_blockers(change: Change) -> tuple[Blocker, ...]:
    """What stops the migration of ``change``'s queue (its count in ``usage``)."""
    found = []
    types = {q.type for q in (change.before, change.after) if isinstance(q, Queue)}
    if "stream" in types:
        found.append(
            Blocker(
                "stream-migration",
                "a stream cannot be migrated: its messages are not consumed off it, and over AMQP RabbitMQ "
                "cannot count them",
                "move a stream's messages with a client of your own, then replace it",
            )
        )
    usage = change.usage
    if usage is not None and not usage.exact and change.before is not None and "stream" not in types:
        found.append(
            Blocker(
                "inexact-count",
                f"has no exact message count ({usage.why_inexact or 'AMQP did not answer'}): a migration moves "
                "and counts its messages over AMQP",
                "give --amqp-url (or $TOPO_AMQP_URL) of this broker, with a user AMQP lets into the vhost",
            )
        )
    return tuple(found)


def _as_migration(change: Change) -> Change:
    usage = change.usage
    warnings = list(change.warnings)
    if usage is not None and usage.consumers:
        warnings.append(
            f"{usage.consumers} consumer{'s' if usage.consumers != 1 else ''} read it: deleting the old queue "
            "cancels them (Basic.Cancel); topo's runtime subscribes again to the new queue, other clients must"
        )
    if usage is not None and usage.unacked:
        warnings.append(
            f"{usage.unacked} message{'s' if usage.unacked != 1 else ''} delivered and not acknowledged yet: "
            "apply deletes the old queue only once its consumers hold none (it moves what they requeue); if they "
            "still hold some after --migrate-wait (60 s), it stops before the delete, nothing lost, and the same "
            "apply run again finishes"
        )
    warnings.append(
        "its routes move to a holding queue and back, each binding an add then a delete (RabbitMQ moves no two "
        "at once): a message published in that instant may come twice, or after one published just after it; "
        "apply says how many at most"
    )
    kept = tuple(w for w in warnings if "if-empty" not in w and not w.startswith("data loss allowed"))
    migrated = replace(change, action="migrate", warnings=kept)
    others = tuple(b for b in change.blockers if b.code not in COUNT_CODES)  # protected, ...: they stay
    return replace(migrated, blockers=others + migration_blockers(migrated))


def in_progress(observed: Topology) -> dict[str, set[str]]:
    """The queues (by vhost) an interrupted migration left holding queues for."""
    found: dict[str, set[str]] = {}
    for vhost_name, vhost in observed.vhosts.items():
        for name in vhost.queues:
            target = migrating(name)
            if target is not None:
                found.setdefault(vhost_name, set()).add(target)
    return found


def as_migrations(plan: Plan, desired: Topology, observed: Topology, *, migrate: bool) -> Plan:
    """``plan`` (counted: :func:`topo.plan.safety.annotate`) with, when ``migrate``, each replacement of a
    queue made a migration; and, always, a migration for each queue an interrupted one left holding
    queues for (a queue the plan would create is created by the migration; one that has its new settings
    already gets its messages back)."""
    left: Mapping[str, set[str]] = in_progress(observed)
    changes: list[Change] = []
    resumed: set[tuple[str, str]] = set()
    for change in plan.changes:
        key = (change.vhost, change.address.name)
        pending = change.kind == "queue" and change.address.name in left.get(change.vhost, set())
        if change.kind == "queue" and change.action == "replace" and (migrate or pending):
            change = _as_migration(change)
            resumed.add(key)
        elif pending and change.action == "create":
            change = replace(change, action="migrate", reasons=(_RESUME,))
            resumed.add(key)
        changes.append(change)
    changes = _bindings_moved(changes)
    for vhost_name in sorted(left):
        wanted = desired.vhosts.get(vhost_name)
        for name in sorted(left[vhost_name]):
            queue = wanted.queues.get(name) if wanted is not None else None
            if queue is None or (vhost_name, name) in resumed:
                continue  # no file declares the queue any more: its holding queues are listed, not managed
            changes.append(
                Change("migrate", Address("queue", vhost_name, name), before=queue, after=queue, reasons=(_RESUME,))
            )
    return replace(plan, changes=changes)


_RESUME = "an interrupted migration left its holding queues: apply finishes it"


def _bindings_moved(changes: list[Change]) -> list[Change]:
    """``changes`` without the ``protected`` block of a binding that a queue's replacement would drop and
    create again (:func:`topo.plan.ownership.guard`) when that replacement is now a migration: a migration
    moves the queue's bindings to its holding queue and back, never without them (unless the binding's
    exchange is replaced too: then it is dropped, and stays blocked)."""
    migrated = {(c.vhost, c.address.name) for c in changes if c.kind == "queue" and c.action == "migrate"}
    dropped = {(c.vhost, c.address.name) for c in changes if c.kind == "exchange" and c.action == "replace"}
    if not migrated:
        return changes
    out = []
    for change in changes:
        binding = change.after
        if (
            change.kind == "binding"
            and change.action == "create"
            and isinstance(binding, Binding)
            and binding.destination_type == "queue"
            and (change.vhost, binding.destination) in migrated
            and (change.vhost, binding.source) not in dropped
        ):
            change = replace(change, blockers=tuple(b for b in change.blockers if b.code != "protected"))
        out.append(change)
    return out
