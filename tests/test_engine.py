"""The engine against a real broker: read → diff → apply → re-read, idempotence, safety, recovery.

Every test works in its own vhost (the ``vhost`` fixture); topology files are written into tmp_path with
that name substituted through ``${var:VHOST}``.
"""

from __future__ import annotations

import dataclasses
import secrets
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from support import publish, take, wait_for_messages

from topo import engine
from topo.broker import writer
from topo.broker.amqp_probe import LiveAmqp
from topo.broker.client import ManagementClient
from topo.broker.live import LiveBroker
from topo.broker.port import DropCheck
from topo.errors import ApplyFailed, NotConverged, UnsafeChange
from topo.loader import load
from topo.model import Topology
from topo.plan.model import Plan, QueueUsage
from topo.plan.render import render_text

pytestmark = pytest.mark.timeout(120)


def q(name: str) -> str:
    return quote(name, safe="")


@pytest.fixture
def client(broker: Any) -> Iterator[ManagementClient]:
    with ManagementClient(broker.url, amqp_url=broker.amqp_url) as c:  # the test node's AMQP: exact counts
        yield c


@pytest.fixture
def files(tmp_path: Path, vhost: str) -> Any:
    """``files(yaml)`` writes one topology file (``${var:VHOST}`` = the test's vhost) and loads it."""

    def write(text: str, name: str = "topology.yaml") -> Topology:
        (tmp_path / name).write_text(textwrap.dedent(text))
        return load(tmp_path, {"VHOST": vhost})

    return write


def actions(plan: Plan) -> list[tuple[str, str]]:
    return [(c.action, str(c.address)) for c in plan.changes]


def queue_bindings(mgmt: httpx.Client, vhost: str, queue: str) -> set[tuple[str, str]]:
    items = mgmt.get(f"/api/queues/{q(vhost)}/{q(queue)}/bindings").json()
    return {(b["source"], b["routing_key"]) for b in items if b["source"]}


# -- cold apply, idempotence ------------------------------------------------------------------------
# (files without `name:`: no stack, no inventory; what a stack adds is tests/test_ownership_broker.py's)

EVERYTHING = """\
    version: 1
    vhosts:
      ${var:VHOST}:
        description: Sensor ingestion
        tags: [iot, prod]
        limits: {max-connections: 500, max-queues: 1000}
        exchanges:
          sensor-data: {type: topic}
          dlx: {type: direct}
          unrouted: {type: fanout}
          uploads: {type: headers, alternate-exchange: unrouted}
          audit:
            type: fanout
            internal: true
            bindings:
              - {exchange: sensor-data, routing-key: "#"}
        queues:
          analytics:
            type: quorum
            dead-letter-exchange: dlx
            dead-letter-routing-key: analytics.failed
            delivery-limit: 5
            bindings:
              - {exchange: sensor-data, routing-key: "sensor.#"}
          orders:
            message-ttl: 24h
            max-length: 100000
            max-length-bytes: 10MiB
            overflow: reject-publish
            dead-letter-exchange: dlx
            dead-letter-routing-key: orders.failed
          tasks: {max-priority: 10, single-active-consumer: true}
          events: {type: stream, max-age: 7D, max-length-bytes: 1GiB}
          pdf-jobs:
            bindings:
              - {exchange: uploads, match: all, headers: {format: pdf, kind: report}}
          unrouted-log:
            bindings:
              - {exchange: unrouted}
          audit-log:
            bindings:
              - {exchange: audit}
              - {exchange: amq.topic, routing-key: "audit.#"}
          dead-letters:
            bindings:
              - {exchange: dlx, routing-key: orders.failed}
              - {exchange: dlx, routing-key: analytics.failed}
          legacy:
            arguments: {x-queue-mode: lazy, x-custom: {nested: [1, "two"]}}
        policies:
          tmp-limits:
            pattern: "^tmp\\\\."
            apply-to: queues
            priority: 10
            definition: {message-ttl: 5m, max-length-bytes: 10MiB, expires: 1h}
        operator-policies:
          cap-length:
            pattern: ".*"
            apply-to: queues
            definition: {max-length: 1000000, message-ttl: 7d}
"""


