"""Every check of the loader, from a table: a vhost body, the one problem it gives and where.

The line a problem is expected on is marked in the YAML with ``# <-``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from topo.errors import Problem, ValidationError
from topo.loader import load
from topo.model import Topology, canonical_json

HEAD = "version: 1\nvhosts:\n  v:\n"


def write(tmp_path: Path, body: str) -> Path:
    file = tmp_path / "t.yaml"
    file.write_text(HEAD + body, encoding="utf-8")
    return file


def load_body(tmp_path: Path, body: str) -> Topology:
    return load(write(tmp_path, body), environ={})


@dataclass(frozen=True)
class Case:
    id: str
    body: str
    path: str
    message: str  # the whole message, or its start when it ends with "..."
    hint: str | None = None  # a part of the hint; None: no hint expected to be checked


CASES = [
    # -- references ---------------------------------------------------------------------------------
    Case(
        "binding-to-undeclared-exchange",
        "    queues:\n      q:\n        bindings:\n          - {exchange: events, routing-key: a}   # <-\n",
        'vhosts.v.queues.q.bindings[events "a"]',
        "exchange 'events' is not declared in vhost 'v'",
        "declare it under `exchanges:`",
    ),
    Case(
        "e2e-binding-to-undeclared-exchange",
        "    exchanges:\n      audit:\n        type: fanout\n        bindings: [{exchange: nowhere}]   # <-\n",
        'vhosts.v.exchanges.audit.bindings[nowhere ""]',
        "exchange 'nowhere' is not declared in vhost 'v'",
    ),
    Case(
        "default-exchange-as-binding-source",
        "    queues:\n      q:\n        bindings: [{exchange: '', routing-key: q}]   # <-\n",
        'vhosts.v.queues.q.bindings[(default) "q"]',
        "the default exchange cannot be bound to: it routes to the queue named by the key",
        "routing key",
    ),
    Case(
        "dead-letter-exchange-not-declared",
        "    queues:\n      q:\n        max-length: 1\n        dead-letter-exchange: dlx   # <-\n",
        "vhosts.v.queues.q.dead-letter-exchange",
        "dead-letter exchange 'dlx' is not declared in vhost 'v'",
        "dead letters are dropped",
    ),
    Case(
        "dead-letter-exchange-under-arguments-not-declared",
        "    queues:\n      q:\n        arguments:\n          x-dead-letter-exchange: dlx   # <-\n",
        "vhosts.v.queues.q.arguments.x-dead-letter-exchange",
        "dead-letter exchange 'dlx' is not declared in vhost 'v'",
    ),
    Case(
        "alternate-exchange-not-declared",
        "    exchanges:\n      e:\n        type: direct\n        alternate-exchange: unrouted   # <-\n",
        "vhosts.v.exchanges.e.alternate-exchange",
        "alternate exchange 'unrouted' is not declared in vhost 'v'",
        "unroutable messages are dropped",
    ),
    Case(
        "alternate-exchange-under-arguments-not-declared",
        "    exchanges:\n      e:\n        type: direct\n        arguments: {alternate-exchange: unrouted}   # <-\n",
        "vhosts.v.exchanges.e.arguments.alternate-exchange",
        "alternate exchange 'unrouted' is not declared in vhost 'v'",
    ),
    Case(
        "alternate-exchange-under-arguments-not-a-name",
        "    exchanges:\n      e:\n        type: direct\n        arguments: {alternate-exchange: 5}   # <-\n",
        "vhosts.v.exchanges.e.arguments.alternate-exchange",
        "expected an exchange name, got 5",
    ),
    Case(
        "alternate-exchange-twice",
        "    exchanges:\n      u: {type: fanout}\n      e:\n        type: direct\n        alternate-exchange: u\n"
        "        arguments: {alternate-exchange: u}   # <-\n",
        "vhosts.v.exchanges.e.arguments.alternate-exchange",
        "alternate-exchange is given twice (as a key and under arguments)",
    ),
    Case(
        "exchange-in-another-vhost-does-not-count",
        "    queues:\n      q: {bindings: [{exchange: e}]}   # <-\n  w:\n    exchanges:\n      e: {type: direct}\n",
        'vhosts.v.queues.q.bindings[e ""]',
        "exchange 'e' is not declared in vhost 'v'",
    ),
    # -- arguments and queue types ------------------------------------------------------------------
    Case(
        "classic-only-argument-on-quorum",
        "    queues:\n      q:\n        type: quorum\n        max-priority: 10   # <-\n",
        "vhosts.v.queues.q.max-priority",
        "max-priority does not apply to a quorum queue (only to classic queues)",
        "remove it or change the queue type",
    ),
    Case(
        "classic-only-argument-on-quorum-under-arguments",
        "    queues:\n      q:\n        type: quorum\n        arguments: {x-max-priority: 10}   # <-\n",
        "vhosts.v.queues.q.arguments.x-max-priority",
        "max-priority does not apply to a quorum queue (only to classic queues)",
    ),
    Case(
        "quorum-only-argument-on-classic",
        "    queues:\n      q:\n        delivery-limit: 5   # <-\n",
        "vhosts.v.queues.q.delivery-limit",
        "delivery-limit does not apply to a classic queue (only to quorum queues)",
    ),
    Case(
        "quorum-only-argument-on-stream",
        "    queues:\n      q:\n        type: stream\n        dead-letter-strategy: at-least-once   # <-\n",
        "vhosts.v.queues.q.dead-letter-strategy",
        "dead-letter-strategy does not apply to a stream queue (only to quorum queues)",
    ),
    Case(
        "retry-on-a-stream",
        "    queues:\n      q:\n        type: stream\n        retry: {delays: [1s]}   # <-\n",
        "vhosts.v.queues.q.retry",
        "retry does not apply to a stream: a stream keeps every message and delivers nothing again",
        "reads the stream again from its offset",
    ),
    Case(
        "stream-only-argument-on-classic",
        "    queues:\n      q:\n        max-age: 7D   # <-\n",
        "vhosts.v.queues.q.max-age",
        "max-age does not apply to a classic queue (only to stream queues)",
    ),
    Case(
        "queue-type-from-x-queue-type-is-used-for-the-check",
        "    queues:\n      q:\n        arguments: {x-queue-type: quorum}\n        max-priority: 3   # <-\n",
        "vhosts.v.queues.q.max-priority",
        "max-priority does not apply to a quorum queue (only to classic queues)",
    ),
    Case(
        "same-argument-twice",
        "    queues:\n      q:\n        message-ttl: 60s\n        arguments:\n          x-message-ttl: 60000   # <-\n",
        "vhosts.v.queues.q.arguments.x-message-ttl",
        "x-message-ttl is given twice: as `message-ttl:` and under `arguments:`",
        "keep only `message-ttl:`",
    ),
    Case(
        "x-queue-type-and-type",
        "    queues:\n      q:\n        type: quorum\n        arguments: {x-queue-type: quorum}   # <-\n",
        "vhosts.v.queues.q.arguments.x-queue-type",
        "x-queue-type is given twice: as `type:` and under `arguments:`",
        "keep only `type:`",
    ),
    Case(
        "x-queue-type-unknown",
        "    queues:\n      q:\n        arguments: {x-queue-type: lazy}   # <-\n",
        "vhosts.v.queues.q.arguments.x-queue-type",
        "unknown queue type 'lazy'",
        "classic, quorum, stream",
    ),
    Case(
        "wrong-typed-known-argument-under-arguments",
        '    queues:\n      q:\n        arguments:\n          x-message-ttl: "60000"   # <-\n',
        "vhosts.v.queues.q.arguments.x-message-ttl",
        "expected a duration (milliseconds or e.g. 500ms, 30s, 5m, 24h, 7d), got '60000'",
        "without quotes",
    ),
    Case(
        "wrong-typed-integer-under-arguments",
        '    queues:\n      q:\n        arguments: {x-max-length: "100"}   # <-\n',
        "vhosts.v.queues.q.arguments.x-max-length",
        "expected an integer, got '100'",
        'without quotes: RabbitMQ compares argument types, and "100" is not 100',
    ),
    Case(
        "wrong-typed-key",
        '    queues:\n      q:\n        max-length: "100"   # <-\n',
        "vhosts.v.queues.q.max-length",
        "expected an integer, got the string '100'",
        "without quotes",
    ),
    Case(
        "bool-is-not-an-integer",
        "    queues:\n      q:\n        arguments: {x-max-length: true}   # <-\n",
        "vhosts.v.queues.q.arguments.x-max-length",
        "expected an integer, got True",
    ),
    Case(
        "enum-under-arguments",
        "    queues:\n      q:\n        arguments: {x-overflow: drop}   # <-\n",
        "vhosts.v.queues.q.arguments.x-overflow",
        "expected one of 'drop-head', 'reject-publish', 'reject-publish-dlx', got 'drop'",
    ),
    Case(
        "minimum-of-a-duration",
        "    queues:\n      q:\n        expires: 0   # <-\n",
        "vhosts.v.queues.q.expires",
        "must be at least 1, got 0",
    ),
    Case(
        "minimum-of-a-duration-under-arguments",
        "    queues:\n      q:\n        arguments: {x-expires: 0}   # <-\n",
        "vhosts.v.queues.q.arguments.x-expires",
        "must be at least 1, got 0",
    ),
    Case(
        "maximum-of-an-integer",
        "    queues:\n      q:\n        max-priority: 256   # <-\n",
        "vhosts.v.queues.q.max-priority",
        "must be at most 255, got 256",
    ),
    Case(
        "max-age-form",
        "    queues:\n      s:\n        type: stream\n        max-age: 7days   # <-\n",
        "vhosts.v.queues.s.max-age",
        "expected stream retention in RabbitMQ's max-age form: ...",
    ),
    Case(
        "max-age-form-under-arguments",
        "    queues:\n      s:\n        type: stream\n        arguments: {x-max-age: 0D}   # <-\n",
        "vhosts.v.queues.s.arguments.x-max-age",
        "expected stream retention in RabbitMQ's max-age form: ...",
    ),
    Case(
        "unit-typo",
        "    queues:\n      q:\n        message-ttl: 5 min   # <-\n",
        "vhosts.v.queues.q.message-ttl",
        "expected a duration: milliseconds, or a string such as 500ms, 30s, 5m, 24h, 7d, got the string '5 min'",
    ),
    Case(
        "size-typo",
        "    queues:\n      q:\n        max-length-bytes: 10mb   # <-\n",
        "vhosts.v.queues.q.max-length-bytes",
        "expected a size: bytes, or a string such as 512B, 10KB, 10MB, 1GB, 10KiB, 10MiB, 1GiB, got the string '10mb'",
    ),
    # -- queue properties ---------------------------------------------------------------------------
    Case(
        "quorum-not-durable",
        "    queues:\n      q:\n        type: quorum\n        durable: false   # <-\n",
        "vhosts.v.queues.q.durable",
        "quorum queues are always durable",
        "remove `durable: false`",
    ),
    Case(
        "stream-not-durable",
        "    queues:\n      q:\n        type: stream\n        durable: false   # <-\n",
        "vhosts.v.queues.q.durable",
        "stream queues are always durable",
    ),
    Case(
        "quorum-auto-delete",
        "    queues:\n      q:\n        type: quorum\n        auto-delete: true   # <-\n",
        "vhosts.v.queues.q.auto-delete",
        "quorum queues cannot be auto-delete",
    ),
    Case(
        "exclusive",
        "    queues:\n      q:\n        exclusive: true   # <-\n",
        "vhosts.v.queues.q.exclusive",
        "unknown key 'exclusive'",
        "declare them in the application",
    ),
    # -- names --------------------------------------------------------------------------------------
    Case(
        "amq-queue-name",
        "    queues:\n      amq.jobs: {}   # <-\n",
        'vhosts.v.queues["amq.jobs"]',
        "queue names starting with 'amq.' are reserved for the broker",
        "choose another name",
    ),
    Case(
        "amq-exchange-name",
        "    exchanges:\n      amq.events: {type: topic}   # <-\n",
        'vhosts.v.exchanges["amq.events"]',
        "exchange names starting with 'amq.' are reserved for the broker",
    ),
    Case(
        "queue-name-over-255-bytes",
        "    queues:\n      " + "é" * 128 + ": {}   # <-\n",  # 128 characters, 256 bytes
        'vhosts.v.queues["' + "é" * 128 + '"]',
        "queue name is longer than 255 bytes of UTF-8",
    ),
    Case(
        "exchange-name-over-255-bytes",
        "    exchanges:\n      " + "x" * 256 + ": {type: direct}   # <-\n",
        "vhosts.v.exchanges." + "x" * 256,
        "exchange name is longer than 255 bytes of UTF-8",
    ),
    # -- AMQP short strings: at most 255 bytes of UTF-8 -------------------------------------------------
    Case(
        "routing-key-over-255-bytes",
        "    exchanges:\n      x: {type: topic}\n    queues:\n"
        "      q:\n        bindings: [{exchange: x, routing-key: " + "é" * 128 + "}]   # <-\n",
        "vhosts.v.queues.q.bindings[0].routing-key",
        "the routing key is 256 bytes of UTF-8; AMQP 0-9-1 carries at most 255 (a short string)",
        "no client can publish",
    ),
    Case(
        "dead-letter-routing-key-over-255-bytes",
        "    exchanges:\n      dlx: {type: direct}\n    queues:\n"
        "      q:\n        dead-letter-exchange: dlx\n        dead-letter-routing-key: " + "k" * 300 + "   # <-\n",
        "vhosts.v.queues.q.dead-letter-routing-key",
        "the dead-letter routing key is 300 bytes of UTF-8; AMQP 0-9-1 carries at most 255 (a short string)",
    ),
    Case(
        "dead-letter-routing-key-under-arguments-over-255-bytes",
        "    queues:\n      q:\n        arguments: {x-dead-letter-routing-key: " + "k" * 256 + "}   # <-\n",
        "vhosts.v.queues.q.arguments.x-dead-letter-routing-key",
        "the dead-letter routing key is 256 bytes of UTF-8; AMQP 0-9-1 carries at most 255 (a short string)",
    ),
    Case(
        "header-name-over-255-bytes",
        "    exchanges:\n      h: {type: headers}\n    queues:\n"
        "      q:\n        bindings: [{exchange: h, headers: {" + "h" * 256 + ": pdf}}]   # <-\n",
        "vhosts.v.queues.q.bindings[0].headers." + "h" * 256,
        "the header name is 256 bytes of UTF-8; AMQP 0-9-1 carries at most 255 (a short string)",
    ),
    Case(
        "binding-argument-name-over-255-bytes",
        "    exchanges:\n      h: {type: headers}\n    queues:\n"
        "      q:\n        bindings: [{exchange: h, arguments: {" + "a" * 256 + ": 1}}]   # <-\n",
        "vhosts.v.queues.q.bindings[0].arguments." + "a" * 256,
        "the argument name is 256 bytes of UTF-8; AMQP 0-9-1 carries at most 255 (a short string)",
    ),
    Case(
        "queue-argument-name-over-255-bytes",
        "    queues:\n      q:\n        arguments: {x-" + "a" * 254 + ": 1}   # <-\n",
        "vhosts.v.queues.q.arguments.x-" + "a" * 254,
        "the argument name is 256 bytes of UTF-8; AMQP 0-9-1 carries at most 255 (a short string)",
    ),
    Case(
        "exchange-argument-name-over-255-bytes",
        "    exchanges:\n      x:\n        type: topic\n        arguments: {" + "a" * 256 + ": 1}   # <-\n",
        "vhosts.v.exchanges.x.arguments." + "a" * 256,
        "the argument name is 256 bytes of UTF-8; AMQP 0-9-1 carries at most 255 (a short string)",
    ),
    Case(
        "retry-queue-name-over-255-bytes",
        "    queues:\n      " + "q" * 250 + ":\n        retry: {delays: [1s]}   # <-\n",
        "vhosts.v.queues." + "q" * 250 + ".retry",
        "the retry queue name " + repr("q" * 250 + ".retry.1") + " is longer than 255 bytes of UTF-8...",
        "shorten the queue's name",
    ),
    Case(
        "empty-queue-name",
        "    queues:\n      '': {}   # <-\n",
        'vhosts.v.queues[""]',
        "a queue needs a non-empty name",
    ),
    Case(
        "empty-exchange-name",
        "    exchanges:\n      '': {type: direct}   # <-\n",
        'vhosts.v.exchanges[""]',
        "an exchange needs a non-empty name",
    ),
    # -- bindings -----------------------------------------------------------------------------------
    Case(
        "same-binding-twice",
        "    queues:\n      q:\n        bindings:\n          - {exchange: amq.topic, routing-key: a}\n"
        "          - {exchange: amq.topic, routing-key: a}   # <-\n",
        "vhosts.v.queues.q.bindings[1]",
        "the same binding is declared twice (first at ...",
    ),
    Case(
        "x-match-twice",
        "    queues:\n      q:\n        bindings:\n"
        "          - {exchange: amq.headers, match: any, arguments: {x-match: all}}   # <-\n",
        "vhosts.v.queues.q.bindings[0]",
        "x-match is given twice (`match:` and under `arguments:`)",
    ),
    Case(
        "binding-without-exchange",
        "    queues:\n      q:\n        bindings:\n          - {routing-key: a}   # <-\n",
        "vhosts.v.queues.q.bindings[0]",
        "missing required key 'exchange'",
    ),
    Case(
        "binding-match-value",
        "    queues:\n      q:\n        bindings:\n          - {exchange: amq.headers, match: some}   # <-\n",
        "vhosts.v.queues.q.bindings[0].match",
        "expected one of 'all', 'any', 'all-with-x', 'any-with-x', got the string 'some'",
    ),
    # -- policies -----------------------------------------------------------------------------------
    Case(
        "invalid-policy-regex",
        "    policies:\n      p:\n        pattern: '^(tmp'   # <-\n        definition: {max-length: 1}\n",
        "vhosts.v.policies.p.pattern",
        "invalid regular expression: missing ), unterminated subpattern at position 1",
    ),
    Case(
        "unknown-policy-key-close-to-a-known-one",
        "    policies:\n      p:\n        pattern: .\n        definition:\n          max-lenght: 1   # <-\n",
        "vhosts.v.policies.p.definition.max-lenght",
        "unknown key 'max-lenght'",
        "did you mean 'max-length'?",
    ),
    Case(
        "unknown-policy-key",
        "    policies:\n      p:\n        pattern: .\n        definition:\n          colour: blue   # <-\n",
        "vhosts.v.policies.p.definition.colour",
        "unknown key 'colour'",
        "RabbitMQ rejects policy keys it does not know",
    ),
    Case(
        "policy-value-type",
        "    policies:\n      p:\n        pattern: .\n        definition:\n          max-length: '1000'   # <-\n",
        "vhosts.v.policies.p.definition.max-length",
        "expected an integer, got the string '1000'",
        "without quotes",
    ),
    Case(
        "operator-policy-key-not-allowed",
        "    operator-policies:\n      p:\n        pattern: .\n        definition:\n"
        "          dead-letter-exchange: dlx   # <-\n",
        "vhosts.v.operator-policies.p.definition.dead-letter-exchange",
        "'dead-letter-exchange' is not allowed in an operator policy",
        "accepts only delivery-limit, expires, ",
    ),
    Case(
        "empty-policy-definition",
        "    policies:\n      p:\n        pattern: .\n        definition: {}   # <-\n",
        "vhosts.v.policies.p.definition",
        "must not be empty",
    ),
    Case(
        "policy-without-pattern",
        "    policies:\n      p:   # <-\n        definition: {max-length: 1}\n",
        "vhosts.v.policies.p",
        "missing required key 'pattern'",
    ),
    Case(
        "policy-apply-to",
        "    policies:\n      p:\n        pattern: .\n        apply-to: queue   # <-\n"
        "        definition: {max-length: 1}\n",
        "vhosts.v.policies.p.apply-to",
        "expected one of 'all', 'queues', 'exchanges', 'classic_queues', 'quorum_queues', 'streams', ...",
    ),
    # -- keys ---------------------------------------------------------------------------------------
    Case(
        "unknown-queue-key-did-you-mean",
        "    queues:\n      q:\n        mesage-ttl: 5s   # <-\n",
        "vhosts.v.queues.q.mesage-ttl",
        "unknown key 'mesage-ttl'",
        "did you mean 'message-ttl'?",
    ),
    Case(
        "unknown-exchange-key-did-you-mean",
        "    exchanges:\n      e:\n        type: direct\n        auto_delete: true   # <-\n",
        "vhosts.v.exchanges.e.auto_delete",
        "unknown key 'auto_delete'",
        "did you mean 'auto-delete'?",
    ),
    Case(
        "unknown-vhost-key",
        "    queue:   # <-\n      q: {}\n",
        "vhosts.v.queue",
        "unknown key 'queue'",
        "did you mean 'queues'?",
    ),
    Case(
        "x-argument-as-a-queue-key",
        "    queues:\n      q:\n        x-message-ttl: 5000   # <-\n",
        "vhosts.v.queues.q.x-message-ttl",
        "unknown key 'x-message-ttl'",
        "broker arguments go under `arguments:` (or write 'message-ttl')",
    ),
    Case(
        "unknown-key-without-a-close-one",
        "    queues:\n      q:\n        colour: blue   # <-\n",
        "vhosts.v.queues.q.colour",
        "unknown key 'colour'",
        "allowed here: ",
    ),
    Case(
        "exchange-type",
        "    exchanges:\n      e:\n        type: topc   # <-\n",
        "vhosts.v.exchanges.e.type",
        "expected one of 'direct', 'fanout', 'topic', 'headers', or a plugin's type (x-...), got the string 'topc'",
        "did you mean 'topic'?",
    ),
    Case(
        "consistent-hash-binding-without-a-weight",
        "    exchanges:\n      h: {type: x-consistent-hash}\n    queues:\n"
        "      q: {bindings: [{exchange: h, routing-key: orders}]}   # <-\n",
        'vhosts.v.queues.q.bindings[h "orders"]',
        "a binding of x-consistent-hash exchange 'h' needs a weight as its routing key (a whole number from 1), "
        "got 'orders'",
        'routing-key: "1"',
    ),
    Case(
        "routing-key-written-as-a-number",
        "    exchanges:\n      h: {type: x-consistent-hash}\n    queues:\n"
        "      q: {bindings: [{exchange: h, routing-key: 2}]}   # <-\n",
        "vhosts.v.queues.q.bindings[0].routing-key",
        "expected a string, got the number 2",
        'quote it to make it text: "2"',
    ),
    Case(
        "delayed-message-without-its-type",
        "    exchanges:\n      e:\n        type: x-delayed-message   # <-\n",
        "vhosts.v.exchanges.e.type",
        "an x-delayed-message exchange routes as its x-delayed-type says, and none is given",
        "x-delayed-type: direct",
    ),
    Case(
        "delayed-message-with-a-wrong-type",
        "    exchanges:\n      e:\n        type: x-delayed-message\n"
        "        arguments: {x-delayed-type: x-random}   # <-\n",
        "vhosts.v.exchanges.e.arguments.x-delayed-type",
        "an x-delayed-message exchange routes as its x-delayed-type says, and 'x-random' is not an exchange type",
    ),
    Case(
        "exchange-without-type",
        "    exchanges:\n      e: {durable: true}   # <-\n",
        "vhosts.v.exchanges.e",
        "missing required key 'type'",
    ),
    Case(
        "vhost-limits",
        "    limits:\n      max-queues: lots   # <-\n",
        "vhosts.v.limits.max-queues",
        "expected an integer, got the string 'lots'",
    ),
]


def _expected_line(body: str) -> int:
    lines = (HEAD + body).splitlines()
    return next(i for i, line in enumerate(lines, start=1) if "# <-" in line)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_check(tmp_path: Path, case: Case) -> None:
    file = write(tmp_path, case.body)
    with pytest.raises(ValidationError) as info:
        load(file, environ={})
    found = info.value.problems
    assert len(found) == 1, str(info.value)
    (problem,) = found
    assert problem.file == str(file)
    assert problem.line == _expected_line(case.body), str(problem.render())
    assert problem.col is not None
    assert problem.path == case.path
    if case.message.endswith("..."):
        assert problem.message.startswith(case.message[:-3]), problem.message
    else:
        assert problem.message == case.message
    if case.hint is not None:
        assert problem.hint is not None and case.hint in problem.hint, problem.hint


# -- what is allowed ----------------------------------------------------------------------------------


def test_predefined_exchanges_are_binding_sources(tmp_path: Path) -> None:
    names = ["amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match", "amq.rabbitmq.trace"]
    bindings = "".join(f"          - {{exchange: {name}, routing-key: k}}\n" for name in names)
    v = load_body(tmp_path, "    queues:\n      q:\n        bindings:\n" + bindings).vhosts["v"]
    assert sorted(b.source for b in v.bindings.values()) == sorted(names)


def test_predefined_exchanges_as_dead_letter_and_alternate_exchange(tmp_path: Path) -> None:
    v = load_body(
        tmp_path,
        "    exchanges:\n      e: {type: direct, alternate-exchange: amq.fanout}\n"
        "    queues:\n      q: {dead-letter-exchange: amq.direct}\n",
    ).vhosts["v"]
    assert v.exchanges["e"].alternate_exchange == "amq.fanout"
    assert v.queues["q"].dead_letter_exchange == "amq.direct"


def test_dead_lettering_to_the_default_exchange(tmp_path: Path) -> None:
    # x-dead-letter-exchange "" republishes to the queue named by the dead-letter routing key
    v = load_body(
        tmp_path,
        "    queues:\n      q: {dead-letter-exchange: '', dead-letter-routing-key: parked}\n      parked: {}\n",
    ).vhosts["v"]
    assert v.queues["q"].arguments == {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "parked"}


def test_a_declared_exchange_referenced_before_its_declaration(tmp_path: Path) -> None:
    v = load_body(
        tmp_path,
        "    queues:\n      q: {dead-letter-exchange: later, bindings: [{exchange: later}]}\n"
        "    exchanges:\n      later: {type: fanout}\n",
    ).vhosts["v"]
    assert [b.source for b in v.bindings.values()] == ["later"]


def test_x_queue_type_alone_sets_the_type(tmp_path: Path) -> None:
    q = load_body(tmp_path, "    queues:\n      q: {arguments: {x-queue-type: quorum, x-delivery-limit: 3}}\n")
    queue = q.vhosts["v"].queues["q"]
    assert queue.type == "quorum"
    assert queue.arguments == {"x-delivery-limit": 3}


def test_known_arguments_under_arguments_are_normalised(tmp_path: Path) -> None:
    q = load_body(
        tmp_path,
        "    queues:\n      q:\n        arguments: {x-message-ttl: 5m, x-max-length-bytes: 1KiB, x-custom: '60000'}\n",
    )
    # known arguments get the broker's type; unknown ones are sent verbatim
    assert q.vhosts["v"].queues["q"].arguments == {
        "x-message-ttl": 300_000,
        "x-max-length-bytes": 1024,
        "x-custom": "60000",
    }


def test_every_queue_key_becomes_its_x_argument(tmp_path: Path) -> None:
    q = load_body(
        tmp_path,
        """\
    queues:
      classic:
        message-ttl: 500ms
        expires: 1d
        max-length: 10
        max-length-bytes: 10KB
        overflow: reject-publish-dlx
        dead-letter-exchange: amq.direct
        dead-letter-routing-key: dead
        max-priority: 5
        single-active-consumer: true
        queue-mode: lazy
        queue-version: 2
        queue-master-locator: min-masters
      quorum:
        type: quorum
        delivery-limit: 0
        dead-letter-strategy: at-least-once
        quorum-initial-group-size: 3
        queue-leader-locator: balanced
        max-in-memory-length: 10
        max-in-memory-bytes: 1MiB
      stream:
        type: stream
        max-age: 7D
        initial-cluster-size: 3
        stream-max-segment-size-bytes: 100MB
        max-length-bytes: 20GB
