"""Export (pure): observed Topology → the file format → load → the same Topology, so a plan of an export
shows "No changes". The same through the CLI against a real broker is in test_cli_core.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from support import build_vhost

from topo.errors import ValidationError
from topo.export import export_data, export_yaml
from topo.loader import load
from topo.model import Binding, Exchange, Policy, Queue, Topology, VHost
from topo.plan.diff import diff


def vhost(name: str, *items: Any, policies: tuple[Policy, ...] = (), ops: tuple[Policy, ...] = (), **kw: Any) -> VHost:
    """A vhost as the reader returns it: metadata always known."""
    meta = {"description": kw.pop("description", ""), "tags": kw.pop("tags", ()), "limits": kw.pop("limits", {})}
    assert not kw
    return build_vhost(name, *items, policies=policies, operator_policies=ops, **meta)


def round_trip(tmp_path: Path, observed: Topology) -> Topology:
    text = export_yaml(observed, header="exported for a test")
    (tmp_path / "export.yaml").write_text(text)
    loaded = load(tmp_path / "export.yaml", environ={})
    plan = diff(loaded, observed)
    assert plan.empty, [(c.action, str(c.address), c.reasons) for c in plan.changes]
    assert plan.unmanaged == []
    return loaded


def test_every_kind_round_trips(tmp_path: Path) -> None:
    observed = Topology(
        {
            "iot": vhost(
                "iot",
                Exchange("sensor-data", "topic"),
                Exchange("uploads", "headers", arguments={"alternate-exchange": "unrouted"}),
                Exchange("unrouted", "fanout"),
                Exchange("audit", "fanout", internal=True),
                Exchange("tmp", "direct", durable=False, auto_delete=True, arguments={"x-note": 1}),
                Exchange("shards", "x-consistent-hash", arguments={"hash-header": "order-id"}),
                Exchange("later", "x-delayed-message", arguments={"x-delayed-type": "topic"}),
                Queue("orders", arguments={"x-message-ttl": 86_400_000, "x-max-length-bytes": 10_485_760}),
                Queue("odd-ttl", arguments={"x-message-ttl": 1500, "x-expires": 90_000}),
                Queue("analytics", "quorum", arguments={"x-delivery-limit": 5, "x-dead-letter-exchange": "audit"}),
                Queue("events", "stream", arguments={"x-max-age": "7D"}),
                Queue("legacy", arguments={"x-queue-mode": "lazy", "x-custom": {"a": [1, "b"]}}),
                Queue("transient", durable=False, auto_delete=True),
                Binding("sensor-data", "audit", "exchange", "#"),
                Binding("amq.topic", "audit", "exchange", "x.*"),
                Binding("sensor-data", "analytics", routing_key="sensor.#"),
                Binding("uploads", "orders", arguments={"x-match": "all", "format": "pdf", "pages": 3}),
                Binding("uploads", "orders", arguments={"x-match": "any-with-x", "x-kind": "r"}),
                Binding("uploads", "orders", arguments={"x-match": "any"}),
                Binding("uploads", "legacy", arguments={"plain": True}),
                Binding("unrouted", "legacy"),
                Binding("shards", "orders", routing_key="1"),
                policies=(Policy("p", "^tmp\\.", "queues", 10, {"message-ttl": 300_000, "max-length-bytes": 1024}),),
                ops=(Policy("cap", ".*", "queues", 0, {"max-length": 1_000_000, "expires": 604_800_000}),),
                description="Sensor ingestion",
                tags=("iot", "prod"),
                limits={"max-connections": 500, "max-queues": -1},
            ),
            "/": vhost("/"),
        }
    )
    loaded = round_trip(tmp_path, observed)
    assert set(loaded.vhosts) == {"iot", "/"}
    data = export_data(observed)
    orders = data["vhosts"]["iot"]["queues"]["orders"]
    assert orders["message-ttl"] == "1d" and orders["max-length-bytes"] == "10MiB"
    assert data["vhosts"]["iot"]["queues"]["odd-ttl"] == {"message-ttl": 1500, "expires": "90s"}
    assert {"exchange": "uploads", "match": "all", "headers": {"format": "pdf", "pages": 3}} in orders["bindings"]
    assert data["vhosts"]["/"] == {}


def test_only_what_differs_from_the_defaults_is_written() -> None:
    data = export_data(Topology({"v": vhost("v", Exchange("e", "direct"), Queue("q"), Binding("e", "q"))}))
    assert data == {
        "version": 1,
        "vhosts": {"v": {"exchanges": {"e": {"type": "direct"}}, "queues": {"q": {"bindings": [{"exchange": "e"}]}}}},
    }


@pytest.mark.parametrize(
    "text",
    [
        "123",
        "1e3",
        "yes",
        "no",
        "on",
        "null",
        "~",
        "true",
        "0x1F",
        "",
        " lead",
        "a: b",
        "#hash",
        "- dash",
        "ü",
        "'q'",
        '"',
    ],
)
def test_strings_that_look_like_other_yaml_stay_strings(tmp_path: Path, text: str) -> None:
    name = text.strip() or "empty"
    observed = Topology(
        {
            "v": vhost(
                "v",
                Exchange("e", "topic"),
                Queue(f"q-{name}"),
                Binding("e", f"q-{name}", routing_key=text),
                Binding("e", f"q-{name}", arguments={"x-match": "all", "h": text}),
                description=text,
            )
        }
    )
    round_trip(tmp_path, observed)


@pytest.mark.parametrize("text", ["${env:HOME}", "${var:X}", "cost: ${x}", "$${already}", "${"])
def test_text_that_looks_like_interpolation_is_escaped(tmp_path: Path, text: str) -> None:
    observed = Topology(
        {
            "v": vhost(
                "v",
                Exchange("e", "topic"),
                Queue("q", arguments={"x-dead-letter-routing-key": text}),
                Binding("e", "q", routing_key=text),
                policies=(Policy("p", text, definition={"dead-letter-routing-key": text}),),
                description=text,
            )
        }
    )
    round_trip(tmp_path, observed)


def test_header_is_a_comment(tmp_path: Path) -> None:
    text = export_yaml(Topology({"v": vhost("v")}), header="exported by topo from http://guest:***@h:15672")
    assert text.splitlines()[0] == "# exported by topo from http://guest:***@h:15672"
    assert yaml.safe_load(text) == {"version": 1, "vhosts": {"v": {}}}


def test_an_argument_with_the_wrong_type_cannot_be_written_in_the_format(tmp_path: Path) -> None:
    # A queue declared over AMQP with x-message-ttl as a string: the format only has numbers for it, so
    # the export is written (nothing is hidden) and loading it names the place and the problem.
    observed = Topology({"v": vhost("v", Queue("q", arguments={"x-message-ttl": "60000"}))})
    (tmp_path / "e.yaml").write_text(export_yaml(observed))
    with pytest.raises(ValidationError) as info:
        load(tmp_path / "e.yaml", environ={})
    assert "message-ttl" in str(info.value)


# -- users, permissions, global parameters, vhost settings (issue 11) ---------------------------------------


def _access() -> Topology:
    from topo.model import GlobalParameter, PasswordHash, Permission, TopicPermission, TopicPermissions, User
    from topo.passwords import SHA256, hash_password

    observed = Topology({"shop": vhost("shop"), "new": vhost("new")})
    observed.vhosts["new"].default_queue_type = "quorum"
    observed.vhosts["new"].tracing = True
    for one in observed.vhosts.values():
        one.default_queue_type = one.default_queue_type or "classic"
        one.tracing = bool(one.tracing)
    observed.users = {
        "orders-app": User(
            "orders-app",
            ("management",),
            {"max-connections": 5},
            password_hash=PasswordHash(hash_password("o", SHA256), SHA256),
        ),
        "orders.app": User("orders.app", (), {}, password_hash=PasswordHash(hash_password("p", SHA256), SHA256)),
        "cert-only": User("cert-only", ("monitoring",), {}, password_hash=PasswordHash("", SHA256)),
    }
    observed.permissions = {("orders-app", "shop"): Permission("orders-app", "shop", "^$", "^${x}$", ".*")}
    observed.topic_permissions = {
        ("orders-app", "shop"): TopicPermissions(
            "orders-app", "shop", {"events": TopicPermission("events", "^order\\.", "^$")}
        )
    }
    observed.global_parameters = {
        "cluster_name": GlobalParameter("cluster_name", "eu-1"),
        "internal_cluster_id": GlobalParameter("internal_cluster_id", "rabbitmq-cluster-id-x"),
        "topo.inventory.s": GlobalParameter("topo.inventory.s", {}),
    }
    return observed


def test_users_are_exported_without_their_hashes_and_load_back(tmp_path: Path) -> None:
    observed = _access()
    text = export_yaml(observed)
    for user in observed.users.values():
        assert user.password_hash is not None
        assert not user.password_hash.value or user.password_hash.value not in text
    data = export_data(observed)
    assert data["users"]["orders-app"]["password"] == "${env:USER_ORDERS_APP_PASSWORD}"
    assert data["users"]["orders.app"]["password"] == "${env:USER_ORDERS_APP_PASSWORD_2}"  # made unique
    assert data["users"]["cert-only"] == {"password-hash": "", "tags": ["monitoring"]}
    assert data["users"]["orders-app"]["permissions"]["shop"]["write"] == "^$${x}$"  # escaped, not interpolated
    assert data["global-parameters"] == {"cluster_name": "eu-1"}
    assert data["vhosts"]["new"] == {"default-queue-type": "quorum", "tracing": True}
    (tmp_path / "export.yaml").write_text(text)
    loaded = load(
        tmp_path / "export.yaml", environ={"USER_ORDERS_APP_PASSWORD": "o", "USER_ORDERS_APP_PASSWORD_2": "p"}
    )
    plan = diff(loaded, observed)
    assert plan.empty, [(c.action, str(c.address), c.reasons) for c in plan.changes]
    assert loaded.permissions == observed.permissions and loaded.topic_permissions == observed.topic_permissions
    # with wrong passwords in the environment, the plan says they differ
    loaded = load(
        tmp_path / "export.yaml", environ={"USER_ORDERS_APP_PASSWORD": "x", "USER_ORDERS_APP_PASSWORD_2": "p"}
    )
    assert [str(c.address) for c in diff(loaded, observed).changes] == ["users.orders-app"]


def test_users_exported_with_their_hashes_load_back_as_they_are(tmp_path: Path) -> None:
    observed = _access()
    text = export_yaml(observed, password_hashes=True)
    assert "${env:" not in text
    (tmp_path / "export.yaml").write_text(text)
    loaded = load(tmp_path / "export.yaml", environ={})
    plan = diff(loaded, observed)
    assert plan.empty, [(c.action, str(c.address), c.reasons) for c in plan.changes]
    stored = observed.users["orders-app"].password_hash
    assert loaded.users["orders-app"].password_hash == stored
