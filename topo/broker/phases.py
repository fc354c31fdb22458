"""The order of an apply, as data: an ordered tuple of phases, each naming the (kind, action) pairs it makes
and how (:mod:`topo.broker.executors`).

The order is one of dependencies: what is refused, repaired and checked comes before any write; vhosts
before what lives in them; users, then what they may do (permissions, topic permissions), once the vhosts
exist; what is deleted goes in reverse dependency order (bindings, then queues, then exchanges) before
anything is created, so that a replaced resource's new declaration never meets the old one; the queues
migrated (``--migrate``: :mod:`topo.broker.migrate`), each declared anew with its messages; every create
goes in one bulk import per vhost (exchanges, queues and bindings together: the broker orders them);
the links (federation upstreams, their sets, shovels) once the queues and exchanges they name exist;
policies on resources that exist (a federation policy names upstreams that exist by then); last, what is
revoked (topic permissions, permissions, then users) and the global parameters: a new ``cluster_name`` must
not change the name the drop protocol's AMQP counts check while queues are dropped.

A new kind adds its (kind, action) pairs to the phase where they belong (or a phase of its own, where its
dependencies say), and its executors; :func:`topo.broker.writer.execute` runs the phases in this order.
tests/test_phases.py checks that every change a plan can hold is made by exactly one phase per half.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from topo.broker.executors import (
    Run,
    bulk_import,
    drop_queues,
    each,
    record_intent,
    refuse_standing,
    repair_fences,
    safety_check,
)
from topo.broker.migrate import migrate_queues
from topo.model import Policy
from topo.plan.model import Action, Change, Plan
from topo.plan.safety import fenced_queue

__all__ = ["PHASES", "Phase", "is_leftover_fence"]

Runner = Callable[[Run, Sequence[Change]], None]


def is_leftover_fence(change: Change) -> bool:
    """A deletion of a fence an interrupted apply left (see :mod:`topo.plan.safety`)."""
    return change.kind == "policy" and isinstance(change.before, Policy) and fenced_queue(change.before) is not None


@dataclass(frozen=True)
class Phase:
    """One step of an apply.

    ``steps``: the (kind, action) pairs whose changes it makes, in plan order (``()``: it looks at the whole
    plan once); ``run``: how (:func:`~topo.broker.executors.each` change through its executor, one
    :func:`~topo.broker.executors.bulk_import` per vhost, or a protocol of its own); ``where``: only the
    changes it accepts; ``reverse``: in reverse plan order (deletions, against the order of dependencies);
    ``ordered``: in the order of ``steps`` (each step's changes in plan order), rather than plan order (users
    before any permission, revoked permissions before a user's delete); ``preflight``: it runs before the
    apply starts counting its progress, and an error there is raised as it is (no
    :class:`~topo.errors.ApplyFailed`: nothing of the plan was made yet)."""

    name: str
    steps: tuple[tuple[str, Action], ...]
    run: Runner = each
    where: Callable[[Change], bool] | None = None
    reverse: bool = False
    preflight: bool = False
    ordered: bool = False

    def changes(self, plan: Plan) -> list[Change]:
        """The changes of ``plan`` this phase makes, in the order it makes them."""
        chosen = [c for c in plan.changes if (c.kind, c.action) in self.steps and (self.where is None or self.where(c))]
        if self.ordered:
            rank = {step: number for number, step in enumerate(self.steps)}
            chosen.sort(key=lambda c: rank[(c.kind, c.action)])  # stable: plan order within a step
        return chosen[::-1] if self.reverse else chosen


PHASES: tuple[Phase, ...] = (
    Phase("refusals", (), refuse_standing, preflight=True),
    Phase("repair fences", (("policy", "delete"),), repair_fences, where=is_leftover_fence, preflight=True),
    Phase("safety check", (), safety_check, preflight=True),
    Phase("intended inventory", (), record_intent),
    Phase("vhosts", (("vhost", "create"), ("vhost", "update"))),
    Phase(
        "users and permissions",
        (
            ("user", "create"),
            ("user", "update"),
            ("permission", "create"),
            ("permission", "update"),
            ("topic-permission", "create"),
            ("topic-permission", "update"),
        ),
        ordered=True,
    ),
    Phase(
        "policy deletes",
        (("policy", "delete"), ("operator-policy", "delete")),
        where=lambda c: not is_leftover_fence(c),
    ),
    Phase(
        "link deletes",  # shovels first (they may move messages to what goes next), then sets, upstreams
        (("shovel", "delete"), ("federation-upstream-set", "delete"), ("federation-upstream", "delete")),
        ordered=True,
    ),
    Phase("binding deletes", (("binding", "delete"),), reverse=True),
    Phase("queue drops", (("queue", "replace"), ("queue", "delete")), drop_queues),
    Phase("exchange deletes", (("exchange", "replace"), ("exchange", "delete")), reverse=True),
    Phase("migrations", (("queue", "migrate"),), migrate_queues),
    Phase(
        "creates",
        (
            ("exchange", "create"),
            ("exchange", "replace"),
            ("queue", "create"),
            ("queue", "replace"),
            ("binding", "create"),
        ),
        bulk_import,
    ),
    Phase(
        "links",  # upstreams before the sets and policies that name them; shovels once their queues exist
        (
            ("federation-upstream", "create"),
            ("federation-upstream", "update"),
            ("federation-upstream-set", "create"),
            ("federation-upstream-set", "update"),
            ("shovel", "create"),
            ("shovel", "update"),
        ),
        ordered=True,
    ),
    Phase(
        "policies",
        (
            ("policy", "create"),
            ("policy", "update"),
            ("operator-policy", "create"),
            ("operator-policy", "update"),
        ),
    ),
    Phase(
        "revokes and global parameters",
        (
            ("topic-permission", "delete"),
            ("permission", "delete"),
            ("user", "delete"),
            ("global-parameter", "create"),
            ("global-parameter", "update"),
            ("global-parameter", "delete"),
        ),
        ordered=True,
    ),
    Phase("vhost deletes", (("vhost", "delete"),)),
    Phase("inventory", (("stack", "create"), ("stack", "update"), ("stack", "delete"))),
)
"""Every phase of an apply, in order."""
