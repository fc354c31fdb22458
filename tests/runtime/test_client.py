"""The topology-aware client against the broker: routing checks, JSON, persistence, consume, subscribe
with dead-lettering and retries, RPC."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from rt_helpers import declare, depth, make_topology, run, wait_until

import topo
from topo.model import Binding, Exchange, Queue, Topology
from topo.runtime import (
    Message,
    NotDeclared,
    RemoteError,
    RpcTimeout,
    UnroutableError,
    connect,
)


def layout(vhost: str) -> Topology:
    return make_topology(
        vhost,
        exchanges=[Exchange("sensor-data", "topic"), Exchange("dlx", "direct"), Exchange("work", "direct")],
        queues=[
            Queue(
                "analytics",
                arguments={"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "analytics.failed"},
                prefetch=7,
            ),
            Queue("dead-letters"),
            Queue("tasks"),
            Queue("transient", durable=False),
            Queue("rpc_queue"),
            Queue(
                "retrying",
                arguments={"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "retrying.failed"},
                retry_delays=(200, 400),
            ),
            Queue(
                "retrying.retry.1",
                arguments={"x-message-ttl": 200, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "retrying"},
            ),
            Queue(
                "retrying.retry.2",
                arguments={"x-message-ttl": 400, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "retrying"},
            ),
        ],
        bindings=[
            Binding("sensor-data", "analytics", routing_key="sensor.#"),
            Binding("sensor-data", "transient", routing_key="transient.#"),
            Binding("dlx", "dead-letters", routing_key="analytics.failed"),
            Binding("dlx", "dead-letters", routing_key="retrying.failed"),
            Binding("work", "tasks", routing_key="task"),
        ],
    )


@pytest.fixture
def topology(amqp_url: str, vhost: str) -> Topology:
    t = layout(vhost)
    run(declare(t, vhost, amqp_url))
    return t


def test_unknown_names_fail_before_any_io() -> None:
    t = layout("v")
    client = connect(t, vhost="v", url="amqp://guest:guest@127.0.0.1:1/")  # nothing listens there
    with pytest.raises(NotDeclared, match="exchange 'sensor-dat' is not declared") as info:
        client.publisher("sensor-dat")
    assert info.value.hint and "sensor-data" in info.value.hint
    with pytest.raises(NotDeclared, match="queue 'nope'"):
        client.consume("nope")
    with pytest.raises(topo.errors.UsageError, match="vhost 'other' is not declared"):
        connect(t, vhost="other")


def test_a_routing_key_longer_than_a_short_string_is_refused_before_any_io() -> None:
    # AMQP 0-9-1 carries a routing key as a short string (at most 255 bytes of UTF-8); the codec would fail
    # half-way through framing with a bare ValueError
    from topo.runtime import InvalidRoutingKey

    client = connect(layout("v"), vhost="v", url="amqp://guest:guest@127.0.0.1:1/")  # nothing listens there
    sensors = client.publisher("sensor-data")
    key = "sensor." + "é" * 125  # matches "sensor.#", 257 bytes
    with pytest.raises(
        InvalidRoutingKey, match="the routing key is 257 bytes of UTF-8; AMQP 0-9-1 carries at most 255"
    ):
        run(sensors.publish(key, b"x"))
    with pytest.raises(InvalidRoutingKey, match="the routing key is 257 bytes"):
        sensors.route(key)
    with pytest.raises(InvalidRoutingKey, match="not UTF-8 text"):
        sensors.route("sensor.\udcff")  # a byte that is not UTF-8, from a command line
    assert isinstance(InvalidRoutingKey("x"), ValueError)  # what the codec raised so far


def test_send_refuses_an_over_long_routing_key_and_the_channel_stays_usable(topology: Topology, amqp_url: str) -> None:
    from topo.runtime import InvalidRoutingKey

    async def main() -> None:
        async with connect(topology, vhost=next(iter(topology.vhosts)), url=amqp_url) as client:
            sensors = await client.publisher("sensor-data").ready()
            with pytest.raises(InvalidRoutingKey):
                sensors.send("sensor." + "x" * 249, b"x")  # 256 bytes
            await sensors.send("sensor." + "x" * 248, b"x")  # 255 bytes: fine, and confirmed
            await sensors.publish("sensor.ok", b"y")

    run(main())


def test_topo_connect_is_the_runtime_connect() -> None:
    assert topo.connect is connect


def test_publish_checks_routing_offline_then_the_broker_returns(topology: Topology, amqp_url: str) -> None:
    async def main() -> None:
        async with connect(topology, vhost=next(iter(topology.vhosts)), url=amqp_url) as client:
            sensors = client.publisher("sensor-data")
            with pytest.raises(UnroutableError, match="declared topology drops") as info:
                await sensors.publish("temperature.line1", {"temp": 1})
            assert not info.value.returned
            # the layout says it routes, but the broker lacks the binding: Basic.Return
            client.topology.vhost(client.vhost.name).add_binding(Binding("sensor-data", "analytics", routing_key="x.*"))
            sensors2 = client.publisher("sensor-data", check_routing=False)
            sensors2._routes.clear()
            with pytest.raises(UnroutableError, match=r"broker returned.*312 NO_ROUTE") as info:
                await sensors2.publish("x.y", {"temp": 1})
            assert info.value.returned
            # opting out of the check sends it anyway; the broker returns it
            with pytest.raises(UnroutableError, match="broker returned"):
                await sensors.publish("nowhere", b"x", check_routing=False)
            await sensors.publish("sensor.ok", {"temp": 2})  # the channel is still fine

    run(main())


def test_json_message_id_and_persistence(topology: Topology, amqp_url: str, vhost: str) -> None:
    async def main() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            sensors = client.publisher("sensor-data")
            await sensors.publish("sensor.temperature.line1", {"temp": 75.3}, headers={"site": "a"})
            await sensors.publish("transient.x", "plain text")
            await sensors.publish("sensor.raw", b"\x00\x01", message_id="mine", correlation_id="c")
            async with client.consume("analytics") as messages:
                m1 = await messages.get(5)
                m2 = await messages.get(5)
                assert m1 is not None and m2 is not None
                assert m1.json() == {"temp": 75.3} and m1.decoded() == {"temp": 75.3}
                assert m1.properties.content_type == "application/json"
                assert m1.properties.delivery_mode == 2  # a durable queue
                assert m1.message_id and m1.headers == {"site": "a"}
                assert m2.body == b"\x00\x01" and m2.message_id == "mine" and m2.correlation_id == "c"
                assert m2.properties.content_type is None
                await m1.ack()
                await m2.ack()
            async with client.consume("transient") as messages:
                m3 = await messages.get(5)
                assert m3 is not None and m3.decoded() == "plain text"
                assert m3.properties.delivery_mode == 1  # only a non-durable queue: transient
                await m3.ack()

    run(main())


def test_consume_uses_the_declared_prefetch(topology: Topology, amqp_url: str, vhost: str, mgmt: httpx.Client) -> None:
    async def main() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            pub = client.publisher("sensor-data")
            await pub.ready()
            for i in range(20):
                pub.send("sensor.n", {"i": i})
            await pub.flush()
            async with client.consume("analytics") as messages:
                await wait_until(lambda: messages._items.qsize() >= 7, what="the first 7 deliveries")
                await asyncio.sleep(0.2)  # deliberate: time for an 8th delivery to arrive, if the prefetch let it
                assert messages._items.qsize() == 7  # Queue.prefetch from the topology
                seen = []
                async for m in messages:
                    seen.append(m.json()["i"])
                    await m.ack()
                    if len(seen) == 20:
                        break
                assert seen == list(range(20))
            metrics = client.metrics()
            assert metrics.published == metrics.confirmed == 20
            assert metrics.delivered >= 20 and metrics.reconnections == 0 and metrics.blocked is None

    run(main())


def test_subscribe_dead_letters_on_failure_when_the_queue_has_a_dlx(
    topology: Topology, amqp_url: str, vhost: str
) -> None:
    async def main() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:

            def handler(m: Message) -> None:
                if m.json()["ok"] is False:
                    raise ValueError("bad reading")

            sub = await client.subscribe("analytics", handler)
            await client.publish("sensor-data", "sensor.a", {"ok": True})
            await client.publish("sensor-data", "sensor.b", {"ok": False})
            async with client.consume("dead-letters") as dead:
                m = await dead.get(10)
                assert m is not None and m.json() == {"ok": False}
                assert m.routing_key == "analytics.failed"
                assert m.headers["x-death"][0]["reason"] == "rejected"
                await m.ack()
            assert sub.handled == 1 and sub.failed == 1

    run(main())


def test_subscribe_requeues_on_failure_without_a_dlx(topology: Topology, amqp_url: str, vhost: str) -> None:
    async def main() -> None:
        seen: list[bool] = []
        done = asyncio.Event()

        async def handler(m: Message) -> None:
            seen.append(m.redelivered)
            if not m.redelivered:
                raise RuntimeError("transient failure")
            done.set()

        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            await client.subscribe("tasks", handler)
            await client.publish("work", "task", {"job": 1})
            await asyncio.wait_for(done.wait(), 10)
        assert seen == [False, True]

    run(main())


def test_retry_policy_delays_then_dead_letters(topology: Topology, amqp_url: str, vhost: str) -> None:
    async def main() -> None:
        attempts: list[tuple[float, Any]] = []

        def handler(m: Message) -> None:
            attempts.append((time.monotonic(), m.headers.get("x-retry-count")))
            raise ValueError("always fails")

        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            await client.subscribe("retrying", handler)
            await client.publish("", "retrying", {"n": 1})
            async with client.consume("dead-letters") as dead:
                m = await dead.get(15)
                assert m is not None and m.json() == {"n": 1}
                assert m.routing_key == "retrying.failed" and m.headers["x-retry-count"] == 2
                await m.ack()
        assert [count for _, count in attempts] == [None, 1, 2]
        assert attempts[1][0] - attempts[0][0] >= 0.18
        assert attempts[2][0] - attempts[1][0] >= 0.38

    run(main())


def test_rpc_over_direct_reply_to(topology: Topology, amqp_url: str, vhost: str) -> None:
    async def main() -> None:
        def fib(m: Message) -> dict[str, int]:
            n = m.json()["n"]
            if n < 0:
                raise ValueError("negative")
            a, b = 0, 1
            for _ in range(n):
                a, b = b, a + b
            return {"fib": a}

        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            with pytest.raises(RpcTimeout):
                await client.rpc("rpc_queue", {"n": 1}, timeout=0.3)  # nobody serves yet
            client.vhost.queues["ghost"] = Queue("ghost")  # declared in the files, not on the broker
            with pytest.raises(UnroutableError, match="broker returned"):
                await client.rpc("ghost", {"n": 1}, timeout=5)
            async with connect(topology, vhost=vhost, url=amqp_url) as server:
                await server.serve("rpc_queue", fib)

                # the request that timed out above (its expiration passed) leaves the queue before new ones
                async def gone() -> bool:
                    return await depth(amqp_url, vhost, "rpc_queue") == 0

                await wait_until(gone, what="rpc_queue empty")
                replies = await asyncio.gather(*(client.rpc("rpc_queue", {"n": n}, timeout=5) for n in range(20)))
                assert [r["fib"] for r in replies][:8] == [0, 1, 1, 2, 3, 5, 8, 13]
                assert (await client.rpc("rpc_queue", {"n": 30}))["fib"] == 832040
                with pytest.raises(RemoteError, match="ValueError: negative"):
                    await client.rpc("rpc_queue", {"n": -1})

    run(main())