""",
    ).vhosts["v"]
    assert q.queues["classic"].arguments == {
        "x-message-ttl": 500,
        "x-expires": 86_400_000,
        "x-max-length": 10,
        "x-max-length-bytes": 10_000,
        "x-overflow": "reject-publish-dlx",
        "x-dead-letter-exchange": "amq.direct",
        "x-dead-letter-routing-key": "dead",
        "x-max-priority": 5,
        "x-single-active-consumer": True,
        "x-queue-mode": "lazy",
        "x-queue-version": 2,
        "x-queue-master-locator": "min-masters",
    }
    assert q.queues["quorum"].arguments == {
        "x-delivery-limit": 0,
        "x-dead-letter-strategy": "at-least-once",
        "x-quorum-initial-group-size": 3,
        "x-queue-leader-locator": "balanced",
        "x-max-in-memory-length": 10,
        "x-max-in-memory-bytes": 1_048_576,
    }
    assert q.queues["stream"].arguments == {
        "x-max-age": "7D",
        "x-initial-cluster-size": 3,
        "x-stream-max-segment-size-bytes": 100_000_000,
        "x-max-length-bytes": 20_000_000_000,
    }


def test_exchange_properties(tmp_path: Path) -> None:
    v = load_body(
        tmp_path,
        "    exchanges:\n      e:\n        type: headers\n        durable: false\n        auto-delete: true\n"
        "        internal: true\n        arguments: {x-custom: 1}\n",
    ).vhosts["v"]
    e = v.exchanges["e"]
    assert (e.type, e.durable, e.auto_delete, e.internal) == ("headers", False, True, True)
    assert e.arguments == {"x-custom": 1}


def test_binding_forms(tmp_path: Path) -> None:
    v = load_body(
        tmp_path,
        """\
    exchanges:
      h: {type: headers}
    queues:
      q:
        bindings:
          - {exchange: amq.direct}
          - {exchange: h, match: any, headers: {kind: a}}
          - {exchange: h, headers: {kind: b}}
          - {exchange: h, arguments: {x-match: all, kind: c}}
          - {exchange: amq.topic, routing-key: "a.*", arguments: {x-custom: 1}}
