"""The diff on values: desired and observed Topology → typed changes. Pure, no broker.

create / update / replace / delete classification, the reason for every replace, bindings re-created
with a replaced queue or exchange, what is left alone as "not managed", and vhost metadata and limits
managed only where the files say so (``None`` = not managed).
"""

from __future__ import annotations

from typing import Any

import pytest
from support import build_vhost

from topo.model import Address, Binding, Exchange, Policy, Queue, Topology, VHost
from topo.plan.diff import diff
from topo.plan.kinds.exchange import exchange_replace_reasons
from topo.plan.kinds.queue import queue_replace_reasons
from topo.plan.model import Change, Plan

V = "v"


def vhost(*items: Exchange | Queue | Binding, name: str = V, **kw: Any) -> VHost:
    return build_vhost(name, *items, **kw)


def topology(*vhosts: VHost) -> Topology:
    return Topology({v.name: v for v in vhosts})


def plan_of(desired: VHost, observed: VHost | None) -> Plan:
    return diff(topology(desired), topology(observed) if observed is not None else Topology())


def changes(plan: Plan) -> list[tuple[str, str]]:
    return [(c.action, str(c.address)) for c in plan.changes]


def only(plan: Plan, kind: str, name: str | None = None) -> Change:
    found = [c for c in plan.changes if c.kind == kind and (name is None or c.address.name == name)]
    assert len(found) == 1, changes(plan)
    return found[0]


# -- no changes -------------------------------------------------------------------------------------


def test_identical_topologies_give_an_empty_plan() -> None:
    def build() -> VHost:
        return vhost(
            Exchange("ex", "topic"),
            Queue("q", arguments={"x-message-ttl": 60000}),
            Queue("qq", "quorum", arguments={"x-delivery-limit": 5}),
            Binding("ex", "q", routing_key="a.#"),
            policies=(Policy("p", "^q$", definition={"max-length": 10}),),
            operator_policies=(Policy("op", ".*", "queues", definition={"max-length": 100}),),
            description="d",
            tags=("a",),
            limits={"max-queues": 10},
        )

    plan = plan_of(build(), build())
    assert plan.empty
    assert plan.changes == [] and plan.unmanaged == []
    assert plan.vhosts == (V,)


def test_origin_and_client_settings_never_differ() -> None:
    from topo.model import Origin

    desired = vhost(
        Queue("q", origin=Origin("a.yaml", 3), prefetch=10, retry_delays=(1000,)),
        Exchange("e", origin=Origin("a.yaml", 9)),
    )
    assert plan_of(desired, vhost(Queue("q"), Exchange("e"))).empty


# -- create -----------------------------------------------------------------------------------------


def test_missing_vhost_creates_it_and_everything_in_it() -> None:
    desired = vhost(
        Exchange("ex", "topic"),
        Queue("q"),
        Binding("ex", "q", routing_key="k"),
        policies=(Policy("p", ".*"),),
        operator_policies=(Policy("op", ".*", definition={"max-length": 1}),),
        description="d",
    )
    plan = plan_of(desired, None)
    assert changes(plan) == [
        ("create", "vhosts.v"),
        ("create", "vhosts.v.exchanges.ex"),
        ("create", "vhosts.v.queues.q"),
        ("create", 'vhosts.v.queues.q.bindings[ex "k"]'),
        ("create", "vhosts.v.policies.p"),
        ("create", "vhosts.v.operator-policies.op"),
    ]
    # only what the files manage is set on the new vhost
    assert plan.changes[0].after == {"description": "d"}
    assert plan.changes[0].before is None
    assert plan.count("create") == 6


def test_each_missing_resource_is_a_create_with_the_desired_value() -> None:
    ex, q, b = Exchange("ex", "fanout"), Queue("q"), Binding("ex", "q")
    pol, op = Policy("p", ".*"), Policy("op", ".*", definition={"max-length": 1})
    plan = plan_of(vhost(ex, q, b, policies=(pol,), operator_policies=(op,)), vhost())
    assert [(c.action, c.kind, c.before, c.after) for c in plan.changes] == [
        ("create", "exchange", None, ex),
        ("create", "queue", None, q),
        ("create", "binding", None, b),
        ("create", "policy", None, pol),
        ("create", "operator-policy", None, op),
    ]
    assert all(c.reasons == () for c in plan.changes)


