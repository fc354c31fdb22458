"""The engine on an in-memory broker (tests/fakebroker.py): milliseconds, no node.

What runs here is the real engine, writer, drop protocol and live adapter (its HTTP client included, through
``httpx.MockTransport``); only the broker is simulated. These pin the apply's phase order, the safety check,
a failure at any write (the next apply converges), a write the broker drops (NotConverged), idempotence
and the drop protocol's refusals. The same behaviours are tested against a real node in test_engine.py,
test_drop_safety.py and test_safety_counts.py: those prove the adapter and the fake's model of RabbitMQ.
"""

from __future__ import annotations

import pytest
from fakebroker import FakeRabbit, Message
from support import build_vhost

from topo import engine
from topo.errors import ApplyFailed, MessagesLost, NotConverged, TopoError, UnsafeChange
from topo.model import Binding, Exchange, Policy, Queue, Topology

V = "v"


def topology(
    *,
    ttl: int = 60_000,
    qq_limit: int = 5,
    ae: bool = False,
    limits: int = 100,
    policy_ttl: int = 1000,
    extra_binding: bool = True,
    operator: bool = False,
) -> Topology:
    """A vhost with one of each kind; each keyword changes one thing (what the tests replace or update)."""
    items: list[Exchange | Queue | Binding] = [
        Exchange("ex", "topic", arguments={"alternate-exchange": "unrouted"} if ae else {}),
        Exchange("unrouted", "fanout"),
        Exchange("audit", "fanout", internal=True),
        Queue("orders", arguments={"x-message-ttl": ttl}),
        Queue("qq", "quorum", arguments={"x-delivery-limit": qq_limit}),
        Queue("lost"),
        Binding("ex", "orders", routing_key="orders.#"),
        Binding("ex", "qq", routing_key="q.#"),
        Binding("ex", "audit", "exchange", "#"),
        Binding("unrouted", "lost"),
    ]
    if extra_binding:
        items.append(Binding("ex", "orders", routing_key="old.#"))
    policies = (Policy("tmp", "^tmp\\.", "queues", 1, {"message-ttl": policy_ttl}),)
    operators = (Policy("cap", ".*", "queues", 0, {"max-length": 1000}),) if operator else ()
    vhost = build_vhost(
        V, *items, policies=policies, operator_policies=operators, description="d", limits={"max-queues": limits}
    )
    return Topology({V: vhost})


def applied(fake: FakeRabbit, desired: Topology) -> None:
    engine.apply(fake.broker(), desired)
    assert engine.plan(fake.broker(), desired).empty


# -- idempotence --------------------------------------------------------------------------------------------


def test_a_cold_apply_then_no_changes_and_no_writes() -> None:
    fake = FakeRabbit()
    plan = engine.plan(fake.broker(), topology())
    assert plan.count("create") == 1 + 3 + 3 + 5 + 1  # the vhost, exchanges, queues, bindings, policy
    applied(fake, topology())
    assert set(fake.vhost(V).queues) == {"orders", "qq", "lost"}
    assert fake.vhost(V).queues["qq"].arguments == {"x-delivery-limit": 5, "x-queue-type": "quorum"}
    fake.log.clear()
    engine.apply(fake.broker(), topology())
    assert fake.writes() == []  # a second apply writes nothing
    assert fake.log == ["GET /vhosts/v", "GET /definitions/v"]  # two reads, whatever the size


def test_the_creates_go_in_one_bulk_import_per_vhost() -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), topology())
    assert [w for w in fake.writes() if not w.startswith("PUT /vhost")] == [
        "POST /definitions/v",
        "PUT /policies/v/tmp",
    ]


# -- the order of an apply's phases ------------------------------------------------------------------------


