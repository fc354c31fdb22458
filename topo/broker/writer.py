"""Executing a plan against the broker, in dependency order.

Order: vhosts (and their limits), binding deletions, queue/exchange deletions for replacements, then
every exchange, queue and binding to create in one ``POST /api/definitions/{vhost}`` per vhost (the
broker's own bulk path; only creates go there, since an import silently keeps an existing queue's
arguments), then policies and operator policies. A queue that holds messages is never deleted: the
plan refuses first, and a classic queue is deleted with ``if-empty`` so the broker refuses too (quorum
queues have no such guard: they are dropped only on an exact count taken just before; streams, which
cannot be counted exactly, are never dropped).

A failure part-way raises :class:`~topo.errors.ApplyFailed`; what was done stays done, and the next
apply converges from there (every step is idempotent on a re-plan).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from topo.broker.client import ManagementClient, enc
from topo.broker.reader import queue_usage
from topo.definitions import binding_definition, exchange_definition, policy_definition, queue_definition
from topo.errors import ApplyFailed, BrokerError, UnsafeChange
from topo.model import Binding, Exchange, Policy, Queue, canonical_json
from topo.plan.model import Change, Plan

__all__ = [
    "Progress",
    "check_safety",
    "definitions_for",
    "doomed_queue_warning",
    "doomed_usage",
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


INEXACT_COUNT = (
    "this count comes from the Management API's statistics, which lag up to ~5 s: AMQP did not answer "
    "for this broker (see --amqp-url)"
)


def inexact_count(problem: str | None) -> str:
    """The plan's warning beside a count from the statistics, saying why there is no exact one."""
    if problem is None:
        return INEXACT_COUNT
    return f"this count comes from the Management API's statistics, which lag up to ~5 s: {problem} (see --amqp-url)"


UNCOUNTABLE_STREAM = (
    "a stream's messages cannot be counted exactly (over AMQP RabbitMQ answers 0 for a stream; the "
    "statistics lag up to ~5 s), so apply will refuse to drop it"
)
_STREAM_HINT = (
    "delete the stream yourself once its messages may go, then apply; x-max-age and x-max-length-bytes "
    "can also change through a policy, without replacing the stream"
)


def _queue_type(change: Change) -> str:
    return change.before.type if isinstance(change.before, Queue) else "classic"


def doomed_queue_warning(change: Change, exact: bool, problem: str | None = None) -> tuple[str, ...]:
    """What a plan says of a queue it would drop, beside its message count (``problem``: why the count is
    not exact, when it is not)."""
    if _queue_type(change) == "stream":
        return (UNCOUNTABLE_STREAM,)
    return () if exact else (inexact_count(problem),)


def dropped_queues(plan: Plan) -> list[Change]:
    """The changes that delete a queue (a replace or a delete)."""
    return [c for c in plan.changes if c.kind == "queue" and c.action in ("replace", "delete")]


def doomed_usage(client: ManagementClient, plan: Plan) -> tuple[dict[tuple[str, str], tuple[int, int]], bool]:
    """(messages, consumers) of each queue the plan would drop, by (vhost, name), counted now (queues that
    do not exist are left out); and whether every count was exact (over AMQP)."""
    by_vhost: dict[str, list[str]] = defaultdict(list)
    for change in dropped_queues(plan):
        by_vhost[change.vhost].append(change.address.name)
    client.exact_counts, client.count_problem = True, None  # this pass's own verdict, not an earlier one's
    usage = {
        (vhost, name): counts
        for vhost, names in sorted(by_vhost.items())
        for name, counts in queue_usage(client, vhost, names).items()
    }
    return usage, client.exact_counts