def test_only_the_declared_vhosts_are_looked_at() -> None:
    desired = topology(vhost(Queue("q")))
    observed = topology(vhost(Queue("q")), vhost(Queue("other"), name="elsewhere"))
    plan = diff(desired, observed)
    assert plan.empty and plan.unmanaged == []
    assert plan.vhosts == (V,)


# -- queue replacements -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        (Queue("q"), Queue("q", "quorum"), "the queue type cannot change (classic → quorum)"),
        (Queue("q", "quorum"), Queue("q", "stream"), "the queue type cannot change (quorum → stream)"),
        (Queue("q"), Queue("q", durable=False), "durable cannot change on an existing queue (true → false)"),
        (Queue("q"), Queue("q", auto_delete=True), "auto-delete cannot change on an existing queue (false → true)"),
        (
            Queue("q", arguments={"x-message-ttl": 60000}),
            Queue("q", arguments={"x-message-ttl": 86400000}),
            "x-message-ttl cannot change on an existing queue (1m → 1d)",
        ),
        (
            Queue("q"),
            Queue("q", arguments={"x-expires": 1800000}),
            "x-expires cannot change on an existing queue (not set → 30m)",
        ),
        (
            Queue("q", arguments={"x-max-length-bytes": 10485760}),
            Queue("q"),
            "x-max-length-bytes cannot change on an existing queue (10MiB → not set)",
        ),
        (
            Queue("q", arguments={"x-max-length": 10}),
            Queue("q", arguments={"x-max-length": 20}),
            "x-max-length cannot change on an existing queue (10 → 20)",
        ),
        (
            Queue("q", arguments={"x-dead-letter-exchange": "dlx"}),
            Queue("q", arguments={"x-dead-letter-exchange": "dlx2"}),
            'x-dead-letter-exchange cannot change on an existing queue ("dlx" → "dlx2")',
        ),
        (
            Queue("q", arguments={"x-overflow": "drop-head"}),
            Queue("q", arguments={"x-overflow": "reject-publish"}),
            'x-overflow cannot change on an existing queue ("drop-head" → "reject-publish")',
        ),
        (
            Queue("q", arguments={"x-max-priority": 5}),
            Queue("q", arguments={"x-max-priority": 10}),
            "x-max-priority cannot change on an existing queue (5 → 10)",
        ),
        (
            Queue("q", arguments={"x-single-active-consumer": False}),
            Queue("q", arguments={"x-single-active-consumer": True}),
            "x-single-active-consumer cannot change on an existing queue (false → true)",
        ),
        (
            Queue("q", arguments={"x-queue-mode": "lazy"}),
            Queue("q"),
            'x-queue-mode cannot change on an existing queue ("lazy" → not set)',
        ),
        (
            Queue("q", "stream", arguments={"x-max-age": "7D"}),
            Queue("q", "stream", arguments={"x-max-age": "12h"}),
            'x-max-age cannot change on an existing queue ("7D" → "12h")',
        ),
        (
            Queue("q", arguments={"x-custom": {"a": 1}}),
            Queue("q", arguments={"x-custom": {"a": 2}}),
            'x-custom cannot change on an existing queue ({"a": 1} → {"a": 2})',
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and " " not in v else None,
)
def test_queue_replace_reasons(before: Queue, after: Queue, reason: str) -> None:
    assert queue_replace_reasons(before, after) == [reason]
    plan = plan_of(vhost(after), vhost(before))
    change = only(plan, "queue")
    assert change.action == "replace"
    assert change.reasons == (reason,)
    assert change.before == before and change.after == after


