"""Dropping a queue (replace now, prune later) never loses a confirmed message (issue 8.1).

The race: messages published to a queue while apply works through other changes (here: deleting 500
bindings of another queue) land in the queue after the safety count; a queue deleted then would take
them with it. Apply cuts the queue off from every route, fences it, counts exactly and only then deletes.
A publisher who got a confirm (and no return) must find its message: in the old queue when apply refused,
in the new one when it went through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pika  # type: ignore[import-untyped]
import pytest
from support import build_vhost

from topo import engine
from topo.broker import amqp_probe, drop
from topo.broker.amqp_probe import LiveAmqp
from topo.broker.client import ManagementClient
from topo.broker.live import LiveBroker
from topo.broker.port import Deleted, NoExactCount
from topo.errors import ApplyFailed, BrokerError, MessagesLost, UnsafeChange
from topo.model import Binding, Exchange, Queue, Topology
from topo.urls import URL, parse_amqp

pytestmark = pytest.mark.timeout(240)


def q(name: str) -> str:
    return quote(name, safe="")


class Watched(ManagementClient):
    """The live client, telling the test when apply sends its first DELETE whose path names ``watch``."""

    watch = ""
    seen = threading.Event()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if method == "DELETE" and self.watch and self.watch in path:
            self.seen.set()
        return super().request(method, path, **kwargs)


@pytest.fixture
def client(broker: Any) -> Iterator[Watched]:
    with Watched(broker.url, amqp_url=broker.amqp_url) as c:
        c.seen = threading.Event()
        yield c


def _race_topology(vhost: str, ttl: int, big_bindings: int) -> Topology:
    items: list[Exchange | Queue | Binding] = [
        Exchange("ex", "direct"),
        Queue("qq", type="quorum", arguments={"x-message-ttl": ttl}),
        Queue("big"),
        Binding("ex", "qq", routing_key="k"),
    ]
    items += [Binding("ex", "big", routing_key=f"b{i}") for i in range(big_bindings)]
    return Topology({vhost: build_vhost(vhost, *items)})


class Publisher(threading.Thread):
    """Publishes confirmed, mandatory messages to ``qq`` (by binding and by the default exchange, in turn)
    until stopped; ``kept`` holds the ids the broker confirmed without returning them."""

    def __init__(self, amqp_url: str, vhost: str, routes: tuple[tuple[str, str], ...], start: threading.Event) -> None:
        super().__init__(daemon=True)
        self.start_when = start
        self.url = amqp_url.rstrip("/") + "/" + q(vhost)
        self.routes = routes
        self.stop = threading.Event()
        self.kept: set[str] = set()
        self.refused = 0  # nacked or returned: the publisher knows these were not taken
        self.closed = 0  # times the broker closed the connection
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.start_when.wait(0.01):
                if self.stop.is_set():
                    return
            i = 0
            while not self.stop.is_set():
                i = self._publish_from(i)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _publish_from(self, i: int) -> int:
        """Publish until stopped or until the broker closes the connection (RabbitMQ 3.10 closes a channel
        that publishes to a quorum queue as it is deleted: a real publisher reconnects, and so does this)."""
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            while not self.stop.is_set():
                exchange, key = self.routes[i % len(self.routes)]
                ident = f"m{i}"
                i += 1
                try:
                    channel.basic_publish(
                        exchange, key, ident.encode(), pika.BasicProperties(message_id=ident), mandatory=True
                    )
                    self.kept.add(ident)
                except (pika.exceptions.NackError, pika.exceptions.UnroutableError):
                    self.refused += 1
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError):
            self.closed += 1  # the message in flight was not confirmed: the publisher knows
        finally:
            if connection.is_open:
                connection.close()
        return i


def _drain_ids(amqp_url: str, vhost: str, queue: str) -> list[str]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url.rstrip("/") + "/" + q(vhost)))
    try:
        channel = connection.channel()
        found: list[str] = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return found
            found.append(properties.message_id or body.decode())
    finally:
        connection.close()


BIG = "/q/big/"  # apply deletes big's 500 bindings: the window of issue 8.1
QQ = "/qq"  # apply cuts qq off (deletes its bindings), or deletes it


@pytest.mark.parametrize(
    ("watch", "routes"),
    [
        pytest.param(BIG, (("ex", "k"), ("", "qq")), id="from-other-deletes-by-binding-and-default-exchange"),
        pytest.param(BIG, (("", "qq"),), id="from-other-deletes-by-default-exchange"),
        pytest.param(QQ, (("ex", "k"), ("", "qq")), id="from-the-cut-by-binding-and-default-exchange"),
        pytest.param(QQ, (("ex", "k"),), id="from-the-cut-by-binding"),
    ],
)
def test_no_confirmed_message_is_lost_when_a_quorum_queue_is_replaced(
    client: Watched, broker: Any, vhost: str, mgmt: httpx.Client, watch: str, routes: tuple[tuple[str, str], ...]
) -> None:
    engine.apply(client, _race_topology(vhost, 60_000, 500))
    desired = _race_topology(vhost, 120_000, 0)
    plan = engine.plan(client, desired)
    assert ("replace", "qq") in [(c.action, c.address.name) for c in plan.changes if c.kind == "queue"]
    assert not plan.blocked

    client.watch = watch
    publisher = Publisher(broker.amqp_url, vhost, routes, client.seen)
    publisher.start()
    refused: UnsafeChange | None = None
    try:
        engine.apply(client, desired, plan)
    except UnsafeChange as exc:
        refused = exc
    finally:
        time.sleep(0.3)  # a few more publishes to the queue as it is now
        publisher.stop.set()
        publisher.join(30)
    assert publisher.error is None
    assert client.seen.is_set() and publisher.kept | {"x"} and (publisher.kept or publisher.refused)

    found = _drain_ids(broker.amqp_url, vhost, "qq")
    assert not [i for i in found if i.startswith("topo-fence-probe")]  # apply took its probes back
    lost = publisher.kept - set(found)
    outcome = "refused" if refused else "went through"
    assert not lost, f"{len(lost)} of {len(publisher.kept)} confirmed messages lost (apply {outcome})"

    if routes == (("ex", "k"),) and watch == QQ:
        # Publishes by binding cannot reach a queue cut off from its routes: apply goes through (what is
        # published meanwhile comes back to the mandatory publisher as unroutable, as it is told).
        assert refused is None
    if refused is not None:
        assert "qq" in refused.message
        # what was cut is restored: qq keeps its bindings, no fence stays, and the next apply converges
        assert {(b["source"], b["routing_key"]) for b in mgmt.get(f"/api/queues/{q(vhost)}/qq/bindings").json()
                if b["source"]} == {("ex", "k")}  # fmt: skip
        names = {p["name"] for p in mgmt.get(f"/api/policies/{q(vhost)}").json()}
        assert not [n for n in names if n.startswith("topo.fence")]
        engine.apply(client, desired)
    assert engine.plan(client, desired).empty
    assert mgmt.get(f"/api/queues/{q(vhost)}/qq").json()["arguments"]["x-message-ttl"] == 120_000


# -- the fence ----------------------------------------------------------------------------------------------


def _publish(channel: Any, queue: str) -> str:
    try:
        channel.basic_publish("", queue, b"x", mandatory=True)
        return "taken"
    except pika.exceptions.NackError:
        return "refused"


def _channel(amqp_url: str, vhost: str) -> tuple[Any, Any]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url.rstrip("/") + "/" + q(vhost)))
    channel = connection.channel()
    channel.confirm_delivery()
    return connection, channel


def _fence(client: ManagementClient, vhost: str, queue: str) -> drop.QueueDrop:
    """What an apply killed right after it fenced ``queue`` leaves: bindings cut, fence and probe in place."""
    plan = engine.plan(client, _race_topology(vhost, 120_000, 0))
    (change,) = [c for c in plan.changes if c.kind == "queue" and c.address.name == queue]
    live = LiveBroker(client)
    queue_drop = drop.QueueDrop(live, vhost, [change], drop.BindingIndex(live, vhost))
    queue_drop.prepare(cluster=None)
    assert not queue_drop.problems
    return queue_drop


def test_a_fence_left_by_a_killed_apply_is_removed_by_the_next_one_and_publishers_may_publish_again(
    client: Watched, broker: Any, vhost: str, mgmt: httpx.Client
) -> None:
    current = _race_topology(vhost, 60_000, 0)
    engine.apply(client, current)
    connection, publisher = _channel(broker.amqp_url, vhost)  # a publisher of qq from before the fence
    try:
        assert _publish(publisher, "qq") == "taken"
        assert len(_drain_ids(broker.amqp_url, vhost, "qq")) == 1
        _fence(client, vhost, "qq")  # ... and the apply is killed here: bindings cut, fence and probe left
        assert _publish(publisher, "qq") == "refused"  # the fence holds for every publisher

        # the next plan (of the files as they were: nothing else to do) removes the fence
        plan = engine.plan(client, current)
        fences = [c for c in plan.changes if c.kind == "policy"]
        assert [(c.action, c.address.name) for c in fences] == [("delete", "topo.fence.qq")]
        assert "interrupted apply" in fences[0].reasons[0]
        assert [(c.action, c.kind) for c in plan.changes if c not in fences] == [("create", "binding")]
        engine.apply(client, current, plan)
        assert not [p for p in mgmt.get(f"/api/policies/{q(vhost)}").json() if p["name"].startswith("topo.fence")]
        assert engine.plan(client, current).empty  # the cut binding is back too
        # the publisher the fence refused may publish again (RabbitMQ tells it so only because apply widened
        # the fence before removing it), and so may a new one; apply took its probe back out of the queue
        assert _publish(publisher, "qq") == "taken"
        other_connection, other = _channel(broker.amqp_url, vhost)
        assert _publish(other, "qq") == "taken"
        other_connection.close()
        assert len(_drain_ids(broker.amqp_url, vhost, "qq")) == 2
    finally:
        connection.close()


def test_a_replacement_goes_on_after_a_killed_apply_left_a_fence_and_its_probe(
    client: Watched, broker: Any, vhost: str, mgmt: httpx.Client
) -> None:
    engine.apply(client, _race_topology(vhost, 60_000, 0))
    _fence(client, vhost, "qq")  # killed after the fence: the queue holds apply's probe
    desired = _race_topology(vhost, 120_000, 0)
    plan = engine.plan(client, desired)
    (queue,) = [c for c in plan.changes if c.kind == "queue"]
    assert queue.messages == 1  # the probe: the plan cannot tell it from a message of someone else ...
    assert queue.blockers and "interrupted apply" in queue.blockers[0].message  # ... and says so
    engine.apply(client, desired)  # apply takes its probe back first, then counts again: nothing stops it
    assert engine.plan(client, desired).empty
    assert mgmt.get(f"/api/queues/{q(vhost)}/qq").json()["arguments"]["x-message-ttl"] == 120_000
    assert not [p for p in mgmt.get(f"/api/policies/{q(vhost)}").json() if p["name"].startswith("topo.fence")]


def test_a_fence_left_after_its_queue_was_deleted_goes_before_the_new_queue_is_declared(
    client: Watched, broker: Any, vhost: str, mgmt: httpx.Client
) -> None:
    engine.apply(client, _race_topology(vhost, 60_000, 0))
    _fence(client, vhost, "qq")
    mgmt.delete(f"/api/queues/{q(vhost)}/qq").raise_for_status()  # killed after the delete, before the rest
    desired = _race_topology(vhost, 120_000, 0)
    plan = engine.plan(client, desired)
    assert sorted((c.action, c.kind) for c in plan.changes) == [
        ("create", "binding"),
        ("create", "queue"),
        ("delete", "policy"),
    ]
    assert not plan.blocked
    engine.apply(client, desired, plan)
    assert engine.plan(client, desired).empty
    connection, channel = _channel(broker.amqp_url, vhost)  # the new queue is not fenced
    try:
        assert [_publish(channel, "qq") for _ in range(3)] == ["taken"] * 3
    finally:
        connection.close()


def test_a_fence_that_does_not_hold_stops_apply_and_apply_takes_its_probes_back(
    client: Watched, broker: Any, vhost: str, mgmt: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.apply(client, _race_topology(vhost, 60_000, 0))
    theirs = {"pattern": "^qq$", "apply-to": "queues", "priority": 5, "definition": {"max-length": 1000}}
    mgmt.put(f"/api/policies/{q(vhost)}/theirs", json=theirs).raise_for_status()
    desired = _race_topology(vhost, 120_000, 0)
    with monkeypatch.context() as patched:  # a fence below their policy: the broker never applies it
        patched.setattr(drop, "fence_priority", lambda _client, _vhost: 1)
        with pytest.raises(UnsafeChange) as info:
            engine.apply(client, desired)
    assert "its fence did not hold: the broker took a second probe" in info.value.message
    assert _drain_ids(broker.amqp_url, vhost, "qq") == []  # both probes taken back
    assert {(b["source"], b["routing_key"]) for b in mgmt.get(f"/api/queues/{q(vhost)}/qq/bindings").json()} == {
        ("", "qq"),
        ("ex", "k"),
    }
    assert [p["name"] for p in mgmt.get(f"/api/policies/{q(vhost)}").json()] == ["theirs"]
    # the real fence goes above every policy of the vhost: the replacement goes through
    engine.apply(client, desired)
    assert mgmt.get(f"/api/queues/{q(vhost)}/qq").json()["arguments"]["x-message-ttl"] == 120_000
    assert [p["name"] for p in mgmt.get(f"/api/policies/{q(vhost)}").json()] == ["theirs"]


def test_binding_deletions_read_the_vhosts_bindings_once(client: Watched, vhost: str) -> None:
    # Issue 8.5: each deletion listed every binding between its pair (3,000 on one pair: ~73 ms each)
    engine.apply(client, _race_topology(vhost, 60_000, 200))
    desired = _race_topology(vhost, 60_000, 0)
    plan = engine.plan(client, desired)
    assert plan.count("delete") == 200
    client.requests = client.writes = 0
    engine.apply(client, desired, plan)
    assert client.writes == 200
    assert client.requests - client.writes == 3  # the vhost's bindings once; the re-read after (2 requests)
    assert engine.plan(client, desired).empty


class FailingCreates(Watched):
    """The live client, but the broker "fails" the bulk create (a fault injected at the edge)."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if method == "POST" and path.startswith("/definitions/"):
            raise BrokerError("the broker refused POST /definitions: injected failure", status=500)
        return super().request(method, path, **kwargs)


