"""Ownership (stacks, their inventory on the broker), prune, adopt, destroy and the guards (protect,
--allow-data-loss), through the engine on the in-memory broker (tests/fakebroker.py). The same against a
real node: tests/test_ownership_broker.py.
"""

from __future__ import annotations

import pytest
from fakebroker import FakeRabbit
from support import build_vhost

from topo import engine
from topo.errors import ApplyFailed, UnsafeChange
from topo.model import Address, Binding, Exchange, GlobalParameter, Inventory, Policy, Queue, Topology
from topo.plan.model import Plan
from topo.plan.ownership import PART_SIZE, PREFIX, Ownership, decode, encode
from topo.plan.render import render_json, render_markdown, render_text
from topo.plan.safety import refused_as_planned

V = "shop"


def stack(name: str | None, *items: Exchange | Queue | Binding, policies: tuple[Policy, ...] = ()) -> Topology:
    return Topology({V: build_vhost(V, *items, policies=policies)}, name=name)


ORDERS = stack("orders", Exchange("orders", "topic"), Queue("orders"), Binding("orders", "orders", routing_key="o.#"))
BILLING = stack("billing", Queue("invoices"))


def inventory(fake: FakeRabbit, name: str) -> Inventory:
    params = [GlobalParameter(n, v) for n, v in fake.global_parameters.items()]
    return decode(params)[name]


def test_apply_records_what_the_stack_created_and_a_second_plan_is_empty() -> None:
    fake = FakeRabbit()
    plan = engine.apply(fake.broker(), ORDERS)
    assert [(c.kind, c.action) for c in plan.changes][-1:] == [("stack", "create")] or any(
        c.kind == "stack" for c in plan.changes
    )
    owned = inventory(fake, "orders").owned
    assert Address("queue", V, "orders") in owned and Address("vhost", V) in owned
    assert Address("exchange", V, "orders") in owned
    assert engine.plan(fake.broker(), ORDERS).empty
    assert set(engine.stacks(fake.broker())) == {"orders"}


def test_a_topology_without_a_name_reads_and_writes_no_inventory() -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), stack(None, Queue("q")))
    assert not [n for n in fake.global_parameters if n.startswith("topo.")]
    assert not [e for e in fake.log if "global-parameters" in e]


def test_two_stacks_in_one_vhost_leave_each_other_alone() -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), ORDERS)
    plan = engine.plan(fake.broker(), BILLING)
    assert {(c.kind, c.action, c.address.name) for c in plan.changes} == {
        ("queue", "create", "invoices"),
        ("stack", "create", "billing"),
    }
    engine.apply(fake.broker(), BILLING)
    # each sees the other's as not managed; the vhost, created by orders, is not billing's
    again = engine.plan(fake.broker(), BILLING, ownership=Ownership(prune=True))
    assert again.empty
    details = {str(u.address): u.detail for u in again.unmanaged + again.unowned}
    assert details["vhosts.shop.queues.orders"] == "owned by stack 'orders'"
    assert "orders" in details["vhosts.shop"]  # declared by billing too, owned by orders
    assert Address("vhost", V) not in inventory(fake, "billing").owned
    assert engine.plan(fake.broker(), ORDERS, ownership=Ownership(prune=True)).empty  # never deletes billing's


def test_prune_deletes_what_the_files_no_longer_declare_only_with_the_flag() -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), ORDERS)
    fewer = stack("orders", Exchange("orders", "topic"))
    plan = engine.plan(fake.broker(), fewer)
    assert all(c.action != "delete" or c.kind == "binding" for c in plan.changes)
    assert any("--prune deletes it" in u.detail for u in plan.unmanaged if u.address.kind == "queue")
    pruned = engine.plan(fake.broker(), fewer, ownership=Ownership(prune=True))
    deletes = {(c.kind, c.address.name) for c in pruned.changes if c.action == "delete"}
    assert ("queue", "orders") in deletes
    assert "(--prune)" in render_text(pruned)
    engine.apply(fake.broker(), fewer, ownership=Ownership(prune=True))
    assert "orders" not in fake.vhost(V).queues
    assert Address("queue", V, "orders") not in inventory(fake, "orders").owned
    assert engine.plan(fake.broker(), fewer, ownership=Ownership(prune=True)).empty