def test_argument_type_mismatch_is_a_replace_that_says_so() -> None:
    before = Queue("q", arguments={"x-message-ttl": "60000"})  # declared by some client as a string
    after = Queue("q", arguments={"x-message-ttl": 60000})
    (reason,) = queue_replace_reasons(before, after)
    assert "x-message-ttl has the wrong type on the broker" in reason
    assert 'str "60000"' in reason and "int 60000" in reason
    assert reason.endswith("cannot change on an existing queue")
    assert only(plan_of(vhost(after), vhost(before)), "queue").action == "replace"


def test_bool_and_int_are_not_the_same_argument() -> None:
    reasons = queue_replace_reasons(
        Queue("q", arguments={"x-single-active-consumer": 1}), Queue("q", arguments={"x-single-active-consumer": True})
    )
    assert len(reasons) == 1 and reasons[0].startswith("x-single-active-consumer")


def test_every_difference_is_a_reason() -> None:
    before = Queue("q", arguments={"x-message-ttl": 1000, "x-max-length": 5})
    after = Queue("q", "quorum", arguments={"x-message-ttl": 2000, "x-delivery-limit": 3})
    reasons = queue_replace_reasons(before, after)
    assert reasons == [
        "the queue type cannot change (classic → quorum)",
        "x-delivery-limit cannot change on an existing queue (not set → 3)",
        "x-max-length cannot change on an existing queue (5 → not set)",
        "x-message-ttl cannot change on an existing queue (1s → 2s)",
    ]


def test_equal_queues_have_no_reasons() -> None:
    queue = Queue("q", "quorum", arguments={"x-delivery-limit": 5, "x-dead-letter-exchange": "dlx"})
    assert queue_replace_reasons(queue, Queue("q", "quorum", arguments=dict(queue.arguments))) == []


# -- exchange replacements ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        (Exchange("e", "direct"), Exchange("e", "topic"), "the exchange type cannot change (direct → topic)"),
        (Exchange("e"), Exchange("e", internal=True), "internal cannot change on an existing exchange (false → true)"),
        (Exchange("e"), Exchange("e", durable=False), "durable cannot change on an existing exchange (true → false)"),
        (
            Exchange("e"),
            Exchange("e", auto_delete=True),
            "auto-delete cannot change on an existing exchange (false → true)",
        ),
        (
            Exchange("e"),
            Exchange("e", arguments={"alternate-exchange": "ae"}),
            'alternate-exchange cannot change on an existing exchange (not set → "ae")',
        ),
        (
            Exchange("e", arguments={"alternate-exchange": "ae"}),
            Exchange("e", arguments={"alternate-exchange": "ae2"}),
            'alternate-exchange cannot change on an existing exchange ("ae" → "ae2")',
        ),
        (
            Exchange("e", "x-custom", arguments={"x-delayed-type": "direct"}),
            Exchange("e", "x-custom", arguments={"x-delayed-type": "topic"}),
            'x-delayed-type cannot change on an existing exchange ("direct" → "topic")'
            " (RabbitMQ would silently keep the old value)",
        ),
    ],
)
def test_exchange_replace_reasons(before: Exchange, after: Exchange, reason: str) -> None:
    assert exchange_replace_reasons(before, after) == [reason]
    change = only(plan_of(vhost(after), vhost(before)), "exchange")
    assert change.action == "replace"
    assert change.reasons == (reason,)


# -- bindings around a replacement ---------------------------------------------------------------------


def test_bindings_of_a_replaced_queue_are_recreated_with_a_reason() -> None:
    bindings = (Binding("ex", "q", routing_key="a"), Binding("ex", "q", routing_key="b"))
    other = Binding("ex", "keep", routing_key="a")
    desired = vhost(Exchange("ex"), Queue("q", arguments={"x-max-length": 2}), Queue("keep"), *bindings, other)
    observed = vhost(Exchange("ex"), Queue("q"), Queue("keep"), *bindings, other)
    plan = plan_of(desired, observed)
    assert changes(plan) == [
        ("replace", "vhosts.v.queues.q"),
        ("create", 'vhosts.v.queues.q.bindings[ex "a"]'),
        ("create", 'vhosts.v.queues.q.bindings[ex "b"]'),
    ]
    for change in plan.changes[1:]:
        assert change.reasons == ("re-created: queue 'q' is replaced",)
        assert isinstance(change.after, Binding)


