"""The reader's normalisation, on the broker's own JSON (pure): what makes an untouched broker show no drift.

The same against a real broker is in test_engine.py (test_untouched_broker_shows_no_false_drift).
"""

from __future__ import annotations

from typing import Any

from topo.broker.reader import vhost_from_definitions
from topo.model import Binding, Exchange, Policy, Queue

INFO = {"name": "v", "description": "d", "tags": ["b", "a", "b"]}


def defs(**parts: Any) -> dict[str, Any]:
    return {"rabbit_version": "3.10.8", **parts}


def test_metadata_and_limits() -> None:
    vhost = vhost_from_definitions(
        "v",
        INFO,
        defs(parameters=[{"component": "vhost-limits", "name": "limits", "value": {"max-queues": 10}}]),
    )
    assert (vhost.description, vhost.tags, vhost.limits) == ("d", ("a", "b"), {"max-queues": 10})


def test_metadata_of_a_bare_vhost_is_empty_not_unknown() -> None:
    vhost = vhost_from_definitions("v", {"name": "v"}, defs())
    assert (vhost.description, vhost.tags, vhost.limits) == ("", (), {})


def test_tags_as_a_comma_separated_string() -> None:
    assert vhost_from_definitions("v", {"tags": "x,y,"}, defs()).tags == ("x", "y")


def test_queue_type_comes_out_of_the_arguments() -> None:
    vhost = vhost_from_definitions(
        "v",
        INFO,
        defs(
            queues=[
                {"name": "plain", "durable": True, "auto_delete": False, "arguments": {}},
                {"name": "explicit", "durable": True, "auto_delete": False, "arguments": {"x-queue-type": "classic"}},
                {"name": "qq", "durable": True, "auto_delete": False, "arguments": {"x-queue-type": "quorum"}},
                {
                    "name": "st",
                    "durable": True,
                    "auto_delete": False,
                    "arguments": {"x-queue-type": "stream", "x-max-age": "7D"},
                },
            ]
        ),
    )
    assert vhost.queues == {
        "plain": Queue("plain"),
        "explicit": Queue("explicit"),
        "qq": Queue("qq", "quorum"),
        "st": Queue("st", "stream", arguments={"x-max-age": "7D"}),
    }


def test_broker_exchanges_and_default_exchange_bindings_are_left_out() -> None:
    vhost = vhost_from_definitions(
        "v",
        INFO,
        defs(
            exchanges=[
                {"name": "amq.topic", "type": "topic", "durable": True, "auto_delete": False, "internal": False},
                {"name": "", "type": "direct"},
                {
                    "name": "audit",
                    "type": "fanout",
                    "durable": True,
                    "auto_delete": False,
                    "internal": True,
                    "arguments": {"alternate-exchange": "ae"},
                },
            ],
            bindings=[
                {"source": "", "destination": "q", "destination_type": "queue", "routing_key": "q", "arguments": {}},
                {
                    "source": "amq.topic",
                    "destination": "audit",
                    "destination_type": "exchange",
                    "routing_key": "#",
                    "arguments": {},
                },
                {
                    "source": "audit",
                    "destination": "q",
                    "destination_type": "queue",
                    "routing_key": "",
                    "arguments": {"x-match": "all", "a": 1},
                },
            ],
        ),
    )
    assert vhost.exchanges == {
        "audit": Exchange("audit", "fanout", internal=True, arguments={"alternate-exchange": "ae"})
    }
    expected = [
        Binding("amq.topic", "audit", "exchange", "#"),
        Binding("audit", "q", arguments={"x-match": "all", "a": 1}),
    ]
    assert vhost.bindings == {b.key: b for b in expected}


def test_policies_and_operator_policies() -> None:
    vhost = vhost_from_definitions(
        "v",
        INFO,
        defs(
            policies=[
                {
                    "vhost": "v",
                    "name": "p",
                    "pattern": "^x",
                    "apply-to": "queues",
                    "definition": {"message-ttl": 300000},
                    "priority": 3,
                }
            ],
            parameters=[
                {
                    "component": "operator_policy",
                    "name": "op",
                    "vhost": "v",
                    "value": {"pattern": ".*", "definition": {"max-length": 100}, "priority": 0, "apply-to": "queues"},
                }
            ],
        ),
    )
    assert vhost.policies == {"p": Policy("p", "^x", "queues", 3, {"message-ttl": 300000})}
    assert vhost.operator_policies == {"op": Policy("op", ".*", "queues", 0, {"max-length": 100})}
