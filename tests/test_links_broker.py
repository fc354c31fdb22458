"""Shovels and federation against the real broker (it has the plugins: tests/conftest.py ``LINK_PLUGINS``).

A declared shovel really moves messages from one vhost to another, a declared federation upstream, its set
and the policy that federates an exchange really bring the upstream's messages over; a second plan is
"No changes." (the broker's stored values compared without false drift); the URIs carry a user's password,
which appears in no plan form. A node without the plugins (a private one) makes the plan blocked, and apply
refuses before any write.
"""

from __future__ import annotations

import json
import secrets
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from support import drain, publish, wait_until

import devbroker
from topo import engine
from topo.broker.client import ManagementClient
from topo.errors import UnsafeChange
from topo.loader import load
from topo.plan.render import render_json, render_markdown, render_text
from topo.urls import parse_amqp

pytestmark = pytest.mark.timeout(240)


def q(name: str) -> str:
    return quote(name, safe="")


@pytest.fixture
def client(broker: Any) -> Iterator[ManagementClient]:
    with ManagementClient(broker.url, amqp_url=broker.amqp_url) as c:
        yield c


@pytest.fixture
def other(vhost: str, broker: Any, mgmt: httpx.Client) -> Iterator[str]:
    """A second vhost beside ``vhost`` (the other end of a link)."""
    name = vhost + "-b"
    mgmt.put(f"/api/vhosts/{q(name)}").raise_for_status()
    mgmt.put(
        f"/api/permissions/{q(name)}/{q(broker.user)}", json={"configure": ".*", "write": ".*", "read": ".*"}
    ).raise_for_status()
    yield name
    mgmt.delete(f"/api/vhosts/{q(name)}")


@pytest.fixture
def link_user(vhost: str, other: str, mgmt: httpx.Client) -> Iterator[tuple[str, str]]:
    """A user with a password of its own (to look for in every output) and every right on both vhosts."""
    name, password = f"t-link-{secrets.token_hex(3)}", f"pw-{secrets.token_hex(8)}"
    mgmt.put(f"/api/users/{q(name)}", json={"password": password, "tags": ""}).raise_for_status()
    for v in (vhost, other):
        mgmt.put(f"/api/permissions/{q(v)}/{q(name)}", json={"configure": ".*", "write": ".*", "read": ".*"})
    yield name, password
    mgmt.delete(f"/api/users/{q(name)}")


def _uri(broker: Any, user: tuple[str, str], vhost: str) -> str:
    amqp = parse_amqp(broker.amqp_url)
    return f"amqp://{q(user[0])}:{q(user[1])}@{amqp.host}:{amqp.port}/{q(vhost)}"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "links.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _outputs(plan: Any) -> str:
    return render_text(plan) + render_markdown(plan) + json.dumps(render_json(plan))


def test_a_declared_shovel_moves_messages_and_a_second_plan_has_no_changes(
    vhost: str,
    other: str,
    link_user: tuple[str, str],
    broker: Any,
    client: ManagementClient,
    mgmt: httpx.Client,
    tmp_path: Path,
) -> None:
    source_uri = _uri(broker, link_user, vhost)
    path = _write(
        tmp_path,
        f"""\
        version: 1
        vhosts:
          {vhost}:
            queues:
              outbound: {{}}
            shovels:
              to-other:
                source:
                  uri: ${{env:SHOVEL_SOURCE}}
                  queue: outbound
                  prefetch-count: 50
                destination:
                  uri: amqp:///{q(other)}
                  queue: inbound
                ack-mode: on-confirm
                reconnect-delay: 2s
          {other}:
            queues:
              inbound: {{}}
        """,
    )
    desired = load(path, environ={"SHOVEL_SOURCE": source_uri})
    planned = engine.plan(client, desired)
    assert [(c.kind, c.action) for c in planned.changes if c.kind == "shovel"] == [("shovel", "create")]
    shown = _outputs(planned)
    assert link_user[1] not in shown and source_uri not in shown
    assert "(sensitive), from ${env:SHOVEL_SOURCE}" in render_text(planned)
    engine.apply(client, desired, planned)

    stored = mgmt.get(f"/api/parameters/shovel/{q(vhost)}/to-other").json()["value"]
    assert stored["src-uri"] == source_uri  # the broker has it, in clear (never shown by topo)
    assert engine.plan(client, desired).empty

    body = f"moved-{secrets.token_hex(4)}"
    assert publish(mgmt, vhost, "", "outbound", body=body)
    wait_until(lambda: body in drain(mgmt, other, "inbound"), what="the shovel to move the message")

    changed = load(path, environ={"SHOVEL_SOURCE": source_uri.replace(link_user[1], "another")})
    update = engine.plan(client, changed)
    (change,) = [c for c in update.changes if c.kind == "shovel"]
    assert change.action == "update"
    assert "its src-uri differs from the broker's (neither is shown)" in change.reasons
    assert "another" not in _outputs(update) and link_user[1] not in _outputs(update)