def test_prune_of_an_exchange_and_a_policy() -> None:
    fake = FakeRabbit()
    first = stack("orders", Exchange("gone", "fanout"), Queue("q"), policies=(Policy("p", "^q$", definition={}),))
    engine.apply(fake.broker(), first)
    engine.apply(fake.broker(), stack("orders", Queue("q")), ownership=Ownership(prune=True))
    assert "gone" not in fake.vhost(V).exchanges and "p" not in fake.vhost(V).policies


def test_adopt_takes_over_existing_resources_and_never_another_stacks() -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), stack(None, Queue("legacy")))  # made before stacks
    engine.apply(fake.broker(), BILLING)
    claim = stack("orders", Queue("legacy"), Queue("invoices"))
    plan = engine.plan(fake.broker(), claim)
    notes = {u.address.name: u.detail for u in plan.unowned if u.address.kind == "queue"}
    assert "--adopt" in notes["legacy"] and "billing" in notes["invoices"]
    adopting = engine.plan(fake.broker(), claim, ownership=Ownership(adopt=True))
    assert adopting.adopted == [Address("vhost", V), Address("queue", V, "legacy")]  # the vhost too: made before
    assert "Adopted (2)" in render_text(adopting)
    engine.apply(fake.broker(), claim, ownership=Ownership(adopt=True))
    owned = inventory(fake, "orders").owned
    assert Address("queue", V, "legacy") in owned and Address("queue", V, "invoices") not in owned


def test_a_change_to_another_stacks_resource_is_blocked() -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), BILLING)
    plan = engine.plan(fake.broker(), stack("orders", Queue("invoices", "quorum")))
    (change,) = [c for c in plan.changes if c.kind == "queue"]
    assert change.action == "replace" and [b.code for b in change.blockers] == ["owned-by-another-stack"]


def test_an_apply_killed_after_its_creates_is_owned_by_the_next_apply_without_adopt() -> None:
    fake = FakeRabbit()
    with_policy = stack("orders", Queue("orders"), policies=(Policy("p", "^orders$", definition={"max-length": 5}),))
    fake.fail("PUT", r"/policies/")  # after the creates: the apply stops before its last phase
    with pytest.raises(ApplyFailed):
        engine.apply(fake.broker(), with_policy)
    assert "orders" in fake.vhost(V).queues
    owned = inventory(fake, "orders").owned  # written before the creates, with what they were about to make
    assert {Address("queue", V, "orders"), Address("policy", V, "p")} <= owned
    plan = engine.plan(fake.broker(), with_policy)
    assert not plan.unowned and [(c.kind, c.action) for c in plan.changes] == [("policy", "create")]
    engine.apply(fake.broker(), with_policy)
    assert engine.plan(fake.broker(), with_policy).empty


def test_an_apply_that_only_creates_writes_the_inventory_once() -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), ORDERS)
    assert len([w for w in fake.writes() if "global-parameters" in w]) == 1


def test_an_inventory_over_many_parameters_round_trips_and_ignores_stale_parts() -> None:
    owned = frozenset(Address("queue", V, f"q{i}") for i in range(PART_SIZE * 2 + 5))
    inv = Inventory("big", owned, frozenset({Address("queue", V, "q1")}))
    params = encode(inv, "g1")
    assert len(params) == 3 and params[-1].name == PREFIX + "big"
    stale = encode(Inventory("big", frozenset({Address("queue", V, "old")})), "g0")[:-1]
    assert decode([*stale, *params]) == {"big": inv}


