"""The protocol layer against the real broker: handshake, errors, confirms, frames, consumers, close."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from rt_helpers import run, vhost_url, wait_until

from topo.runtime import (
    AuthenticationError,
    ConnectionFailed,
    ConsumerCancelled,
    Message,
    NotFound,
    PreconditionFailed,
    Properties,
    PublishNacked,
    UnroutableError,
    parse_url,
)
from topo.runtime.connection import Connection


async def opened(url: str, **kw: Any) -> Connection:
    return await Connection(parse_url(url), reconnect=False, **kw).open()


def test_handshake_negotiates_and_closes_cleanly(amqp_url: str, mgmt: httpx.Client) -> None:
    async def main() -> None:
        conn = await opened(amqp_url + "?heartbeat=7&channel_max=100")
        assert conn.is_open
        assert conn.heartbeat == 7 and conn.channel_max == 100 and conn.frame_max == 131072
        assert conn.server_properties["product"] == "RabbitMQ"
        assert conn.server_properties["capabilities"]["consumer_cancel_notify"] is True
        await conn.close()
        assert not conn.is_open and conn.error is None

    run(main())


def test_wrong_password_is_an_authentication_error(broker: Any, vhost: str) -> None:
    url = vhost_url(broker.amqp_url.replace("guest:guest", "guest:wrong"), vhost)
    with pytest.raises(AuthenticationError, match="refused the login of 'guest'"):
        run(opened(url))


def test_unknown_vhost_fails_with_the_brokers_reason(broker: Any) -> None:
    with pytest.raises(ConnectionFailed, match="530 NOT_ALLOWED"):
        run(opened(vhost_url(broker.amqp_url, "no-such-vhost-xyz")))


def test_nothing_listening_is_a_connection_failure() -> None:
    with pytest.raises(ConnectionFailed, match="cannot connect"):
        run(opened("amqp://guest:guest@127.0.0.1:1/"))


def test_channel_close_from_the_broker_is_typed_and_other_channels_go_on(amqp_url: str) -> None:
    async def main() -> None:
        conn = await opened(amqp_url)
        ch = await conn.channel()
        with pytest.raises(NotFound) as info:
            await ch.queue_declare("missing", passive=True)
        assert info.value.reply_code == 404 and info.value.method == "Queue.Declare"
        assert "no queue 'missing'" in info.value.reply_text
        assert not ch.is_open
        ch2 = await conn.channel()
        await ch2.queue_declare("q1", durable=True)
        with pytest.raises(PreconditionFailed, match="inequivalent arg 'durable'") as info2:
            await ch2.queue_declare("q1", durable=False)
        assert info2.value.hint and "topo plan" in info2.value.hint
        ch3 = await conn.channel()
        assert ch3.number == ch.number  # a number is reused once its close completed
        await ch3.queue_delete("q1")
        await conn.close()

    run(main())


def test_confirms_are_pipelined_and_returns_fail_only_their_message(amqp_url: str) -> None:
    async def main() -> None:
        conn = await opened(amqp_url)
        ch = await conn.channel(confirms=True)
        await ch.queue_declare("work")
        futures = [
            ch.publish_nowait("", "work", b"m%d" % i, Properties(message_id=str(i), delivery_mode=2), mandatory=True)
            for i in range(2000)
        ]
        assert ch.outstanding == 2000  # nothing waited for a confirm before the next send
        bad = ch.publish_nowait("", "nowhere", b"x", Properties(message_id="lost"), mandatory=True)
        results = await asyncio.gather(*futures, bad, return_exceptions=True)  # type: ignore[arg-type]
        assert results[:-1] == [None] * 2000
        assert isinstance(results[-1], UnroutableError) and results[-1].returned
        assert "312 NO_ROUTE" in str(results[-1])
        _, count, _ = await ch.queue_declare("work", passive=True)
        assert count == 2000
        await conn.close()

    run(main())


def test_large_bodies_are_split_and_reassembled(broker: Any, vhost: str) -> None:
    async def main() -> None:
        conn = await opened(vhost_url(broker.amqp_url, vhost, frame_max=4096))
        assert conn.frame_max == 4096
        ch = await conn.channel(confirms=True)
        await ch.queue_declare("big")
        bodies = [b"", b"a", bytes(range(256)) * 4096, b"z" * (4096 - 8), b"y" * (4096 - 7)]
        for body in bodies:
            await ch.publish("", "big", body, Properties(headers={"n": len(body)}))
        got = []
        for _ in bodies:
            m = await ch.get("big")
            assert m is not None
            got.append(m.body)
            await m.ack()
        assert got == bodies
        await conn.close()

    run(main())


def test_consume_with_prefetch_and_manual_ack(amqp_url: str, mgmt: httpx.Client, vhost: str) -> None:
    async def main() -> None:
        conn = await opened(amqp_url)
        pub = await conn.channel(confirms=True)
        await pub.queue_declare("jobs")
        for i in range(50):
            pub.publish_nowait("", "jobs", b"%d" % i)
        await pub.wait_outstanding(0)
        ch = await conn.channel(prefetch=10)
        held: list[Message] = []
        await ch.consume("jobs", held.append)
        await wait_until(lambda: len(held) >= 10, what="the first 10 deliveries")
        await asyncio.sleep(0.2)  # deliberate: time for an 11th delivery to arrive, if the prefetch let it
        assert len(held) == 10  # prefetch caps unacked deliveries
        for m in held:
            await m.ack()
        while len(held) < 50:
            await asyncio.sleep(0.05)
            for m in held:
                if not m.settled:
                    await m.ack()
        assert [m.body for m in held] == [b"%d" % i for i in range(50)]

        async def drained() -> bool:
            _, count, consumers = await pub.queue_declare("jobs", passive=True)
            return count == 0 and consumers == 1

        await wait_until(drained, what="jobs empty, with its one consumer")
        await conn.close()

    run(main())


def test_consumer_cancel_notification(amqp_url: str, mgmt: httpx.Client, vhost: str) -> None:
    async def main() -> None:
        conn = await opened(amqp_url)
        ch = await conn.channel()
        await ch.queue_declare("doomed")
        cancelled: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()
        await ch.consume("doomed", lambda m: None, on_cancel=cancelled.set_result)
        mgmt.delete(f"/api/queues/{quote(vhost, safe='')}/doomed").raise_for_status()
        error = await asyncio.wait_for(cancelled, 10)
        assert isinstance(error, ConsumerCancelled)
        assert ch.is_open  # the channel stays usable: no CancelOk was sent
        await ch.queue_declare("after")
        await conn.close()

    run(main())


def test_connection_close_from_the_broker_is_typed(amqp_url: str, mgmt: httpx.Client) -> None:
    async def main() -> None:
        conn = await Connection(
            parse_url(amqp_url).__class__(**{**parse_url(amqp_url).__dict__, "client_name": "to-be-closed"}),
            reconnect=False,
        ).open()
        ch = await conn.channel()
        name = None
        for _ in range(100):
            for c in mgmt.get("/api/connections").json():
                if c.get("client_properties", {}).get("connection_name") == "to-be-closed":
                    name = c["name"]
            if name:
                break
            await asyncio.sleep(0.1)
        assert name
        mgmt.delete(f"/api/connections/{quote(name, safe='')}", headers={"X-Reason": "test says bye"})
        for _ in range(100):
            if conn.error is not None:
                break
            await asyncio.sleep(0.05)
        assert conn.error is not None and getattr(conn.error, "reply_code", None) == 320
        assert "test says bye" in str(conn.error)
        with pytest.raises(Exception, match="320"):
            await ch.queue_declare("x")

    run(main())


def test_nacks_fail_only_their_messages(amqp_url: str) -> None:
    async def main() -> None:
        conn = await opened(amqp_url)
        ch = await conn.channel(confirms=True)
        await ch.queue_declare("tiny", arguments={"x-max-length": 2, "x-overflow": "reject-publish"})
        futures = [ch.publish_nowait("", "tiny", b"%d" % i) for i in range(5)]
        results = await asyncio.gather(*futures, return_exceptions=True)  # type: ignore[arg-type]
        assert results[:2] == [None, None]
        assert all(isinstance(r, PublishNacked) for r in results[2:])
        assert (ch.confirmed, ch.nacked) == (2, 3)
        await ch.publish("", "work-elsewhere", b"x")  # unrouted, not mandatory: still confirmed
        await conn.close()

    run(main())


def test_acks_coalesce_only_over_settled_deliveries(amqp_url: str) -> None:
    async def main() -> None:
        conn = await opened(amqp_url)
        pub = await conn.channel(confirms=True)
        await pub.queue_declare("acks")
        for i in range(1, 11):
            pub.publish_nowait("", "acks", b"%d" % i)
        await pub.wait_outstanding(0)
        ch = await conn.channel(prefetch=20)
        got: list[Message] = []
        await ch.consume("acks", got.append)
        while len(got) < 10:
            await asyncio.sleep(0.05)
        sent: list[bytes] = []
        real_send = conn.send

        def spy(data: bytes) -> None:
            sent.append(data)
            real_send(data)

        conn.send = spy  # type: ignore[method-assign]
        for m in got:
            if m.body != b"4":
                await m.ack()  # 1-3 form a run; 4 is not settled; 5-10 go one by one

        def acks() -> list[tuple[int, int]]:
            return [(int.from_bytes(f[11:19], "big"), f[19]) for f in sent if f[7:11] == b"\x00\x3c\x00\x50"]

        await wait_until(lambda: len(acks()) >= 7, what="the Basic.Ack frames written")  # written on a later tick
        assert acks() == [(3, 1), (5, 0), (6, 0), (7, 0), (8, 0), (9, 0), (10, 0)]
        await ch.close()  # 4 goes back to the queue
        _, count, _ = await pub.queue_declare("acks", passive=True)
        assert count == 1
        m = await pub.get("acks")
        assert m is not None and m.body == b"4" and m.redelivered
        await m.ack()

        async def empty() -> bool:
            _, count, _ = await pub.queue_declare("acks", passive=True)
            return count == 0

        await wait_until(empty, what="acks empty once 4 is acked")
        await conn.close()

    run(main())


def test_names_pamqp_would_refuse_work_on_the_broker(amqp_url: str) -> None:
    async def main() -> None:
        conn = await opened(amqp_url)
        ch = await conn.channel(confirms=True)
        name = "commandes-été/✓ [v2]"
        await ch.exchange_declare("échange", "fanout")
        await ch.queue_declare(name)
        await ch.queue_bind(name, "échange")
        await ch.publish("échange", "clé", b"ok", mandatory=True)
        m = await ch.get(name, no_ack=True)
        assert m is not None and m.body == b"ok" and m.exchange == "échange" and m.routing_key == "clé"
        await conn.close()

    run(main())