def test_cold_apply_of_every_kind_then_no_changes_and_no_writes(
    files: Any, client: ManagementClient, mgmt: httpx.Client, vhost: str
) -> None:
    desired = files(EVERYTHING)
    plan = engine.plan(client, desired)
    kinds = {(c.action, c.kind) for c in plan.changes}
    assert kinds == {
        ("update", "vhost"),  # the fixture created the vhost: its metadata and limits are updated
        ("create", "exchange"),
        ("create", "queue"),
        ("create", "binding"),
        ("create", "policy"),
        ("create", "operator-policy"),
    }
    assert plan.count("create") == 5 + 9 + 8 + 2

    engine.apply(client, desired, plan)

    again = engine.plan(client, desired)
    assert again.empty, render_text(again)
    assert render_text(again) == "No changes. The broker matches the files.\n"

    client.writes = client.requests = 0
    assert engine.apply(client, desired).empty
    assert client.writes == 0
    assert client.requests == 2  # GET /vhosts/{v} + GET /definitions/{v}

    # what the broker has is what the file says
    info = mgmt.get(f"/api/vhosts/{q(vhost)}").json()
    assert info["description"] == "Sensor ingestion" and sorted(info["tags"]) == ["iot", "prod"]
    limits = mgmt.get(f"/api/vhost-limits/{q(vhost)}").json()
    assert limits[0]["value"] == {"max-connections": 500, "max-queues": 1000}
    analytics = mgmt.get(f"/api/queues/{q(vhost)}/analytics").json()
    assert analytics["type"] == "quorum"
    orders = mgmt.get(f"/api/queues/{q(vhost)}/orders").json()
    assert orders["arguments"]["x-message-ttl"] == 86_400_000
    assert orders["arguments"]["x-max-length-bytes"] == 10 * 1024 * 1024
    assert mgmt.get(f"/api/exchanges/{q(vhost)}/audit").json()["internal"] is True
    policy = mgmt.get(f"/api/policies/{q(vhost)}/tmp-limits").json()
    assert policy["definition"] == {"message-ttl": 300_000, "max-length-bytes": 10_485_760, "expires": 3_600_000}
    # and messages go where the file says
    assert publish(mgmt, vhost, "uploads", "", headers={"format": "pdf", "kind": "report"})
    assert publish(mgmt, vhost, "uploads", "", headers={"format": "doc"})  # alternate exchange
    assert publish(mgmt, vhost, "sensor-data", "sensor.1")
    assert take(mgmt, vhost, "pdf-jobs") == 1
    assert take(mgmt, vhost, "unrouted-log") == 1
    assert take(mgmt, vhost, "audit-log") == 1  # via the internal exchange bound e2e


def test_apply_of_a_cold_vhost_uses_few_requests_and_reports_progress(files: Any, client: ManagementClient) -> None:
    desired = files(EVERYTHING)
    plan = engine.plan(client, desired)
    client.writes = client.requests = 0
    done: list[int] = []
    engine.apply(client, desired, plan, progress=lambda _text, n: done.append(n))
    assert sum(done) == len(plan.changes)
    # vhost metadata (GET + PUT) + 2 limits, one bulk import, 2 policies; confirm: 2 reads
    assert client.writes == 6
    assert client.requests == 9


# -- no false drift on an untouched broker ----------------------------------------------------------