def test_an_inventory_of_many_queues_is_written_in_parts_and_shrinks_back() -> None:
    fake = FakeRabbit()
    many = stack("big", *(Queue(f"q{i}") for i in range(PART_SIZE + 10)))
    engine.apply(fake.broker(), many)
    parts = [n for n in fake.global_parameters if n.startswith("topo.stack")]
    assert len(parts) == 2
    assert len(inventory(fake, "big").owned) == PART_SIZE + 11
    engine.apply(fake.broker(), stack("big", Queue("q0")), ownership=Ownership(prune=True))
    assert [n for n in fake.global_parameters if n.startswith("topo.stack")] == [PREFIX + "big"]


def test_protect_blocks_a_replace_and_a_prune_whatever_the_flags() -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), stack("orders", Queue("keep", protect=True)))
    replaced = engine.plan(fake.broker(), stack("orders", Queue("keep", "quorum", protect=True)))
    assert replaced.blocked and "protected" in [b.code for c in replaced.changes for b in c.blockers]
    pruned = engine.plan(fake.broker(), stack("orders"), ownership=Ownership(prune=True), allow_data_loss=True)
    (change,) = [c for c in pruned.changes if c.kind == "queue"]
    assert change.action == "delete" and "protected" in [b.code for b in change.blockers]
    assert "! blocked: is protected" in render_text(pruned)
    assert '"code": "protected"' in render_json(pruned)
    assert "protect: true" in render_markdown(pruned)
    refused = refused_as_planned(pruned)
    assert refused is not None and "protected" in refused.message
    with pytest.raises(UnsafeChange, match="protected"):
        engine.apply(fake.broker(), stack("orders"), ownership=Ownership(prune=True), allow_data_loss=True)
    assert "keep" in fake.vhost(V).queues


def test_a_queue_holding_messages_is_pruned_only_with_allow_data_loss() -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), stack("orders", Queue("jobs"), Queue("other")))
    fake.publish(V, "jobs", 3)
    fewer = stack("orders", Queue("other"))
    blocked = engine.plan(fake.broker(), fewer, ownership=Ownership(prune=True))
    (change,) = [c for c in blocked.changes if c.kind == "queue"]
    assert [b.code for b in change.blockers] == ["messages"] and change.messages == 3
    with pytest.raises(UnsafeChange, match="holds 3 messages"):
        engine.apply(fake.broker(), fewer, ownership=Ownership(prune=True))
    allowed = engine.plan(fake.broker(), fewer, ownership=Ownership(prune=True), allow_data_loss=True)
    assert not allowed.blocked
    (change,) = [c for c in allowed.changes if c.kind == "queue"]
    assert any("data loss allowed (--allow-data-loss): holds 3 messages" in w for w in change.warnings)
    assert "data loss allowed" in render_text(allowed)
    engine.apply(fake.broker(), fewer, ownership=Ownership(prune=True), allow_data_loss=True)
    assert "jobs" not in fake.vhost(V).queues


def test_a_replace_of_a_queue_holding_messages_with_allow_data_loss() -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), stack(None, Queue("jobs")))
    fake.publish(V, "jobs", 2)
    changed = stack(None, Queue("jobs", arguments={"x-max-length": 10}))
    assert engine.plan(fake.broker(), changed).blocked
    engine.apply(fake.broker(), changed, allow_data_loss=True)
    assert fake.vhost(V).queues["jobs"].definition()["arguments"]["x-max-length"] == 10
    assert not fake.vhost(V).queues["jobs"].messages


