"""Differential test: ``topo.routing.route`` against the real broker.

Hypothesis draws small topologies (all four exchange types, internal exchanges, exchange-to-exchange
bindings, alternate exchanges by argument and by policy, headers bindings with every ``x-match``) and
messages (routing keys with empty words and wildcard characters, typed headers, ``CC``/``BCC``). Each
topology is imported into the test vhost with ``POST /api/definitions/{vhost}`` (every example gets its
own name prefix, so one vhost serves the whole run), each message is published over AMQP with
``mandatory`` and publisher confirms, then every queue is drained: the queues that hold a message must be
exactly the ones ``route()`` predicted, a returned message must be one predicted as dropped, and a
publish the broker refuses (unknown or internal exchange, bad ``CC``) must be predicted as refused.

``TOPO_DIFF_EXAMPLES`` sets the number of topologies (default 150 for the plain routing test, a third of
it for dead-lettering); e.g. ``TOPO_DIFF_EXAMPLES=5000 pytest tests/test_routing_broker.py``.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pika
import pika.exceptions
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topo.model import Binding, Exchange, Policy, Queue, Topology, VHost
from topo.routing import DeadLetter, RouteResult, route

EXAMPLES = int(os.environ.get("TOPO_DIFF_EXAMPLES", "150"))
_counter = itertools.count()

WORDS = ["a", "b", ""]
BINDING_WORDS = [*WORDS, "*", "#"]
HEADER_KEYS = ["h1", "h2", "x-h"]
HEADER_VALUES: list[Any] = ["1", 1, True, False, "a", b"a", ["a", "b"], [1], [2**40], [b"a"]]
# pika cannot send floats; bindings (JSON) can hold them, but no bytes
BINDING_VALUES: list[Any] = [1.0, *(v for v in HEADER_VALUES if not isinstance(v, bytes) and v != [b"a"])]
X_MATCH = [None, "all", "any", "all-with-x", "any-with-x"]


# --------------------------------------------------------------------------------------------------
# Strategies


def keys(words: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(words), min_size=0, max_size=3).map(".".join)


@st.composite
def header_tables(
    draw: st.DrawFn, extra_keys: tuple[str, ...] = (), values: list[Any] = HEADER_VALUES
) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from([*HEADER_KEYS, *extra_keys]), max_size=3, unique=True))
    return {name: draw(st.sampled_from(values)) for name in names}


@dataclass
class Case:
    topology: Topology
    prefix: str
    messages: list[tuple[str, str, dict[str, Any]]]  # (exchange, routing key, headers)


@st.composite
def cases(draw: st.DrawFn, dead_letter: bool = False) -> Case:
    p = f"e{next(_counter)}."
    vh = VHost("v")
    n_x = draw(st.integers(1, 5))
    n_q = draw(st.integers(1, 4))
    xnames = [f"{p}x{i}" for i in range(n_x)]
    qnames = [f"{p}q{i}" for i in range(n_q)]
    ghost = f"{p}missing"
    for name in xnames:
        xtype = draw(st.sampled_from(["direct", "fanout", "topic", "headers"]))
        args: dict[str, Any] = {}
        if draw(st.integers(0, 2)) == 0:
            args["alternate-exchange"] = draw(st.sampled_from([*xnames, ghost]))
        internal = draw(st.integers(0, 7)) == 0
        vh.exchanges[name] = Exchange(name, xtype, durable=False, internal=internal, arguments=args)
    for name in qnames:
        qargs: dict[str, Any] = {}
        if dead_letter and draw(st.booleans()):
            qargs["x-message-ttl"] = 0  # expires at once: every message that reaches it dies here
            if draw(st.integers(0, 4)) > 0:
                qargs["x-dead-letter-exchange"] = draw(st.sampled_from([*xnames, "", ghost]))
                if draw(st.booleans()):
                    qargs["x-dead-letter-routing-key"] = draw(st.sampled_from([*qnames, "a", "a.b", ""]))
        vh.queues[name] = Queue(name, durable=False, arguments=qargs)
    for _ in range(draw(st.integers(0, 8))):
        source = draw(st.sampled_from(xnames))
        to_queue = draw(st.integers(0, 2)) > 0
        dest = draw(st.sampled_from(qnames if to_queue else xnames))
        if vh.exchanges[source].type == "headers":
            bargs = draw(header_tables(values=BINDING_VALUES))
            kind = draw(st.sampled_from(X_MATCH))
            if kind is not None:
                bargs["x-match"] = kind
            bkey = ""
        else:
            bargs = {}
            bkey = draw(keys(BINDING_WORDS))
        vh.add_binding(Binding(source, dest, "queue" if to_queue else "exchange", bkey, bargs))
    if draw(st.integers(0, 4)) == 0:
        target = draw(st.sampled_from(xnames))
        vh.policies[f"{p}pol"] = Policy(
            f"{p}pol",
            "^" + re.escape(target) + "$",
            apply_to=draw(st.sampled_from(["exchanges", "all"])),
            definition={"alternate-exchange": draw(st.sampled_from([*xnames, ghost]))},
        )
    if dead_letter and draw(st.integers(0, 3)) == 0:
        target = draw(st.sampled_from(qnames))
        definition: dict[str, Any] = {"dead-letter-exchange": draw(st.sampled_from([*xnames, ""]))}
        if draw(st.booleans()):
            definition["dead-letter-routing-key"] = draw(st.sampled_from([*qnames, "a"]))
        vh.policies[f"{p}dl"] = Policy(
            f"{p}dl", "^" + re.escape(target) + "$", apply_to="queues", definition=definition
        )
    messages = []
    for _ in range(draw(st.integers(1, 6))):
        roll = draw(st.integers(0, 19))
        public = [x for x in xnames if not vh.exchanges[x].internal] or xnames
        if roll < 3:
            exchange = ""
        elif roll == 3 and not dead_letter:
            exchange = ghost
        elif roll == 4:
            exchange = draw(st.sampled_from(xnames))  # maybe internal: refused
        else:
            exchange = draw(st.sampled_from(public))
        if exchange == "":
            key = draw(st.sampled_from([*qnames, ghost]))
        else:
            key = draw(st.one_of(keys(WORDS), st.sampled_from(["*", "#", "a.*", "#.a"])))
        headers = draw(header_tables(extra_keys=("h3", "x-match")))
        if draw(st.integers(0, 7)) == 0:
            headers["CC"] = draw(st.lists(keys(WORDS), min_size=1, max_size=2))
        if draw(st.integers(0, 7)) == 0:
            headers["BCC"] = draw(st.lists(keys(WORDS), min_size=1, max_size=2))
        if not dead_letter and draw(st.integers(0, 30)) == 0:
            headers["CC"] = "a"  # not an array: the broker refuses the message
        messages.append((exchange, key, headers))
    return Case(Topology({"v": vh}), p, messages)


# --------------------------------------------------------------------------------------------------
# The broker side


def definitions(vh: VHost, vhost: str) -> dict[str, Any]:
    """The bulk-import document for a vhost's exchanges, queues, bindings and policies."""
    return {
        "exchanges": [
            {
                "name": x.name,
                "vhost": vhost,
                "type": x.type,
                "durable": x.durable,
                "auto_delete": x.auto_delete,
                "internal": x.internal,
                "arguments": dict(x.arguments),
            }
            for x in vh.exchanges.values()
        ],
        "queues": [
            {
                "name": q.name,
                "vhost": vhost,
                "durable": q.durable,
                "auto_delete": q.auto_delete,
                "arguments": dict(q.arguments),
            }
            for q in vh.queues.values()
        ],
        "bindings": [
            {
                "source": b.source,
                "vhost": vhost,
                "destination": b.destination,
                "destination_type": b.destination_type,
                "routing_key": b.routing_key,
                "arguments": dict(b.arguments),
            }
            for b in vh.bindings.values()
        ],
        "policies": [
            {
                "name": pol.name,
                "vhost": vhost,
                "pattern": pol.pattern,
                "apply-to": pol.apply_to,
                "priority": pol.priority,
                "definition": dict(pol.definition),
            }
            for pol in vh.policies.values()
        ],
    }