def test_untouched_broker_shows_no_false_drift(
    files: Any, client: ManagementClient, mgmt: httpx.Client, vhost: str
) -> None:
    v = q(vhost)
    # Declared by other clients the way they usually do it (not by topo):
    for name, body in {
        "plain": {"durable": True},
        "explicit-classic": {"durable": True, "arguments": {"x-queue-type": "classic"}},
        "qq": {"durable": True, "arguments": {"x-queue-type": "quorum", "x-delivery-limit": 3}},
        "st": {"durable": True, "arguments": {"x-queue-type": "stream", "x-max-age": "7D"}},
        "ttl": {"durable": True, "arguments": {"x-message-ttl": 60000, "x-max-length-bytes": 1048576}},
    }.items():
        mgmt.put(f"/api/queues/{v}/{name}", json=body).raise_for_status()
    mgmt.put(f"/api/exchanges/{v}/ev", json={"type": "topic", "durable": True}).raise_for_status()
    mgmt.post(f"/api/bindings/{v}/e/ev/q/qq", json={"routing_key": "a.*"}).raise_for_status()
    mgmt.put(
        f"/api/policies/{v}/p",
        json={"pattern": "^ttl$", "definition": {"message-ttl": 300000, "max-length-bytes": 10485760}},
    ).raise_for_status()
    mgmt.put(
        f"/api/operator-policies/{v}/op",
        json={"pattern": ".*", "definition": {"expires": 86400000}, "apply-to": "queues"},
    ).raise_for_status()

    desired = files(
        """\
        version: 1
        vhosts:
          ${var:VHOST}:
            description: ""
            tags: []
            limits: {}
            exchanges:
              ev: {type: topic}
            queues:
              plain: {}
              explicit-classic: {type: classic}
              qq:
                type: quorum
                delivery-limit: 3
                bindings: [{exchange: ev, routing-key: a.*}]
              st: {type: stream, max-age: 7D}
              ttl: {message-ttl: 1m, max-length-bytes: 1MiB}
            policies:
              p: {pattern: ^ttl$, definition: {message-ttl: 5m, max-length-bytes: 10MiB}}
            operator-policies:
              op: {pattern: .*, apply-to: queues, definition: {expires: 1d}}
        """
    )
    plan = engine.plan(client, desired)
    assert plan.empty, render_text(plan)
    assert plan.unmanaged == []


def test_an_empty_vhost_declaration_manages_nothing(files: Any, client: ManagementClient, mgmt: httpx.Client) -> None:
    desired = files("version: 1\nvhosts:\n  ${var:VHOST}: {}\n")
    assert engine.plan(client, desired).empty


def test_a_vhost_default_queue_type_does_not_change_what_the_files_declare(
    tmp_path: Path, client: ManagementClient, mgmt: httpx.Client
) -> None:
    name = f"t-default-qtype-{secrets.token_hex(4)}"
    mgmt.put(f"/api/vhosts/{name}", json={"defaultqueuetype": "quorum"}).raise_for_status()
    try:
        mgmt.put(f"/api/permissions/{name}/guest", json={"configure": ".*", "write": ".*", "read": ".*"})
        mgmt.put(f"/api/queues/{name}/by-an-app", json={"durable": True}).raise_for_status()  # becomes quorum
        (tmp_path / "t.yaml").write_text(
            "version: 1\nvhosts:\n  ${var:VHOST}:\n    queues:\n"
            "      plain: {}\n      qq: {type: quorum}\n      by-an-app: {type: quorum}\n"
        )
        desired = load(tmp_path, {"VHOST": name})
        engine.apply(client, desired)
        assert engine.plan(client, desired).empty
        types = {item["name"]: item["type"] for item in mgmt.get(f"/api/queues/{name}").json()}
        assert types == {"plain": "classic", "qq": "quorum", "by-an-app": "quorum"}
    finally:
        mgmt.delete(f"/api/vhosts/{name}")


# -- replacements -----------------------------------------------------------------------------------

REPLACE_QUEUE = """\
    version: 1
    vhosts:
      ${var:VHOST}:
        exchanges:
          front: {type: topic}
          inner:
            type: topic
            bindings: [{exchange: front, routing-key: "orders.#"}]
          hx: {type: headers}
        queues:
          work:
            message-ttl: %s
            bindings:
              - {exchange: inner, routing-key: "orders.eu.*"}
              - {exchange: inner, routing-key: "orders.us.*"}
              - {exchange: hx, match: any, headers: {region: eu}}
          other:
            bindings: [{exchange: inner, routing-key: "#"}]
"""


