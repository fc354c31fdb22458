"""TL4xx: policies that tie, match nothing, or are shadowed by queue arguments."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

from topo.lint.core import Context, Draft, rule
from topo.model import Exchange, Policy, Queue
from topo.routing import applied_policy, policy_matches

__all__: list[str] = []

# How RabbitMQ 3.x combines a queue argument with the same key of its policy.
_LOWER_WINS = frozenset({"message-ttl", "max-length", "max-length-bytes", "expires", "delivery-limit"})


def _resources(ctx: Context) -> list[Queue | Exchange]:
    return [*ctx.vhost.queues.values(), *ctx.vhost.exchanges.values()]


def _selects(policy: Policy, resource: Queue | Exchange) -> bool:
    if isinstance(resource, Queue):
        return policy_matches(policy, "queue", resource.name, resource.type)
    return policy_matches(policy, "exchange", resource.name)


def _kind(resource: Queue | Exchange) -> str:
    return "queue" if isinstance(resource, Queue) else "exchange"


@rule("TL401", "policy-priority-tie", "warning")
def policy_priority_tie(ctx: Context) -> Iterator[Draft]:
    """Two policies of the same priority match the same queue or exchange.

    **Risk.** RabbitMQ applies exactly one policy to a resource: the matching one with the highest
    priority. Between equal priorities the choice is undefined, may differ between nodes and may
    change after a restart, so a queue gets one policy's TTL today and the other's limits tomorrow.
    Operator policies tie the same way among themselves.

    **Fix.** Give the policies different priorities, or make their patterns disjoint (anchor them:
    `^orders\\.`).
    """
    for label, policies in (("policies", ctx.vhost.policies), ("operator policies", ctx.vhost.operator_policies)):
        for a, b in combinations(sorted(policies.values(), key=lambda p: p.name), 2):
            if a.priority != b.priority:
                continue
            both = [r for r in _resources(ctx) if _selects(a, r) and _selects(b, r) and _top(ctx, r, a, label)]
            if both:
                shown = ", ".join(f"{_kind(r)} '{r.name}'" for r in both[:3]) + (" ..." if len(both) > 3 else "")
                yield ctx.finding(
                    b,
                    f"{label} '{a.name}' and '{b.name}' have the same priority ({a.priority}) and both match "
                    f"{shown}: RabbitMQ applies only one of them, and which one is undefined",
                )


def _top(ctx: Context, resource: Queue | Exchange, policy: Policy, label: str) -> bool:
    """Whether ``policy``'s priority is the highest among the policies matching ``resource``."""
    policies = ctx.vhost.policies if label == "policies" else ctx.vhost.operator_policies
    return all(p.priority <= policy.priority for p in policies.values() if _selects(p, resource))


@rule("TL402", "policy-matches-nothing", "warning")
def policy_matches_nothing(ctx: Context) -> Iterator[Draft]:
    """A policy's pattern and `apply-to` select no declared queue or exchange.

    **Risk.** Usually a typo in the pattern (an unescaped `.`, a missing prefix) or the wrong
    `apply-to`: the limits or settings the policy was written for apply to nothing.

    **Fix.** Correct the pattern (the broker searches it in the name: anchor it with `^` and `$` when
    you mean the whole name) or `apply-to`. When the policy is meant for resources that applications
    declare at run time, disable the rule for the topology.
    """
    for label, policies in (("policy", ctx.vhost.policies), ("operator policy", ctx.vhost.operator_policies)):
        for policy in policies.values():
            if not any(_selects(policy, r) for r in _resources(ctx)):
                yield ctx.finding(
                    policy,
                    f"{label} '{policy.name}' (pattern '{policy.pattern}', apply-to {policy.apply_to}) matches "
                    "no declared queue or exchange",
                )


@rule("TL403", "argument-shadows-policy", "warning")
def argument_shadows_policy(ctx: Context) -> Iterator[Draft]:
    """A queue argument sets a key that the policy applied to the queue sets too.

    **Risk.** Queue arguments are fixed at declaration and usually win over the policy (for TTLs and
    length limits the lower value wins), so changing the policy later does not change this queue,
    although the policy says it does. Operators who tune limits by policy are surprised.

    **Fix.** Keep the setting in one place: remove the argument and let the policy decide, or exclude
    the queue from the policy's pattern.
    """
    for queue in ctx.vhost.queues.values():
        for operator in (False, True):
            policy = applied_policy(ctx.vhost, "queue", queue.name, queue.type, operator=operator)
            if policy is None:
                continue
            label = "operator policy" if operator else "policy"
            for key in sorted(policy.definition):
                if "x-" + key not in queue.arguments:
                    continue
                how = "the lower value wins" if key in _LOWER_WINS else "the queue argument usually wins"
                yield ctx.finding(
                    queue,
                    f"queue '{queue.name}' sets {key} itself and {label} '{policy.name}' sets it too: {how}, "
                    "so changing the policy may not change this queue",
                )
