"""The safety check counts a queue's messages exactly, over AMQP, not only from the Management API's
statistics (which lag up to ~5 s): a message published an instant before a plan is seen."""

from __future__ import annotations

from typing import Any

import httpx
import pika
import pytest

from topo import engine
from topo.broker.amqp_probe import amqp_url_for, exact_usage
from topo.broker.client import ManagementClient, enc
from topo.errors import UnsafeChange
from topo.model import Queue, Topology, VHost


def _vhost_url(amqp_url: str, vhost: str) -> str:
    return amqp_url.rstrip("/") + "/" + enc(vhost)


def _publish_now(amqp_url: str, vhost: str, queue: str, count: int) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(_vhost_url(amqp_url, vhost)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for i in range(count):
            channel.basic_publish("", queue, f"m{i}".encode(), mandatory=True)
    finally:
        connection.close()


def _topology(vhost: str, **arguments: Any) -> Topology:
    return Topology({vhost: VHost(vhost, queues={"q": Queue("q", type="quorum", arguments=arguments)})})


def test_amqp_url_beside_the_management_url() -> None:
    assert amqp_url_for("http://u:p%2F@rabbit:15672") == "amqp://u:p%2F@rabbit:5672/"
    assert amqp_url_for("https://rabbit") == "amqps://rabbit:5671/"
    assert amqp_url_for("http://[::1]:15672") == "amqp://[::1]:5672/"


def test_exact_counts_see_a_message_published_an_instant_ago(broker: Any, vhost: str, mgmt: httpx.Client) -> None:
    with ManagementClient(broker.url, amqp_url=broker.amqp_url) as client:
        engine.apply(client, _topology(vhost))
        _publish_now(broker.amqp_url, vhost, "q", 3)
        usage = exact_usage(broker.amqp_url, vhost, ["q", "missing"])
        assert usage == {"q": (3, 0)}
        # a changed argument forces a replacement; the plan knows at once that it would drop 3 messages
        plan = engine.plan(client, _topology(vhost, **{"x-delivery-limit": 3}))
        (change,) = [c for c in plan.changes if c.kind == "queue"]
        assert change.action == "replace"
        assert change.messages == 3
        assert client.exact_counts
        writes = client.writes
        with pytest.raises(UnsafeChange, match="holds 3 messages"):
            engine.apply(client, _topology(vhost, **{"x-delivery-limit": 3}), plan)
        assert client.writes == writes
    assert mgmt.get(f"/api/queues/{enc(vhost)}/q").json()["arguments"] == {"x-queue-type": "quorum"}


def test_unreachable_amqp_falls_back_to_statistics(broker: Any, vhost: str) -> None:
    with ManagementClient(broker.url, amqp_url="amqp://guest:guest@127.0.0.1:1/") as client:
        engine.apply(client, _topology(vhost))
        plan = engine.plan(client, _topology(vhost, **{"x-delivery-limit": 3}))
        assert [c.action for c in plan.changes if c.kind == "queue"] == ["replace"]
        assert not client.exact_counts


def test_another_cluster_on_the_amqp_port_is_not_trusted(broker: Any, vhost: str) -> None:
    with ManagementClient(broker.url) as client:
        engine.apply(client, _topology(vhost))
    assert exact_usage(broker.amqp_url, vhost, ["q"], cluster="some-other-cluster") is None
    assert exact_usage(broker.amqp_url, vhost, ["q"]) == {"q": (0, 0)}
