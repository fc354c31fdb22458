"""Policies and operator policies (two registrations of the same comparison): created, or updated in place
when anything differs; never deleted (listed as not managed), except a fence: the policy that
an interrupted apply left on a queue it was dropping (:func:`topo.plan.safety.fenced_queue`), which the
plan deletes, and apply removes before anything else (with the probe messages it left)."""

from __future__ import annotations

from typing import Any

from topo.arguments import POLICY_KEYS
from topo.definitions import policy_definition
from topo.model import Policy
from topo.plan.kinds.base import Kind, Outcomes, Scope, as_json, readable
from topo.plan.model import Change, Unmanaged
from topo.plan.safety import fenced_queue

__all__ = ["OPERATOR_POLICY", "POLICY"]


def _value(key: str, value: Any) -> str:
    return "(none)" if value is None else readable(POLICY_KEYS.get(key), value, as_json)


def _common(kind: Any) -> Any:
    def common(scope: Scope, name: str, want: Policy, have: Policy) -> Outcomes:
        if have == want:
            return ()
        return (Change("update", scope.address(kind, name), have, want, ("policies change in place",)),)

    return common


def _removed_policy(scope: Scope, name: str, have: Policy) -> Outcomes:
    queue = fenced_queue(have)
    if queue is None:
        return (Unmanaged(scope.address("policy", name)),)
    reason = (  # left by an apply stopped while it was replacing that queue
        f"left on queue {queue!r} by an interrupted apply: this fence makes the broker refuse "
        "messages published to the queue; apply removes it, and the probe messages (header "
        "x-topo-fence-probe) it left at the head of the queue"
    )
    return (Change("delete", scope.address("policy", name), before=have, reasons=(reason,)),)


def _details(change: Change) -> list[str]:
    before, after = change.before, change.after
    lines: list[str] = []
    if change.action == "create" and isinstance(after, Policy):
        lines.append(f"pattern: {as_json(after.pattern)}, apply-to: {after.apply_to}, priority: {after.priority}")
        lines += [f"{k}: {_value(k, v)}" for k, v in sorted(after.definition.items())]
    elif change.action == "update" and isinstance(before, Policy) and isinstance(after, Policy):
        for field in ("pattern", "apply_to", "priority"):
            old, new = getattr(before, field), getattr(after, field)
            if old != new:
                lines.append(f"{field.replace('_', '-')}: {as_json(old)} → {as_json(new)}")
        for key in sorted(set(before.definition) | set(after.definition)):
            old, new = before.definition.get(key), after.definition.get(key)
            if old != new or type(old) is not type(new):
                lines.append(f"{key}: {_value(key, old)} → {_value(key, new)}")
    return lines


POLICY = Kind(
    name="policy",
    actions=("create", "update", "delete"),  # delete: a fence an interrupted apply left
    items=lambda vhost: vhost.policies,
    common=_common("policy"),
    removed=_removed_policy,
    details=_details,
    to_json=policy_definition,
)

OPERATOR_POLICY = Kind(
    name="operator-policy",
    actions=("create", "update"),
    items=lambda vhost: vhost.operator_policies,
    common=_common("operator-policy"),
    details=_details,
    to_json=policy_definition,
)