def test_bindings_from_and_to_a_replaced_exchange_are_recreated() -> None:
    from_it = Binding("ex", "q", routing_key="k")
    to_it = Binding("up", "ex", "exchange", routing_key="#")
    desired = vhost(Exchange("up", "topic"), Exchange("ex", "fanout"), Queue("q"), from_it, to_it)
    observed = vhost(Exchange("up", "topic"), Exchange("ex", "direct"), Queue("q"), from_it, to_it)
    plan = plan_of(desired, observed)
    assert changes(plan) == [
        ("replace", "vhosts.v.exchanges.ex"),
        ("create", 'vhosts.v.exchanges.ex.bindings[up "#"]'),
        ("create", 'vhosts.v.queues.q.bindings[ex "k"]'),
    ]
    assert plan.changes[1].reasons == ("re-created: exchange 'ex' is replaced",)
    assert plan.changes[2].reasons == ("re-created: exchange 'ex' is replaced",)
    assert plan.changes[0].warnings == ()


def test_replaced_exchange_warns_about_bindings_to_unmanaged_destinations() -> None:
    lost_q = Binding("ex", "someone-elses", routing_key="k")
    lost_e = Binding("ex", "their-exchange", "exchange", routing_key="")
    desired = vhost(Exchange("ex", "topic"))
    observed = vhost(Exchange("ex", "direct"), Queue("someone-elses"), Exchange("their-exchange"), lost_q, lost_e)
    plan = plan_of(desired, observed)
    change = only(plan, "exchange", "ex")
    assert change.action == "replace"
    assert change.warnings == (
        "binding to unmanaged queue 'someone-elses' (key \"k\") is lost with the exchange and not re-created",
        "binding to unmanaged exchange 'their-exchange' (key \"\") is lost with the exchange and not re-created",
    )
    # the lost bindings are not also listed as "not managed" (they will not exist after the apply)
    listed = {str(u.address) for u in plan.unmanaged}
    assert listed == {"vhosts.v.exchanges.their-exchange", "vhosts.v.queues.someone-elses"}


def test_a_replaced_exchange_that_stays_unchanged_elsewhere_has_no_warning_for_managed_bindings() -> None:
    binding = Binding("ex", "q")
    plan = plan_of(
        vhost(Exchange("ex", "topic"), Queue("q"), binding),
        vhost(Exchange("ex", "direct"), Queue("q"), binding),
    )
    assert only(plan, "exchange").warnings == ()


# -- bindings not in the files -------------------------------------------------------------------------


def test_binding_to_a_managed_destination_not_in_the_files_is_deleted() -> None:
    stray_q = Binding("ex", "q", routing_key="old")
    stray_e = Binding("ex", "ex2", "exchange", routing_key="old")
    desired = vhost(Exchange("ex"), Exchange("ex2"), Queue("q"))
    observed = vhost(Exchange("ex"), Exchange("ex2"), Queue("q"), stray_q, stray_e)
    plan = plan_of(desired, observed)
    assert changes(plan) == [
        ("delete", 'vhosts.v.exchanges.ex2.bindings[ex "old"]'),
        ("delete", 'vhosts.v.queues.q.bindings[ex "old"]'),
    ]
    assert plan.changes[0].before == stray_e and plan.changes[0].after is None
    assert plan.changes[0].reasons == ("no file declares this binding of a managed exchange",)
    assert plan.changes[1].reasons == ("no file declares this binding of a managed queue",)
    assert plan.unmanaged == []


def test_binding_from_an_unmanaged_exchange_to_a_managed_queue_is_deleted_too() -> None:
    # the destination's bindings are part of its declaration, wherever they come from
    stray = Binding("amq.topic", "q", routing_key="#")
    plan = plan_of(vhost(Queue("q")), vhost(Queue("q"), stray))
    assert changes(plan) == [("delete", 'vhosts.v.queues.q.bindings[amq.topic "#"]')]