class Amqp:
    """One pika connection; a fresh confirm-mode channel whenever the broker closes one."""

    def __init__(self, url: str, vhost: str) -> None:
        params = pika.URLParameters(url)
        params.virtual_host = vhost
        self.connection = pika.BlockingConnection(params)
        self._open()

    def _open(self) -> None:
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()

    def publish(self, exchange: str, key: str, headers: dict[str, Any], body: bytes) -> str:
        """'routed', 'returned', or 'refused <code>' when the broker closed the channel."""
        try:
            self.channel.basic_publish(
                exchange, key, body, pika.BasicProperties(headers=headers or None), mandatory=True
            )
        except pika.exceptions.UnroutableError:
            return "returned"
        except pika.exceptions.ChannelClosedByBroker as exc:
            self._open()
            return f"refused {exc.reply_code}"
        return "routed"

    def drain(self, queue: str) -> list[bytes]:
        bodies = []
        while True:
            method, _props, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return bodies
            bodies.append(body)

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def amqp(broker: Any, vhost: str) -> Iterator[Amqp]:
    client = Amqp(broker.amqp_url, vhost)
    yield client
    client.close()


def apply(mgmt: httpx.Client, vhost: str, case: Case) -> None:
    response = mgmt.post(
        f"/api/definitions/{quote(vhost, safe='')}", json=definitions(case.topology.vhosts["v"], vhost)
    )
    assert response.status_code in (200, 201, 204), response.text


