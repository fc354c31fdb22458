"""Shovels and federation without a node: the files (URIs only from secret sources), the broker's JSON both
ways (its defaults and legacy keys without false drift), and the engine on the in-memory broker (plan, apply,
"No changes.", the plugin-missing refusal, a refusal that quotes a URI shown without its password). The live
tests are tests/test_links_broker.py."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from fakebroker import FakeRabbit, FakeVHost

from topo import engine
from topo.broker import live
from topo.definitions import (
    federation_upstream_from_value,
    shovel_from_value,
    shovel_value,
    vhost_definitions,
    vhost_from_definitions,
)
from topo.errors import BrokerError, UnsafeChange, ValidationError
from topo.loader import load
from topo.plan.render import render_json, render_markdown, render_text

PLUGINS = ("rabbitmq_shovel", "rabbitmq_federation_management")
SECRET = "s3cr3t-pw"


def _files(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "links.yaml"
    path.write_text(textwrap.dedent(text))
    return path


SHOVEL = """\
version: 1
vhosts:
  shop:
    queues:
      orders: {}
    shovels:
      to-archive:
        source: {uri: "amqp:///shop", queue: orders, delete-after: never}
        destination:
          uri: ${env:ARCHIVE_URI}
          exchange: archive
          routing-key: orders
        ack-mode: on-confirm
        reconnect-delay: 10s
    federation-upstreams:
      eu:
        uri: amqp://fed:${env:FED_PW}@eu.example.com/shop
        expires: 1h
    federation-upstream-sets:
      all: [eu]
"""
ENV = {"ARCHIVE_URI": f"amqp://archiver:{SECRET}@archive.example.com/x", "FED_PW": SECRET}


def _shown(plan: object) -> str:
    return render_text(plan) + render_markdown(plan) + json.dumps(render_json(plan))  # type: ignore[arg-type]


def test_files_give_the_brokers_values_with_defaults_left_out(tmp_path: Path) -> None:
    topology = load(_files(tmp_path, SHOVEL), environ=ENV)
    shovel = topology.vhosts["shop"].shovels["to-archive"]
    assert dict(shovel.settings) == {
        "src-queue": "orders",
        "dest-exchange": "archive",
        "dest-exchange-key": "orders",
        "reconnect-delay": 10,
    }
    assert shovel_value(shovel)["dest-uri"] == ENV["ARCHIVE_URI"]
    assert SECRET not in repr(shovel)
    upstream = topology.vhosts["shop"].federation_upstreams["eu"]
    assert dict(upstream.settings) == {"expires": 3_600_000}
    assert upstream.uris[0].source == "amqp://***@eu.example.com/shop"


@pytest.mark.parametrize(
    "uri",
    [
        f"amqp://user:{SECRET}@host/shop",
        "${env:NOT_SET:-amqp://user:" + SECRET + "@host/shop}",
        f"[amqp:///shop, 'amqp://user:{SECRET}@host']",
    ],
)
def test_a_uri_with_a_password_in_clear_is_refused_without_showing_it(tmp_path: Path, uri: str) -> None:
    text = SHOVEL.replace('uri: "amqp:///shop"', f"uri: {uri}" if uri.startswith("[") else f'uri: "{uri}"')
    with pytest.raises(ValidationError) as caught:
        load(_files(tmp_path, text), environ=ENV)
    message = str(caught.value)
    assert "cannot stand in a file in clear" in message and SECRET not in message


def test_a_uri_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "archive.uri").write_text(ENV["ARCHIVE_URI"] + "\n")
    text = SHOVEL.replace("uri: ${env:ARCHIVE_URI}", "uri-file: archive.uri")
    shovel = load(_files(tmp_path, text), environ=ENV).vhosts["shop"].shovels["to-archive"]
    assert [u.source for u in shovel.destination_uris] == ["uri-file archive.uri"]
    assert shovel_value(shovel)["dest-uri"] == ENV["ARCHIVE_URI"]


def test_a_source_is_a_queue_or_an_exchange(tmp_path: Path) -> None:
    text = SHOVEL.replace("queue: orders, delete-after", "queue: orders, exchange: x, delete-after")
    with pytest.raises(ValidationError, match="a shovel's source is a queue or an exchange"):
        load(_files(tmp_path, text), environ=ENV)


def test_broker_values_with_defaults_and_legacy_keys_compare_equal() -> None:
    ours = shovel_from_value("s", {"src-uri": "amqp://", "src-queue": "q", "dest-uri": ["amqp://"], "dest-queue": "d"})
    theirs = shovel_from_value(
        "s",
        {
            "src-uri": ["amqp://"],
            "src-protocol": "amqp091",
            "dest-protocol": "amqp091",
            "src-queue": "q",
            "prefetch-count": 1000,
            "delete-after": "never",
            "dest-uri": "amqp://",
            "dest-queue": "d",
            "add-forward-headers": False,
            "ack-mode": "on-confirm",
            "reconnect-delay": 5.0,
        },
    )
    assert ours == theirs and [u.value for u in ours.source_uris] == [u.value for u in theirs.source_uris]
    upstream = federation_upstream_from_value("u", {"uri": "amqp://h", "max-hops": 1, "prefetch-count": 1000})
    assert dict(upstream.settings) == {}


def test_a_vhost_round_trips_through_the_brokers_json(tmp_path: Path) -> None:
    vhost = load(_files(tmp_path, SHOVEL), environ=ENV).vhosts["shop"]
    info, document = vhost_definitions(vhost)
    again = vhost_from_definitions("shop", info, document)
    assert again.shovels == vhost.shovels
    assert again.federation_upstreams == vhost.federation_upstreams
    assert again.federation_upstream_sets == vhost.federation_upstream_sets
    assert shovel_value(again.shovels["to-archive"]) == shovel_value(vhost.shovels["to-archive"])


def test_plan_apply_then_no_changes_and_no_secret_shown(tmp_path: Path) -> None:
    rabbit = FakeRabbit(plugins=PLUGINS)
    desired = load(_files(tmp_path, SHOVEL), environ=ENV)
    planned = engine.plan(rabbit.broker(), desired)
    assert {(c.kind, c.action) for c in planned.changes} >= {
        ("shovel", "create"),
        ("federation-upstream", "create"),
        ("federation-upstream-set", "create"),
    }
    shown = _shown(planned)
    assert SECRET not in shown and "(sensitive), from ${env:ARCHIVE_URI}" in shown
    engine.apply(rabbit.broker(), desired, planned)
    order = [line for line in rabbit.log if line.startswith("PUT /parameters")]
    assert order == [
        "PUT /parameters/federation-upstream/shop/eu",
        "PUT /parameters/federation-upstream-set/shop/all",
        "PUT /parameters/shovel/shop/to-archive",
    ]
    assert engine.plan(rabbit.broker(), desired).empty

    changed = load(_files(tmp_path, SHOVEL.replace("reconnect-delay: 10s", "reconnect-delay: 1m")), environ=ENV)
    update = engine.plan(rabbit.broker(), changed)
    (change,) = update.changes
    assert change.action == "update" and "reconnect-delay: 10 → 60" in render_text(update)


def test_without_the_plugin_the_plan_is_blocked_and_apply_writes_nothing(tmp_path: Path) -> None:
    rabbit = FakeRabbit(plugins=("rabbitmq_shovel",))
    desired = load(_files(tmp_path, SHOVEL), environ=ENV)
    planned = engine.plan(rabbit.broker(), desired)
    blocked = sorted(c.kind for c in planned.changes if c.blockers)
    assert blocked == ["federation-upstream", "federation-upstream-set"]
    assert "rabbitmq_federation" in render_text(planned)
    with pytest.raises(UnsafeChange, match="rabbitmq_federation"):
        engine.apply(rabbit.broker(), desired, planned)
    assert not [line for line in rabbit.log if not line.startswith("GET")]


def test_plugins_not_known_block_the_plan_and_apply_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that lists no ``enabled_plugins`` (it started seconds ago; the live broker asks again for a
    while: tests/test_links_broker.py) and no extensions: not known, blocked before any write."""
    monkeypatch.setattr(live, "PLUGINS_WAIT", 0.0)
    rabbit = FakeRabbit(plugins=PLUGINS)
    rabbit.node_statistics = False
    desired = load(_files(tmp_path, SHOVEL), environ=ENV)
    planned = engine.plan(rabbit.broker(), desired)
    blocked = {c.kind: [b.code for b in c.blockers] for c in planned.changes if c.blockers}
    assert blocked == {k: ["plugin-unknown"] for k in ("shovel", "federation-upstream", "federation-upstream-set")}
    assert "plan again in a few seconds" in render_text(planned)
    with pytest.raises(UnsafeChange, match="rabbitmq_shovel"):
        engine.apply(rabbit.broker(), desired, planned)
    assert not [line for line in rabbit.log if not line.startswith("GET")]


