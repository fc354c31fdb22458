"""Offline routing: each RabbitMQ rule pinned by a small case (the broker itself is checked in
tests/test_routing_broker.py)."""

from __future__ import annotations

from typing import Any

import pytest
from support import build_vhost

from topo.errors import UsageError
from topo.model import Binding, Exchange, Policy, Queue, Topology
from topo.routing import headers_match, route, split_topic_key, topic_matches


def topo_of(
    exchanges: list[Exchange],
    queues: list[str | Queue],
    bindings: list[Binding],
    policies: list[Policy] | None = None,
) -> Topology:
    items = [Queue(q) if isinstance(q, str) else q for q in queues]
    return Topology({"v": build_vhost("v", *exchanges, *items, *bindings, policies=tuple(policies or ()))})


def qb(source: str, queue: str, key: str = "", **args: Any) -> Binding:
    return Binding(source, queue, "queue", key, args)


def xb(source: str, dest: str, key: str = "", **args: Any) -> Binding:
    return Binding(source, dest, "exchange", key, args)


@pytest.mark.parametrize(
    ("key", "words"),
    [("", ()), ("a", ("a",)), ("a.b", ("a", "b")), ("a.", ("a", "")), (".", ("", "")), ("..", ("", "", ""))],
)
def test_split_topic_key(key: str, words: tuple[str, ...]) -> None:
    assert split_topic_key(key) == words


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("#", "", True),
        ("#", "a.b.c", True),
        ("#", ".", True),
        ("*", "", False),
        ("*", "a", True),
        ("*", "a.b", False),
        ("*", ".", False),
        ("*.*", ".", True),
        ("", "", True),
        ("", "a", False),
        ("a.#", "a", True),
        ("a.#", "a.b.c", True),
        ("a.#", "ab", False),
        ("#.a", "a", True),
        ("#.a", "x.y.a", True),
        ("#.a.#", "a", True),
        ("a.*.c", "a..c", True),
        ("a.*.c", "a.c", False),
        ("a.#.c", "a.c", True),
        ("a.#.c", "a.b.b.c", True),
        ("#.#", "", True),
        ("#.*", "", False),
        ("#.*", "a", True),
        ("*.#", "a", True),
        ("a.", "a.", True),
        ("a.", "a", False),
        ("a.*", "a.", True),
        ("*", "*", True),
        ("a", "*", False),
        ("#", "#", True),
        ("sensor.#", "sensor.temperature.line1", True),
    ],
)
def test_topic_matches(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


@pytest.mark.parametrize(
    ("args", "headers", "expected"),
    [
        ({"x-match": "all", "a": "1"}, {"a": "1"}, True),
        ({"x-match": "all", "a": "1"}, {"a": 1}, False),  # string vs number
        ({"x-match": "all", "a": 1}, {"a": 1.0}, True),  # Erlang ==
        ({"x-match": "all", "a": 1}, {"a": True}, False),  # a bool is not 1
        ({"x-match": "all", "a": True}, {"a": True}, True),
        ({"x-match": "all", "a": "1", "b": "2"}, {"a": "1"}, False),
        ({"x-match": "any", "a": "1", "b": "2"}, {"a": "1"}, True),
        ({"x-match": "any", "a": "1"}, {}, False),
        ({"x-match": "all"}, {}, True),  # nothing to check: everything matches
        ({"x-match": "any"}, {"a": 1}, False),  # nothing to check: nothing matches
        ({}, {}, True),  # no x-match means all
        ({"x-match": "bogus", "a": 1}, {"a": 1}, True),  # unknown kinds read as all
        ({"x-match": "all", "x-a": "1"}, {}, True),  # x- keys are ignored
        ({"x-match": "any", "x-a": "1", "b": 2}, {"x-a": "1"}, False),
        ({"x-match": "all-with-x", "x-a": "1"}, {}, False),
        ({"x-match": "all-with-x", "x-a": "1"}, {"x-a": "1"}, True),
        ({"x-match": "any-with-x", "x-a": "1", "b": 2}, {"x-a": "1"}, True),
        ({"x-match": "all-with-x"}, {"x-match": "any"}, True),  # x-match itself never counts
        ({"x-match": "all", "a": None}, {"a": "anything"}, True),  # void: presence only
        ({"x-match": "all", "a": None}, {}, False),
        ({"x-match": "all", "a": "x"}, {"a": None}, False),
        ({"x-match": "all", "a": ["a", "b"]}, {"a": ["a", "b"]}, True),
        ({"x-match": "all", "a": [1]}, {"a": [1.0]}, False),  # nested values keep their types
        ({"x-match": "all", "a": [1]}, {"a": [1]}, False),  # clients send small ints as 32-bit, JSON as 64
        ({"x-match": "all", "a": [2**40]}, {"a": [2**40]}, True),
        ({"x-match": "all", "a": ["x"]}, {"a": [b"x"]}, False),  # a byte array is not a longstr inside
        ({"x-match": "all", "a": "é"}, {"a": "é".encode()}, True),
    ],
)
def test_headers_match(args: dict[str, Any], headers: dict[str, Any], expected: bool) -> None:
    assert headers_match(args, headers) is expected


def test_direct_fanout_topic_headers() -> None:
    t = topo_of(
        [Exchange("d", "direct"), Exchange("f", "fanout"), Exchange("t", "topic"), Exchange("h", "headers")],
        ["q1", "q2", "q3"],
        [
            qb("d", "q1", "k"),
            qb("d", "q2", "other"),
            qb("f", "q1", "ignored"),
            qb("f", "q2"),
            qb("t", "q1", "a.*"),
            qb("t", "q2", "#"),
            qb("h", "q3", **{"x-match": "any", "kind": "pdf"}),
        ],
    )
    assert route(t, "v", "d", "k").queues == ("q1",)
    assert route(t, "v", "f", "whatever").queues == ("q1", "q2")
    assert route(t, "v", "t", "a.b").queues == ("q1", "q2")
    assert route(t, "v", "t", "").queues == ("q2",)
    assert route(t, "v", "h", "", {"kind": "pdf"}).queues == ("q3",)
    assert route(t, "v", "h", "", {"kind": "doc"}).dropped


def test_drop_reasons() -> None:
    t = topo_of(
        [Exchange("d", "direct"), Exchange("i", "fanout", internal=True), Exchange("f", "fanout")],
        ["q"],
        [qb("d", "q", "k"), qb("i", "q")],
    )
    r = route(t, "v", "d", "nope")
    assert r.dropped and r.queues == ()
    assert r.reason == "no binding of exchange 'd' matches routing key 'nope'"
    assert route(t, "v", "x", "k").reason == "exchange 'x' is not declared"
    assert route(t, "v", "i", "k").reason == "exchange 'i' is internal: publishers cannot publish to it"
    assert route(t, "v", "f", "k").reason == "exchange 'f' has no bindings"
    assert route(t, "v", "d", "k").reason is None


def test_unknown_vhost_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        route(topo_of([], [], []), "nope", "x", "k")


def test_default_exchange_routes_by_queue_name() -> None:
    t = topo_of([], ["orders"], [])
    r = route(t, "v", "", "orders")
    assert r.queues == ("orders",)
    assert r.paths[0].hops[0].kind == "default-exchange"
    r = route(t, "v", "", "missing")
    assert r.dropped
    assert "no queue named 'missing'" in (r.reason or "")


def test_builtin_amq_exchanges_exist() -> None:
    t = topo_of([], ["q"], [qb("amq.topic", "q", "a.#")])
    assert route(t, "v", "amq.topic", "a.b").queues == ("q",)
    assert route(t, "v", "amq.rabbitmq.trace", "a").reason == (
        "exchange 'amq.rabbitmq.trace' is internal: publishers cannot publish to it"
    )


def test_exchange_to_exchange_and_one_delivery_per_queue() -> None:
    t = topo_of(
        [Exchange("a", "fanout"), Exchange("b", "fanout"), Exchange("c", "fanout", internal=True)],
        ["q"],
        [xb("a", "b"), xb("a", "c"), qb("b", "q"), qb("c", "q"), xb("b", "a"), xb("c", "c")],
    )
    r = route(t, "v", "a", "k")
    assert r.queues == ("q",)
    assert len(r.paths) == 2  # two ways in, one delivery
    assert {p.describe() for p in r.paths} == {'a -[""]-> b -[""]-> q', 'a -[""]-> c -[""]-> q'}
    assert r.exchanges == ("a", "b", "c")


def test_alternate_exchange_only_when_nothing_matches() -> None:
    t = topo_of(
        [
            Exchange("x", "direct", arguments={"alternate-exchange": "ae"}),
            Exchange("ae", "fanout"),
            Exchange("sink", "direct"),
        ],
        ["q", "unrouted"],
        [qb("x", "q", "k"), xb("x", "sink", "to-sink"), qb("ae", "unrouted")],
    )
    assert route(t, "v", "x", "k").queues == ("q",)
    r = route(t, "v", "x", "other")
    assert r.queues == ("unrouted",)
    assert r.paths[0].hops[0].kind == "alternate-exchange"
    assert r.paths[0].describe() == 'x =[alternate exchange]=> ae -[""]-> unrouted'
    # a match to an exchange that routes nowhere still counts as a match: no alternate exchange
    r = route(t, "v", "x", "to-sink")
    assert r.dropped
    assert r.reason == (
        "exchange 'x' sends it only to exchange 'sink'; no binding of exchange 'sink' matches routing key 'to-sink'"
    )


def test_alternate_exchange_cycles_end() -> None:
    t = topo_of(
        [
            Exchange("a", "direct", arguments={"alternate-exchange": "b"}),
            Exchange("b", "direct", arguments={"alternate-exchange": "a"}),
        ],
        ["q"],
        [qb("b", "q", "yes")],
    )
    assert route(t, "v", "a", "yes").queues == ("q",)
    r = route(t, "v", "a", "no")
    assert r.dropped
    assert r.reason == (
        "no binding of exchange 'a' matches routing key 'no', so it goes to the alternate exchange 'b'; "
        "no binding of exchange 'b' matches routing key 'no'; its alternate exchange 'a' was visited already"
    )


def test_alternate_exchange_missing_and_from_policy() -> None:
    t = topo_of(
        [Exchange("a", "direct", arguments={"alternate-exchange": "gone"}), Exchange("p", "direct")],
        ["q"],
        [qb("ae", "q")],
        [Policy("ae", "^p$", apply_to="exchanges", definition={"alternate-exchange": "a"})],
    )
    r = route(t, "v", "a", "k")
    assert (
        r.reason == "no binding of exchange 'a' matches routing key 'k'; its alternate exchange 'gone' is not declared"
    )
    assert route(t, "v", "p", "k").exchanges == ("p", "a")


def test_cc_and_bcc_add_routing_keys() -> None:
    t = topo_of(
        [Exchange("d", "direct"), Exchange("h", "headers")],
        ["q1", "q2", "q3"],
        [
            qb("d", "q1", "k1"),
            qb("d", "q2", "k2"),
            qb("d", "q3", "k3"),
            qb("h", "q3", **{"BCC": ["k3"]}),
        ],
    )
    r = route(t, "v", "d", "k1", {"CC": ["k2"], "BCC": ["k3"]})
    assert r.queues == ("q1", "q2", "q3")
    assert r.routing_keys == ("k1", "k2", "k3")
    assert route(t, "v", "h", "", {"BCC": ["k3"]}).dropped  # BCC is removed before routing
    assert "must be an array" in (route(t, "v", "d", "k1", {"CC": "k2"}).reason or "")


def test_dead_letter_following() -> None:
    t = topo_of(
        [Exchange("work", "direct"), Exchange("dlx", "direct")],
        [
            Queue("orders", arguments={"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "failed"}),
            Queue("keeps-key", arguments={"x-dead-letter-exchange": "dlx"}),
            Queue("failed"),
            Queue("plain"),
        ],
        [
            qb("work", "orders", "o"),
            qb("work", "keeps-key", "o"),
            qb("work", "plain", "o"),
            qb("dlx", "failed", "failed"),
        ],
    )
    r = route(t, "v", "work", "o", dead_letter=True)
    assert r.queues == ("keeps-key", "orders", "plain")
    assert r.dead_letters is not None
    by_queue = {d.queue: d for d in r.dead_letters}
    assert by_queue["orders"].exchange == "dlx"
    assert by_queue["orders"].routing_keys == ("failed",)
    assert by_queue["orders"].result is not None and by_queue["orders"].result.queues == ("failed",)
    kk = by_queue["keeps-key"]
    assert kk.routing_keys == ("o",) and kk.result is not None and kk.result.dropped
    assert kk.result.reason == "no binding of exchange 'dlx' matches routing key 'o'"
    assert by_queue["plain"].exchange is None
    assert route(t, "v", "work", "o").dead_letters is None


def test_dead_letter_to_default_exchange_and_cycles() -> None:
    t = topo_of(
        [],
        [
            Queue("a", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "b"}),
            Queue("b", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "a"}),
            Queue("c", arguments={"x-dead-letter-exchange": "missing"}),
        ],
        [],
    )
    r = route(t, "v", "", "a", dead_letter=True)
    assert r.dead_letters is not None
    (first,) = r.dead_letters
    assert first.result is not None and first.result.queues == ("b",)
    assert first.result.dead_letters is not None
    (second,) = first.result.dead_letters
    assert second.cycle == ("a", "b", "a")
    r = route(t, "v", "", "c", dead_letter=True)
    assert r.dead_letters is not None
    assert r.dead_letters[0].note == "dead-letter exchange 'missing' is not declared: the message is discarded"


def test_dead_letter_exchange_from_policy() -> None:
    t = topo_of(
        [Exchange("dlx", "fanout")],
        ["q", "dead"],
        [qb("dlx", "dead")],
        [Policy("dl", "^q$", apply_to="queues", definition={"dead-letter-exchange": "dlx"})],
    )
    r = route(t, "v", "", "q", dead_letter=True)
    assert r.dead_letters is not None and r.dead_letters[0].exchange == "dlx"


def test_result_is_json_serialisable() -> None:
    import json

    t = topo_of([Exchange("t", "topic")], ["q"], [qb("t", "q", "#")])
    data = route(t, "v", "t", "a", {"h": b"bytes"}, dead_letter=True).to_json()
    assert json.loads(json.dumps(data))["queues"] == ["q"]


def test_a_delayed_message_exchange_routes_as_its_delayed_type() -> None:
    t = topo_of(
        [Exchange("later", "x-delayed-message", arguments={"x-delayed-type": "topic"})],
        ["a", "b"],
        [qb("later", "a", "order.*"), qb("later", "b", "user.#")],
    )
    result = route(t, "v", "later", "order.new")
    assert result.queues == ("a",)
    assert any("routes as a topic exchange, after the message's x-delay" in n for n in result.notes)
    dropped = route(t, "v", "later", "invoice.new")
    assert dropped.dropped and "no binding of exchange 'later' matches routing key 'invoice.new'" in (
        dropped.reason or ""
    )


def test_a_plugin_exchange_may_take_any_of_its_bindings() -> None:
    t = topo_of(
        [Exchange("hash", "x-consistent-hash"), Exchange("lonely", "x-random")],
        ["a", "b"],
        [qb("hash", "a", "1"), qb("hash", "b", "2")],
    )
    result = route(t, "v", "hash", "order-42")
    assert result.queues == ("a", "b")
    assert any("plugin type 'x-consistent-hash'" in n and "possible route" in n for n in result.notes)
    dropped = route(t, "v", "lonely", "k")
    assert dropped.dropped and dropped.reason == "exchange 'lonely' has no bindings"