def test_changing_a_queue_argument_replaces_it_and_its_bindings_come_back(
    files: Any, client: ManagementClient, mgmt: httpx.Client, vhost: str
) -> None:
    engine.apply(client, files(REPLACE_QUEUE % "1m"))
    before = queue_bindings(mgmt, vhost, "work")
    assert len(before) == 3

    desired = files(REPLACE_QUEUE % "2m")
    plan = engine.plan(client, desired)
    assert actions(plan) == [
        ("replace", f"vhosts.{vhost}.queues.work"),
        ("create", f'vhosts.{vhost}.queues.work.bindings[hx "" {{region="eu", x-match="any"}}]'),
        ("create", f'vhosts.{vhost}.queues.work.bindings[inner "orders.eu.*"]'),
        ("create", f'vhosts.{vhost}.queues.work.bindings[inner "orders.us.*"]'),
    ]
    assert plan.changes[0].reasons == ("x-message-ttl cannot change on an existing queue (1m → 2m)",)
    assert plan.changes[0].messages == 0
    assert all(c.reasons == ("re-created: queue 'work' is replaced",) for c in plan.changes[1:])

    engine.apply(client, desired, plan)

    assert mgmt.get(f"/api/queues/{q(vhost)}/work").json()["arguments"]["x-message-ttl"] == 120_000
    assert queue_bindings(mgmt, vhost, "work") == before
    assert engine.plan(client, desired).empty
    # routing through the e2e-bound exchange reaches the new queue
    assert publish(mgmt, vhost, "front", "orders.eu.1")
    assert publish(mgmt, vhost, "hx", "", headers={"region": "eu"})
    assert take(mgmt, vhost, "work") == 2
    assert take(mgmt, vhost, "other") == 1


REPLACE_EXCHANGE = """\
    version: 1
    vhosts:
      ${var:VHOST}:
        exchanges:
          up: {type: fanout}
          mid:
            type: %s
            bindings: [{exchange: up}]
          down:
            type: fanout
            bindings: [{exchange: mid, routing-key: "k"}]
        queues:
          q1:
            bindings: [{exchange: mid, routing-key: "k"}]
          q2:
            bindings: [{exchange: down}]
"""


def test_replacing_an_exchange_recreates_bindings_from_and_to_it(
    files: Any, client: ManagementClient, mgmt: httpx.Client, vhost: str
) -> None:
    engine.apply(client, files(REPLACE_EXCHANGE % "direct"))
    mgmt.put(f"/api/queues/{q(vhost)}/theirs", json={"durable": True}).raise_for_status()
    mgmt.post(f"/api/bindings/{q(vhost)}/e/mid/q/theirs", json={"routing_key": "k"}).raise_for_status()

    desired = files(REPLACE_EXCHANGE % "topic")
    plan = engine.plan(client, desired)
    assert actions(plan) == [
        ("replace", f"vhosts.{vhost}.exchanges.mid"),
        ("create", f'vhosts.{vhost}.exchanges.down.bindings[mid "k"]'),
        ("create", f'vhosts.{vhost}.exchanges.mid.bindings[up ""]'),
        ("create", f'vhosts.{vhost}.queues.q1.bindings[mid "k"]'),
    ]
    assert plan.changes[0].reasons == ("the exchange type cannot change (direct → topic)",)
    assert plan.changes[0].warnings == (
        "binding to unmanaged queue 'theirs' (key \"k\") is lost with the exchange and not re-created",
    )
    engine.apply(client, desired, plan)

    assert mgmt.get(f"/api/exchanges/{q(vhost)}/mid").json()["type"] == "topic"
    assert engine.plan(client, desired).empty
    assert publish(mgmt, vhost, "up", "k")
    assert take(mgmt, vhost, "q1") == 1
    assert take(mgmt, vhost, "q2") == 1
    assert take(mgmt, vhost, "theirs") == 0  # as the warning said


# -- safety ------------------------------------------------------------------------------------------