def test_a_refusal_that_quotes_the_value_never_shows_the_password() -> None:
    rabbit = FakeRabbit(plugins=PLUGINS)
    rabbit.vhosts["shop"] = FakeVHost("shop")
    value = {"src-uri": f"amqp://user:{SECRET}@h/x", "src-queue": "q", "dest-uri": "amqp://", "bogus": 1}
    with pytest.raises(BrokerError) as caught:
        rabbit.broker().put_parameter("shop", "shovel", "s", value)
    assert SECRET not in str(caught.value) and "Unrecognised terms" in str(caught.value)


def test_an_export_loads_back_to_the_same_links_and_names_a_variable_for_each_uri_with_a_password(
    tmp_path: Path,
) -> None:
    from topo.export import export_yaml

    declared = load(_files(tmp_path, SHOVEL), environ=ENV)
    text = export_yaml(declared)
    assert SECRET not in text and "${env:SHOVEL_TO_ARCHIVE_DEST_URI}" in text and "amqp:///shop" in text
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "all.yaml").write_text(text)
    environ = {
        "SHOVEL_TO_ARCHIVE_DEST_URI": ENV["ARCHIVE_URI"],
        "UPSTREAM_EU_URI": f"amqp://fed:{SECRET}@eu.example.com/shop",
    }
    again = load(tmp_path / "export", environ=environ).vhosts["shop"]
    vhost = declared.vhosts["shop"]
    assert again.shovels == vhost.shovels and again.federation_upstreams == vhost.federation_upstreams
    assert again.federation_upstream_sets == vhost.federation_upstream_sets
    assert shovel_value(again.shovels["to-archive"]) == shovel_value(vhost.shovels["to-archive"])
