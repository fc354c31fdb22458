"""How each change is made on the broker: one executor per (kind, action), registered in a table (as
alembic's ``@Operations.implementation_for``), and the runners the phases of an apply use.

Two tables, one per way a change is made:

- :data:`EXECUTORS`: a change on its own (a PUT, a DELETE), ``(kind, action) → executor(run, change)``;
- :data:`IMPORTS`: a change that is part of the broker's bulk import (``POST /api/definitions/{vhost}``,
  creates only: an import silently keeps what exists), ``(kind, action) → (section, definition)``.

A replace is made in two phases: its delete half by its entry in :data:`EXECUTORS` (or, for a queue, by
the drop protocol), its create half by its entry in :data:`IMPORTS`. Which phase runs what, in which order,
is data: :data:`topo.broker.phases.PHASES`. Executors share the state of one apply (:class:`Run`): the
broker, the progress count, the bindings of each vhost read once, what was deleted for a replacement and
not declared again yet.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from topo.broker.drop import BindingIndex, Miscount, QueueDrop, clear_fence, refused
from topo.broker.port import Broker
from topo.definitions import (
    IMPORT_SECTIONS,
    binding_definition,
    exchange_definition,
    federation_upstream_set_value,
    federation_upstream_value,
    password_to_send,
    queue_definition,
    shovel_value,
)
from topo.errors import BrokerError
from topo.model import (
    Binding,
    Exchange,
    FederationUpstream,
    FederationUpstreamSet,
    GlobalParameter,
    Inventory,
    Permission,
    Policy,
    Queue,
    Shovel,
    TopicPermissions,
    User,
)
from topo.plan.kinds.permission import topic_entries_removed
from topo.plan.model import Action, Change, Plan, QueueUsage
from topo.plan.ownership import PREFIX, encode, stale_parts
from topo.plan.safety import (
    annotate,
    data_loss_allowed,
    dropped_queues,
    fenced_queue,
    refusal,
    refused_as_planned,
    standing_refusal,
)

__all__ = [
    "EXECUTORS",
    "IMPORTS",
    "Executor",
    "Import",
    "Progress",
    "Run",
    "bulk_import",
    "check_safety",
    "count_dropped",
    "drop_queues",
    "drop_with_loss",
    "each",
    "executes",
    "imports",
    "record_intent",
    "refuse_standing",
    "repair_fences",
    "safety_check",
    "write_inventory",
]

Progress = Callable[[str, int], None]
"""Called with a short description and the number of changes it completes."""


@dataclass
class Run:
    """The state of one apply, shared by its executors and phases."""

    broker: Broker
    plan: Plan
    progress: Progress | None = None
    cluster: str | None = None  # the broker's cluster name, when the plan drops queues (AMQP must answer so)
    recount: bool = True  # count the dropped queues again before any write
    done: int = 0  # changes completed, for ApplyFailed's "how far it got"
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (vhost, what): deleted, not declared again yet
    miscounts: list[Miscount] = field(default_factory=list)  # quorum deletes that took other than apply's probes
    indexes: dict[str, BindingIndex] = field(default_factory=dict)
    lost: list[tuple[str, str, int]] = field(default_factory=list)  # (vhost, queue, messages): --allow-data-loss
    inventory: Inventory | None = None  # the inventory this apply wrote last (the intended one)
    notes: list[str] = field(default_factory=list)  # what the user should hear after the apply (a migration's figures)
    migrate_wait: float = 60.0  # how long a migration waits for the old queue's consumers to settle what they hold
    stats_lag: float | None = None  # how long the broker's statistics may lag (None: what the broker says)

    def step(self, text: str, changes: int = 1) -> None:
        """``changes`` more changes are made (``text`` says which)."""
        self.done += changes
        if self.progress:
            self.progress(text, changes)

    def deleted(self, change: Change) -> None:
        """The old resource of a replace is gone; the new one is not declared yet. (A delete: done.)"""
        if change.action == "delete":
            self.step(f"delete {change.address}")
            return
        self.dropped.append((change.vhost, f"{change.kind} {change.address}"))

    def declared(self, vhost: str) -> None:
        """Everything deleted for a replacement in ``vhost`` is declared again."""
        self.dropped[:] = [(v, what) for v, what in self.dropped if v != vhost]

    def bindings(self, vhost: str) -> BindingIndex:
        """The bindings of ``vhost``, read once per apply."""
        if vhost not in self.indexes:
            self.indexes[vhost] = BindingIndex(self.broker, vhost)
        return self.indexes[vhost]


R = TypeVar("R")


def _resource(value: object, cls: type[R]) -> R:
    """``value`` (a change's ``before`` or ``after``) as the ``cls`` its kind and action hold."""
    if not isinstance(value, cls):  # only a plan built by hand can hold anything else
        raise TypeError(f"a change of this kind holds a {cls.__name__}, not {type(value).__name__}")
    return value


Executor = Callable[[Run, Change], None]
Import = Callable[[Change], tuple[str, dict[str, Any]]]

EXECUTORS: dict[tuple[str, Action], Executor] = {}
IMPORTS: dict[tuple[str, Action], Import] = {}


def executes(kind: str, *actions: Action) -> Callable[[Executor], Executor]:
    """Register the decorated function as the executor of ``kind``'s ``actions`` (one each)."""

    def register(function: Executor) -> Executor:
        for action in actions:
            if (kind, action) in EXECUTORS:
                raise ValueError(f"two executors for {kind} {action}")
            EXECUTORS[(kind, action)] = function
        return function

    return register


def imports(kind: str, *actions: Action) -> Callable[[Import], Import]:
    """Register the decorated function as what ``kind``'s ``actions`` put in the bulk import."""

    def register(function: Import) -> Import:
        for action in actions:
            if (kind, action) in IMPORTS:
                raise ValueError(f"two imports for {kind} {action}")
            IMPORTS[(kind, action)] = function
        return function

    return register


# -- vhosts ----------------------------------------------------------------------------------------------


@executes("vhost", "create", "update")
def put_vhost(run: Run, change: Change) -> None:
    """The metadata (a PUT replaces it: on an update, what the files do not manage is sent as it is) and
    each limit that changes."""
    broker, name = run.broker, change.vhost
    after: Mapping[str, Any] = change.after if isinstance(change.after, dict) else {}
    before: Mapping[str, Any] = change.before if isinstance(change.before, dict) else {}
    if change.action == "create" or {"description", "tags", "tracing"} & set(after):
        description: str | None = after.get("description")
        tags: tuple[str, ...] | None = tuple(after["tags"]) if "tags" in after else None
        if change.action == "update":
            current = broker.vhost_info(name)
            if description is None:
                description = current.description if current is not None else ""
            if tags is None:
                tags = current.tags if current is not None else ()
        queue_type = after.get("default-queue-type") if change.action == "create" else None  # at creation only
        broker.put_vhost(
            name, description=description, tags=tags, default_queue_type=queue_type, tracing=after.get("tracing")
        )
    if "limits" in after:
        limits: Mapping[str, int] = after["limits"]
        old: Mapping[str, int] = before.get("limits") or {}
        for key, value in sorted(limits.items()):
            if old.get(key) != value:
                broker.set_vhost_limit(name, key, value)
        for key in sorted(set(old) - set(limits)):
            broker.clear_vhost_limit(name, key)
    run.step(f"{change.action} {change.address}")


# -- exchanges, queues, bindings -------------------------------------------------------------------------


@executes("exchange", "replace")
def delete_replaced_exchange(run: Run, change: Change) -> None:
    """The delete half of a replace (the new exchange comes with the bulk import)."""
    run.broker.delete_exchange(change.vhost, change.address.name)
    run.deleted(change)


@executes("exchange", "delete")
def delete_exchange(run: Run, change: Change) -> None:
    """A prune's or ``topo destroy``'s (its bindings go with it)."""
    run.broker.delete_exchange(change.vhost, change.address.name)
    run.step(f"delete {change.address}")


@executes("vhost", "delete")
def delete_vhost(run: Run, change: Change) -> None:
    """A prune's or ``topo destroy``'s: everything in it goes with it (its queues were dropped before, under the
    guards)."""
    run.broker.delete_vhost(change.vhost)
    run.step(f"delete {change.address}")


@executes("binding", "delete")
def delete_binding(run: Run, change: Change) -> None:
    run.bindings(change.vhost).delete(_resource(change.before, Binding))
    run.step(f"delete {change.address}")


@imports("exchange", "create", "replace")
def import_exchange(change: Change) -> tuple[str, dict[str, Any]]:
    return "exchanges", exchange_definition(_resource(change.after, Exchange))


@imports("queue", "create", "replace")
def import_queue(change: Change) -> tuple[str, dict[str, Any]]:
    return "queues", queue_definition(_resource(change.after, Queue))


@imports("binding", "create")
def import_binding(change: Change) -> tuple[str, dict[str, Any]]:
    return "bindings", binding_definition(_resource(change.after, Binding))


# -- policies and operator policies ----------------------------------------------------------------------


@executes("policy", "create", "update")
@executes("operator-policy", "create", "update")
def put_policy(run: Run, change: Change) -> None:
    policy = _resource(change.after, Policy)
    run.broker.put_policy(change.vhost, policy, operator=change.kind == "operator-policy")
    run.step(f"{change.action} {change.address}")


@executes("policy", "delete")
@executes("operator-policy", "delete")
def delete_policy(run: Run, change: Change) -> None:
    policy = _resource(change.before, Policy)
    run.broker.delete_policy(change.vhost, policy.name, operator=change.kind == "operator-policy")
    run.step(f"delete {change.address}")


# -- users, permissions, topic permissions, global parameters (broker-wide) ------------------------------


@executes("user", "create", "update")
def put_user(run: Run, change: Change) -> None:
    """Every user PUT carries a password hash: the broker's stored one, byte for byte, when the password does
    not change (a PUT without one would clear it; the plaintext sent again would get a new salt); a hash
    topo computes with a fresh salt when it does (the plaintext never travels). Then each limit that changes."""
    after = _resource(change.after, User)
    observed = change.before if isinstance(change.before, User) else None
    run.broker.put_user(after.name, after.tags, password_to_send(after, observed))
    if after.limits is not None:
        old = dict(observed.limits or {}) if observed is not None else {}
        for key, value in sorted(after.limits.items()):
            if old.get(key) != value:
                run.broker.set_user_limit(after.name, key, value)
        for key in sorted(set(old) - set(after.limits)):
            run.broker.clear_user_limit(after.name, key)
    run.step(f"{change.action} {change.address}")


@executes("user", "delete")
def delete_user(run: Run, change: Change) -> None:
    """Its permissions, topic permissions and limits go with it (the broker deletes them)."""
    run.broker.delete_user(change.address.name)
    run.step(f"delete {change.address}")


@executes("permission", "create", "update")
def put_permission(run: Run, change: Change) -> None:
    run.broker.put_permission(_resource(change.after, Permission))
    run.step(f"{change.action} {change.address}")


@executes("permission", "delete")
def delete_permission(run: Run, change: Change) -> None:
    permission = _resource(change.before, Permission)
    run.broker.delete_permission(permission.vhost, permission.user)
    run.step(f"delete {change.address}")


@executes("topic-permission", "create", "update")
def put_topic_permissions(run: Run, change: Change) -> None:
    """Each exchange's entry that is new or changes. RabbitMQ 3.10 deletes a user's topic permissions on a
    vhost only all at once: when an entry goes, all are deleted, then the declared ones set again."""
    after = _resource(change.after, TopicPermissions)
    entries = list(after.exchanges.values())
    if isinstance(change.before, TopicPermissions):
        if topic_entries_removed(change.before, after):
            run.broker.delete_topic_permissions(after.vhost, after.user)
        else:
            entries = [e for e in entries if e != change.before.exchanges.get(e.exchange)]
    for entry in sorted(entries, key=lambda e: e.exchange):
        run.broker.put_topic_permission(after.vhost, after.user, entry)
    run.step(f"{change.action} {change.address}")


@executes("topic-permission", "delete")
def delete_topic_permissions(run: Run, change: Change) -> None:
    permissions = _resource(change.before, TopicPermissions)
    run.broker.delete_topic_permissions(permissions.vhost, permissions.user)
    run.step(f"delete {change.address}")


@executes("global-parameter", "create", "update")
def put_global_parameter(run: Run, change: Change) -> None:
    run.broker.put_global_parameter(_resource(change.after, GlobalParameter))
    run.step(f"{change.action} {change.address}")


@executes("global-parameter", "delete")
def delete_global_parameter(run: Run, change: Change) -> None:
    run.broker.delete_global_parameter(change.address.name)
    run.step(f"delete {change.address}")


# -- a stack's inventory (global parameters topo.stack.*) -----------------------------------------------------


def write_inventory(broker: Broker, inventory: Inventory) -> None:
    """Write ``inventory``: a new generation's further parts, then part 0 (which names the generation: the
    switch), then remove the parts of other generations."""
    generation = uuid.uuid4().hex[:12]
    for parameter in encode(inventory, generation):
        broker.put_global_parameter(parameter)
    for name in stale_parts(broker.global_parameters(), inventory.stack, generation):
        broker.delete_global_parameter(name)


@executes("stack", "create", "update")
def put_inventory(run: Run, change: Change) -> None:
    """The final inventory (not written again when the intended one, written first, is the same: an apply
    that only creates)."""
    after = _resource(change.after, Inventory)
    if after != run.inventory:
        write_inventory(run.broker, after)
    run.step(f"{change.action} {change.address}")


@executes("stack", "delete")
def delete_inventory(run: Run, change: Change) -> None:
    """Part 0 first: the inventory is gone at once; then its other parts."""
    inventory = _resource(change.before, Inventory)
    run.broker.delete_global_parameter(PREFIX + inventory.stack)
    for name in stale_parts(run.broker.global_parameters(), inventory.stack, None):
        run.broker.delete_global_parameter(name)
    run.step(f"delete {change.address}")


def record_intent(run: Run, changes: Sequence[Change]) -> None:
    """Before the first write: the stack's inventory as it was, with everything the plan is about to create or
    adopt. An apply killed half-way then over-claims (what it did not create yet, forgotten by the next plan
    when the broker does not have it), never leaves unowned what it created."""
    for change in run.plan.changes:
        if change.kind != "stack" or change.action == "delete" or not isinstance(change.after, Inventory):
            continue
        before = change.before if isinstance(change.before, Inventory) else Inventory(change.after.stack)
        union = Inventory(before.stack, before.owned | change.after.owned, before.protected | change.after.protected)
        if union != before:
            write_inventory(run.broker, union)
            run.inventory = union


# -- links: shovels, federation upstreams and upstream sets (runtime parameters of a vhost) ---------------


@executes("shovel", "create", "update")
def put_shovel(run: Run, change: Change) -> None:
    shovel = _resource(change.after, Shovel)
    run.broker.put_parameter(change.vhost, "shovel", shovel.name, shovel_value(shovel))
    run.step(f"{change.action} {change.address}")


@executes("federation-upstream", "create", "update")
def put_federation_upstream(run: Run, change: Change) -> None:
    upstream = _resource(change.after, FederationUpstream)
    run.broker.put_parameter(change.vhost, "federation-upstream", upstream.name, federation_upstream_value(upstream))
    run.step(f"{change.action} {change.address}")


@executes("federation-upstream-set", "create", "update")
def put_federation_upstream_set(run: Run, change: Change) -> None:
    members = _resource(change.after, FederationUpstreamSet)
    value = federation_upstream_set_value(members)
    run.broker.put_parameter(change.vhost, "federation-upstream-set", members.name, value)
    run.step(f"{change.action} {change.address}")


@executes("shovel", "delete")
@executes("federation-upstream", "delete")
@executes("federation-upstream-set", "delete")
def delete_link(run: Run, change: Change) -> None:
    run.broker.delete_parameter(change.vhost, change.kind, change.address.name)
    run.step(f"delete {change.address}")


# -- runners: how a phase makes its changes --------------------------------------------------------------


def each(run: Run, changes: Sequence[Change]) -> None:
    """Each change through its executor, in order."""
    for change in changes:
        EXECUTORS[(change.kind, change.action)](run, change)


def bulk_import(run: Run, changes: Sequence[Change]) -> None:
    """Every change that goes through the bulk import, one ``POST /api/definitions/{vhost}`` per vhost."""
    documents: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {section: [] for section in IMPORT_SECTIONS}
    )
    for change in changes:
        section, definition = IMPORTS[(change.kind, change.action)](change)
        documents[change.vhost][section].append(definition)
    for vhost, document in sorted(documents.items()):
        run.broker.import_definitions(vhost, document)
        run.declared(vhost)
        count = sum(len(items) for items in document.values())
        run.step(f"create {count} exchanges, queues and bindings in vhost {vhost!r}", count)