def test_a_queue_holding_messages_is_not_replaced(
    files: Any, client: ManagementClient, mgmt: httpx.Client, vhost: str
) -> None:
    text = """\
        version: 1
        vhosts:
          ${var:VHOST}:
            queues:
              jobs: {max-length: %d}
              qq: {type: quorum, delivery-limit: %d}
        """
    engine.apply(client, files(text % (10, 1)))
    desired = files(text % (20, 2))
    stale = engine.plan(client, desired)  # both queues empty at plan time
    assert [(c.action, c.messages) for c in stale.changes] == [("replace", 0), ("replace", 0)]
    assert stale.unsafe == []

    for _ in range(3):
        assert publish(mgmt, vhost, "", "jobs")
    assert publish(mgmt, vhost, "", "qq")
    assert wait_for_messages(mgmt, vhost, "jobs") == 3
    assert wait_for_messages(mgmt, vhost, "qq") == 1

    # the safety check counts afresh at apply time, before any write
    client.writes = 0
    with pytest.raises(UnsafeChange) as info:
        engine.apply(client, desired, stale)
    assert f"queue 'jobs' in vhost {vhost!r} holds 3 messages: replacing it would drop them" in info.value.message
    assert f"queue 'qq' in vhost {vhost!r} holds 1 message: replacing it would drop it" in info.value.message
    assert info.value.hint
    assert client.writes == 0

    plan = engine.plan(client, desired)
    assert [(c.address.name, c.messages) for c in plan.changes] == [("jobs", 3), ("qq", 1)]
    assert plan.unsafe == plan.changes
    text_plan = render_text(plan)
    assert "holds 3 messages" in text_plan and "holds 1 message:" in text_plan
    with pytest.raises(UnsafeChange):
        engine.apply(client, desired, plan)
    assert client.writes == 0
    assert mgmt.get(f"/api/queues/{q(vhost)}/jobs").json()["arguments"]["x-max-length"] == 10
    assert mgmt.get(f"/api/queues/{q(vhost)}/qq").json()["arguments"]["x-delivery-limit"] == 1
    assert take(mgmt, vhost, "jobs") == 3


class Blind(LiveBroker):
    """The live broker, but apply's first count (and, with ``last``, its last look before a delete) says
    "empty, unused", as if messages and consumers came an instant after it: what is left are the later looks
    (``last=False``) or the broker's own guards (``last=True``)."""

    def __init__(self, client: ManagementClient, *, last: bool = False) -> None:
        super().__init__(client, amqp=_BlindAmqp(client.amqp_url) if last else None)

    def count(self, vhost: str, queues: Any, *, cluster: str | None = None) -> dict[str, QueueUsage]:
        return {}


class _BlindAmqp(LiveAmqp):
    def check_drops(self, vhost: str, queues: Any, probe_id: str, *, cluster: str | None = None) -> Any:
        return {name: DropCheck(True) for name in queues}


def test_a_classic_queue_with_messages_is_refused_at_the_last_count_and_by_the_broker_too(
    files: Any, client: ManagementClient, mgmt: httpx.Client, vhost: str
) -> None:
    text = """\
        version: 1
        vhosts:
          ${var:VHOST}:
            exchanges: {ex: {type: direct}}
            queues:
              jobs: {max-length: %d, bindings: [{exchange: ex, routing-key: jobs}]}
        """
    engine.apply(client, files(text % 10))
    assert publish(mgmt, vhost, "", "jobs")
    desired = files(text % 20)
    plan = engine.plan(client, desired)
    assert plan.blocked
    # if messages arrive after the first count, the last one (after the queue is cut off) sees them ...
    with pytest.raises(UnsafeChange) as info:
        writer.execute(Blind(client), dataclasses.replace(plan, changes=[replace_blockers(c) for c in plan.changes]))
    assert f"queue 'jobs' in vhost {vhost!r}: 1 message arrived after apply counted it" in info.value.message
    assert "put back: nothing was lost" in info.value.message
    assert queue_bindings(mgmt, vhost, "jobs") == {("ex", "jobs")}
    # ... and if they arrive after that, the broker's if-empty refuses the delete
    with pytest.raises(UnsafeChange) as info:
        writer.execute(
            Blind(client, last=True), dataclasses.replace(plan, changes=[replace_blockers(c) for c in plan.changes])
        )
    assert "the broker refused to delete it" in info.value.message and "not empty" in info.value.message
    assert "run `topo apply` again" in (info.value.hint or "")
    assert queue_bindings(mgmt, vhost, "jobs") == {("ex", "jobs")}
    assert take(mgmt, vhost, "jobs") == 1
    engine.apply(client, desired)
    assert engine.plan(client, desired).empty


def replace_blockers(change: Any) -> Any:
    """``change`` as a plan made before anything arrived would have it."""
    return dataclasses.replace(change, blockers=(), messages=0 if change.messages is not None else None)