def test_a_federated_exchange_receives_the_upstream_messages(
    vhost: str,
    other: str,
    link_user: tuple[str, str],
    broker: Any,
    client: ManagementClient,
    mgmt: httpx.Client,
    tmp_path: Path,
) -> None:
    """``other`` federates exchange ``events`` from ``vhost`` (through the network, as the link user)."""
    path = _write(
        tmp_path,
        f"""\
        version: 1
        vhosts:
          {vhost}:
            exchanges:
              events: {{type: topic}}
          {other}:
            exchanges:
              events: {{type: topic}}
            queues:
              local:
                bindings: [{{exchange: events, routing-key: "#"}}]
            federation-upstreams:
              origin:
                uri: ${{env:ORIGIN_URI}}
                expires: 1h
                max-hops: 1
            federation-upstream-sets:
              all-origins: [origin]
            policies:
              federate-events:
                pattern: ^events$
                apply-to: exchanges
                definition: {{federation-upstream-set: all-origins}}
        """,
    )
    origin_uri = _uri(broker, link_user, vhost)
    desired = load(path, environ={"ORIGIN_URI": origin_uri})
    planned = engine.plan(client, desired)
    kinds = {c.kind for c in planned.changes}
    assert {"federation-upstream", "federation-upstream-set", "policy"} <= kinds
    assert link_user[1] not in _outputs(planned)
    engine.apply(client, desired, planned)
    assert engine.plan(client, desired).empty

    # the link binds the upstream's exchange once it runs: until then a message to it routes nowhere
    wait_until(lambda: publish(mgmt, vhost, "events", "warm.up", body="warm-up"), what="the federation link")
    body = f"federated-{secrets.token_hex(4)}"
    assert publish(mgmt, vhost, "events", "order.created", body=body)
    wait_until(lambda: body in drain(mgmt, other, "local"), what="the federated message")
    links = mgmt.get(f"/api/federation-links/{q(other)}").json()
    assert [link["upstream"] for link in links] == ["origin"]
    assert link_user[1] not in json.dumps(links)


@pytest.fixture(scope="module")
def bare_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devbroker.Node]:
    """A private node without the shovel and federation plugins."""
    try:
        node = devbroker.start(tmp_path_factory.mktemp("bare-node"))
    except devbroker.DevBrokerError as exc:
        pytest.fail(f"could not start a node: {exc}", pytrace=False)
    yield node
    node.stop()


@pytest.mark.broker
def test_without_the_plugin_the_plan_is_blocked_and_apply_writes_nothing(
    bare_node: devbroker.Node, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        """\
        version: 1
        vhosts:
          links:
            queues:
              outbound: {}
            shovels:
              to-archive:
                source: {uri: "amqp:///links", queue: outbound}
                destination: {uri: "amqp:///links", queue: archive}
            federation-upstreams:
              origin: {uri: "amqp://elsewhere.example/links"}
        """,
    )
    desired = load(path)
    with ManagementClient(bare_node.url) as client:
        # a node lists its enabled plugins with its statistics, some seconds after it starts
        wait_until(lambda: all("enabled_plugins" in n for n in client.get("/nodes") or []), what="node statistics")
        # what RabbitMQ 3.10.8 itself says (the facts page): the component does not exist without its plugin
        refused = httpx.put(
            f"http://127.0.0.1:{bare_node.http_port}/api/parameters/shovel/%2F/probe",
            json={"value": {"src-uri": "amqp://", "src-queue": "a"}},
            auth=("guest", "guest"),
        )
        assert refused.status_code == 400 and "component shovel not found" in refused.text
        planned = engine.plan(client, desired)
        blocked = {c.kind: [b.code for b in c.blockers] for c in planned.changes if c.blockers}
        assert blocked == {"shovel": ["plugin-missing"], "federation-upstream": ["plugin-missing"]}
        assert "rabbitmq_shovel" in render_text(planned) and "rabbitmq_federation" in render_text(planned)
        writes = client.writes
        with pytest.raises(UnsafeChange, match="rabbitmq_shovel"):
            engine.apply(client, desired, planned)
        assert client.writes == writes
        assert client.get("/vhosts/links", ok_missing=True) is None  # not even the vhost was created


