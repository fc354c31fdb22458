"""The vhost itself: its metadata (description, tags), limits and settings (default queue type, tracing),
each managed only where the files say so (``None`` in the model), all changed in place, except the default
queue type: RabbitMQ 3.10 takes it when the vhost is created and silently keeps it afterwards, so a change
of it is blocked (:data:`FIXED_AT_CREATION`). A change's ``before``/``after`` are dicts of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from topo.model import Address, VHost
from topo.plan.kinds.base import Kind, Outcomes, Scope, as_json
from topo.plan.model import Blocker, Change

__all__ = ["FIXED_AT_CREATION", "VHOST"]

FIXED_AT_CREATION = Blocker(
    "fixed-at-creation",
    "default-queue-type cannot change on an existing vhost: RabbitMQ 3.10 sets it only when the vhost is created, "
    "and silently keeps it afterwards",
    "leave `default-queue-type` out (topo declares every queue's type explicitly anyway), or delete and re-create "
    "the vhost yourself (deleting a vhost deletes everything in it)",
)


def _metadata(vhost: VHost) -> dict[str, Any]:
    return {
        "description": vhost.description,
        "tags": list(vhost.tags) if vhost.tags is not None else None,
        "limits": dict(vhost.limits) if vhost.limits is not None else None,
        "default-queue-type": vhost.default_queue_type,
        "tracing": vhost.tracing,
    }


def _wanted(vhost: VHost) -> dict[str, Any]:
    return {k: v for k, v in _metadata(vhost).items() if v is not None}


def _added(scope: Scope, name: str, want: VHost) -> Outcomes:
    return (Change("create", Address("vhost", name), after=_wanted(want)),)


def _common(scope: Scope, name: str, want: VHost, have: VHost) -> Outcomes:
    had = _metadata(have)
    changed = {k: v for k, v in _wanted(want).items() if had.get(k) != v}
    if not changed:
        return ()
    before = {k: had.get(k) for k in changed}
    reasons = tuple(f"{k} can change in place" for k in changed if k != "default-queue-type")
    blockers = (FIXED_AT_CREATION,) if "default-queue-type" in changed else ()
    return (Change("update", Address("vhost", name), before, changed, reasons, blockers=blockers),)


def _details(change: Change) -> list[str]:
    after: Mapping[str, Any] = change.after if isinstance(change.after, dict) else {}
    before: Mapping[str, Any] = change.before if isinstance(change.before, dict) else {}
    if change.action == "create":
        return [f"{k}: {as_json(v)}" for k, v in after.items()]
    if change.action == "update":
        return [f"{k}: {as_json(before.get(k))} → {as_json(v)}" for k, v in after.items()]
    return []


VHOST = Kind(
    name="vhost",
    actions=("create", "update", "delete"),  # delete: a prune, topo destroy
    items=lambda vhost: {vhost.name: vhost},
    added=_added,
    common=_common,
    removed=lambda scope, name, have: (),  # the broker's side of a vhost is only read when the files declare it
    details=_details,
    to_json=dict,
)
