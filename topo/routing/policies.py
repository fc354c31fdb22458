"""The policy RabbitMQ applies to a queue or exchange, and the settings routing takes from it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from topo.model import Exchange, Policy, Queue, VHost
from topo.pcre import Unknown, compile_pattern

__all__ = ["applied_policy", "dead_letter_target", "effective_alternate_exchange", "policy_matches"]


def applied_policy(
    vhost: VHost,
    kind: Literal["queue", "exchange"],
    name: str,
    queue_type: str = "",
    *,
    operator: bool = False,
) -> Policy | None:
    """The policy (or operator policy) RabbitMQ applies to a queue or exchange: the matching one of
    highest priority. Equal priorities are decided arbitrarily by the broker; here the first by name
    wins (lint warns about the tie)."""
    best: Policy | None = None
    policies = vhost.operator_policies if operator else vhost.policies
    for policy in sorted(policies.values(), key=lambda p: p.name):
        if policy_matches(policy, kind, name, queue_type) and (best is None or policy.priority > best.priority):
            best = policy
    return best


def policy_matches(policy: Policy, kind: Literal["queue", "exchange"], name: str, queue_type: str = "") -> bool:
    """Whether a policy's ``apply-to`` and pattern (searched, unanchored, like the broker) select a resource."""
    if not _applies_to(policy.apply_to, kind, queue_type):
        return False
    try:
        compiled = compile_pattern(policy.pattern)
    except re.error:
        return False
    return not isinstance(compiled, Unknown) and compiled.search(name) is not None


def _applies_to(apply_to: str, kind: str, queue_type: str) -> bool:
    if apply_to == "all":
        return True
    if kind == "exchange":
        return apply_to == "exchanges"
    return apply_to == "queues" or apply_to == {
        "classic": "classic_queues",
        "quorum": "quorum_queues",
        "stream": "streams",
    }.get(queue_type)


def effective_alternate_exchange(vhost: VHost, exchange: Exchange) -> str | None:
    """The exchange's alternate exchange: its argument, else the key of the policy applied to it."""
    if "alternate-exchange" in exchange.arguments:
        return exchange.alternate_exchange
    policy = applied_policy(vhost, "exchange", exchange.name)
    value = policy.definition.get("alternate-exchange") if policy else None
    return value if isinstance(value, str) else None


def dead_letter_target(vhost: VHost, queue: Queue) -> tuple[str | None, str | None]:
    """The queue's (dead-letter exchange, dead-letter routing key): arguments first, then its policy."""
    policy = applied_policy(vhost, "queue", queue.name, queue.type)
    definition: Mapping[str, Any] = policy.definition if policy else {}

    def pick(argument: str, key: str) -> str | None:
        value = queue.arguments[argument] if argument in queue.arguments else definition.get(key)
        return value if isinstance(value, str) else None

    return (
        pick("x-dead-letter-exchange", "dead-letter-exchange"),
        pick("x-dead-letter-routing-key", "dead-letter-routing-key"),
    )
