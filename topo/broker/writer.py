"""Executing a plan against the broker, in dependency order.

Order: vhosts (and their limits); fences an interrupted apply left (see below); binding deletions; the
queues to drop (replacements; deletions later), as :mod:`topo.broker.drop` says; exchanges to replace;
then every exchange, queue and binding to create in one ``POST /api/definitions/{vhost}`` per vhost (the
broker's own bulk path; only creates go there, since an import silently keeps an existing queue's
arguments); then policies and operator policies. Each vhost's bindings are read once
(``GET /api/bindings/{vhost}``) for the binding deletions and the cuts.

Never lose a message: apply first counts every queue it would drop and refuses, before writing
anything, a plan the safety rule (:mod:`topo.plan.safety`) blocks. Then, for the queues of a vhost:

1. every binding to the queue is deleted: routed publishes become unroutable (returned to a ``mandatory``
   publisher, dropped otherwise, as for any queue that is not there);
2. a quorum queue is fenced (a policy ``topo.fence.<queue>``: ``max-length: 0``, ``overflow:
   reject-publish``): the broker refuses (nacks) what is published to it by name through the default
   exchange, checked with two probe messages; a classic queue's delete carries ``if-empty`` and
   ``if-unused``, so the broker refuses it atomically if anything arrived;
3. each queue is counted exactly (AMQP passive declare); if anything arrived, apply stops, puts back the
   bindings and fences, and raises :class:`~topo.errors.UnsafeChange` saying what arrived where;
4. otherwise the queues are deleted, each fence removed right after its queue (before the new queue is
   declared): a quorum queue over AMQP, counted once more just before (a change stops apply as in 3);
   if its ``Queue.DeleteOk`` counts more than apply's probe, the rest of the apply is made and then
   :class:`~topo.errors.MessagesLost` raised, saying what was dropped where. Streams are never dropped.

A failure part-way raises :class:`~topo.errors.ApplyFailed`; what was done stays done, and the next
apply converges from there (every step is idempotent on a re-plan). A fence left by an apply killed
half-way shows in the next plan as a policy to delete, and apply removes it before anything else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from topo.access import broker as access
from topo.access.broker import run_phase
from topo.broker.client import ManagementClient, enc
from topo.broker.drop import BindingIndex, Miscount, QueueDrop, clear_fence, lost, refused
from topo.broker.reader import cluster_name, count_queues
from topo.definitions import binding_definition, exchange_definition, policy_definition, queue_definition
from topo.errors import ApplyFailed, BrokerError, TopoError, UnsafeChange
from topo.model import Binding, Exchange, Policy, Queue
from topo.plan.model import Change, Plan, QueueUsage
from topo.plan.safety import annotate, dropped_queues, fenced_queue, leftover_fences, refusal

__all__ = [
    "Progress",
    "check_safety",
    "count_dropped",
    "definitions_for",
    "dropped_queues",
    "execute",
]

Progress = Callable[[str, int], None]
"""Called with a short description and the number of changes it completes."""


def policy_body(policy: Policy) -> dict[str, Any]:
    body = policy_definition(policy)
    del body["name"]
    return body


def definitions_for(changes: list[Change]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The bulk-import documents (per vhost) for the exchanges, queues and bindings to (re)create."""
    docs: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {"exchanges": [], "queues": [], "bindings": []}
    )
    for change in changes:
        if change.action not in ("create", "replace"):
            continue
        resource = change.after
        if isinstance(resource, Exchange):
            docs[change.vhost]["exchanges"].append(exchange_definition(resource))
        elif isinstance(resource, Queue):
            docs[change.vhost]["queues"].append(queue_definition(resource))
        elif isinstance(resource, Binding):
            docs[change.vhost]["bindings"].append(binding_definition(resource))
    return dict(docs)


def count_dropped(
    client: ManagementClient, plan: Plan, *, cluster: str | None = None
) -> dict[tuple[str, str], QueueUsage]:
    """What each queue the plan would drop holds, counted now, by (vhost, name); queues that do not exist
    are left out. Each count says whether it is exact."""
    by_vhost: dict[str, list[str]] = defaultdict(list)
    for change in dropped_queues(plan):
        by_vhost[change.vhost].append(change.address.name)
    return {
        (vhost, name): usage
        for vhost, names in sorted(by_vhost.items())
        for name, usage in count_queues(client, vhost, names, cluster=cluster).items()
    }


