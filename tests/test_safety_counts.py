"""The safety check counts a queue's messages exactly, over AMQP, not only from the Management API's
statistics (which lag up to ~5 s): a message published an instant before a plan is seen."""

from __future__ import annotations

from typing import Any

import httpx
import pika
import pytest

from topo import engine
from topo.broker.amqp_probe import exact_usage
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


UNREACHABLE = "amqp://guest:guest@127.0.0.1:1/"


def test_without_amqp_a_quorum_queue_is_not_dropped_on_statistics(broker: Any, vhost: str, mgmt: httpx.Client) -> None:
    # The statistics lag, and RabbitMQ has no if-empty for quorum queues: nothing would stop a message
    # published meanwhile from being dropped with the queue. The plan says so; apply refuses.
    with ManagementClient(broker.url, amqp_url=UNREACHABLE) as client:
        engine.apply(client, _topology(vhost))
        plan = engine.plan(client, _topology(vhost, **{"x-delivery-limit": 3}))
        (change,) = [c for c in plan.changes if c.kind == "queue"]
        assert change.action == "replace" and change.messages == 0
        assert not client.exact_counts
        assert any("statistics" in w and "--amqp-url" in w for w in change.warnings)
        writes = client.writes
        with pytest.raises(UnsafeChange, match="without an exact message count: quorum queue 'q'") as info:
            engine.apply(client, _topology(vhost, **{"x-delivery-limit": 3}), plan)
        assert "--amqp-url" in (info.value.hint or "")
        assert client.writes == writes
    assert mgmt.get(f"/api/queues/{enc(vhost)}/q").json()["arguments"] == {"x-queue-type": "quorum"}
    # with AMQP reachable, the same plan goes through
    with ManagementClient(broker.url, amqp_url=broker.amqp_url) as client:
        engine.apply(client, _topology(vhost, **{"x-delivery-limit": 3}))
        assert client.exact_counts
    assert mgmt.get(f"/api/queues/{enc(vhost)}/q").json()["arguments"]["x-delivery-limit"] == 3


def test_without_amqp_a_classic_queue_is_dropped_under_the_brokers_if_empty_guard(broker: Any, vhost: str) -> None:
    def classic(**arguments: Any) -> Topology:
        return Topology({vhost: VHost(vhost, queues={"c": Queue("c", arguments=arguments)})})

    with ManagementClient(broker.url, amqp_url=UNREACHABLE) as client:
        engine.apply(client, classic())
        plan = engine.plan(client, classic(**{"x-max-length": 10}))
        (change,) = [c for c in plan.changes if c.kind == "queue"]
        assert change.action == "replace" and change.warnings
        engine.apply(client, classic(**{"x-max-length": 10}), plan)
        assert engine.plan(client, classic(**{"x-max-length": 10})).empty


def test_another_cluster_on_the_amqp_port_is_not_trusted(broker: Any, vhost: str) -> None:
    with ManagementClient(broker.url) as client:
        engine.apply(client, _topology(vhost))
    assert exact_usage(broker.amqp_url, vhost, ["q"], cluster="some-other-cluster") is None
    assert exact_usage(broker.amqp_url, vhost, ["q"]) == {"q": (0, 0)}


def test_a_stream_is_never_dropped(broker: Any, vhost: str, mgmt: httpx.Client) -> None:
    # Over AMQP the broker answers 0 messages for a stream, and the statistics lag: a stream that got its
    # first messages a moment ago would look empty. The plan says apply will refuse; apply refuses.
    def stream(**arguments: Any) -> Topology:
        return Topology({vhost: VHost(vhost, queues={"s": Queue("s", type="stream", arguments=arguments)})})

    with ManagementClient(broker.url, amqp_url=broker.amqp_url) as client:
        engine.apply(client, stream())
        _publish_now(broker.amqp_url, vhost, "s", 2)
        assert exact_usage(broker.amqp_url, vhost, ["s"]) == {"s": (0, 0)}  # why a stream is not countable
        plan = engine.plan(client, stream(**{"x-max-age": "1D"}))
        (change,) = [c for c in plan.changes if c.kind == "queue"]
        assert change.action == "replace"
        assert any("cannot be counted exactly" in w for w in change.warnings)
        writes = client.writes
        with pytest.raises(UnsafeChange, match="refusing to replace a stream") as info:
            engine.apply(client, stream(**{"x-max-age": "1D"}), plan)
        assert "policy" in (info.value.hint or "")
        assert client.writes == writes
    assert mgmt.get(f"/api/queues/{enc(vhost)}/s").json()["arguments"] == {"x-queue-type": "stream"}
