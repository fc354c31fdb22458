"""Resources as the broker's JSON, both ways (topo.definitions, pure): the reader's normalisation (what makes
an untouched broker show no drift) and the round trip model → broker JSON → model of every kind.

The same against a real broker is in test_engine.py (test_untouched_broker_shows_no_false_drift).
"""

from __future__ import annotations

from typing import Any

import pytest

from topo.definitions import (
    binding_definition,
    binding_from_definition,
    definitions_from_listings,
    exchange_definition,
    exchange_from_definition,
    global_parameter_definition,
    global_parameter_from_definition,
    permission_definition,
    permission_from_definition,
    policy_definition,
    policy_from_definition,
    queue_definition,
    queue_from_definition,
    topic_permissions_definitions,
    topic_permissions_from_definitions,
    user_definition,
    user_from_definition,
    vhost_definitions,
    vhost_from_definitions,
)
from topo.model import (
    Binding,
    Exchange,
    GlobalParameter,
    PasswordHash,
    Permission,
    Policy,
    Queue,
    TopicPermission,
    TopicPermissions,
    User,
    VHost,
)
from topo.passwords import SHA512

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


def test_what_a_federation_link_makes_in_its_upstream_vhost_is_left_out() -> None:
    # as RabbitMQ 3.10.8 exports a vhost that is the upstream of a federated exchange (read off a node)
    link = "federation: catalogue -> node@vm:commerce:catalogue"
    vhost = vhost_from_definitions(
        "legacy",
        INFO,
        defs(
            exchanges=[
                {"name": "catalogue", "type": "topic", "durable": True, "auto_delete": False, "internal": False},
                {
                    "name": link + " B",
                    "type": "x-federation-upstream",
                    "durable": True,
                    "auto_delete": True,
                    "internal": True,
                    "arguments": {"x-downstream-name": "node@vm", "x-internal-purpose": "federation", "x-max-hops": 1},
                },
            ],
            queues=[
                {
                    "name": link,
                    "durable": True,
                    "auto_delete": False,
                    "arguments": {"x-internal-purpose": "federation"},
                },
                {"name": "kept", "durable": True, "auto_delete": False, "arguments": {}},
            ],
            bindings=[
                {
                    "source": "catalogue",
                    "destination": link + " B",
                    "destination_type": "exchange",
                    "routing_key": "product.#",
                    "arguments": {"x-bound-from": [{"hops": 1, "vhost": "commerce"}]},
                },
                {"source": link + " B", "destination": link, "destination_type": "queue", "routing_key": ""},
                {"source": "catalogue", "destination": "kept", "destination_type": "queue", "routing_key": "#"},
            ],
        ),
    )
    assert set(vhost.exchanges) == {"catalogue"} and set(vhost.queues) == {"kept"}
    assert vhost.bindings == {b.key: b for b in [Binding("catalogue", "kept", routing_key="#")]}


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


# -- round trips: model → broker JSON → model ------------------------------------------------------------

EXCHANGES = [
    Exchange("plain"),
    Exchange("odd name/é", "topic", durable=False, auto_delete=True, internal=True),
    Exchange("x", "x-delayed-message", arguments={"x-delayed-type": "direct", "alternate-exchange": "ae"}),
]
QUEUES = [
    Queue("plain"),
    Queue("qq", "quorum", arguments={"x-delivery-limit": 5, "x-dead-letter-exchange": "dlx"}),
    Queue("tmp", durable=False, auto_delete=True, arguments={"x-message-ttl": 60000, "x-nested": {"a": [1, "b"]}}),
    Queue("st", "stream", arguments={"x-max-age": "7D"}),
]
BINDINGS = [
    Binding("ex", "q"),
    Binding("ex", "q", routing_key="a.#"),
    Binding("ex", "other", "exchange", "k", {"x-match": "all", "format": "pdf"}),
]
POLICIES = [
    Policy("p", "^x", "queues", 3, {"message-ttl": 300000, "overflow": "reject-publish"}),
    Policy("all", ".*"),
]


@pytest.mark.parametrize("exchange", EXCHANGES, ids=lambda x: x.name)
def test_an_exchange_round_trips(exchange: Exchange) -> None:
    assert exchange_from_definition(exchange_definition(exchange)) == exchange


@pytest.mark.parametrize("queue", QUEUES, ids=lambda q: q.name)
def test_a_queue_round_trips_with_its_type_explicit_on_the_way_out(queue: Queue) -> None:
    sent = queue_definition(queue)
    assert sent["arguments"]["x-queue-type"] == queue.type
    assert queue_from_definition(sent) == queue


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: b.describe())
def test_a_binding_round_trips(binding: Binding) -> None:
    assert binding_from_definition(binding_definition(binding)) == binding


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_a_policy_round_trips(policy: Policy) -> None:
    assert policy_from_definition(policy_definition(policy)) == policy


