"""The registries that make a new kind a few registrations: the kinds (topo.plan.kinds), the executors
(topo.broker.executors) and the phases of an apply (topo.broker.phases). Pure, or on the in-memory broker.

Every change a kind can make must be made by the phases: once, or for a replace twice (its delete half,
then its create half), each through a registered executor; and no two registrations may collide.
"""

from __future__ import annotations

import pytest
from fakebroker import FakeRabbit
from support import build_vhost

from topo.broker import writer
from topo.broker.executors import EXECUTORS, IMPORTS, bulk_import, each, executes, imports
from topo.broker.phases import PHASES, is_leftover_fence
from topo.broker.reader import READERS
from topo.model import (
    Address,
    Binding,
    Exchange,
    FederationUpstream,
    FederationUpstreamSet,
    GlobalParameter,
    Inventory,
    Permission,
    Policy,
    Queue,
    Secret,
    Shovel,
    TopicPermission,
    TopicPermissions,
    Topology,
    User,
)
from topo.plan.diff import diff
from topo.plan.kinds import BROKER_KINDS, KINDS
from topo.plan.model import Action, Change, Plan
from topo.plan.safety import fence_policy

RESOURCES = {
    "exchange": Exchange("x"),
    "queue": Queue("x"),
    "binding": Binding("x", "y"),
    "policy": Policy("x", ".*"),
    "operator-policy": Policy("x", ".*"),
    "vhost": {"description": "d"},
    "user": User("x"),
    "permission": Permission("x", "v", ".*", ".*", ".*"),
    "topic-permission": TopicPermissions("x", "v", {"amq.topic": TopicPermission("amq.topic", ".*", ".*")}),
    "global-parameter": GlobalParameter("x", 1),
    "stack": Inventory("x"),
    "shovel": Shovel("x", (Secret("amqp://", "amqp://"),), (Secret("amqp://", "amqp://"),), {"src-queue": "q"}),
    "federation-upstream": FederationUpstream("x", (Secret("amqp://", "amqp://"),)),
    "federation-upstream-set": FederationUpstreamSet("x", ({"upstream": "x"},)),
}


def _change(kind: str, action: Action, resource: object = None) -> Change:
    resource = RESOURCES[kind] if resource is None else resource
    before = resource if action in ("update", "replace", "delete") else None
    after = resource if action in ("create", "update", "replace") else None
    name = "" if kind == "vhost" else "x"
    return Change(action, Address(kind, "v", name), before=before, after=after)


def _every_change() -> list[Change]:
    changes = [_change(k.name, action) for k in KINDS for action in k.actions]
    changes.append(_change("policy", "delete", fence_policy("q", 1)))  # a fence an interrupted apply left
    return changes


@pytest.mark.parametrize("change", _every_change(), ids=lambda c: f"{c.kind}-{c.action}-{c.address.name}")
def test_every_change_a_kind_can_make_is_made_by_the_phases(change: Change) -> None:
    plan = Plan(changes=[change])
    making = [phase.name for phase in PHASES if change in phase.changes(plan)]
    if change.action == "replace":  # the old one goes in a delete phase, the new one comes in a create phase
        assert len(making) == 2, making
        assert PHASES.index(next(p for p in PHASES if p.name == making[0])) < PHASES.index(
            next(p for p in PHASES if p.name == making[1])
        )
    else:
        assert len(making) == 1, making
    if is_leftover_fence(change):
        assert making == ["repair fences"]


def test_every_phase_names_changes_it_can_make() -> None:
    for phase in PHASES:
        for step in phase.steps:
            if phase.run is each:
                assert step in EXECUTORS, (phase.name, step)
            elif phase.run is bulk_import:
                assert step in IMPORTS, (phase.name, step)


def test_the_checks_before_any_write_come_first() -> None:
    preflight = [phase.preflight for phase in PHASES]
    assert preflight == sorted(preflight, reverse=True)  # every preflight phase before the first write
    assert [p.name for p in PHASES if p.preflight] == ["refusals", "repair fences", "safety check"]


def test_every_broker_wide_kind_has_a_reader() -> None:
    assert set(READERS) == {k.name for k in BROKER_KINDS}


def test_a_kind_or_an_action_registers_once() -> None:
    with pytest.raises(ValueError, match="two executors for queue create"):
        executes("queue", "create")(lambda run, change: None)
        executes("queue", "create")(lambda run, change: None)
    EXECUTORS.pop(("queue", "create"), None)
    with pytest.raises(ValueError, match="two imports for queue create"):
        imports("queue", "create")(lambda change: ("queues", {}))
    assert ("queue", "create") in IMPORTS


def test_a_plan_holds_only_the_changes_its_kinds_declare() -> None:
    desired = Topology(
        {"v": build_vhost("v", Exchange("x", "topic"), Queue("q", "quorum"), Binding("x", "q"), description="d")}
    )
    observed = Topology(
        {"v": build_vhost("v", Exchange("x", "fanout"), Queue("q"), Binding("x", "q", routing_key="k"))}
    )
    declared = {(k.name, a) for k in KINDS for a in k.actions}
    plan = diff(desired, observed)
    assert {(c.kind, c.action) for c in plan.changes} <= declared
    assert {(c.kind, c.action) for c in plan.changes} >= {("exchange", "replace"), ("queue", "replace")}


def test_a_policy_delete_is_made_before_anything_is_created() -> None:
    # no plan of today deletes a policy that is not a fence; prune will: its phase is ready
    fake = FakeRabbit()
    fake.client().put("/vhosts/v", {})
    fake.client().put("/policies/v/old", {"pattern": ".*", "definition": {"max-length": 1}})
    fake.client().put("/operator-policies/v/cap", {"pattern": ".*", "definition": {"max-length": 1}})
    policy, operator = Policy("old", ".*", definition={"max-length": 1}), Policy("cap", ".*")
    plan = Plan(
        changes=[
            Change("delete", Address("policy", "v", "old"), before=policy),
            Change("delete", Address("operator-policy", "v", "cap"), before=operator),
            Change("create", Address("queue", "v", "q"), after=Queue("q")),
        ]
    )
    seen: list[tuple[str, int]] = []
    writer.execute(fake.broker(), plan, lambda text, n: seen.append((text, n)))
    assert fake.writes()[-3:] == ["DELETE /policies/v/old", "DELETE /operator-policies/v/cap", "POST /definitions/v"]
    assert not fake.vhost("v").policies and not fake.vhost("v").operator_policies
    assert [n for _, n in seen] == [1, 1, 1]