def test_binding_to_an_unmanaged_destination_is_not_managed() -> None:
    theirs = Binding("ex", "theirs", routing_key="k")
    plan = plan_of(vhost(Exchange("ex")), vhost(Exchange("ex"), Queue("theirs"), theirs))
    assert plan.empty
    assert [str(u.address) for u in plan.unmanaged] == [
        "vhosts.v.queues.theirs",
        'vhosts.v.queues.theirs.bindings[ex "k"]',
    ]


def test_a_changed_binding_is_a_delete_and_a_create() -> None:
    old = Binding("h", "q", arguments={"x-match": "all", "a": "1"})
    new = Binding("h", "q", arguments={"x-match": "any", "a": "1"})
    plan = plan_of(vhost(Exchange("h", "headers"), Queue("q"), new), vhost(Exchange("h", "headers"), Queue("q"), old))
    assert sorted(c.action for c in plan.changes) == ["create", "delete"]
    created = next(c for c in plan.changes if c.action == "create")
    deleted = next(c for c in plan.changes if c.action == "delete")
    assert created.after == new and deleted.before == old
    assert str(created.address) != str(deleted.address)


def test_binding_argument_types_identify_the_binding() -> None:
    old = Binding("h", "q", arguments={"x-match": "all", "n": "1"})
    new = Binding("h", "q", arguments={"x-match": "all", "n": 1})
    plan = plan_of(vhost(Exchange("h", "headers"), Queue("q"), new), vhost(Exchange("h", "headers"), Queue("q"), old))
    assert sorted(c.action for c in plan.changes) == ["create", "delete"]


# -- in-place updates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["policy", "operator-policy"])
@pytest.mark.parametrize(
    "changed",
    [
        {"pattern": "^other$"},
        {"apply_to": "queues"},
        {"priority": 5},
        {"definition": {"max-length": 20}},
        {"definition": {"max-length": "10"}},  # a type difference is a difference
        {"definition": {}},
    ],
)
def test_a_policy_change_is_an_update_in_place(kind: str, changed: dict[str, Any]) -> None:
    base = {"name": "p", "pattern": "^q$", "apply_to": "all", "priority": 0, "definition": {"max-length": 10}}
    before, after = Policy(**base), Policy(**{**base, **changed})
    table = "policies" if kind == "policy" else "operator_policies"
    plan = plan_of(vhost(**{table: (after,)}), vhost(**{table: (before,)}))
    change = only(plan, kind)
    assert change.action == "update"
    assert change.before == before and change.after == after
    assert change.reasons == ("policies change in place",)


def test_unchanged_policies_give_no_change() -> None:
    policy = Policy("p", "^q$", "queues", 3, {"message-ttl": 300000, "max-length-bytes": 10485760})
    same = Policy("p", "^q$", "queues", 3, {"max-length-bytes": 10485760, "message-ttl": 300000})
    assert plan_of(vhost(policies=(policy,)), vhost(policies=(same,))).empty


# -- vhost metadata and limits ------------------------------------------------------------------------


def observed_vhost() -> VHost:
    """What the reader returns for a vhost: every field set."""
    return vhost(description="theirs", tags=("a", "b"), limits={"max-connections": 10})


def test_vhost_metadata_left_alone_when_not_managed() -> None:
    assert plan_of(vhost(), observed_vhost()).empty