""",
    ).vhosts["v"]
    got = sorted((b.source, b.routing_key, canonical_json(dict(b.arguments))) for b in v.bindings.values())
    expected = [
        ("amq.direct", "", {}),
        ("h", "", {"x-match": "any", "kind": "a"}),
        ("h", "", {"x-match": "all", "kind": "b"}),  # match defaults to all, as RabbitMQ's x-match
        ("h", "", {"x-match": "all", "kind": "c"}),
        ("amq.topic", "a.*", {"x-custom": 1}),
    ]
    assert got == sorted((source, key, canonical_json(args)) for source, key, args in expected)


def test_the_same_binding_written_two_ways_is_one_binding(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="the same binding is declared twice"):
        load_body(
            tmp_path,
            "    queues:\n      q:\n        bindings:\n"
            "          - {exchange: amq.headers, match: all, headers: {k: v}}\n"
            "          - {exchange: amq.headers, arguments: {x-match: all, k: v}}\n",
        )


def test_policies_are_normalised(tmp_path: Path) -> None:
    v = load_body(
        tmp_path,
        """\
    policies:
      p:
        pattern: "^q\\\\."
        definition:
          message-ttl: 1h
          max-length-bytes: 1GiB
          expires: 30000
          overflow: drop-head
          dead-letter-exchange: amq.direct
          ha-mode: exactly
          ha-params: 2
          consumer-timeout: 15m
      defaults:
        pattern: .*
        definition: {ha-mode: nodes, ha-params: [rabbit@a, rabbit@b]}
    operator-policies:
      caps:
        pattern: .*
        priority: 5
        apply-to: quorum_queues
        definition: {delivery-limit: 20, max-length-bytes: 10MB}
