"""Shovels and federation offline: which URIs name this broker, the links of a topology, ``topo route``
following a message through a shovel or a federated exchange into another vhost (goldens of what users
read), ``topo graph`` drawing them (tests/test_graph.py's goldens), and what lint says of a link."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from support import check_golden

from topo.cli import _register
from topo.cli.common import run
from topo.graph import link_edges, vhost_graph
from topo.loader import load
from topo.model import Secret
from topo.routing import route, topology_links
from topo.routing.links import local_vhost

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "topologies" / "links.yaml"


@pytest.mark.parametrize(
    ("uri", "vhost"),
    [
        ("amqp://", "/"),
        ("amqp:///", ""),
        ("amqp:///legacy", "legacy"),
        ("AMQPS:///legacy", "legacy"),
        ("amqp:///%2F", "/"),
        ("amqp:///orders.eu?heartbeat=10", "orders.eu"),
        ("amqp://localhost/legacy", None),  # a host: topo cannot tell it is this broker
        ("amqp://user:pw@broker/legacy", None),
        ("http:///legacy", None),
    ],
)
def test_a_uri_without_a_host_names_a_vhost_of_this_broker(uri: str, vhost: str | None) -> None:
    assert local_vhost(Secret(uri, uri)) == vhost


def test_a_uri_not_read_is_judged_by_what_the_files_write() -> None:
    assert local_vhost(Secret(None, "${env:LEGACY_URI}")) is None
    assert local_vhost(Secret(None, "${env:LEGACY_URI:-amqp:///legacy}")) is None  # not what the broker gets
    assert local_vhost(Secret(None, "amqp:///legacy")) == "legacy"


def test_the_example_has_a_shovel_and_a_federation_between_its_vhosts() -> None:
    links = topology_links(load(EXAMPLE, environ={}))
    assert [(k.kind, k.name, k.source_vhost, k.source_type, k.source) for k in links] == [
        ("federation", "legacy", "legacy", "exchange", "catalogue"),
        ("shovel", "legacy-orders", "legacy", "queue", "orders.outbox"),
    ]
    shovel = links[1]
    assert (shovel.destination_vhost, shovel.destination_type, shovel.destination) == ("commerce", "exchange", "orders")
    assert shovel.destination_key == "order.legacy"


def test_a_link_to_another_broker_is_not_followed() -> None:
    remote = {"LEGACY_URI": "amqp://shovel:pw@old-host/legacy"}
    assert topology_links(load(EXAMPLE, environ=remote)) == ()
    result = route(load(EXAMPLE, environ=remote), "legacy", "orders", "order")
    assert result.queues == ("orders.outbox",) and result.forwarded == ()


def test_a_message_to_a_shovelled_queue_goes_on_to_the_destination_with_its_key() -> None:
    result = route(load(EXAMPLE, environ={}), "legacy", "orders", "order")
    assert result.queues == ("orders.outbox",)
    (forward,) = result.forwarded
    assert forward.link.kind == "shovel" and forward.via == "orders.outbox"
    assert forward.result is not None
    assert (forward.result.vhost, forward.result.exchange, forward.result.routing_key) == (
        "commerce",
        "orders",
        "order.legacy",
    )
    assert forward.result.queues == ("fulfilment",)
    assert not result.lost
    assert json.loads(json.dumps(result.to_json()))["forwarded"][0]["result"]["queues"] == ["fulfilment"]
    assert route(load(EXAMPLE, environ={}), "legacy", "orders", "order", links=False).forwarded == ()


def test_a_message_through_the_upstream_exchange_reaches_the_federated_exchange() -> None:
    topology = load(EXAMPLE, environ={})
    result = route(topology, "legacy", "catalogue", "product.created")
    assert result.dropped and not result.lost  # no queue in legacy, but the federation link takes it
    (forward,) = result.forwarded
    assert forward.result is not None and forward.result.queues == ("search-index",)
    unmatched = route(topology, "legacy", "catalogue", "customer.created")
    assert unmatched.lost


LOOP = """\
version: 1
vhosts:
  a:
    queues:
      inbox: {}
    shovels:
      a-to-b:
        source: {uri: "amqp:///a", queue: inbox}
        destination: {uri: "amqp:///b", queue: inbox}
  b:
    queues:
      inbox: {}
    shovels:
      b-to-a:
        source: {uri: "amqp:///b", queue: inbox}
        destination: {uri: "amqp:///a", queue: inbox}
      b-to-nowhere:
        source: {uri: "amqp:///b", queue: inbox}
        destination: {uri: "amqp:///unmanaged", exchange: x}