IN_USE = """\
    version: 1
    vhosts:
      ${var:VHOST}:
        exchanges: {ex: {type: topic}}
        queues:
          a-first: {max-length: %d, bindings: [{exchange: ex, routing-key: a}]}
          b-busy: {max-length: %d}
"""


def test_a_queue_in_use_is_not_replaced_and_a_half_apply_says_what_is_missing(
    files: Any, client: ManagementClient, mgmt: httpx.Client, vhost: str, broker: Any
) -> None:
    import pika  # type: ignore[import-untyped]

    engine.apply(client, files(IN_USE % (1, 1)))
    parameters = pika.URLParameters(broker.amqp_url.rstrip("/") + "/" + q(vhost))
    connection = pika.BlockingConnection(parameters)
    try:
        connection.channel().basic_consume("b-busy", lambda *_args: None)
        desired = files(IN_USE % (2, 2))
        # the count is exact (AMQP): the consumer shows at once, and apply refuses before writing anything
        client.writes = 0
        with pytest.raises(UnsafeChange) as refused:
            engine.apply(client, desired)
        assert f"queue 'b-busy' in vhost {vhost!r} has 1 consumer" in refused.value.message
        assert "stop its consumers" in (refused.value.hint or "")
        assert client.writes == 0

        plan = replace_plan(engine.plan(client, desired))
        # a consumer that starts after the first count: every queue is checked before any is deleted
        with pytest.raises(UnsafeChange) as info:
            engine.apply(Blind(client), desired, plan)
        assert f"queue 'b-busy' in vhost {vhost!r}: 1 consumer started reading it" in info.value.message
        assert mgmt.get(f"/api/queues/{q(vhost)}/a-first").json()["arguments"]["x-max-length"] == 1  # not deleted
        assert queue_bindings(mgmt, vhost, "a-first") == {("ex", "a")}  # put back

        # one that starts after the last count: the broker refuses (if-unused) after a-first was deleted;
        # the error says what is missing, and the next apply fixes it
        with pytest.raises(UnsafeChange) as info:
            engine.apply(Blind(client, last=True), desired, plan)
        message = info.value.message
        assert f"(deleted for replacement, not declared again yet: queue vhosts.{vhost}.queues.a-first)" in message
        assert "the broker refused to delete it" in message
    finally:
        connection.close()
    deadline = time.monotonic() + 20
    while True:  # the consumer's channel closes an instant after the connection
        try:
            engine.apply(client, desired)
            break
        except UnsafeChange:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert engine.plan(client, desired).empty
    assert queue_bindings(mgmt, vhost, "a-first") == {("ex", "a")}


def replace_plan(plan: Plan) -> Plan:
    return dataclasses.replace(plan, changes=[replace_blockers(c) for c in plan.changes])


# -- in-place updates -------------------------------------------------------------------------------


def test_a_policy_change_is_an_update_in_place(
    files: Any, client: ManagementClient, mgmt: httpx.Client, vhost: str
) -> None:
    text = """\
        version: 1
        vhosts:
          ${var:VHOST}:
            queues: {tmp.a: {}}
            policies:
              tmp: {pattern: ^tmp\\., apply-to: queues, definition: {message-ttl: %s}}
            operator-policies:
              cap: {pattern: ^tmp\\., apply-to: queues, definition: {max-length: %d}}
        """
    engine.apply(client, files(text % ("5m", 100)))
    desired = files(text % ("10m", 200))
    plan = engine.plan(client, desired)
    assert actions(plan) == [
        ("update", f"vhosts.{vhost}.policies.tmp"),
        ("update", f"vhosts.{vhost}.operator-policies.cap"),
    ]
    client.writes = 0
    engine.apply(client, desired, plan)
    assert client.writes == 2  # one PUT each, nothing deleted
    assert mgmt.get(f"/api/policies/{q(vhost)}/tmp").json()["definition"] == {"message-ttl": 600_000}
    assert mgmt.get(f"/api/operator-policies/{q(vhost)}/cap").json()["definition"] == {"max-length": 200}
    assert engine.plan(client, desired).empty