def check_safety(client: ManagementClient, plan: Plan, *, cluster: str | None = None) -> Plan:
    """Count afresh every queue ``plan`` would drop and refuse (UnsafeChange, before any write) what the
    safety rule blocks; returns the plan with the fresh counts."""
    if not dropped_queues(plan):
        return plan
    counted = annotate(plan, count_dropped(client, plan, cluster=cluster))
    if counted.blocked:
        raise refusal(counted.blocked_changes)
    return counted


def _vhost(client: ManagementClient, change: Change) -> None:
    after: Mapping[str, Any] = change.after if isinstance(change.after, dict) else {}
    before: Mapping[str, Any] = change.before if isinstance(change.before, dict) else {}
    name = change.vhost
    if change.action == "create" or "description" in after or "tags" in after or "tracing" in after:
        body: dict[str, Any] = {}
        if "description" in after:
            body["description"] = after["description"]
        if "tags" in after:
            body["tags"] = ",".join(after["tags"])
        if "tracing" in after:  # a PUT without it keeps the vhost's tracing
            body["tracing"] = after["tracing"]
        if change.action == "create" and "default-queue-type" in after:
            body["defaultqueuetype"] = after["default-queue-type"]  # RabbitMQ 3.10's key; taken at creation only
        if change.action == "update":  # PUT replaces the metadata: keep what is not managed
            current = client.get(f"/vhosts/{enc(name)}", vhost=name) or {}
            body.setdefault("description", current.get("description") or "")
            tags = current.get("tags") or []
            body.setdefault("tags", ",".join(tags) if isinstance(tags, list) else str(tags))
        client.put(f"/vhosts/{enc(name)}", body, vhost=name)
    if "limits" in after:
        limits: Mapping[str, int] = after["limits"]
        old: Mapping[str, int] = before.get("limits") or {}
        for key, value in sorted(limits.items()):
            if old.get(key) != value:
                client.put(f"/vhost-limits/{enc(name)}/{enc(key)}", {"value": value}, vhost=name)
        for key in sorted(set(old) - set(limits)):
            client.delete(f"/vhost-limits/{enc(name)}/{enc(key)}", vhost=name, ok_missing=True)