def test_an_apply_runs_its_phases_in_dependency_order() -> None:
    fake = FakeRabbit()
    applied(fake, topology())
    fake.vhost(V).policies["topo.fence.lost"] = {  # left by an interrupted apply
        "pattern": r"^lost\z",
        "apply-to": "queues",
        "priority": 2,
        "definition": {"max-length": 0, "overflow": "reject-publish"},
    }
    fake.vhost(V).queues["lost"].messages.append(Message("topo-fence-probe:old"))
    desired = topology(ttl=120_000, ae=True, limits=200, policy_ttl=2000, extra_binding=False, operator=True)
    plan = engine.plan(fake.broker(), desired)
    assert sorted((c.action, c.kind, c.address.name.split(".")[-1]) for c in plan.changes if c.kind != "binding") == [
        ("create", "operator-policy", "cap"),
        ("delete", "policy", "lost"),
        ("replace", "exchange", "ex"),
        ("replace", "queue", "orders"),
        ("update", "policy", "tmp"),
        ("update", "vhost", ""),
    ]
    fake.log.clear()
    fake.amqp.calls.clear()
    engine.apply(fake.broker(), desired, plan)
    assert engine.plan(fake.broker(), desired).empty
    writes = fake.writes()
    assert writes[:2] == ["PUT /policies/v/topo.fence.lost", "DELETE /policies/v/topo.fence.lost"]  # repair first
    assert fake.amqp.calls[0] == "remove-probes v lost"  # ... its probe taken back before the fence goes
    assert fake.vhost(V).queues["lost"].messages == []
    rest = writes[2:]
    steps = [
        "PUT /vhost-limits/v/max-queues",  # vhosts
        "DELETE /bindings/v/e/ex/q/orders/old.#",  # binding deletes
        "DELETE /bindings/v/e/ex/q/orders/orders.#",  # the replaced queue cut off ...
        "DELETE /queues/v/orders",  # ... and deleted
        "DELETE /exchanges/v/ex",  # replaced exchanges
        "POST /definitions/v",  # every create, in one import
        "PUT /policies/v/tmp",  # policies
        "PUT /operator-policies/v/cap",
    ]
    assert [w for w in rest if w in steps] == steps
    assert len(rest) == len(steps), rest


def test_binding_deletes_go_in_reverse_plan_order_from_one_listing() -> None:
    fake = FakeRabbit()
    base = topology()
    for key in ("a", "b", "c"):
        base.vhosts[V].add_binding(Binding("ex", "lost", routing_key=key))
    applied(fake, base)
    fake.log.clear()
    applied(fake, topology())
    deletes = [w for w in fake.writes() if w.startswith("DELETE /bindings/")]
    assert deletes == [f"DELETE /bindings/v/e/ex/q/lost/{k}" for k in ("c", "b", "a")]
    assert fake.log.count("GET /bindings/v") == 1


# -- safety --------------------------------------------------------------------------------------------------


def test_a_blocked_plan_is_refused_before_any_write_in_the_plans_words() -> None:
    fake = FakeRabbit()
    applied(fake, topology())
    fake.publish(V, "orders", 3)
    plan = engine.plan(fake.broker(), topology(ttl=1))
    assert plan.blocked
    (change,) = plan.blocked_changes
    fake.log.clear()
    with pytest.raises(UnsafeChange) as info:
        engine.apply(fake.broker(), topology(ttl=1), plan)
    assert fake.writes() == []
    assert change.blockers[0].message in info.value.message
    assert f"queue 'orders' in vhost '{V}' holds 3 messages: replacing it would drop them" in info.value.message


def test_a_stale_plan_is_counted_again_before_any_write() -> None:
    fake = FakeRabbit()
    applied(fake, topology())
    plan = engine.plan(fake.broker(), topology(ttl=1))
    assert not plan.blocked
    fake.publish(V, "orders")  # arrives between plan and apply
    fake.log.clear()
    with pytest.raises(UnsafeChange, match="holds 1 message"):
        engine.apply(fake.broker(), topology(ttl=1), plan)
    assert fake.writes() == []


def test_a_consumer_blocks_and_a_stream_is_never_dropped() -> None:
    fake = FakeRabbit()
    desired = topology()
    desired.vhosts[V].queues["st"] = Queue("st", "stream")
    applied(fake, desired)
    fake.vhost(V).queues["orders"].consumers = 1
    changed = topology(ttl=1)
    changed.vhosts[V].queues["st"] = Queue("st", "stream", arguments={"x-max-age": "1D"})
    plan = engine.plan(fake.broker(), changed)
    assert {c.address.name: [b.code for b in c.blockers] for c in plan.blocked_changes} == {
        "orders": ["consumers"],
        "st": ["uncountable-stream"],
    }