def test_vhost_limits_and_metadata_are_updated_in_place(
    files: Any, client: ManagementClient, mgmt: httpx.Client, vhost: str
) -> None:
    text = "version: 1\nvhosts:\n  ${var:VHOST}:\n    description: %s\n    tags: %s\n    limits: %s\n"
    engine.apply(client, files(text % ("one", "[a, b]", "{max-connections: 5, max-queues: 10}")))
    desired = files(text % ("two", "[c]", "{max-queues: 20}"))
    plan = engine.plan(client, desired)
    (change,) = plan.changes
    assert change.action == "update"
    assert change.before == {
        "description": "one",
        "tags": ["a", "b"],
        "limits": {"max-connections": 5, "max-queues": 10},
    }
    assert change.after == {"description": "two", "tags": ["c"], "limits": {"max-queues": 20}}
    engine.apply(client, desired, plan)
    info = mgmt.get(f"/api/vhosts/{q(vhost)}").json()
    assert info["description"] == "two" and info["tags"] == ["c"]
    assert mgmt.get(f"/api/vhost-limits/{q(vhost)}").json()[0]["value"] == {"max-queues": 20}
    assert engine.plan(client, desired).empty


def test_unmanaged_vhost_metadata_is_kept_when_one_field_changes(
    files: Any, client: ManagementClient, mgmt: httpx.Client, vhost: str
) -> None:
    mgmt.put(f"/api/vhosts/{q(vhost)}", json={"description": "set by hand", "tags": "x,y"}).raise_for_status()
    mgmt.put(f"/api/vhost-limits/{q(vhost)}/max-queues", json={"value": 7}).raise_for_status()
    engine.apply(client, files("version: 1\nvhosts:\n  ${var:VHOST}:\n    tags: [z]\n"))
    info = mgmt.get(f"/api/vhosts/{q(vhost)}").json()
    assert info["description"] == "set by hand" and info["tags"] == ["z"]
    assert mgmt.get(f"/api/vhost-limits/{q(vhost)}").json()[0]["value"] == {"max-queues": 7}


def test_a_missing_vhost_is_created(tmp_path: Path, client: ManagementClient, mgmt: httpx.Client) -> None:
    name = f"t-created-{secrets.token_hex(4)}"
    (tmp_path / "t.yaml").write_text(
        "version: 1\nvhosts:\n  ${var:VHOST}:\n    description: new\n    tags: [a, b]\n    limits: {max-queues: 3}\n"
        "    queues: {a: {}}\n"
    )
    desired = load(tmp_path, {"VHOST": name})
    try:
        plan = engine.plan(client, desired)
        assert actions(plan) == [("create", f"vhosts.{name}"), ("create", f"vhosts.{name}.queues.a")]
        engine.apply(client, desired, plan)
        info = mgmt.get(f"/api/vhosts/{q(name)}").json()
        assert info["description"] == "new" and info["tags"] == ["a", "b"]
        assert mgmt.get(f"/api/vhost-limits/{q(name)}").json()[0]["value"] == {"max-queues": 3}
        assert mgmt.get(f"/api/queues/{q(name)}/a").status_code == 200
        assert engine.plan(client, desired).empty
    finally:
        mgmt.delete(f"/api/vhosts/{q(name)}")


def test_a_binding_removed_from_the_file_is_deleted(
    files: Any, client: ManagementClient, mgmt: httpx.Client, vhost: str
) -> None:
    head = """\
        version: 1
        vhosts:
          ${var:VHOST}:
            exchanges: {ex: {type: topic}, hx: {type: headers}}
            queues:
              q:
                bindings:
                  - {exchange: ex, routing-key: a}
        """
    more = """\
                  - {exchange: hx, match: all, headers: {k: v}}
                  - {exchange: ex, routing-key: b}
        """
    engine.apply(client, files(head.rstrip(" ") + more))
    assert len(mgmt.get(f"/api/queues/{q(vhost)}/q/bindings").json()) == 4  # + the default exchange's
    desired = files(head)
    plan = engine.plan(client, desired)
    assert sorted(actions(plan)) == [
        ("delete", f'vhosts.{vhost}.queues.q.bindings[ex "b"]'),
        ("delete", f'vhosts.{vhost}.queues.q.bindings[hx "" {{k="v", x-match="all"}}]'),
    ]
    client.writes = 0
    engine.apply(client, desired, plan)
    assert client.writes == 2
    assert queue_bindings(mgmt, vhost, "q") == {("ex", "a")}
    assert engine.plan(client, desired).empty


