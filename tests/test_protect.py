"""``protect: true`` on every kind of a vhost that a plan can delete or replace (issue 10): bindings (in each form
a binding is written: under a queue, under an exchange, a headers binding), shovels, federation upstreams and
upstream sets, besides vhosts, exchanges, queues and policies. The files, the inventory, and the guards of a
prune, ``topo destroy``, a binding removed from the files of a declared queue and a replacement that drops a
binding, in the three plan forms (golden files tests/golden/plan/protect.*), through the engine on the
in-memory broker. The same against a real node: tests/test_ownership_broker.py.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from fakebroker import FakeRabbit

from topo import engine
from topo.errors import UnsafeChange, ValidationError
from topo.loader import load
from topo.model import Address, GlobalParameter, Inventory, Topology
from topo.plan.model import Plan
from topo.plan.ownership import Ownership, decode
from topo.plan.render import render_markdown, render_text
from topo.plan.safety import refused_as_planned

PLUGINS = ("rabbitmq_shovel", "rabbitmq_federation_management")
V = "shop"

FILES = """\
version: 1
name: orders
vhosts:
  shop:
    exchanges:
      events: {type: topic}
      uploads: {type: headers}
      audit:
        type: fanout
        bindings:
          - {exchange: events, routing-key: "#", protect: true}
    queues:
      jobs:
        bindings:
          - {exchange: events, routing-key: "j.#", protect: true}
          - {exchange: events, routing-key: "k.#"}
      pdf:
        bindings:
          - {exchange: uploads, match: all, headers: {format: pdf}, protect: true}
    shovels:
      to-archive:
        source: {uri: "amqp:///shop", queue: jobs}
        destination: {uri: "amqp:///shop", exchange: audit}
        protect: true
    federation-upstreams:
      eu:
        uri: amqp://eu.example.com/shop
        protect: true
    federation-upstream-sets:
      every-shop: {upstreams: [eu], protect: true}
      plain: [eu]
