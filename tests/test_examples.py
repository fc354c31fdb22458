"""Every example in topologies/ is applied to a real broker, and messages published through the broker
land exactly where the file says they will (and nowhere else)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from support import drain, publish, wait_until

import topo
from topo import engine
from topo.broker.client import ManagementClient, enc
from topo.model import Topology
from topo.routing import route

EXAMPLES = Path(__file__).resolve().parent.parent / "topologies"


def _example_in(vhost: str, file: str, declared_vhost: str) -> Topology:
    """The example's vhost, renamed to the test's own vhost."""
    topology = topo.load(EXAMPLES / file)
    return Topology({vhost: replace(topology.vhost(declared_vhost), name=vhost)}, name=topology.name)


def _where(mgmt: httpx.Client, vhost: str, queues: list[str], body: str) -> set[str]:
    return {q for q in queues if body in drain(mgmt, vhost, q)}


# (file, declared vhost, exchange, routing key, headers, queues the message must reach)
CASES = [
    ("pubsub.yaml", "shop", "events", "order.created", {}, {"billing", "analytics"}),
    ("pubsub.yaml", "shop", "events", "order.paid", {}, {"billing", "shipping", "analytics"}),
    ("pubsub.yaml", "shop", "events", "order.refunded", {}, {"billing", "analytics", "customer-emails"}),
    ("pubsub.yaml", "shop", "events", "customer.address.changed", {}, {"analytics", "customer-emails"}),
    ("pubsub.yaml", "shop", "events", "invoice", {}, {"analytics"}),
    ("iot.yaml", "iot", "sensor-data", "sensor.temperature.line1", {}, {"analytics", "audit-log"}),
    ("iot.yaml", "iot", "sensor-data", "door.opened", {}, {"audit-log"}),
    ("iot.yaml", "iot", "uploads", "", {"format": "pdf", "kind": "report"}, {"pdf-jobs"}),
    ("iot.yaml", "iot", "uploads", "", {"format": "pdf", "kind": "invoice"}, {"unrouted"}),
    ("iot.yaml", "iot", "uploads", "", {}, {"unrouted"}),
    ("iot.yaml", "iot", "dlx", "orders.failed", {}, {"dead-letters"}),
    ("iot.yaml", "iot", "", "tasks", {}, {"tasks"}),
    ("work-queue.yaml", "jobs", "", "thumbnails", {}, {"thumbnails"}),
    ("work-queue.yaml", "jobs", "jobs.dlx", "thumbnails", {}, {"thumbnails.failed"}),
    ("rpc.yaml", "rpc", "", "rpc_queue", {}, {"rpc_queue"}),
    ("dead-lettering.yaml", "orders", "orders", "created", {}, {"awaiting-payment"}),
    ("dead-lettering.yaml", "orders", "orders", "cancelled", {}, set()),
]


def test_every_example_is_covered() -> None:
    files = {p.name for p in EXAMPLES.glob("*.yaml")}
    assert files == {case[0] for case in CASES} | {ACCESS, LINKS}


@pytest.fixture
def client(broker: Any) -> Any:
    with ManagementClient(broker.url) as c:
        yield c


@pytest.mark.parametrize("file", sorted({case[0] for case in CASES}))
def test_example_applies_and_converges(file: str, vhost: str, client: ManagementClient) -> None:
    declared = next(case[1] for case in CASES if case[0] == file)
    desired = _example_in(vhost, file, declared)
    applied = engine.apply(client, desired)
    assert not applied.empty
    writes = client.writes
    assert engine.plan(client, desired).empty
    assert engine.apply(client, desired).empty
    assert client.writes == writes  # nothing to do sends nothing


@pytest.mark.parametrize(("file", "declared", "exchange", "key", "headers", "expected"), CASES)
def test_messages_land_where_the_file_says(
    file: str,
    declared: str,
    exchange: str,
    key: str,
    headers: dict[str, Any],
    expected: set[str],
    vhost: str,
    client: ManagementClient,
    mgmt: httpx.Client,
) -> None:
    desired = _example_in(vhost, file, declared)
    engine.apply(client, desired)
    body = json.dumps({"case": [exchange, key, headers]})
    routed = publish(mgmt, vhost, exchange, key, body=body, headers=headers)
    assert routed == bool(expected)
    assert _where(mgmt, vhost, sorted(desired.vhosts[vhost].queues), body) == expected


def test_expired_orders_reach_the_dead_letter_queue(vhost: str, client: ManagementClient, mgmt: httpx.Client) -> None:
    engine.apply(client, _example_in(vhost, "dead-lettering.yaml", "orders"))
    assert publish(mgmt, vhost, "orders", "created", body="order-42")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        letters = drain(mgmt, vhost, "payment-timeouts")
        if letters:
            assert letters == ["order-42"]
            assert drain(mgmt, vhost, "awaiting-payment") == []
            return
        time.sleep(0.5)
    pytest.fail("the expired order never reached payment-timeouts")


def test_rejected_thumbnail_job_is_dead_lettered(vhost: str, client: ManagementClient, mgmt: httpx.Client) -> None:
    engine.apply(client, _example_in(vhost, "work-queue.yaml", "jobs"))
    assert publish(mgmt, vhost, "", "thumbnails", body="job-7")
    response = mgmt.post(
        f"/api/queues/{enc(vhost)}/thumbnails/get",
        json={"count": 1, "ackmode": "reject_requeue_false", "encoding": "auto"},
    )
    assert [m["payload"] for m in response.json()] == ["job-7"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        letters = drain(mgmt, vhost, "thumbnails.failed")
        if letters:
            assert letters == ["job-7"]
            return
        time.sleep(0.2)
    pytest.fail("the rejected job never reached thumbnails.failed")


def test_retry_delay_queue_returns_the_message(vhost: str, client: ManagementClient, mgmt: httpx.Client) -> None:
    desired = _example_in(vhost, "work-queue.yaml", "jobs")
    assert desired.vhosts[vhost].queues["thumbnails.retry.1"].arguments["x-message-ttl"] == 5000
    engine.apply(client, desired)
    assert publish(mgmt, vhost, "", "thumbnails.retry.1", body="job-8")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        back = drain(mgmt, vhost, "thumbnails")
        if back:
            assert back == ["job-8"]
            return
        time.sleep(0.5)
    pytest.fail("the delayed job never came back to thumbnails")


# -- access-control.yaml: who may do what on pubsub.yaml's shop vhost ----------------------------------------

ACCESS = "access-control.yaml"


def _access_in(vhost: str, tag: str) -> Topology:
    """pubsub.yaml and access-control.yaml together, the vhost renamed to the test's own and every user to
    ``<name>-<tag>`` (users are broker-wide: other tests, and the docs' samples, use the names as written)."""
    both = topo.load([EXAMPLES / "pubsub.yaml", EXAMPLES / ACCESS])
    renamed = Topology({vhost: replace(both.vhost("shop"), name=vhost)}, name=both.name)
    renamed.users = {f"{name}-{tag}": replace(user, name=f"{name}-{tag}") for name, user in both.users.items()}
    renamed.permissions = {
        (f"{user}-{tag}", vhost): replace(p, user=f"{user}-{tag}", vhost=vhost)
        for (user, shop), p in both.permissions.items()
    }
    renamed.topic_permissions = {
        (f"{user}-{tag}", vhost): replace(p, user=f"{user}-{tag}", vhost=vhost)
        for (user, shop), p in both.topic_permissions.items()
    }
    assert {shop for _user, shop in [*both.permissions, *both.topic_permissions]} == {"shop"}
    return renamed


def _password(user: str) -> str:
    return (EXAMPLES / "secrets" / f"{user}.password").read_text().removesuffix("\n")


def test_the_access_control_example_lets_each_service_do_its_job_and_nothing_else(
    vhost: str, client: ManagementClient, mgmt: httpx.Client, broker: Any
) -> None:
    import secrets as tokens

    import pika
    import pika.exceptions

    from topo.urls import parse_amqp

    tag = tokens.token_hex(3)
    desired = _access_in(vhost, tag)
    assert set(desired.users) == {
        f"{u}-{tag}" for u in ("orders", "billing", "shipping", "analytics", "emails", "monitoring")
    }
    try:
        engine.apply(client, desired)
        writes = client.writes
        assert engine.apply(client, desired).empty and client.writes == writes
        amqp = parse_amqp(broker.amqp_url)

        def connect(user: str) -> Any:
            credentials = pika.PlainCredentials(f"{user}-{tag}", _password(user))
            return pika.BlockingConnection(
                pika.ConnectionParameters(amqp.host, amqp.port, vhost, credentials, connection_attempts=1)
            )

        def refused(action: Any) -> bool:
            try:
                action()
            except pika.exceptions.ChannelClosedByBroker as exc:
                return exc.reply_code == 403
            return False

        orders = connect("orders")
        channel = orders.channel()
        channel.confirm_delivery()
        channel.basic_publish("events", "order.paid", b"paid")  # routed to billing, shipping, analytics
        assert refused(lambda: channel.basic_publish("events", "customer.created", b"x"))  # topic permission
        channel = orders.channel()
        assert refused(lambda: channel.basic_get("billing"))  # it reads nothing
        orders.close()
        for user, queue in (("billing", "billing"), ("shipping", "shipping"), ("analytics", "analytics")):
            connection = connect(user)
            channel = connection.channel()
            assert channel.basic_get(queue, auto_ack=True)[2] == b"paid"
            assert refused(lambda c=channel: c.basic_get("customer-emails"))  # not its queue
            channel = connection.channel()
            channel.confirm_delivery()
            assert refused(lambda c=channel: c.basic_publish("events", "order.paid", b"x"))  # it publishes nothing
            connection.close()
        emails = connect("emails")
        channel = emails.channel()
        assert channel.basic_get("customer-emails", auto_ack=True)[0] is None  # allowed; empty
        assert refused(lambda: channel.queue_declare("its-own-queue"))  # configure: nothing
        emails.close()
        # monitoring: no AMQP connection at all (max-connections 0), but the HTTP API shows it the vhost
        try:
            connect("monitoring").close()
        except pika.exceptions.AMQPConnectionError:
            pass
        else:
            pytest.fail("the monitoring user opened an AMQP connection")
        auth = (f"monitoring-{tag}", _password("monitoring"))
        listed = httpx.get(f"{client.public_url}/api/queues/{enc(vhost)}", auth=auth, timeout=30)
        assert listed.status_code == 200 and {q["name"] for q in listed.json()} >= {"billing", "shipping"}
    finally:
        for name in desired.users:
            mgmt.delete(f"/api/users/{enc(name)}")


# -- links.yaml: a shovel and a federation between two vhosts of the broker ------------------------------

LINKS = "links.yaml"


def _links_in(legacy: str, commerce: str) -> Topology:
    """links.yaml with its vhosts renamed to the test's own; the URIs point at them (the variables the file
    reads, as a user moving the legacy vhost elsewhere sets them)."""
    topology = topo.load(
        EXAMPLES / LINKS, environ={"LEGACY_URI": f"amqp:///{legacy}", "COMMERCE_URI": f"amqp:///{commerce}"}
    )
    return Topology(
        {
            legacy: replace(topology.vhost("legacy"), name=legacy),
            commerce: replace(topology.vhost("commerce"), name=commerce),
        },
        name=topology.name,
    )


@pytest.fixture
def commerce(vhost: str, broker: Any, mgmt: httpx.Client) -> Any:
    """A second vhost beside ``vhost``, for links.yaml's commerce (apply creates it)."""
    name = vhost + "-commerce"
    yield name
    mgmt.delete(f"/api/vhosts/{quote(name, safe='')}")


def test_the_links_example_moves_legacy_orders_and_federates_the_catalogue(
    vhost: str, commerce: str, client: ManagementClient, mgmt: httpx.Client
) -> None:
    desired = _links_in(vhost, commerce)
    engine.apply(client, desired)
    writes = client.writes
    assert engine.apply(client, desired).empty and client.writes == writes

    # what `topo route` says, the broker does: the shovel takes the order on to commerce with its own key
    offline = route(desired, vhost, "orders", "order")
    assert [(f.link.kind, f.result and f.result.queues) for f in offline.forwarded] == [("shovel", ("fulfilment",))]
    assert publish(mgmt, vhost, "orders", "order", body="order-1")
    wait_until(lambda: "order-1" in drain(mgmt, commerce, "fulfilment"), what="the shovel to move the order")
    assert drain(mgmt, vhost, "orders.outbox") == []

    # the federation link binds legacy's catalogue once it runs: until then a message to it routes nowhere
    offline = route(desired, vhost, "catalogue", "product.created")
    assert [(f.link.kind, f.result and f.result.queues) for f in offline.forwarded] == [
        ("federation", ("search-index",))
    ]
    wait_until(lambda: publish(mgmt, vhost, "catalogue", "product.warm-up", body="warm-up"), what="the federation link")
    assert publish(mgmt, vhost, "catalogue", "product.created", body="product-7")
    wait_until(lambda: "product-7" in drain(mgmt, commerce, "search-index"), what="the federated event")