def execute(client: ManagementClient, plan: Plan, progress: Progress | None = None, *, recount: bool = True) -> None:
    """Apply every change of ``plan``. Raises UnsafeChange before writing anything if the safety rule
    blocks the plan (counting afresh; with ``recount=False`` the plan's own counts, for a plan made an
    instant ago), UnsafeChange (after putting back what it cut) if a queue got messages while apply was
    dropping it, and ApplyFailed if a write fails part-way. MessagesLost, once every change is made (or
    with the reason apply stopped), if RabbitMQ deleted a quorum queue with messages that arrived after
    apply's last count (its ``Queue.DeleteOk`` says so): never silently."""
    if plan.empty:
        return
    fixed = [c for c in plan.changes if c.blockers and c.kind != "queue"]  # no count changes these: refuse first
    if fixed:
        raise refusal(fixed)
    cluster = cluster_name(client) if dropped_queues(plan) else None
    fences = leftover_fences(plan)
    if fences:  # a repair that loses nothing, first: the probes it takes away change the counts
        for change, queue in fences:
            clear_fence(client, change.vhost, change.address.name, queue)
            if progress:
                progress(f"delete {change.address}", 1)
        recount = True
    if recount:
        check_safety(client, plan, cluster=cluster)
    elif plan.blocked:
        raise refusal(plan.blocked_changes)
    done = 0
    dropped: list[tuple[str, str]] = []  # (vhost, what): replaced resources deleted, not declared again yet
    miscounts: list[Miscount] = []  # quorum queues whose delete counted other than apply's probes

    def step(text: str, changes: int = 1) -> None:
        nonlocal done
        done += changes
        if progress:
            progress(text, changes)

    def deleted(change: Change) -> None:
        dropped.append((change.vhost, f"{change.kind} {change.address}"))

    try:
        for change in plan.changes:
            if change.kind == "vhost":
                _vhost(client, change)
                step(f"{change.action} {change.address}")
        run_phase(client, plan, access.FIRST, step)  # users and their permissions, once the vhosts exist
        done += len(fences)  # removed above
        for change in plan.changes:
            policy = change.before if change.kind == "policy" and change.action == "delete" else None
            if isinstance(policy, Policy) and fenced_queue(policy) is None:
                path = f"/policies/{enc(change.vhost)}/{enc(policy.name)}"
                client.delete(path, vhost=change.vhost, ok_missing=True)
                step(f"delete {change.address}")
        indexes: dict[str, BindingIndex] = {}

        def index(vhost: str) -> BindingIndex:
            if vhost not in indexes:
                indexes[vhost] = BindingIndex(client, vhost)
            return indexes[vhost]

        for change in reversed(plan.changes):
            if change.kind == "binding" and change.action == "delete" and isinstance(change.before, Binding):
                index(change.vhost).delete(change.before)
                step(f"delete {change.address}")
        _drop_queues(client, plan, index, cluster, deleted, miscounts.append)
        for change in plan.changes:
            if change.action == "replace" and isinstance(change.before, Exchange):
                client.delete(
                    f"/exchanges/{enc(change.vhost)}/{enc(change.address.name)}", vhost=change.vhost, ok_missing=True
                )
                deleted(change)
        documents = definitions_for(plan.changes)
        for vhost, document in sorted(documents.items()):
            client.post(f"/definitions/{enc(vhost)}", document, vhost=vhost)
            dropped[:] = [(v, what) for v, what in dropped if v != vhost]
            count = sum(len(items) for items in document.values())
            step(f"create {count} exchanges, queues and bindings in vhost {vhost!r}", count)
        for change in plan.changes:
            if change.kind in ("policy", "operator-policy") and isinstance(change.after, Policy):
                collection = "policies" if change.kind == "policy" else "operator-policies"
                path = f"/{collection}/{enc(change.vhost)}/{enc(change.after.name)}"
                client.put(path, policy_body(change.after), vhost=change.vhost)
                step(f"{change.action} {change.address}")
        run_phase(client, plan, access.LAST, step)  # revoked permissions, then global parameters
    except UnsafeChange as exc:
        if dropped:  # a classic queue refused its delete after others went: say which are missing
            gone = [what for _vhost, what in dropped]
            exc.message += f" (deleted for replacement, not declared again yet: {_summary(gone)})"
            exc.details += tuple(f"deleted for replacement, not declared again yet: {what}" for what in gone)
            exc.args = (exc.message,)
        _raise_with(exc, miscounts)
    except BrokerError as exc:
        if isinstance(exc, ApplyFailed):
            _raise_with(exc, miscounts)
        total = len(plan.changes)
        gone = [what for _vhost, what in dropped]
        listed = f" (deleted for replacement, not declared again yet: {_summary(gone)})" if gone else ""
        failed = ApplyFailed(
            f"apply stopped after {done} of {total} changes{listed}: {exc.message}",
            hint=(exc.hint + "; " if exc.hint else "")
            + "what was applied stays applied: fix the cause and run `topo apply` again to converge",
            status=exc.status,
            not_declared=gone,
        )
        failed.__cause__ = exc
        _raise_with(failed, miscounts)
    if miscounts:
        raise lost(miscounts)


def _raise_with(exc: TopoError, miscounts: list[Miscount]) -> NoReturn:
    """Raise ``exc``; or, when a quorum queue's delete took messages before it, MessagesLost saying both."""
    if miscounts:
        raise lost(miscounts, stopped=exc) from exc
    raise exc


def _summary(items: list[str], limit: int = 5) -> str:
    """The first ``limit`` of ``items`` and how many more (the next plan lists them all)."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more: `topo plan` lists them all" if len(items) > limit else "")


def _drop_queues(
    client: ManagementClient,
    plan: Plan,
    index: Callable[[str], BindingIndex],
    cluster: str | None,
    on_deleted: Callable[[Change], None],
    on_miscount: Callable[[Miscount], None],
) -> None:
    """Drop the queues of ``plan`` (see :mod:`topo.broker.drop`): every vhost's queues are cut off, fenced
    and counted before any is deleted, so a refusal leaves every queue in place."""
    by_vhost: dict[str, list[Change]] = defaultdict(list)
    for change in dropped_queues(plan):
        by_vhost[change.vhost].append(change)
    drops = [QueueDrop(client, vhost, changes, index(vhost)) for vhost, changes in sorted(by_vhost.items())]
    prepared: list[QueueDrop] = []
    try:
        for drop in drops:
            prepared.append(drop)
            drop.prepare(cluster)
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
            drop.delete(on_deleted, on_miscount)
        except BaseException:
            for rest in drops[number + 1 :]:
                rest.put_back()
            raise