""",
    ).vhosts["v"]
    p = v.policies["p"]
    assert (p.pattern, p.apply_to, p.priority) == (r"^q\.", "all", 0)
    assert p.definition == {
        "message-ttl": 3_600_000,
        "max-length-bytes": 1_073_741_824,
        "expires": 30_000,
        "overflow": "drop-head",
        "dead-letter-exchange": "amq.direct",
        "ha-mode": "exactly",
        "ha-params": 2,
        "consumer-timeout": 900_000,
    }
    assert v.policies["defaults"].definition == {"ha-mode": "nodes", "ha-params": ["rabbit@a", "rabbit@b"]}
    caps = v.operator_policies["caps"]
    assert (caps.priority, caps.apply_to) == (5, "quorum_queues")
    assert caps.definition == {"delivery-limit": 20, "max-length-bytes": 10_000_000}


def test_lint_switches(tmp_path: Path) -> None:
    file = tmp_path / "t.yaml"
    file.write_text(
        "version: 1\nlint: {disable: [T001]}\nvhosts:\n  v:\n    queues:\n      q: {lint: {disable: [T002]}}\n"
        "    exchanges:\n      e: {type: direct, lint: {disable: [T003]}}\n",
        encoding="utf-8",
    )
    t = load(file)
    assert t.lint_disable == frozenset({"T001"})
    assert t.vhosts["v"].queues["q"].lint_disable == frozenset({"T002"})
    assert t.vhosts["v"].exchanges["e"].lint_disable == frozenset({"T003"})


def test_prefetch_is_kept_for_the_runtime(tmp_path: Path) -> None:
    q = load_body(tmp_path, "    queues:\n      q: {prefetch: 50}\n").vhosts["v"].queues["q"]
    assert q.prefetch == 50
    assert q.arguments == {}


def test_a_vhost_name_over_255_bytes(tmp_path: Path) -> None:
    # the broker's HTTP API takes it, but AMQP 0-9-1 opens a vhost by a short string: no client could connect
    file = tmp_path / "t.yaml"
    file.write_text("version: 1\nvhosts:\n  " + "v" * 256 + ": {}\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load(file, environ={})
    (problem,) = info.value.problems
    assert problem.message == "vhost name is longer than 255 bytes of UTF-8"
    assert (problem.line, problem.col, problem.path) == (3, 3, "vhosts." + "v" * 256)


def test_short_strings_of_exactly_255_bytes_are_fine(tmp_path: Path) -> None:
    key = "é" * 127 + "k"  # 255 bytes
    t = load_body(
        tmp_path,
        "    exchanges:\n      x: {type: topic}\n    queues:\n"
        f"      q:\n        dead-letter-routing-key: {key}\n        bindings: [{{exchange: x, routing-key: {key}}}]\n",
    )
    (binding,) = t.vhosts["v"].bindings.values()
    assert binding.routing_key == key


# -- retry delays --------------------------------------------------------------------------------------


def test_retry_delays_generate_delay_queues(tmp_path: Path) -> None:
    v = load_body(
        tmp_path, "    queues:\n      jobs:\n        type: quorum\n        retry: {delays: [1s, 30s, 5m]}\n"
    ).vhosts["v"]
    assert list(v.queues) == ["jobs", "jobs.retry.1", "jobs.retry.2", "jobs.retry.3"]
    assert v.queues["jobs"].retry_delays == (1000, 30_000, 300_000)
    assert v.queues["jobs"].arguments == {}
    for n, ttl in ((1, 1000), (2, 30_000), (3, 300_000)):
        retry = v.queues[f"jobs.retry.{n}"]
        assert retry.type == "classic" and retry.durable and not retry.auto_delete
        # a message waits ttl, then dead-letters through the default exchange back to `jobs`
        assert retry.arguments == {
            "x-message-ttl": ttl,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "jobs",
        }
    assert not v.bindings  # the default exchange needs no binding


def test_retry_queue_name_helper() -> None:
    from topo import model
    from topo.loader import retry_queue_name
    from topo.runtime import failures

    assert retry_queue_name("jobs", 2) == "jobs.retry.2"
    # one naming for the queues the loader declares and those the runtime publishes to
    assert retry_queue_name is failures.retry_queue_name is model.retry_queue_name


def test_a_retry_queue_clashing_with_a_declared_queue(tmp_path: Path) -> None:
    file = write(tmp_path, "    queues:\n      jobs: {retry: {delays: [1s]}}\n      jobs.retry.1: {}\n")
    with pytest.raises(ValidationError) as info:
        load(file)
    (problem,) = info.value.problems
    assert "queue 'jobs.retry.1' is declared twice" in problem.message


@pytest.mark.parametrize(
    ("retry", "message"),
    [
        ("{delays: []}", "must not be empty"),
        ("{delays: [soon]}", "expected a duration: ..."),
        ("{}", "missing required key 'delays'"),
        ("{delays: [1s], max: 3}", "unknown key 'max'"),
    ],
)
def test_retry_problems(tmp_path: Path, retry: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        load_body(tmp_path, f"    queues:\n      jobs: {{retry: {retry}}}\n")
    (problem,) = info.value.problems
    assert problem.message.startswith(message.removesuffix("...")), problem.message


# -- problems combine -----------------------------------------------------------------------------------


def test_one_queue_with_several_problems_reports_each(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        """\
    queues:
      q:
        type: quorum
        durable: false
        max-priority: 5
        queue-mode: lazy
        message-ttl: 1m
        arguments: {x-message-ttl: 1}
        bindings: [{exchange: nope}]