def refuse_standing(run: Run, changes: Sequence[Change]) -> None:
    """Refuse, before anything else (the repair of fences included), what no count changes: a blocker the
    kinds decided when they compared (a changed default queue type, a change that would lock topo out, a
    permission on a vhost that exists nowhere), in the plan's words."""
    refused_now = standing_refusal(run.plan)
    if refused_now is not None:
        raise refused_now


def repair_fences(run: Run, changes: Sequence[Change]) -> None:
    """Remove the fences an interrupted apply left (and the probes they hold back), first: a repair that
    loses nothing; the probes it takes away change the counts, so the safety check counts again."""
    for change in changes:
        queue = fenced_queue(_resource(change.before, Policy)) or ""
        clear_fence(run.broker, change.vhost, change.address.name, queue)
        run.step(f"delete {change.address}")
        run.recount = True


def count_dropped(broker: Broker, plan: Plan, *, cluster: str | None = None) -> dict[tuple[str, str], QueueUsage]:
    """What each queue the plan would drop holds, counted now, by (vhost, name); queues that do not exist
    are left out. Each count says whether it is exact."""
    by_vhost: dict[str, list[str]] = defaultdict(list)
    for change in dropped_queues(plan):
        by_vhost[change.vhost].append(change.address.name)
    return {
        (vhost, name): usage
        for vhost, names in sorted(by_vhost.items())
        for name, usage in broker.count(vhost, names, cluster=cluster).items()
    }