def test_without_amqp_a_quorum_queue_is_blocked_and_a_classic_one_relies_on_if_empty() -> None:
    fake = FakeRabbit()
    applied(fake, topology())
    plan = engine.plan(fake.broker(amqp=False), topology(ttl=1, qq_limit=6))
    blocked = {c.address.name: [b.code for b in c.blockers] for c in plan.changes if c.kind == "queue"}
    assert blocked == {"orders": [], "qq": ["inexact-count"]}
    (orders,) = [c for c in plan.changes if c.address.name == "orders"]
    assert "if-empty" in orders.warnings[0] and "exact counts are off (no AMQP URL)" in orders.warnings[0]
    applied(fake, topology(ttl=1))  # the classic one alone goes through


# -- failures part-way ---------------------------------------------------------------------------------------


def _reference_writes() -> int:
    fake = FakeRabbit()
    applied(fake, topology())
    fake.log.clear()
    applied(fake, topology(ttl=120_000, qq_limit=6, ae=True, limits=200, policy_ttl=2000, extra_binding=False))
    return len(fake.writes())


@pytest.mark.parametrize("number", range(_reference_writes()))
def test_a_failure_at_any_write_leaves_a_state_the_next_apply_converges_from(number: int) -> None:
    fake = FakeRabbit()
    applied(fake, topology())
    fake.publish(V, "lost", 2)  # messages elsewhere must survive whatever happens
    desired = topology(ttl=120_000, qq_limit=6, ae=True, limits=200, policy_ttl=2000, extra_binding=False)
    fake.fail_write(number)
    with pytest.raises(TopoError) as info:
        engine.apply(fake.broker(), desired)
    message = info.value.message
    assert "injected failure" in message
    if isinstance(info.value, ApplyFailed):
        assert message.startswith("apply stopped after ")
        assert "run `topo apply` again" in (info.value.hint or "")
    applied(fake, desired)  # the next apply converges ...
    assert not [p for p in fake.vhost(V).policies if p.startswith("topo.fence")]
    assert len(fake.vhost(V).queues["lost"].messages) == 2  # ... and nothing was lost


def test_a_failed_bulk_create_says_what_was_deleted_and_not_declared_again() -> None:
    fake = FakeRabbit()
    applied(fake, topology())
    fake.fail("POST", "^/definitions/")
    with pytest.raises(ApplyFailed) as info:
        engine.apply(fake.broker(), topology(ttl=1, ae=True))
    error = info.value
    assert error.message.startswith(
        "apply stopped after 0 of 6 changes (deleted for replacement, not declared again yet: queue "
        "vhosts.v.queues.orders, exchange vhosts.v.exchanges.ex): the broker refused POST /definitions/v: injected "
        "failure"
    )
    assert list(error.not_declared) == ["queue vhosts.v.queues.orders", "exchange vhosts.v.exchanges.ex"]
    applied(fake, topology(ttl=1, ae=True))


def test_a_write_the_broker_drops_is_caught_by_the_re_read() -> None:
    fake = FakeRabbit()
    fake.ignore("POST", "^/definitions/")
    with pytest.raises(NotConverged) as info:
        engine.apply(fake.broker(), topology())
    assert "after the apply, the broker still differs from the files: create vhosts.v.exchanges." in info.value.message
    applied(fake, topology())


def test_an_import_never_changes_what_exists_and_the_re_read_says_so() -> None:
    fake = FakeRabbit()
    desired = topology()
    plan = engine.plan(fake.broker(), desired)
    applied(fake, Topology({V: build_vhost(V, Exchange("ex", "fanout"))}))  # behind our back, after the plan
    with pytest.raises(NotConverged, match=r"replace vhosts\.v\.exchanges\.ex"):
        engine.apply(fake.broker(), desired, plan)
    applied(fake, desired)
    assert fake.vhost(V).exchanges["ex"]["type"] == "topic"


# -- the drop protocol ---------------------------------------------------------------------------------------


def test_a_quorum_queue_is_fenced_counted_and_deleted_over_amqp() -> None:
    fake = FakeRabbit()
    applied(fake, topology())
    fake.log.clear()
    fake.amqp.calls.clear()
    applied(fake, topology(qq_limit=6))
    assert fake.amqp.calls == ["count v qq", "check v qq", "delete v qq"]  # the plan's count, the last look, the delete
    writes = fake.writes()
    assert writes[:3] == [
        "DELETE /bindings/v/e/ex/q/qq/q.#",
        "PUT /policies/v/topo.fence.qq",
        "DELETE /policies/v/topo.fence.qq",
    ]
    assert "DELETE /queues/v/qq" not in writes  # over AMQP, not HTTP
    assert fake.vhost(V).queues["qq"].messages == []  # its probe went with the old queue


