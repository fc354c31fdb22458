"""The synchronous facade."""

from __future__ import annotations

import time

from rt_helpers import declare, make_topology, run

from topo.model import Queue
from topo.runtime import Message, connect_sync


def test_sync_publish_consume_subscribe_and_rpc(amqp_url: str, vhost: str) -> None:
    topology = make_topology(vhost, queues=[Queue("inbox"), Queue("rpc"), Queue("jobs")])
    run(declare(topology, vhost, amqp_url))
    with connect_sync(topology, vhost=vhost, url=amqp_url) as client:
        client.publish_many("", [("inbox", {"i": i}) for i in range(10)])
        got = []
        for m in client.consume("inbox", count=10, timeout=5):
            got.append(m.json()["i"])
            m.ack()
        assert got == list(range(10))
        assert client.get("inbox", timeout=0.3) is None

        client.serve("rpc", lambda m: {"echo": m.json()})
        assert client.rpc("rpc", [1, 2]) == {"echo": [1, 2]}

        seen: list[str] = []
        client.subscribe("jobs", lambda m: seen.append(m.text))
        client.publish("", "jobs", "work")
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == ["work"]
    assert isinstance(Message, type)