""",
    )
    with pytest.raises(ValidationError) as info:
        load(file)
    found: list[Problem] = info.value.problems
    assert [p.line for p in found] == [7, 8, 9, 11, 12]
    assert [p.path for p in found] == [
        "vhosts.v.queues.q.durable",
        "vhosts.v.queues.q.max-priority",
        "vhosts.v.queues.q.queue-mode",
        "vhosts.v.queues.q.arguments.x-message-ttl",
        'vhosts.v.queues.q.bindings[nope ""]',
    ]


def test_problem_fields_are_filled(tmp_path: Path) -> None:
    # every case of the table above, merged into one file: every problem has all its fields
    bodies: dict[str, Any] = {}
    for case in CASES:
        if case.id.startswith(("exchange-in-another-vhost", "unknown-vhost-key", "vhost-limits")):
            continue
        bodies[case.id] = case.body
    for i, (name, body) in enumerate(bodies.items()):
        (tmp_path / f"{i:03d}-{name}.yaml").write_text(
            HEAD.replace("  v:", f"  v{i}:") + body.replace("vhosts.v.", f"vhosts.v{i}."), encoding="utf-8"
        )
    with pytest.raises(ValidationError) as info:
        load(tmp_path, environ={})
    found = info.value.problems
    assert len(found) >= len(bodies)
    for problem in found:
        assert problem.file and problem.line and problem.col and problem.path and problem.message, problem
    assert [(p.file, p.line) for p in found] == sorted((p.file or "", p.line or 0) for p in found)