def cleanup(mgmt: httpx.Client, vhost: str, amqp: Amqp, case: Case) -> None:
    """Delete an example's resources, so the vhost stays small and every example costs the same."""
    vh = case.topology.vhosts["v"]
    for name in vh.policies:
        mgmt.delete(f"/api/policies/{quote(vhost, safe='')}/{quote(name, safe='')}")
    for name in vh.queues:
        amqp.channel.queue_delete(name)
    for name in vh.exchanges:
        amqp.channel.exchange_delete(name)


def expected_outcome(result: RouteResult) -> str:
    codes = {"NOT_FOUND": 404, "ACCESS_REFUSED": 403, "PRECONDITION_FAILED": 406}
    if result.refused is not None:
        return f"refused {codes[result.refused]}"
    return "returned" if result.dropped else "routed"


# --------------------------------------------------------------------------------------------------
# Tests


def test_builtin_exchanges_match_the_broker(mgmt: httpx.Client, vhost: str) -> None:
    from topo.model import BUILTIN_EXCHANGES

    listed = mgmt.get(f"/api/exchanges/{quote(vhost, safe='')}").json()
    seen = {x["name"]: (x["type"], x["internal"]) for x in listed if x["name"]}
    assert seen == {name: (x.type, x.internal) for name, x in BUILTIN_EXCHANGES.items()}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=not os.environ.get("TOPO_DIFF_RANDOM"),
)
@given(case=cases())
@pytest.mark.timeout(max(600, EXAMPLES))
def test_route_matches_broker(case: Case, mgmt: httpx.Client, vhost: str, amqp: Amqp) -> None:
    apply(mgmt, vhost, case)
    try:
        check_routes(case, amqp)
    finally:
        cleanup(mgmt, vhost, amqp, case)


def check_routes(case: Case, amqp: Amqp) -> None:
    predicted: dict[bytes, RouteResult] = {}
    for i, (exchange, key, headers) in enumerate(case.messages):
        body = f"{case.prefix}{i}".encode()
        result = route(case.topology, "v", exchange, key, headers)
        predicted[body] = result
        outcome = amqp.publish(exchange, key, headers, body)
        assert outcome == expected_outcome(result), (exchange, key, headers, result.reason)
    received: dict[bytes, set[str]] = {body: set() for body in predicted}
    for queue in case.topology.vhosts["v"].queues:
        for body in amqp.drain(queue):
            received[body].add(queue)
    for body, result in predicted.items():
        assert received[body] == set(result.queues), (body, result.exchange, result.routing_keys, result.headers)


def final_queues(result: RouteResult, expiring: set[str]) -> set[str]:
    """Where the message rests once every queue with a zero TTL has dead-lettered it."""
    out = {q for q in result.queues if q not in expiring}
    for dead in result.dead_letters or ():
        if dead.queue in expiring:
            out |= _follow(dead, expiring)
    return out


def _follow(dead: DeadLetter, expiring: set[str]) -> set[str]:
    if dead.result is None:
        return set()
    out = {q for q in dead.result.queues if q not in expiring}
    for nxt in dead.result.dead_letters or ():
        if nxt.queue in expiring:
            out |= _follow(nxt, expiring)
    return out


@settings(
    max_examples=max(EXAMPLES // 3, 10),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=not os.environ.get("TOPO_DIFF_RANDOM"),
)
@given(case=cases(dead_letter=True))
@pytest.mark.timeout(max(600, EXAMPLES))
def test_dead_letter_routes_match_broker(case: Case, mgmt: httpx.Client, vhost: str, amqp: Amqp) -> None:
    apply(mgmt, vhost, case)
    try:
        check_dead_letters(case, amqp)
    finally:
        cleanup(mgmt, vhost, amqp, case)


def check_dead_letters(case: Case, amqp: Amqp) -> None:
    vh = case.topology.vhosts["v"]
    expiring = {q.name for q in vh.queues.values() if "x-message-ttl" in q.arguments}
    predicted: dict[bytes, set[str]] = {}
    for i, (exchange, key, headers) in enumerate(case.messages):
        body = f"{case.prefix}{i}".encode()
        result = route(case.topology, "v", exchange, key, headers, dead_letter=True)
        outcome = amqp.publish(exchange, key, headers, body)
        if outcome.startswith("refused"):
            assert outcome == expected_outcome(result)
            continue
        predicted[body] = final_queues(result, expiring)
    sinks = [q for q in vh.queues if q not in expiring]
    received: dict[bytes, set[str]] = {body: set() for body in predicted}
    want = sum(len(v) for v in predicted.values())
    deadline = time.monotonic() + 0.25
    got = 0
    while True:  # dead-lettering is asynchronous: collect until the expected count and a quiet moment
        for queue in sinks:
            for body in amqp.drain(queue):
                received[body].add(queue)
                got += 1
        if time.monotonic() > deadline and got >= want:
            break
        if time.monotonic() > deadline + 2:
            break
        time.sleep(0.02)
    for body, queues in predicted.items():
        assert received[body] == queues, body