"""

PROTECTED = {
    'vhosts.shop.exchanges.audit.bindings[events "#"]',
    'vhosts.shop.queues.jobs.bindings[events "j.#"]',
    'vhosts.shop.queues.pdf.bindings[uploads "" {format="pdf", x-match="all"}]',
    "vhosts.shop.shovels.to-archive",
    "vhosts.shop.federation-upstreams.eu",
    "vhosts.shop.federation-upstream-sets.every-shop",
}


def _load(tmp_path: Path, text: str) -> Topology:
    path = tmp_path / "stack.yaml"
    path.write_text(textwrap.dedent(text))
    return load(path)


def _inventory(fake: FakeRabbit, name: str) -> Inventory:
    return decode([GlobalParameter(n, v) for n, v in fake.global_parameters.items()])[name]


def _applied(tmp_path: Path) -> FakeRabbit:
    fake = FakeRabbit(plugins=PLUGINS)
    engine.apply(fake.broker(), _load(tmp_path, FILES))
    return fake


def _blocked(plan: Plan) -> set[str]:
    return {str(c.address) for c in plan.changes if any(b.code == "protected" for b in c.blockers)}


def test_every_form_of_binding_and_every_link_takes_protect(tmp_path: Path) -> None:
    vhost = _load(tmp_path, FILES).vhosts[V]
    bindings = {str(b.address(V)): b.protect for b in vhost.bindings.values()}
    assert {a for a, p in bindings.items() if p} == {a for a in PROTECTED if ".bindings[" in a}
    assert bindings['vhosts.shop.queues.jobs.bindings[events "k.#"]'] is False
    assert vhost.shovels["to-archive"].protect and vhost.federation_upstreams["eu"].protect
    assert vhost.federation_upstream_sets["every-shop"].protect
    assert not vhost.federation_upstream_sets["plain"].protect
    # protect is no setting of the broker's: the set of either form, the upstream, compare as before
    assert vhost.federation_upstream_sets["every-shop"].members == vhost.federation_upstream_sets["plain"].members
    assert "protect" not in vhost.federation_upstreams["eu"].settings


def test_protect_must_be_a_boolean_and_a_set_mapping_needs_its_upstreams(tmp_path: Path) -> None:
    bad = FILES.replace('routing-key: "j.#", protect: true', 'routing-key: "j.#", protect: "yes"')
    with pytest.raises(ValidationError) as caught:
        _load(tmp_path, bad)
    assert "vhosts.shop.queues.jobs.bindings[0].protect: expected true or false" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        _load(tmp_path, FILES.replace("{upstreams: [eu], protect: true}", "{protect: true}"))
    assert "vhosts.shop.federation-upstream-sets.every-shop: missing required key 'upstreams'" in str(caught.value)
    # a set of either form: the problem inside it, at its place (not "expected a list or a mapping")
    bad = FILES.replace("{upstreams: [eu], protect: true}", "{upstreams: [{upstream: eu, bogus: 1}], protect: true}")
    with pytest.raises(ValidationError) as caught:
        _load(tmp_path, bad.replace("plain: [eu]", "plain: [{exchange: x}]"))
    message = str(caught.value)
    assert "every-shop.upstreams[0].bogus: unknown key 'bogus'" in message
    assert "plain[0]: missing required key 'upstream'" in message


def test_the_inventory_remembers_what_is_protected_and_a_re_apply_changes_nothing(tmp_path: Path) -> None:
    fake = _applied(tmp_path)
    assert {str(a) for a in _inventory(fake, "orders").protected} == PROTECTED
    assert engine.plan(fake.broker(), _load(tmp_path, FILES)).empty


def _without_them() -> str:
    """The files with the protected binding of jobs (jobs stays), the exchange audit with its binding, the
    pdf queue, the shovel and the federation links removed."""
    text = FILES.split("    shovels:")[0]
    text = text.replace('          - {exchange: events, routing-key: "j.#", protect: true}\n', "")
    text = text.replace(
        '      audit:\n        type: fanout\n        bindings:\n          - {exchange: events, routing-key: "#", '
        "protect: true}\n",
        "",
    )
    return text.replace(
        "      pdf:\n        bindings:\n          - {exchange: uploads, match: all, headers: {format: pdf}, "
        "protect: true}\n",
        "",
    )


def test_a_prune_of_protected_bindings_and_links_is_blocked_whatever_the_flags(tmp_path: Path) -> None:
    fake = _applied(tmp_path)
    fewer = _load(tmp_path, _without_them())
    listed = engine.plan(fake.broker(), fewer)  # without --prune: only the binding of jobs, still declared
    assert _blocked(listed) == {'vhosts.shop.queues.jobs.bindings[events "j.#"]'}
    pruned = engine.plan(fake.broker(), fewer, ownership=Ownership(prune=True), allow_data_loss=True)
    assert _blocked(pruned) == PROTECTED
    unprotected = {str(c.address) for c in pruned.changes if c.action == "delete" and not c.blockers}
    assert unprotected == {
        "vhosts.shop.exchanges.audit",
        "vhosts.shop.queues.pdf",
        "vhosts.shop.federation-upstream-sets.plain",
    }
    assert refused_as_planned(pruned) is not None
    writes = len([line for line in fake.log if not line.startswith("GET")])
    with pytest.raises(UnsafeChange, match="protected"):
        engine.apply(fake.broker(), fewer, ownership=Ownership(prune=True), allow_data_loss=True)
    assert len([line for line in fake.log if not line.startswith("GET")]) == writes  # refused before any write
    vhost = fake.vhost(V)
    assert {"audit", "pdf"} <= set(vhost.queues) | set(vhost.exchanges)
    assert set(fake.vhost(V).parameters) >= {
        ("shovel", "to-archive"),
        ("federation-upstream", "eu"),
        ("federation-upstream-set", "every-shop"),
    }


def test_topo_destroy_of_protected_bindings_and_links_is_blocked(tmp_path: Path) -> None:
    fake = _applied(tmp_path)
    plan = engine.plan_destroy(fake.broker(), "orders")
    assert _blocked(plan) == PROTECTED
    with pytest.raises(UnsafeChange, match="protected"):
        engine.destroy(fake.broker(), plan)
    assert V in fake.vhosts and ("shovel", "to-archive") in fake.vhost(V).parameters


def test_a_replacement_that_drops_a_protected_binding_is_blocked(tmp_path: Path) -> None:
    fake = _applied(tmp_path)
    quorum = _load(tmp_path, FILES.replace("      jobs:\n", "      jobs:\n        type: quorum\n"))
    plan = engine.plan(fake.broker(), quorum)
    assert {(str(c.address), c.action) for c in plan.changes if c.blockers} == {
        ('vhosts.shop.queues.jobs.bindings[events "j.#"]', "create")
    }
    assert "no plan may replace it" in render_text(plan) and "re-created: queue 'jobs' is replaced" in render_text(plan)
    with pytest.raises(UnsafeChange, match="protected"):
        engine.apply(fake.broker(), quorum, plan)


def test_protect_taken_off_first_then_the_prune_goes_through(tmp_path: Path) -> None:
    fake = _applied(tmp_path)
    engine.apply(fake.broker(), _load(tmp_path, FILES.replace("protect: true", "protect: false")))
    assert not _inventory(fake, "orders").protected
    fewer = _load(tmp_path, _without_them())
    engine.apply(fake.broker(), fewer, ownership=Ownership(prune=True))
    assert not fake.vhost(V).parameters and set(fake.vhost(V).queues) == {"jobs"}
    assert engine.plan(fake.broker(), fewer, ownership=Ownership(prune=True)).empty
    assert Address("shovel", V, "to-archive") not in _inventory(fake, "orders").owned


# -- what users read: golden plans ----------------------------------------------------------------------


def _golden_plan(tmp_path: Path) -> Plan:
    fake = _applied(tmp_path)
    plan = engine.plan(fake.broker(), _load(tmp_path, _without_them()), ownership=Ownership(prune=True))
    return engine.describe_broker(fake.broker(), plan)


def test_golden_protect_plans(tmp_path: Path) -> None:
    from support import check_golden
    from test_render import stable_json

    plan = _golden_plan(tmp_path)
    check_golden("plan/protect.txt", render_text(plan))
    check_golden("plan/protect.json", stable_json(plan))
    check_golden("plan/protect.md", render_markdown(plan))


def test_migrate_does_not_lift_protect_from_a_queue() -> None:
    """``--migrate`` makes a replacement of a queue a migration (the old queue is deleted): still a replacement,
    blocked when the queue is protected."""
    from support import build_vhost

    from topo.model import Queue

    fake = FakeRabbit()
    engine.apply(fake.broker(), Topology({V: build_vhost(V, Queue("keep", protect=True))}, name="orders"))
    fake.publish(V, "keep", 2)
    quorum = Topology({V: build_vhost(V, Queue("keep", "quorum", protect=True))}, name="orders")
    plan = engine.plan(fake.broker(), quorum, migrate=True)
    (change,) = plan.changes
    assert change.action == "migrate" and [b.code for b in change.blockers] == ["protected"]
    with pytest.raises(UnsafeChange, match="protected"):
        engine.apply(fake.broker(), quorum, migrate=True)
    assert fake.vhost(V).queues["keep"].definition()["arguments"].get("x-queue-type", "classic") == "classic"


def test_migrate_moves_a_protected_binding_of_the_queue_it_migrates(tmp_path: Path) -> None:
    """A replacement of queue ``jobs`` drops its protected binding (blocked: above); a migration moves the
    queue's bindings to its holding queue and back, never without them: the binding is not blocked, the
    migration goes through, and the binding is there after it."""
    fake = _applied(tmp_path)
    fake.publish(V, "jobs", 3)
    quorum = _load(tmp_path, FILES.replace("      jobs:\n", "      jobs:\n        type: quorum\n"))
    plan = engine.plan(fake.broker(), quorum, migrate=True)
    assert not plan.blocked, [(str(c.address), c.blockers) for c in plan.changes if c.blockers]
    assert [c.action for c in plan.changes if c.kind == "queue"] == ["migrate"]
    engine.apply(fake.broker(), quorum, plan)
    assert any(b["destination"] == "jobs" and b["routing_key"] == "j.#" for b in fake.vhost(V).bindings)
    assert engine.plan(fake.broker(), quorum).empty


# -- the broker-wide kinds: permissions and topic permissions take protect; users and global parameters need none

ACCESS = """\
version: 1
name: orders
vhosts:
  shop:
    exchanges:
      events: {type: topic}
      audit: {type: topic}