"""


def test_a_shovel_loop_ends_and_an_undeclared_vhost_is_not_followed(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text(LOOP)
    result = route(load(path), "a", "", "inbox")
    (to_b,) = result.forwarded
    assert to_b.result is not None and to_b.result.queues == ("inbox",)
    notes = {f.link.name: f.note for f in to_b.result.forwarded}
    assert notes["b-to-nowhere"] == "vhost 'unmanaged' is not declared in the files: not followed"
    back = next(f for f in to_b.result.forwarded if f.link.name == "b-to-a")
    assert back.result is not None
    (again,) = back.result.forwarded
    assert again.note == "a cycle: the message came through this link already"


FEDERATION_CHAIN = """\
version: 1
vhosts:
  a:
    exchanges:
      events: {type: fanout}
  b:
    exchanges:
      events: {type: fanout}
    federation-upstreams:
      from-a: {uri: "amqp:///a"}
    policies:
      federate: {pattern: ^events$, apply-to: exchanges, definition: {federation-upstream: from-a}}
  c:
    exchanges:
      events: {type: fanout}
    queues:
      sink:
        bindings: [{exchange: events}]
    federation-upstreams:
      from-b: {uri: "amqp:///b", max-hops: HOPS}
    policies:
      federate: {pattern: ^events$, apply-to: exchanges, definition: {federation-upstream: from-b}}
"""


@pytest.mark.parametrize(("hops", "reached"), [(1, False), (2, True)])
def test_federation_stops_after_max_hops(tmp_path: Path, hops: int, reached: bool) -> None:
    path = tmp_path / "chain.yaml"
    path.write_text(FEDERATION_CHAIN.replace("HOPS", str(hops)))
    result = route(load(path), "a", "events", "")
    (to_b,) = result.forwarded
    assert to_b.result is not None
    assert bool(to_b.result.forwarded) == reached  # a message federated once crosses from-b only if it allows 2


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("shovel", ["--vhost", "legacy", "--exchange", "orders", "--routing-key", "order"]),
        ("federation", ["--vhost", "legacy", "--exchange", "catalogue", "--routing-key", "product.created"]),
        ("federation-dropped", ["--vhost", "legacy", "--exchange", "catalogue", "--routing-key", "customer.x"]),
    ],
)
def test_route_says_where_a_link_takes_the_message(
    name: str, args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEGACY_URI", raising=False)
    monkeypatch.delenv("COMMERCE_URI", raising=False)
    _register()
    code = run(["route", str(EXAMPLE), *args])
    check_golden(f"route/links-{name}.txt", capsys.readouterr().out)
    assert code == (1 if name.endswith("dropped") else 0)


def test_the_graph_draws_the_links_between_the_vhosts() -> None:
    topology = load(EXAMPLE, environ={})
    graphs = [vhost_graph(topology.vhost(name), i) for i, name in enumerate(sorted(topology.vhosts))]
    names = {n.id: f"{g.vhost}/{n.name}" for g in graphs for n in g.nodes}
    edges = {(names[e.source], names[e.target], e.label) for e in link_edges(topology, graphs)}
    assert edges == {
        ("legacy/orders.outbox", "commerce/orders", "shovel legacy-orders: order.legacy"),
        ("legacy/catalogue", "commerce/catalogue", "federation: legacy"),
    }
    assert link_edges(topology, graphs[1:]) == []  # one vhost drawn: no link to draw


def test_lint_finds_nothing_in_the_example_and_a_link_end_lint_can_check(tmp_path: Path) -> None:
    from topo.lint import lint

    assert [f.code for f in lint(load(EXAMPLE, environ={})) if f.code.startswith("TL8")] == []
    text = EXAMPLE.read_text().replace("queue: orders.outbox\n", "queue: orders.outbx\n")
    path = tmp_path / "links.yaml"
    path.write_text(text)
    (finding,) = [f for f in lint(load(path, environ={})) if f.code.startswith("TL8")]
    assert finding.code == "TL801" and finding.address == "vhosts.legacy.shovels.legacy-orders"
    assert (
        finding.origin is not None
        and finding.origin.line == textwrap.dedent(text).splitlines().index("      legacy-orders:") + 1
    )