@pytest.mark.parametrize(
    ("managed", "before", "after"),
    [
        ({"description": "ours"}, {"description": "theirs"}, {"description": "ours"}),
        ({"description": ""}, {"description": "theirs"}, {"description": ""}),
        ({"tags": ("x",)}, {"tags": ["a", "b"]}, {"tags": ["x"]}),
        ({"tags": ()}, {"tags": ["a", "b"]}, {"tags": []}),
        ({"limits": {"max-connections": 20}}, {"limits": {"max-connections": 10}}, {"limits": {"max-connections": 20}}),
        ({"limits": {}}, {"limits": {"max-connections": 10}}, {"limits": {}}),
        (
            {"limits": {"max-connections": 10, "max-queues": 5}},
            {"limits": {"max-connections": 10}},
            {"limits": {"max-connections": 10, "max-queues": 5}},
        ),
    ],
)
def test_vhost_update_covers_only_managed_fields(
    managed: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> None:
    plan = plan_of(vhost(**managed), observed_vhost())
    change = only(plan, "vhost")
    assert change.action == "update"
    assert change.address == Address("vhost", V)
    assert change.before == before
    assert change.after == after
    assert change.reasons == tuple(f"{key} can change in place" for key in after)


def test_vhost_update_lists_only_the_fields_that_differ() -> None:
    desired = vhost(description="theirs", tags=("x",), limits={"max-connections": 10})
    change = only(plan_of(desired, observed_vhost()), "vhost")
    assert change.before == {"tags": ["a", "b"]} and change.after == {"tags": ["x"]}


def test_vhost_metadata_equal_gives_no_change() -> None:
    desired = vhost(description="theirs", tags=("a", "b"), limits={"max-connections": 10})
    assert plan_of(desired, observed_vhost()).empty


# -- not managed --------------------------------------------------------------------------------------


def test_undeclared_resources_are_listed_not_managed_and_left_alone() -> None:
    observed = vhost(
        Queue("q"),
        Queue("zz-theirs"),
        Exchange("their-ex"),
        Binding("their-ex", "zz-theirs"),
        policies=(Policy("their-policy", ".*"),),
        operator_policies=(Policy("their-op", ".*"),),
    )
    plan = plan_of(vhost(Queue("q")), observed)
    assert plan.empty
    assert [(u.address.kind, str(u.address)) for u in plan.unmanaged] == [
        ("exchange", "vhosts.v.exchanges.their-ex"),
        ("operator-policy", "vhosts.v.operator-policies.their-op"),
        ("policy", "vhosts.v.policies.their-policy"),
        ("queue", "vhosts.v.queues.zz-theirs"),
        ("binding", 'vhosts.v.queues.zz-theirs.bindings[their-ex ""]'),
    ]


# -- order and addresses --------------------------------------------------------------------------------


def test_changes_are_ordered_by_vhost_then_kind_then_name() -> None:
    a = vhost(Queue("b"), Queue("a"), Exchange("z"), Exchange("y"), name="a-vhost")
    b = vhost(Queue("q"), policies=(Policy("p", ".*"),), name="b-vhost")
    plan = diff(topology(b, a), Topology())
    assert plan.vhosts == ("a-vhost", "b-vhost")
    assert changes(plan) == [
        ("create", "vhosts.a-vhost"),
        ("create", "vhosts.a-vhost.exchanges.y"),
        ("create", "vhosts.a-vhost.exchanges.z"),
        ("create", "vhosts.a-vhost.queues.a"),
        ("create", "vhosts.a-vhost.queues.b"),
        ("create", "vhosts.b-vhost"),
        ("create", "vhosts.b-vhost.queues.q"),
        ("create", "vhosts.b-vhost.policies.p"),
    ]


def test_addresses_quote_names_that_are_not_plain() -> None:
    desired = vhost(Queue("a.b"), Exchange("with space"), Binding("with space", "a.b", routing_key="k"), name="/")
    plan = diff(topology(desired), Topology())
    assert changes(plan) == [
        ("create", 'vhosts["/"]'),
        ("create", 'vhosts["/"].exchanges["with space"]'),
        ("create", 'vhosts["/"].queues["a.b"]'),
        ("create", 'vhosts["/"].queues["a.b"].bindings[with space "k"]'),
    ]


def test_plan_counts_and_summary() -> None:
    desired = vhost(Queue("new"), Queue("q", "quorum"), policies=(Policy("p", "x"),), description="d")
    observed = vhost(Queue("q"), Queue("r"), Binding("amq.direct", "q"), policies=(Policy("p", "y"),))
    plan = plan_of(desired, observed)
    assert (plan.count("create"), plan.count("update"), plan.count("replace"), plan.count("delete")) == (1, 2, 1, 1)
    assert not plan.empty
    assert plan.unsafe == []  # no message counts known in a pure diff