users:
  app:
    password: ${env:APP_PASSWORD}
    permissions:
      shop: {configure: "^$", write: ".*", read: ".*", protect: true}
    topic-permissions:
      shop:
        events: {write: "^order\\\\.", read: "^$", protect: true}
        audit: {write: ".*", read: ".*"}
global-parameters:
  cluster_name: shop-eu
"""
PERMISSION = "users.app.permissions.shop"
TOPIC = "users.app.topic-permissions.shop"


def _load_access(tmp_path: Path, text: str) -> Topology:
    path = tmp_path / "access.yaml"
    path.write_text(text)
    return load(path, environ={"APP_PASSWORD": "app-pw"})


def _access_applied(tmp_path: Path) -> FakeRabbit:
    fake = FakeRabbit()
    engine.apply(fake.broker(), _load_access(tmp_path, ACCESS))
    assert {str(a) for a in _inventory(fake, "orders").protected} == {PERMISSION, TOPIC}
    assert engine.plan(fake.broker(), _load_access(tmp_path, ACCESS)).empty
    return fake


def test_a_protected_permission_is_never_revoked_once_the_files_no_longer_give_it(tmp_path: Path) -> None:
    fake = _access_applied(tmp_path)
    head, _, _ = ACCESS.partition("    permissions:\n")
    fewer = _load_access(tmp_path, head + "global-parameters:\n  cluster_name: shop-eu\n")  # app, no permissions
    for ownership in (Ownership(), Ownership(prune=True)):
        plan = engine.plan(fake.broker(), fewer, ownership=ownership, allow_data_loss=True)
        assert {(str(c.address), c.action) for c in plan.changes if c.kind != "stack"} == {
            (PERMISSION, "delete"),
            (TOPIC, "delete"),
        }
        assert _blocked(plan) == {PERMISSION, TOPIC}
        assert "! blocked: is protected (`protect: true`): no plan may delete it" in render_text(plan)
    with pytest.raises(UnsafeChange, match="protected"):
        engine.apply(fake.broker(), fewer, ownership=Ownership(prune=True))
    assert ("app", "shop") in fake.permissions
    # protect taken off in a change of its own (still given), then the revoke goes through
    engine.apply(fake.broker(), _load_access(tmp_path, ACCESS.replace(", protect: true", "")))
    assert not _inventory(fake, "orders").protected
    engine.apply(fake.broker(), fewer)
    assert ("app", "shop") not in fake.permissions


def test_removing_an_entry_of_protected_topic_permissions_is_a_replacement_and_blocked(tmp_path: Path) -> None:
    fake = _access_applied(tmp_path)
    for text in (ACCESS, ACCESS.replace("name: orders\n", "")):  # the stack, or the files alone
        fewer = _load_access(tmp_path, text.replace('        audit: {write: ".*", read: ".*"}\n', ""))
        plan = engine.plan(fake.broker(), fewer)
        (change,) = [c for c in plan.changes if c.kind == "topic-permission"]
        assert change.action == "update" and [b.code for b in change.blockers] == ["protected"]
        assert "no plan may replace it" in render_text(plan)
    # a change in place of a protected one (no entry removed) is no replacement
    loosened = _load_access(tmp_path, ACCESS.replace('write: ".*", read: ".*"}\n', 'write: "^a", read: ".*"}\n'))
    (change,) = [c for c in engine.plan(fake.broker(), loosened).changes if c.kind == "topic-permission"]
    assert change.action == "update" and not change.blockers


def test_a_prune_of_a_vhost_holding_a_protected_permission_is_blocked(tmp_path: Path) -> None:
    fake = _access_applied(tmp_path)
    other = ACCESS.replace("  shop:\n    exchanges:", "  elsewhere:\n    exchanges:", 1)
    other = other.replace("\n      shop:", "\n      elsewhere:")
    plan = engine.plan(fake.broker(), _load_access(tmp_path, other), ownership=Ownership(prune=True))
    (vhost,) = [c for c in plan.changes if c.kind == "vhost" and c.action == "delete"]
    (blocker,) = vhost.blockers
    assert blocker.code == "protected" and PERMISSION in blocker.message and TOPIC in blocker.message
    destroy = engine.plan_destroy(fake.broker(), "orders")
    assert [str(c.address) for c in destroy.blocked_changes] == ["vhosts.shop"]
    with pytest.raises(UnsafeChange, match="protected"):
        engine.destroy(fake.broker(), destroy)
    assert V in fake.vhosts and ("app", "shop") in fake.permissions


def test_users_and_global_parameters_are_never_deleted_by_any_plan(tmp_path: Path) -> None:
    """A user and a global parameter no file declares any more are left alone, by a prune and by destroy too:
    no stack owns them, so ``protect`` has nothing to guard there (the schema has no such key)."""
    fake = FakeRabbit()
    engine.apply(fake.broker(), _load_access(tmp_path, ACCESS.replace(", protect: true", "")))
    bare = _load_access(tmp_path, ACCESS.split("users:")[0])
    pruned = engine.plan(fake.broker(), bare, ownership=Ownership(prune=True))
    assert not [c for c in pruned.changes if c.kind in ("user", "global-parameter", *HELD_KINDS)]
    engine.apply(fake.broker(), bare, ownership=Ownership(prune=True))
    destroy = engine.plan_destroy(fake.broker(), "orders")
    assert {c.kind for c in destroy.changes} == {"vhost", "stack"}
    engine.destroy(fake.broker(), destroy)
    assert "app" in fake.users and fake.global_parameters["cluster_name"] == "shop-eu"
    with pytest.raises(ValidationError, match="protect"):
        _load_access(tmp_path, ACCESS.replace("    password: ${env:APP_PASSWORD}\n", "    protect: true\n"))


HELD_KINDS = ("permission", "topic-permission")


def test_golden_protect_access_plans(tmp_path: Path) -> None:
    from support import check_golden
    from test_render import stable_json

    fake = _access_applied(tmp_path)
    head, _, _ = ACCESS.partition("    permissions:\n")
    plan = engine.plan(fake.broker(), _load_access(tmp_path, head + "global-parameters:\n  cluster_name: shop-eu\n"))
    plan = engine.describe_broker(fake.broker(), plan)
    check_golden("plan/protect-access.txt", render_text(plan))
    check_golden("plan/protect-access.json", stable_json(plan))
    check_golden("plan/protect-access.md", render_markdown(plan))


def test_a_saved_plan_keeps_every_protect(tmp_path: Path) -> None:
    """``topo plan -o`` saves the desired topology, and ``topo apply PLAN`` plans again from it: the marks must
    survive the round trip, or the saved plan's apply would not be guarded."""
    import json

    from topo.plan.ownership import _protected, _protected_access
    from topo.plan.saved import decode_topology, encode_topology

    def marked(topology: Topology) -> set[Address]:
        return set().union(*(_protected(v) for v in topology.vhosts.values())) | _protected_access(topology)

    for topology in (_load(tmp_path, FILES), _load_access(tmp_path, ACCESS)):
        back = decode_topology(json.loads(json.dumps(encode_topology(topology))))
        assert marked(back) == marked(topology) and marked(topology)
