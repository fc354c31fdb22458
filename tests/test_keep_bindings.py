"""``keep-bindings``: bindings an application adds at run time to a declared queue or exchange are left
alone when they match, and listed as such in the plan; without the setting they are deleted as before.

The file format, the loader, the diff, the three plan renderings (golden files in tests/golden/plan/kept.*)
and an apply against the real broker.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from support import build_vhost, check_golden

from topo import engine
from topo.broker.client import ManagementClient
from topo.errors import ValidationError
from topo.loader import load
from topo.model import Binding, BindingPattern, Exchange, Queue, Topology, VHost
from topo.plan.diff import diff
from topo.plan.model import Plan
from topo.plan.render import render_json, render_markdown, render_text

HEAD = "version: 1\nvhosts:\n  v:\n"
TENANTS = (BindingPattern(exchange="tenants", routing_key="tenant.*"),)


def load_body(tmp_path: Path, body: str) -> Topology:
    file = tmp_path / "t.yaml"
    file.write_text(HEAD + body, encoding="utf-8")
    return load(file, environ={})


def problems_of(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(ValidationError) as info:
        load_body(tmp_path, body)
    return [p.render() for p in info.value.problems]


def vhost(*items: Exchange | Queue | Binding, **kw: Any) -> VHost:
    return build_vhost("v", *items, **kw)


def plan_of(desired: VHost, observed: VHost) -> Plan:
    return diff(Topology({"v": desired}), Topology({"v": observed}))


def actions(plan: Plan) -> list[tuple[str, str]]:
    return [(c.action, str(c.address)) for c in plan.changes]


# -- patterns ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "binding", "matches"),
    [
        (BindingPattern("tenants", "tenant.*"), Binding("tenants", "q", routing_key="tenant.42"), True),
        (BindingPattern("tenants", "tenant.*"), Binding("tenants", "q", routing_key="tenant.42.eu"), True),
        (BindingPattern("tenants", "tenant.*"), Binding("tenants", "q", routing_key="tenant."), True),
        (BindingPattern("tenants", "tenant.*"), Binding("tenants", "q", routing_key="tenant"), False),
        (BindingPattern("tenants", "tenant.*"), Binding("other", "q", routing_key="tenant.42"), False),
        (BindingPattern("tenants", "tenant.*"), Binding("tenants", "q", routing_key="xtenant.42"), False),
        (BindingPattern("tenants"), Binding("tenants", "q", routing_key="anything"), True),
        (BindingPattern(routing_key="*.eu"), Binding("any", "q", routing_key="orders.eu"), True),
        (BindingPattern(routing_key="a?c[d]"), Binding("x", "q", routing_key="a?c[d]"), True),  # only * is special
        (BindingPattern(routing_key="a?c"), Binding("x", "q", routing_key="abc"), False),
        (BindingPattern(routing_key="*"), Binding("x", "q", routing_key=""), True),
        (BindingPattern(), Binding("x", "q", routing_key="k", arguments={"x-match": "all"}), True),
    ],
)
def test_a_pattern_matches_the_source_exactly_and_the_key_as_a_glob(
    pattern: BindingPattern, binding: Binding, matches: bool
) -> None:
    assert pattern.matches(binding) is matches


# -- the file format ---------------------------------------------------------------------------------


def test_keep_bindings_on_a_queue_an_exchange_and_the_vhost(tmp_path: Path) -> None:
    t = load_body(
        tmp_path,
        "    keep-bindings: [{exchange: audit}]\n"
        "    exchanges:\n      tenants: {type: topic}\n      audit: {type: fanout}\n"
        "      fan:\n        type: fanout\n        keep-bindings: all\n"
        "    queues:\n"
        "      events:\n        keep-bindings:\n          - {exchange: tenants, routing-key: 'tenant.*'}\n"
        "          - {routing-key: '*.eu'}\n"
        "      plain: {}\n"
        "      strict: {keep-bindings: []}\n",
    )
    v = t.vhosts["v"]
    assert v.keep_bindings == (BindingPattern(exchange="audit"),)
    assert v.queues["events"].keep_bindings == (BindingPattern("tenants", "tenant.*"), BindingPattern(None, "*.eu"))
    assert v.exchanges["fan"].keep_bindings == (BindingPattern(),)  # `all`
    assert v.queues["plain"].keep_bindings is None  # the vhost's default applies
    assert v.queues["strict"].keep_bindings == ()  # none here, whatever the vhost says
    # the setting never takes part in the comparison with the broker
    assert v.queues["events"] == Queue("events") and v.exchanges["fan"] == Exchange("fan", "fanout")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("    queues:\n      q: {keep-bindings: some}\n", "expected `all`, or a list of"),
        ("    queues:\n      q: {keep-bindings: [{}]}\n", "must not be empty"),
        ("    queues:\n      q: {keep-bindings: [{exchange: x, key: a}]}\n", "unknown key 'key'"),
        ("    queues:\n      q: {keep-bindings: [{routing-key: 5}]}\n", "expected a string, got the number 5"),
        ("    keep-bindings: maybe\n", "expected `all`, or a list of"),
    ],
)
def test_keep_bindings_problems_are_placed(tmp_path: Path, body: str, message: str) -> None:
    (problem,) = problems_of(tmp_path, body)
    assert message in problem and "keep-bindings" in problem


def test_the_vhost_setting_is_given_once_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(HEAD + "    keep-bindings: all\n")
    (tmp_path / "b.yaml").write_text(HEAD + "    keep-bindings: [{exchange: x}]\n")
    with pytest.raises(ValidationError, match="vhost 'v' keep-bindings is declared twice"):
        load(tmp_path, environ={})


# -- the diff ----------------------------------------------------------------------------------------


def test_a_matching_binding_is_left_alone_and_listed_others_are_deleted() -> None:
    declared = Binding("events", "q", routing_key="system.#")
    tenant = Binding("tenants", "q", routing_key="tenant.42")
    stray = Binding("events", "q", routing_key="old.#")
    exchanges = (Exchange("events", "topic"), Exchange("tenants", "topic"))
    desired = vhost(*exchanges, Queue("q", keep_bindings=TENANTS), declared)
    observed = vhost(*exchanges, Queue("q"), declared, tenant, stray)
    plan = plan_of(desired, observed)
    assert actions(plan) == [("delete", 'vhosts.v.queues.q.bindings[events "old.#"]')]
    assert [(str(k.address), k.pattern) for k in plan.kept] == [
        ('vhosts.v.queues.q.bindings[tenants "tenant.42"]', TENANTS[0])
    ]
    assert plan.unmanaged == []


def test_without_the_setting_the_binding_is_deleted_as_before() -> None:
    tenant = Binding("tenants", "q", routing_key="tenant.42")
    tenants = Exchange("tenants", "topic")
    plan = plan_of(vhost(tenants, Queue("q")), vhost(tenants, Queue("q"), tenant))
    assert actions(plan) == [("delete", 'vhosts.v.queues.q.bindings[tenants "tenant.42"]')]
    assert plan.kept == []


def test_the_vhost_default_and_a_resource_that_overrides_it() -> None:
    a = Binding("tenants", "a", routing_key="tenant.1")
    b = Binding("tenants", "b", routing_key="tenant.1")
    e = Binding("tenants", "fan", "exchange", routing_key="tenant.1")
    desired = vhost(
        Exchange("tenants", "topic"),
        Exchange("fan", "fanout"),
        Queue("a"),
        Queue("b", keep_bindings=()),
        keep_bindings=TENANTS,
    )
    observed = vhost(Exchange("tenants", "topic"), Exchange("fan", "fanout"), Queue("a"), Queue("b"), a, b, e)
    plan = plan_of(desired, observed)
    assert actions(plan) == [("delete", 'vhosts.v.queues.b.bindings[tenants "tenant.1"]')]
    assert sorted(str(k.address) for k in plan.kept) == [
        'vhosts.v.exchanges.fan.bindings[tenants "tenant.1"]',
        'vhosts.v.queues.a.bindings[tenants "tenant.1"]',
    ]


def test_a_kept_binding_of_a_replaced_queue_is_created_again() -> None:
    # replacing the queue drops its bindings; the kept ones come back with it, as the declared ones do
    tenant = Binding("tenants", "q", routing_key="tenant.42")
    desired = vhost(Exchange("tenants", "topic"), Queue("q", arguments={"x-max-length": 5}, keep_bindings=TENANTS))
    observed = vhost(Exchange("tenants", "topic"), Queue("q"), tenant)
    plan = plan_of(desired, observed)
    assert actions(plan) == [
        ("replace", "vhosts.v.queues.q"),
        ("create", 'vhosts.v.queues.q.bindings[tenants "tenant.42"]'),
    ]
    assert plan.changes[1].reasons == ("re-created: queue 'q' is replaced (kept by keep-bindings)",)
    assert plan.changes[1].after == tenant
    assert [str(k.address) for k in plan.kept] == ['vhosts.v.queues.q.bindings[tenants "tenant.42"]']


def test_a_kept_binding_from_a_replaced_exchange_is_created_again() -> None:
    tenant = Binding("tenants", "q", routing_key="tenant.42")
    desired = vhost(Exchange("tenants", "topic"), Queue("q", keep_bindings=TENANTS))
    observed = vhost(Exchange("tenants", "direct"), Queue("q"), tenant)
    plan = plan_of(desired, observed)
    assert actions(plan) == [
        ("replace", "vhosts.v.exchanges.tenants"),
        ("create", 'vhosts.v.queues.q.bindings[tenants "tenant.42"]'),
    ]
    assert plan.changes[1].reasons == ("re-created: exchange 'tenants' is replaced (kept by keep-bindings)",)
    assert plan.changes[0].warnings == ()


# -- rendering (golden files) -----------------------------------------------------------------------------


def kept_plan() -> Plan:
    tenant = Binding("tenants", "events", routing_key="tenant.42")
    tenant_eu = Binding("tenants", "events", routing_key="tenant.7.eu")
    audit = Binding("audit", "fan", "exchange")
    stray = Binding("tenants", "events", routing_key="legacy")
    desired = vhost(
        Exchange("tenants", "topic"),
        Exchange("audit", "fanout"),
        Exchange("fan", "fanout", keep_bindings=(BindingPattern(),)),
        Queue("events", keep_bindings=TENANTS),
        Queue("jobs"),
    )
    observed = vhost(
        Exchange("tenants", "topic"),
        Exchange("audit", "fanout"),
        Exchange("fan", "fanout"),
        Queue("events"),
        tenant,
        tenant_eu,
        audit,
        stray,
    )
    return plan_of(desired, observed)


def test_golden_text() -> None:
    check_golden("plan/kept.txt", render_text(kept_plan()))


def test_golden_json() -> None:
    from topo import __version__

    check_golden("plan/kept.json", render_json(kept_plan()).replace(json.dumps(__version__), '"0.0.0-golden"'))


def test_golden_markdown() -> None:
    check_golden("plan/kept.md", render_markdown(kept_plan()))


def test_an_empty_plan_still_lists_the_kept_bindings() -> None:
    tenant = Binding("tenants", "q", routing_key="tenant.42")
    plan = plan_of(
        vhost(Exchange("tenants", "topic"), Queue("q", keep_bindings=TENANTS)),
        vhost(Exchange("tenants", "topic"), Queue("q"), tenant),
    )
    assert plan.empty
    assert render_text(plan) == (
        "No changes. The broker matches the files.\n\n"
        "Kept (1): bindings no file declares, left alone because of keep-bindings:\n"
        '      vhosts.v.queues.q.bindings[tenants "tenant.42"]'
        '  (matches {exchange: tenants, routing-key: "tenant.*"})\n'
    )
    data = json.loads(render_json(plan))
    assert data["kept_bindings"] == [
        {
            "kind": "binding",
            "vhost": "v",
            "address": 'vhosts.v.queues.q.bindings[tenants "tenant.42"]',
            "pattern": {"exchange": "tenants", "routing-key": "tenant.*"},
        }
    ]


# -- against the broker ------------------------------------------------------------------------------------


def q(name: str) -> str:
    return quote(name, safe="")


@pytest.fixture
def client(broker: Any) -> Iterator[ManagementClient]:
    with ManagementClient(broker.url) as c:
        yield c


TOPOLOGY = """\
    version: 1
    vhosts:
      {vhost}:
        exchanges:
          events: {{type: topic}}
          tenants: {{type: topic}}
        queues:
          work:
            bindings:
              - {{exchange: events, routing-key: "system.#"}}
{keep}
"""


def _bindings(mgmt: httpx.Client, vhost: str) -> set[tuple[str, str]]:
    items = mgmt.get(f"/api/queues/{q(vhost)}/work/bindings").json()
    return {(b["source"], b["routing_key"]) for b in items if b["source"]}


@pytest.mark.timeout(120)
def test_apply_leaves_a_binding_the_application_added_and_deletes_it_without_the_setting(
    tmp_path: Path, vhost: str, client: ManagementClient, mgmt: httpx.Client
) -> None:
    def files(keep: str) -> Topology:
        (tmp_path / "t.yaml").write_text(textwrap.dedent(TOPOLOGY.format(vhost=vhost, keep=keep)))
        return load(tmp_path)

    kept = files("            keep-bindings: [{exchange: tenants, routing-key: 'tenant.*'}]")
    engine.apply(client, kept)
    # the application binds the work queue for a new tenant at run time
    mgmt.post(
        f"/api/bindings/{q(vhost)}/e/tenants/q/work", json={"routing_key": "tenant.42", "arguments": {}}
    ).raise_for_status()
    mgmt.post(
        f"/api/bindings/{q(vhost)}/e/events/q/work", json={"routing_key": "debug.#", "arguments": {}}
    ).raise_for_status()
    plan = engine.plan(client, kept)
    assert actions(plan) == [("delete", f'vhosts.{vhost}.queues.work.bindings[events "debug.#"]')]
    assert [str(k.address) for k in plan.kept] == [f'vhosts.{vhost}.queues.work.bindings[tenants "tenant.42"]']
    assert "Kept (1): bindings no file declares, left alone because of keep-bindings:" in render_text(plan)
    engine.apply(client, kept, plan)  # re-reads the broker: converged with the kept binding in place
    assert _bindings(mgmt, vhost) == {("events", "system.#"), ("tenants", "tenant.42")}
    assert engine.plan(client, kept).empty

    # the same files without the setting: the binding goes, as it did before keep-bindings existed
    plain = files("")
    plan = engine.plan(client, plain)
    assert actions(plan) == [("delete", f'vhosts.{vhost}.queues.work.bindings[tenants "tenant.42"]')]
    engine.apply(client, plain, plan)
    assert _bindings(mgmt, vhost) == {("events", "system.#")}


@pytest.mark.timeout(120)
def test_a_kept_binding_survives_the_replacement_of_its_queue(
    tmp_path: Path, vhost: str, client: ManagementClient, mgmt: httpx.Client
) -> None:
    keep = "            keep-bindings: [{exchange: tenants}]"
    (tmp_path / "t.yaml").write_text(textwrap.dedent(TOPOLOGY.format(vhost=vhost, keep=keep)))
    engine.apply(client, load(tmp_path))
    mgmt.post(
        f"/api/bindings/{q(vhost)}/e/tenants/q/work", json={"routing_key": "tenant.7", "arguments": {}}
    ).raise_for_status()
    keep_and_ttl = keep + "\n            message-ttl: 1m"  # forces a replacement of the (empty) queue
    (tmp_path / "t.yaml").write_text(textwrap.dedent(TOPOLOGY.format(vhost=vhost, keep=keep_and_ttl)))
    desired = load(tmp_path)
    plan = engine.plan(client, desired)
    assert ("create", f'vhosts.{vhost}.queues.work.bindings[tenants "tenant.7"]') in actions(plan)
    engine.apply(client, desired, plan)
    assert _bindings(mgmt, vhost) == {("events", "system.#"), ("tenants", "tenant.7")}
    assert engine.plan(client, desired).empty


def test_the_json_form_of_kept_bindings_is_documented() -> None:
    import re

    documented = set(re.findall(r"`([^`\s]+)`", (Path(__file__).parent.parent / "docs" / "plan-json.md").read_text()))
    data = json.loads(render_json(kept_plan()))
    keys = {key for item in data["kept_bindings"] for key in item} | {
        key for item in data["kept_bindings"] for key in item["pattern"]
    }
    assert "kept_bindings" in documented
    assert keys <= documented, keys - documented