def test_messages_between_the_last_count_and_the_delete_are_said_loudly() -> None:
    fake = FakeRabbit()
    applied(fake, topology())
    fake.amqp.between_count_and_delete = lambda vhost, name: fake.publish(vhost, name, 3)
    with pytest.raises(MessagesLost) as info:
        engine.apply(fake.broker(), topology(qq_limit=6))
    assert info.value.dropped == 3
    assert info.value.message.startswith("apply made every change, but RabbitMQ dropped 3 messages")
    fake.amqp.between_count_and_delete = None
    assert engine.plan(fake.broker(), topology(qq_limit=6)).empty  # every change was made


def test_messages_before_the_last_look_stop_apply_and_everything_is_put_back() -> None:
    fake = FakeRabbit()
    applied(fake, topology())
    fake.on("PUT", "^/policies/v/topo.fence.qq$", lambda: fake.publish(V, "qq", 2))  # as the fence goes up
    with pytest.raises(UnsafeChange) as info:
        engine.apply(fake.broker(), topology(qq_limit=6))
    assert f"queue 'qq' in vhost '{V}': 2 messages arrived after apply counted it" in info.value.message
    assert "put back: nothing was lost" in info.value.message
    queue = fake.vhost(V).queues["qq"]
    assert [m.message_id for m in queue.messages] == ["m0", "m1"]  # apply's probes taken back
    assert queue.arguments["x-delivery-limit"] == 5
    assert not [p for p in fake.vhost(V).policies if p.startswith("topo.fence")]
    assert ("ex", "q.#") in {(b["source"], b["routing_key"]) for b in fake.vhost(V).bindings}


def test_a_classic_queue_the_broker_refuses_to_delete_is_put_back() -> None:
    fake = FakeRabbit()
    applied(fake, topology())
    fake.on("DELETE", "^/queues/v/orders$", lambda: fake.publish(V, "orders"))  # after the last count
    with pytest.raises(UnsafeChange) as info:
        engine.apply(fake.broker(), topology(ttl=1))
    assert "the broker refused to delete it (queue 'orders' in vhost 'v' not empty)" in info.value.message
    assert ("ex", "orders.#") in {(b["source"], b["routing_key"]) for b in fake.vhost(V).bindings}
    assert len(fake.vhost(V).queues["orders"].messages) == 1


def test_a_fence_that_does_not_hold_stops_apply() -> None:
    fake = FakeRabbit()
    applied(fake, topology())
    fake.vhost(V).policies["theirs"] = {"pattern": "^qq$", "apply-to": "queues", "priority": 5, "definition": {}}
    fake.on("PUT", "^/policies/v/topo.fence.qq$", lambda: fake.vhost(V).policies["theirs"].update(priority=99))
    with pytest.raises(UnsafeChange, match="its fence did not hold"):
        engine.apply(fake.broker(), topology(qq_limit=6))
    assert fake.vhost(V).queues["qq"].messages == []  # both probes taken back
    assert set(fake.vhost(V).policies) == {"tmp", "theirs"}


def test_when_amqp_refuses_the_last_look_a_quorum_queue_stays() -> None:
    fake = FakeRabbit()
    applied(fake, topology())
    plan = engine.plan(fake.broker(), topology(qq_limit=6))
    fake.amqp.refuse = "AMQP refused the login of user 'guest'"
    with pytest.raises(UnsafeChange) as info:
        engine.apply(fake.broker(), topology(qq_limit=6), plan, recount=False)
    assert "AMQP refused the login of user 'guest', so apply could not check that its fence holds" in str(info.value)
    assert not [p for p in fake.vhost(V).policies if p.startswith("topo.fence")]
    fake.amqp.refuse = None
    applied(fake, topology(qq_limit=6))


def test_progress_reports_every_change_once() -> None:
    fake = FakeRabbit()
    seen: list[tuple[str, int]] = []
    plan = engine.apply(fake.broker(), topology(), progress=lambda text, n: seen.append((text, n)))
    assert sum(n for _, n in seen) == len(plan.changes)
    assert seen[0] == ("create vhosts.v", 1)
    assert seen[1] == (f"create 11 exchanges, queues and bindings in vhost {V!r}", 11)