def test_destroy_deletes_everything_the_stack_owns_and_its_inventory() -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), ORDERS)
    engine.apply(fake.broker(), BILLING)
    plan = engine.plan_destroy(fake.broker(), "billing")
    assert {(c.kind, c.address.name) for c in plan.changes} == {("queue", "invoices"), ("stack", "billing")}
    engine.destroy(fake.broker(), plan)
    assert "invoices" not in fake.vhost(V).queues and "orders" in fake.vhost(V).queues
    assert "billing" not in engine.stacks(fake.broker())
    whole = engine.plan_destroy(fake.broker(), "orders")
    assert ("vhost", "delete") in {(c.kind, c.action) for c in whole.changes}
    engine.destroy(fake.broker(), whole)
    assert V not in fake.vhosts and not engine.stacks(fake.broker())


def test_destroy_is_guarded() -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), stack("orders", Queue("jobs")))
    fake.publish(V, "jobs", 1)
    plan = engine.plan_destroy(fake.broker(), "orders")
    assert plan.blocked
    with pytest.raises(UnsafeChange):
        engine.destroy(fake.broker(), plan)
    assert V in fake.vhosts
    engine.destroy(fake.broker(), engine.plan_destroy(fake.broker(), "orders", allow_data_loss=True))
    assert V not in fake.vhosts


# -- what users read: golden plans ----------------------------------------------------------------------


def _stack_plan(*, allow_data_loss: bool) -> Plan:
    fake = FakeRabbit()
    engine.apply(fake.broker(), BILLING)
    first = stack(
        "orders",
        Exchange("events", "topic"),
        Queue("jobs"),
        Queue("precious", protect=True),
        Queue("old"),
        Binding("events", "jobs", routing_key="j.#"),
        policies=(Policy("p", "^jobs$", definition={"max-length": 10}),),
    )
    engine.apply(fake.broker(), first)
    engine.apply(fake.broker(), stack(None, Queue("legacy")))
    fake.publish(V, "old", 2)
    now = stack("orders", Exchange("events", "topic"), Queue("jobs"), Queue("legacy"))
    plan = engine.plan(fake.broker(), now, ownership=Ownership(prune=True, adopt=True), allow_data_loss=allow_data_loss)
    return engine.describe_broker(fake.broker(), plan)


def test_golden_stack_plans() -> None:
    from support import check_golden
    from test_render import stable_json

    plan = _stack_plan(allow_data_loss=False)
    check_golden("plan/stack.txt", render_text(plan))
    check_golden("plan/stack.json", stable_json(plan))
    check_golden("plan/stack.md", render_markdown(plan))
    check_golden("plan/stack-allow-data-loss.txt", render_text(_stack_plan(allow_data_loss=True)))


def test_a_vhost_the_files_no_longer_declare_is_listed_then_pruned() -> None:
    fake = FakeRabbit()
    two = Topology(
        {V: build_vhost(V, Queue("a")), "old": build_vhost("old", Queue("jobs"), Exchange("x", "fanout"))},
        name="orders",
    )
    engine.apply(fake.broker(), two)
    plan = engine.plan(fake.broker(), ORDERS)
    assert not [c for c in plan.changes if c.vhost == "old"]
    assert any(u.address == Address("vhost", "old") and "--prune" in u.detail for u in plan.unmanaged)
    pruned = engine.plan(fake.broker(), ORDERS, ownership=Ownership(prune=True))
    assert {(c.kind, c.address.name) for c in pruned.changes if c.vhost == "old"} == {("vhost", ""), ("queue", "jobs")}
    engine.apply(fake.broker(), ORDERS, ownership=Ownership(prune=True))
    assert "old" not in fake.vhosts
    assert not [a for a in inventory(fake, "orders").owned if a.vhost == "old"]
    assert engine.plan(fake.broker(), ORDERS, ownership=Ownership(prune=True)).empty


def test_a_vhost_holding_what_the_stack_did_not_create_is_never_deleted() -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), stack("orders", Queue("mine")))
    engine.apply(fake.broker(), stack(None, Queue("someone-elses")))
    plan = engine.plan_destroy(fake.broker(), "orders")
    assert {(c.kind, c.address.name) for c in plan.changes} == {("queue", "mine"), ("stack", "orders")}
    assert "did not create" in plan.unmanaged[0].detail
    engine.destroy(fake.broker(), plan)
    assert set(fake.vhost(V).queues) == {"someone-elses"}