def check_safety(client: ManagementClient, plan: Plan) -> None:
    """Refuse (before any write) a plan that would drop a queue holding messages, counting afresh; and one
    that would delete a queue in use, which RabbitMQ refuses (apply would stop half-way).

    Without an exact count (AMQP unreachable), only classic queues may be dropped: their delete carries
    ``if-empty``, so the broker itself refuses one that filled up since the lagging statistics were read.
    Quorum queues have no such guard, so they are refused rather than risked; streams are always refused
    (no exact count exists for them, and they keep messages after they are read)."""
    types = {(c.vhost, c.address.name): _queue_type(c) for c in dropped_queues(plan)}
    usage, exact = doomed_usage(client, plan)
    problems, busy, unguarded, streams = [], [], [], []
    for (vhost, name), (count, consumers) in sorted(usage.items()):
        where = f"queue {name!r} in vhost {vhost!r}"
        if count:
            problems.append(f"{where} holds {count} message{'s' if count != 1 else ''}")
        if consumers:
            busy.append(f"{where} has {consumers} consumer{'s' if consumers != 1 else ''}")
        queue_type = types[(vhost, name)]
        if queue_type == "stream":
            streams.append(f"stream {where}")
        elif not exact and queue_type != "classic":
            unguarded.append(f"{queue_type} {where}")
    if problems:
        raise UnsafeChange(
            "refusing to replace or delete a queue that holds messages: " + "; ".join(problems),
            hint="drain the queue first (or move its messages); replacing it would drop them",
        )
    if busy:
        raise UnsafeChange(
            "refusing to replace or delete a queue that is in use: " + "; ".join(busy),
            hint="stop its consumers first: RabbitMQ refuses to delete a queue in use",
        )
    if streams:
        raise UnsafeChange("refusing to replace a stream, whose messages cannot be counted exactly: "
                           + "; ".join(streams), hint=_STREAM_HINT)  # fmt: skip
    if unguarded:
        raise UnsafeChange(
            "refusing to replace or delete a queue without an exact message count: " + "; ".join(unguarded),
            hint=f"topo counts over AMQP, and {client.count_problem or 'AMQP did not answer for this broker'}; "
            "give --amqp-url (or $TOPO_AMQP_URL) of a user AMQP lets in. The Management API's statistics lag up "
            "to ~5 s, and RabbitMQ cannot refuse to delete a non-empty quorum queue (no if-empty), so messages "
            "published meanwhile would be lost",
        )


def _binding_path(vhost: str, binding: Binding) -> str:
    kind = "q" if binding.destination_type == "queue" else "e"
    return f"/bindings/{enc(vhost)}/e/{enc(binding.source)}/{kind}/{enc(binding.destination)}"


def _delete_binding(client: ManagementClient, vhost: str, binding: Binding) -> None:
    listed = client.get(_binding_path(vhost, binding), vhost=vhost, ok_missing=True) or []
    wanted = canonical_json(dict(binding.arguments))
    for item in listed:
        if item.get("routing_key", "") == binding.routing_key and canonical_json(item.get("arguments") or {}) == wanted:
            key = item["properties_key"]
            client.delete(f"{_binding_path(vhost, binding)}/{enc(key)}", vhost=vhost, ok_missing=True)
            return


def _vhost(client: ManagementClient, change: Change) -> None:
    after: Mapping[str, Any] = change.after if isinstance(change.after, dict) else {}
    before: Mapping[str, Any] = change.before if isinstance(change.before, dict) else {}
    name = change.vhost
    if change.action == "create" or "description" in after or "tags" in after:
        body: dict[str, Any] = {}
        if "description" in after:
            body["description"] = after["description"]
        if "tags" in after:
            body["tags"] = ",".join(after["tags"])
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


def execute(client: ManagementClient, plan: Plan, progress: Progress | None = None) -> None:
    """Apply every change of ``plan``. Raises UnsafeChange before writing anything if a queue with
    messages would be dropped, and ApplyFailed if a write fails part-way."""
    if plan.empty:
        return
    check_safety(client, plan)
    done = 0
    dropped: list[tuple[str, str]] = []  # (vhost, what): replaced resources deleted, not declared again yet

    def step(text: str, changes: int = 1) -> None:
        nonlocal done
        done += changes
        if progress:
            progress(text, changes)

    try:
        for change in plan.changes:
            if change.kind == "vhost":
                _vhost(client, change)
                step(f"{change.action} {change.address}")
        for change in reversed(plan.changes):
            if change.kind == "binding" and change.action == "delete" and isinstance(change.before, Binding):
                _delete_binding(client, change.vhost, change.before)
                step(f"delete {change.address}")
        for change in plan.changes:
            if change.action != "replace":
                continue
            if isinstance(change.before, Queue):
                # The broker's own guards, where it has them: RabbitMQ refuses if-unused on a quorum queue
                # (and ignores both on a stream), so those rely on the exact count just taken.
                params = {"if-unused": "true", "if-empty": "true"} if change.before.type == "classic" else {}
                path = f"/queues/{enc(change.vhost)}/{enc(change.address.name)}"
                client.delete(path, params=params, vhost=change.vhost, ok_missing=True)
                dropped.append((change.vhost, f"{change.kind} {change.address}"))
            elif isinstance(change.before, Exchange):
                client.delete(
                    f"/exchanges/{enc(change.vhost)}/{enc(change.address.name)}", vhost=change.vhost, ok_missing=True
                )
                dropped.append((change.vhost, f"{change.kind} {change.address}"))
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
    except BrokerError as exc:
        if isinstance(exc, ApplyFailed):
            raise
        total = len(plan.changes)
        gone = ", ".join(what for _vhost, what in dropped)
        gone = f" (deleted for replacement, not declared again yet: {gone})" if gone else ""
        raise ApplyFailed(
            f"apply stopped after {done} of {total} changes{gone}: {exc.message}",
            hint=(exc.hint + "; " if exc.hint else "")
            + "what was applied stays applied: fix the cause and run `topo apply` again to converge",
            status=exc.status,
        ) from exc