def test_an_apply_that_fails_during_many_replacements_names_the_first_few(
    broker: Any, vhost: str, client: Watched
) -> None:
    # Issue 8.5: a failure after 890 replacements printed one 37 KB line listing every queue
    def topology(length: int) -> Topology:
        queues = [Queue(f"q{i:02}", arguments={"x-max-length": length}) for i in range(12)]
        return Topology({vhost: build_vhost(vhost, *queues)})

    engine.apply(client, topology(1))
    with FailingCreates(broker.url, amqp_url=broker.amqp_url) as failing, pytest.raises(ApplyFailed) as info:
        engine.apply(failing, topology(2))
    message = info.value.message
    assert "(deleted for replacement, not declared again yet: queue vhosts." in message
    assert "queues.q03, queue vhosts." in message and "q05" not in message
    assert "queues.q04 and 7 more: `topo plan` lists them all" in message
    assert len(info.value.not_declared) == 12 and info.value.not_declared[-1].endswith("queues.q11")
    plan = engine.plan(client, topology(2))
    assert plan.count("create") == 12  # as the message says
    engine.apply(client, topology(2), plan)
    assert engine.plan(client, topology(2)).empty


# -- the last instant: a quorum queue is counted again and deleted over AMQP (Queue.DeleteOk's count) ----------