_LINKS = """\
    version: 1
    vhosts:
      links:
        queues:
          outbound: {}
        shovels:
          to-archive:
            source: {uri: "amqp:///links", queue: outbound}
            destination: {uri: "amqp:///links", queue: archive}
        federation-upstreams:
          origin: {uri: "amqp://elsewhere.example/links"}
    """


@pytest.mark.broker
def test_a_node_that_just_started_still_blocks_the_missing_plugin(tmp_path: Path) -> None:
    """RabbitMQ 3.10.8 lists a node's ``enabled_plugins`` some seconds after it starts: the plan asked at
    once waits for them (it used to block nothing, and apply failed half-way: component not found)."""
    try:
        node = devbroker.start(tmp_path / "node")
    except devbroker.DevBrokerError as exc:
        pytest.fail(f"could not start a node: {exc}", pytrace=False)
    try:
        desired = load(_write(tmp_path, _LINKS))
        with ManagementClient(node.url) as client:
            planned = engine.plan(client, desired)  # at once, before the node's statistics are in
            blocked = {c.kind: [b.code for b in c.blockers] for c in planned.changes if c.blockers}
            assert blocked == {"shovel": ["plugin-missing"], "federation-upstream": ["plugin-missing"]}
            writes = client.writes
            with pytest.raises(UnsafeChange, match="rabbitmq_shovel"):
                engine.apply(client, desired, planned)
            assert client.writes == writes
    finally:
        node.stop()


def test_status_says_which_declared_shovel_does_not_run(
    vhost: str,
    broker: Any,
    client: ManagementClient,
    mgmt: httpx.Client,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``topo status``: a shovel that runs is OK; one whose destination refuses the connection stays
    ``starting`` on the broker (3.10.8) and is CRITICAL; a declared one the broker lacks is CRITICAL."""
    from topo.cli import _register
    from topo.cli.common import run

    path = _write(
        tmp_path,
        f"""\
        version: 1
        vhosts:
          {vhost}:
            queues:
              outbound: {{monitor: {{consumers: off}}}}
              inbound: {{monitor: {{consumers: off}}}}
            shovels:
              works:
                source: {{uri: "amqp:///{q(vhost)}", queue: outbound}}
                destination: {{uri: "amqp:///{q(vhost)}", queue: inbound}}
              refused:
                source: {{uri: "amqp:///{q(vhost)}", queue: outbound}}
                destination: {{uri: "amqp://127.0.0.1:1/x", queue: inbound}}
                reconnect-delay: 1s
                lint: {{disable: [TL802]}}
        """,
    )
    engine.apply(client, load(path))
    mgmt.delete(f"/api/parameters/shovel/{q(vhost)}/refused").raise_for_status()
    _register()

    def shovels() -> tuple[int, dict[str, tuple[str, str]]]:
        code = run(["status", str(path), "--url", broker.url, "--format", "json"])
        out, err = capsys.readouterr()
        assert err == "", err
        return code, {s["shovel"]: (s["state"], s["figure"]) for s in json.loads(out)["shovels"]}

    code, found = wait_until(lambda: (r := shovels())[1]["works"][0] == "OK" and r, what="the shovel to run")
    assert code == 2
    assert found == {"works": ("OK", "running"), "refused": ("CRITICAL", "missing on the broker")}
    engine.apply(client, load(path))  # makes it again: it cannot connect
    code, found = wait_until(lambda: (r := shovels())[1]["refused"][1] != "missing on the broker" and r, what="it")
    assert code == 2 and found["refused"][0] == "CRITICAL" and found["refused"][1] in ("starting", "terminated")
    assert found["works"] == ("OK", "running")