def test_a_user_who_may_not_read_global_parameters_gets_one_clear_error() -> None:
    from topo.broker.client import ManagementClient
    from topo.broker.live import LiveBroker
    from topo.errors import PermissionDenied

    fake = FakeRabbit()
    fake.add_user("watcher", "w-pw", "monitoring")
    fake.vhosts.setdefault(V, __import__("fakebroker").FakeVHost(V))
    fake.permissions[("watcher", V)] = {"configure": ".*", "write": ".*", "read": ".*"}
    client = ManagementClient("http://watcher:w-pw@fake-rabbit:15672", transport=fake.transport(), amqp_url="")
    with pytest.raises(PermissionDenied) as caught:
        engine.plan(LiveBroker(client), ORDERS)
    assert "the files name their stack" in caught.value.message and "'watcher'" in caught.value.message
    assert "policymaker or administrator tag" in caught.value.message
    assert "'administrator' tag" in (caught.value.hint or "") and "without the inventory" in (caught.value.hint or "")


def test_destroy_of_a_vhost_holding_a_protected_exchange_is_blocked() -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), stack("orders", Exchange("x", "fanout", protect=True)))
    plan = engine.plan_destroy(fake.broker(), "orders")
    assert [c.address.name for c in plan.blocked_changes] == ["x"]


def test_a_plan_without_the_inventory_marks_only_what_another_stacks_inventory_could_change() -> None:
    """A monitoring user may not read global parameters: ``topo plan`` (partial) of stack ``orders`` is made
    without ownership. Marked: the update of another stack's policy (apply refuses it) and the delete of a
    binding (apply leaves another stack's alone); not marked: creates, and the delete of a fence an apply left."""
    from topo.broker.client import ManagementClient
    from topo.broker.live import LiveBroker

    fake = FakeRabbit()
    engine.apply(fake.broker(), BILLING)
    engine.apply(fake.broker(), stack("billing", Queue("invoices"), policies=(Policy("cap", ".*", {"max-length": 5}),)))
    engine.apply(fake.broker(), ORDERS)
    from topo.plan.safety import fence_policy

    fence = fence_policy("gone", 9)  # an interrupted apply left it
    fake.vhosts[V].policies[fence.name] = {
        "pattern": fence.pattern,
        "definition": dict(fence.definition),
        "priority": fence.priority,
        "apply-to": fence.apply_to,
    }
    fake.add_user("watcher", "w-pw", "monitoring")
    fake.permissions[("watcher", V)] = {"configure": "", "write": "", "read": ""}
    client = ManagementClient("http://watcher:w-pw@fake-rabbit:15672", transport=fake.transport(), amqp_url="")
    desired = stack(
        "orders",
        Exchange("orders", "topic"),
        Queue("orders"),
        Queue("fresh"),
        policies=(Policy("cap", ".*", {"max-length": 6}),),  # billing's
    )
    plan = engine.plan(LiveBroker(client), desired, partial=True, ownership=Ownership(prune=True))
    marked = {
        (c.action, c.kind, c.address.name): any("ownership not known" in w for w in c.warnings) for c in plan.changes
    }
    assert marked == {
        ("create", "queue", "fresh"): False,
        ("delete", "binding", '.queues.orders.bindings[orders "o.#"]'): True,
        ("update", "policy", "cap"): True,
        ("delete", "policy", "topo.fence.gone"): False,
    }, marked
    assert not plan.read.ownership_known and plan.read.stack == "orders" and not plan.blocked
    assert not plan.unowned and not plan.adopted
    with_inventory = engine.plan(fake.broker(), desired, ownership=Ownership(prune=True))
    assert [b.code for c in with_inventory.changes for b in c.blockers] == ["owned-by-another-stack"]