def check_safety(broker: Broker, plan: Plan, *, cluster: str | None = None) -> Plan:
    """Count afresh every queue ``plan`` would drop and refuse (UnsafeChange, before any write) what the
    safety rule blocks; returns the plan with the fresh counts."""
    if not dropped_queues(plan):
        return plan
    counted = annotate(plan, count_dropped(broker, plan, cluster=cluster))
    if counted.blocked:
        raise refusal(counted.blocked_changes)
    return counted


def safety_check(run: Run, changes: Sequence[Change]) -> None:
    """Refuse, before any write, what the safety rule blocks: counted afresh (the plan may be old, or a
    repair changed the counts), or, for a plan made an instant ago, as the plan says."""
    if run.recount:
        check_safety(run.broker, run.plan, cluster=run.cluster)
        return
    refused_now = refused_as_planned(run.plan)
    if refused_now is not None:
        raise refused_now


def drop_with_loss(run: Run, change: Change) -> None:
    """Drop a queue whose messages ``--allow-data-loss`` lets go (the plan named it and its count): its
    bindings cut, then deleted without ``if-empty`` (``if-unused`` still, for a classic queue: RabbitMQ refuses
    to delete one in use, so its consumers are never cut off). Said out loud: the progress names the count."""
    vhost, name = change.vhost, change.address.name
    cut = run.bindings(vhost).cut(name)
    classic = not isinstance(change.before, Queue) or change.before.type == "classic"
    try:
        run.broker.delete_queue(vhost, name, if_unused=classic)
    except BrokerError:
        run.bindings(vhost).restore(cut)
        raise
    run.lost.append((vhost, name, change.messages or 0))
    run.deleted(change)


def drop_queues(run: Run, changes: Sequence[Change]) -> None:
    """Drop the queues of ``changes`` (see :mod:`topo.broker.drop`): every vhost's queues are cut off,
    fenced and counted before any is deleted, so a refusal leaves every queue in place."""
    lossy = [c for c in changes if data_loss_allowed(c)]
    by_vhost: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        if not data_loss_allowed(change):
            by_vhost[change.vhost].append(change)
    for change in lossy:
        drop_with_loss(run, change)
    drops = [QueueDrop(run.broker, vhost, listed, run.bindings(vhost)) for vhost, listed in sorted(by_vhost.items())]
    prepared: list[QueueDrop] = []
    try:
        for drop in drops:
            prepared.append(drop)
            drop.prepare(run.cluster)
    except BaseException:
        for drop in prepared:
            drop.put_back()
        raise
    if any(drop.problems for drop in drops):
        for drop in drops:
            drop.put_back()
        raise refused([d for d in drops if d.problems] + [d for d in drops if d.left and not d.problems])
    for number, drop in enumerate(drops):
        try:
            drop.delete(run.deleted, run.miscounts.append)
        except BaseException:
            for rest in drops[number + 1 :]:
                rest.put_back()
            raise