def test_a_whole_vhost_round_trips() -> None:
    vhost = VHost(
        "v", description="d", tags=("a", "b"), limits={"max-queues": 10}, default_queue_type="quorum", tracing=True
    )
    vhost.exchanges = {x.name: x for x in EXCHANGES}
    vhost.queues = {q.name: q for q in QUEUES}
    for binding in BINDINGS:
        vhost.add_binding(binding)
    vhost.policies = {p.name: p for p in POLICIES}
    vhost.operator_policies = {"cap": Policy("cap", ".*", "queues", 0, {"max-length": 100})}
    info, document = vhost_definitions(vhost)
    back = vhost_from_definitions("v", info, document)
    assert back == vhost
    assert (back.description, back.tags, back.limits) == ("d", ("a", "b"), {"max-queues": 10})
    assert (back.default_queue_type, back.tracing) == ("quorum", True)


def test_the_listings_a_read_only_user_reads_make_the_same_vhost() -> None:
    """As RabbitMQ 3.10.8 lists them (seen on a node): every exchange, queues with ``exclusive``, bindings
    with the default exchange's implicit ones, operator policies as policies, limits as one value. The export
    leaves out exclusive queues and the bindings to them: so does the document made of the listings."""
    vhost = VHost("v", description="d", tags=("a", "b"), limits={"max-queues": 10}, default_queue_type="classic")
    vhost.tracing = False
    vhost.exchanges = {x.name: x for x in EXCHANGES}
    vhost.queues = {q.name: q for q in QUEUES}
    for binding in BINDINGS:
        vhost.add_binding(binding)
        if binding.destination_type == "queue":  # on a broker, a binding's queue exists
            vhost.queues.setdefault(binding.destination, Queue(binding.destination))
    vhost.policies = {p.name: p for p in POLICIES}
    vhost.operator_policies = {"cap": Policy("cap", ".*", "queues", 2, {"max-length": 100})}
    info, document = vhost_definitions(vhost)
    extra = {"vhost": "v", "user_who_performed_action": "guest"}
    queues = [{**q, **extra, "exclusive": False} for q in document["queues"]]
    queues.append({"name": "amq.gen-mine", "durable": False, "auto_delete": False, "arguments": {}, "exclusive": True})
    implicit = [
        {"source": "", "destination": q["name"], "destination_type": "queue", "routing_key": q["name"], "arguments": {}}
        for q in queues
    ]
    to_exclusive = {"source": "ex", "destination": "amq.gen-mine", "destination_type": "queue", "routing_key": "k"}
    listings = {
        "queues": queues,
        "exchanges": [
            *document["exchanges"],
            {"name": "", "type": "direct", "durable": True, "auto_delete": False, "internal": False, "arguments": {}},
            {"name": "amq.topic", "type": "topic", "durable": True, "auto_delete": False, "internal": False},
        ],
        "bindings": [
            *implicit,
            *({**b, **extra, "properties_key": "x"} for b in document["bindings"]),
            {**to_exclusive, "arguments": {}},
        ],
        "policies": [{**p, "vhost": "v"} for p in document["policies"]],
        "operator-policies": [{**policy_definition(vhost.operator_policies["cap"]), "vhost": "v"}],
        "vhost-limits": [{"vhost": "v", "value": {"max-queues": 10}}],
    }
    made = definitions_from_listings("v", listings)
    assert {k: made[k] for k in ("queues", "exchanges", "bindings", "parameters")} == {
        k: document[k] for k in ("queues", "exchanges", "bindings", "parameters")
    }
    assert vhost_from_definitions("v", info, made) == vhost
    assert definitions_from_listings("v", {})["parameters"] == []  # no limits: no limits parameter


def test_a_vhost_created_without_a_default_queue_type_reads_as_classic() -> None:
    # RabbitMQ 3.10 says "undefined" for it (its queues are then classic), and tracing is off
    back = vhost_from_definitions("v", {"name": "v", "default_queue_type": "undefined"}, {})
    assert (back.default_queue_type, back.tracing) == ("classic", False)


def test_users_and_what_they_may_do_round_trip() -> None:
    user = User("u", ("management", "x"), {"max-connections": 3}, password_hash=PasswordHash("aGFzaA==", SHA512))
    back = user_from_definition(user_definition(user))
    assert back == user and back.password_hash == user.password_hash
    permission = Permission("u", "v", "^$", "^a$", ".*")
    assert permission_from_definition(permission_definition(permission)) == permission
    topics = TopicPermissions(
        "u", "v", {"a": TopicPermission("a", "^k", "^$"), "amq.topic": TopicPermission("amq.topic", ".*", "")}
    )
    assert topic_permissions_from_definitions(topic_permissions_definitions(topics)) == {("u", "v"): topics}
    parameter = GlobalParameter("doc", {"n": [1, 2]})
    assert global_parameter_from_definition(global_parameter_definition(parameter)) == parameter
