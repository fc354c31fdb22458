"""A consumer whose queue is deleted (``Basic.Cancel`` from the broker, as ``topo apply --migrate`` does to
the old queue's consumers) subscribes again to the queue by name once it is declared again; with
``resubscribe=False`` the stream ends with ConsumerCancelled instead."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rt_helpers import declare, make_topology, run

from topo.model import Queue
from topo.runtime import ConsumerCancelled, connect
from topo.runtime.connection import Connection
from topo.runtime.consume import MessageStream
from topo.runtime.url import parse_url


async def _delete_then_declare(url: str, vhost: str, queue: str, *, again: bool) -> None:
    conn = await Connection(parse_url(url).with_vhost(vhost), reconnect=False).open()
    try:
        ch = await conn.channel()
        await ch.queue_delete(queue)
        if again:
            await asyncio.sleep(0.3)  # the consumer looks for it meanwhile
            await ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
            await ch.publish("", queue, b"on the new queue")
    finally:
        await conn.close()


def test_a_subscription_goes_on_with_the_queue_declared_again(amqp_url: str, vhost: str) -> None:
    topology = make_topology(vhost, queues=[Queue("jobs")])

    async def scenario() -> None:
        await declare(topology, vhost, amqp_url)
        seen: list[bytes] = []
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            subscription = await client.subscribe("jobs", lambda m: seen.append(m.body), verify=False)
            await _delete_then_declare(amqp_url, vhost, "jobs", again=True)
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.05)
            assert seen == [b"on the new queue"]
            assert subscription.resumed == 1 and subscription.consuming

    run(scenario())


def test_without_resubscribe_the_stream_ends_with_consumer_cancelled(amqp_url: str, vhost: str) -> None:
    topology = make_topology(vhost, queues=[Queue("jobs")])

    async def scenario() -> None:
        await declare(topology, vhost, amqp_url)
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            stream: Any = MessageStream(client, "jobs", 10, resubscribe=False)
            async with stream:
                await _delete_then_declare(amqp_url, vhost, "jobs", again=False)
                with pytest.raises(ConsumerCancelled):
                    await asyncio.wait_for(stream.__anext__(), 10)

    run(scenario())