class Recorded(LiveAmqp):
    """The live AMQP side, recording what its ``delete_if_counted`` returned (and, when ``before`` or
    ``after`` is set, running it around the passive declare that counts a queue just before its delete)."""

    def __init__(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(url)
        self.results: list[Deleted] = []
        self.before: Any = None  # called with the queue's name before its last count
        self.after: Any = None  # called with the queue's name between its last count and its delete
        self.armed = False
        real_declare = amqp_probe._declare

        async def declare(connection: Any, channel: Any, name: str, timeout: float) -> Any:
            if self.armed and self.before:
                self.before(name)
            result = await real_declare(connection, channel, name, timeout)
            if self.armed and self.after:
                self.after(name)
            return result

        monkeypatch.setattr(amqp_probe, "_declare", declare)

    def delete_if_counted(
        self, vhost: str, expected: Any, *, cluster: str | None = None
    ) -> tuple[list[Deleted], NoExactCount | None]:
        self.armed = True
        try:
            done, failed = super().delete_if_counted(vhost, expected, cluster=cluster)
        finally:
            self.armed = False
        self.results += done
        return done, failed


def _sneak_in(mgmt: httpx.Client, amqp_url: str, vhost: str, count: int) -> Any:
    """A fault for the last instant: take the fence away and publish ``count`` confirmed messages to the
    queue by the default exchange (what a publisher whose channel had not yet learnt of the fence does)."""

    def run(name: str) -> None:
        mgmt.delete(f"/api/policies/{q(vhost)}/{q('topo.fence.' + name)}").raise_for_status()
        connection, channel = _channel(amqp_url, vhost)
        try:
            assert [_publish(channel, name) for _ in range(count)] == ["taken"] * count
        finally:
            connection.close()

    return run


def test_a_quorum_queue_is_deleted_over_amqp_and_its_delete_counts_apply_probe_alone(
    client: Watched, broker: Any, vhost: str, mgmt: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the normal path on RabbitMQ itself: Queue.DeleteOk's message_count is the fenced queue's one probe
    recorded = Recorded(broker.amqp_url, monkeypatch)
    current = Topology(
        {vhost: build_vhost(vhost, Queue("qq", type="quorum", arguments={"x-message-ttl": 60_000}), Queue("cq"))}
    )
    engine.apply(client, current)
    desired = Topology(
        {
            vhost: build_vhost(
                vhost, Queue("qq", type="quorum", arguments={"x-message-ttl": 120_000}), Queue("cq", durable=False)
            )
        }
    )
    engine.apply(LiveBroker(client, amqp=recorded), desired)
    assert recorded.results == [Deleted("qq", (1, 0), deleted=True, message_count=1)]
    assert engine.plan(client, desired).empty  # classic cq went over HTTP with if-empty, as before
    assert not [p for p in mgmt.get(f"/api/policies/{q(vhost)}").json() if p["name"].startswith("topo.fence")]


def test_messages_that_land_between_the_last_count_and_the_delete_are_said_loudly(
    client: Watched, broker: Any, vhost: str, mgmt: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fault is injected on the real broker between apply's last count and its queue.delete: three
    # confirmed messages land in the queue. RabbitMQ deletes them with it; apply must say so, not exit 0.
    recorded = Recorded(broker.amqp_url, monkeypatch)
    recorded.after = _sneak_in(mgmt, broker.amqp_url, vhost, 3)
    engine.apply(client, _race_topology(vhost, 60_000, 0))
    desired = _race_topology(vhost, 120_000, 0)
    with pytest.raises(MessagesLost) as info:
        engine.apply(LiveBroker(client, amqp=recorded), desired)
    assert recorded.results == [Deleted("qq", (1, 0), deleted=True, message_count=4)]
    error = info.value
    assert error.dropped == 3
    assert error.message.startswith(
        "apply made every change, but RabbitMQ dropped 3 messages as it deleted a quorum queue apply replaced: "
        f"quorum queue 'qq' in vhost {vhost!r}: RabbitMQ deleted 3 messages with it besides apply's probe (its "
        "delete counted 4; apply's count an instant before found its probe alone)."
    ), error.message
    assert "publishing to the queue by name through the default exchange during the replacement" in error.message
    assert error.hint and "routing key: the queue's name" in error.hint
    # every change was made: the queue is replaced, its binding back, no fence left
    assert engine.plan(client, desired).empty
    assert mgmt.get(f"/api/queues/{q(vhost)}/qq").json()["arguments"]["x-message-ttl"] == 120_000
    assert not [p for p in mgmt.get(f"/api/policies/{q(vhost)}").json() if p["name"].startswith("topo.fence")]


def test_messages_that_land_before_the_last_count_stop_apply_and_stay(
    client: Watched, broker: Any, vhost: str, mgmt: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same three messages a moment earlier, just before the count apply takes right before the delete:
    # apply does not delete the queue, puts back what it cut, and the messages stay.
    recorded = Recorded(broker.amqp_url, monkeypatch)
    recorded.before = _sneak_in(mgmt, broker.amqp_url, vhost, 3)
    engine.apply(client, _race_topology(vhost, 60_000, 0))
    desired = _race_topology(vhost, 120_000, 0)
    with pytest.raises(UnsafeChange) as info:
        engine.apply(LiveBroker(client, amqp=recorded), desired)
    assert recorded.results == [Deleted("qq", (4, 0))]
    assert "queue 'qq' in vhost" in info.value.message
    assert "3 messages arrived after apply counted it (apply's count just before the delete)" in info.value.message
    assert len(_drain_ids(broker.amqp_url, vhost, "qq")) == 3  # apply's probe taken back, theirs all there
    assert mgmt.get(f"/api/queues/{q(vhost)}/qq").json()["arguments"]["x-message-ttl"] == 60_000
    assert {b["source"] for b in mgmt.get(f"/api/queues/{q(vhost)}/qq/bindings").json()} == {"", "ex"}
    recorded.before = None
    engine.apply(client, desired)  # drained: the next apply goes through
    assert engine.plan(client, desired).empty


class WrongAtTheDelete(LiveAmqp):
    """The live AMQP side, whose quorum queue deletes log in with a wrong password (``wrong``)."""

    def __init__(self, url: str, wrong: str) -> None:
        super().__init__(url)
        self.wrong = LiveAmqp(wrong)

    def delete_if_counted(
        self, vhost: str, expected: Any, *, cluster: str | None = None
    ) -> tuple[list[Deleted], NoExactCount | None]:
        return self.wrong.delete_if_counted(vhost, expected, cluster=cluster)


def test_when_amqp_fails_at_the_delete_the_quorum_queue_stays_and_apply_says_why(
    client: Watched, broker: Any, vhost: str, mgmt: httpx.Client
) -> None:
    parsed = parse_amqp(broker.amqp_url)
    wrong = URL(parsed.scheme, parsed.host, parsed.port, "/").with_credentials("guest", "not-the-password").unparse()
    engine.apply(client, _race_topology(vhost, 60_000, 0))
    desired = _race_topology(vhost, 120_000, 0)
    with pytest.raises(UnsafeChange) as info:
        engine.apply(LiveBroker(client, amqp=WrongAtTheDelete(broker.amqp_url, wrong)), desired)
    assert (
        "AMQP refused the login of user 'guest' at amqp://***@" in info.value.message
        and "so apply could not delete it over AMQP and count what went with it" in info.value.message
        and "not-the-password" not in info.value.message
    ), info.value.message
    assert mgmt.get(f"/api/queues/{q(vhost)}/qq").json()["arguments"]["x-message-ttl"] == 60_000
    assert _drain_ids(broker.amqp_url, vhost, "qq") == []  # apply's probe taken back
    assert not [p for p in mgmt.get(f"/api/policies/{q(vhost)}").json() if p["name"].startswith("topo.fence")]
    engine.apply(client, desired)
    assert engine.plan(client, desired).empty