ODD_NAMES = """\
    version: 1
    vhosts:
      ${var:VHOST}:
        exchanges:
          "ex with space": {type: topic}
          "ex/slash": {type: headers}
        queues:
          "orders/eu #1":
            max-length: %d
            bindings:
              - {exchange: ex with space, routing-key: "a/b"}
              - {exchange: ex with space, routing-key: "~"}
              - {exchange: ex with space, routing-key: "a%%b"}
              - {exchange: ex with space, routing-key: "ü.#"}
              - {exchange: ex/slash, headers: {"a b": "c/d", n: 1}}
          "ü": {}
"""


def test_names_and_routing_keys_that_need_escaping(
    files: Any, client: ManagementClient, mgmt: httpx.Client, vhost: str
) -> None:
    desired = files(ODD_NAMES % 1)
    engine.apply(client, desired)
    assert engine.plan(client, desired).empty
    assert len(queue_bindings(mgmt, vhost, "orders/eu #1")) == 5
    # replace the queue: every binding comes back
    replaced = files(ODD_NAMES % 2)
    engine.apply(client, replaced)
    assert engine.plan(client, replaced).empty
    assert len(queue_bindings(mgmt, vhost, "orders/eu #1")) == 5
    # drop the bindings from the file: every one is deleted (each has its own properties_key)
    without = files((ODD_NAMES % 2).split("            bindings:")[0] + '          "ü": {}\n')
    plan = engine.plan(client, without)
    assert [c.action for c in plan.changes] == ["delete"] * 5
    engine.apply(client, without, plan)
    assert queue_bindings(mgmt, vhost, "orders/eu #1") == set()
    assert engine.plan(client, without).empty


# -- failures part-way -------------------------------------------------------------------------------


def test_a_half_failed_apply_says_so_and_the_next_apply_converges(
    files: Any, client: ManagementClient, mgmt: httpx.Client, vhost: str
) -> None:
    text = """\
        version: 1
        vhosts:
          ${var:VHOST}:
            queues: {a: {}, b: {}}
            policies:
              mirror: {pattern: ^a$, definition: %s}
        """
    broken = files(text % "{ha-mode: exactly}")  # valid to the schema; the broker wants ha-params too
    with pytest.raises(ApplyFailed) as info:
        engine.apply(client, broken)
    message, hint = info.value.message, info.value.hint or ""
    assert message.startswith("apply stopped after 2 of 3 changes:")
    assert "ha-mode" in message and "\n" not in message and "&lt;" not in message
    assert "run `topo apply` again" in hint
    # what was done stays done
    assert mgmt.get(f"/api/queues/{q(vhost)}/a").status_code == 200

    fixed = files(text % "{ha-mode: exactly, ha-params: 1}")
    plan = engine.plan(client, fixed)
    assert actions(plan) == [("create", f"vhosts.{vhost}.policies.mirror")]
    engine.apply(client, fixed, plan)
    assert engine.plan(client, fixed).empty


def test_something_created_behind_our_back_between_plan_and_apply(
    files: Any, client: ManagementClient, mgmt: httpx.Client, vhost: str
) -> None:
    desired = files("version: 1\nvhosts:\n  ${var:VHOST}:\n    exchanges: {ex: {type: topic}}\n")
    plan = engine.plan(client, desired)
    assert actions(plan) == [("create", f"vhosts.{vhost}.exchanges.ex")]
    mgmt.put(f"/api/exchanges/{q(vhost)}/ex", json={"type": "fanout"}).raise_for_status()
    # the bulk import silently keeps the existing exchange: the re-read catches it
    with pytest.raises(NotConverged) as info:
        engine.apply(client, desired, plan)
    assert f"replace vhosts.{vhost}.exchanges.ex" in info.value.message
    assert info.value.hint
    engine.apply(client, desired)
    assert mgmt.get(f"/api/exchanges/{q(vhost)}/ex").json()["type"] == "topic"
    assert engine.plan(client, desired).empty
