"""Interoperability with pika, a client nobody here wrote: properties and every field-table type survive
both ways (floats aside: pika cannot encode them and decodes AMQP doubles as ints)."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pika
from rt_helpers import make_topology

from topo.model import Queue
from topo.runtime import Properties, connect_sync

HEADERS: dict[str, Any] = {
    "string": "héllo wörld",
    "empty": "",
    "small": 7,
    "negative": -42,
    "int32": 2_000_000_000,
    "int64": 2**40,
    "true": True,
    "false": False,
    "decimal": decimal.Decimal("3.14"),
    "timestamp": dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
    "table": {"nested": {"deeper": {"n": 1, "s": "x"}}, "list": [1, 2]},
    "array": [1, "two", True, {"k": "v"}, [3, [4]]],
    "bytes": b"\x00\x01\xfe\xff",
    "void": None,
}


def pika_params(amqp_url: str) -> pika.URLParameters:
    return pika.URLParameters(amqp_url)


def test_runtime_to_pika(amqp_url: str, vhost: str) -> None:
    topology = make_topology(vhost, queues=[Queue("interop")])
    conn = pika.BlockingConnection(pika_params(amqp_url))
    ch = conn.channel()
    ch.queue_declare("interop", durable=True)
    with connect_sync(topology, vhost=vhost, url=amqp_url) as client:
        client.publish(
            "",
            "interop",
            {"hello": "pika"},
            headers=HEADERS,
            message_id="m-1",
            correlation_id="c-1",
            reply_to="replies",
            expiration="60000",
            priority=3,
            type="greeting",
            app_id="topo-tests",
            timestamp=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        )
    method, props, body = ch.basic_get("interop", auto_ack=True)
    conn.close()
    assert method is not None
    assert body == b'{"hello":"pika"}'
    assert props.content_type == "application/json"
    assert props.delivery_mode == 2
    assert (props.message_id, props.correlation_id, props.reply_to) == ("m-1", "c-1", "replies")
    assert (props.expiration, props.priority, props.type, props.app_id) == ("60000", 3, "greeting", "topo-tests")
    assert props.timestamp == int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())
    assert props.headers == HEADERS


def test_pika_to_runtime(amqp_url: str, vhost: str) -> None:
    topology = make_topology(vhost, queues=[Queue("interop")])
    conn = pika.BlockingConnection(pika_params(amqp_url))
    ch = conn.channel()
    ch.queue_declare("interop", durable=True)
    ch.basic_publish(
        "",
        "interop",
        b"\x00binary\xff",
        pika.BasicProperties(
            content_type="application/octet-stream",
            content_encoding="identity",
            headers=HEADERS,
            delivery_mode=2,
            priority=9,
            correlation_id="c-2",
            reply_to="r",
            expiration="5000",
            message_id="m-2",
            timestamp=1_700_000_000,
            type="t",
            user_id="guest",
            app_id="pika",
        ),
    )
    conn.close()
    with connect_sync(topology, vhost=vhost, url=amqp_url) as client:
        m = client.get("interop", timeout=5)
        assert m is not None
        m.ack()
    assert m.body == b"\x00binary\xff"
    assert m.headers == HEADERS
    assert m.properties == Properties(
        content_type="application/octet-stream",
        content_encoding="identity",
        headers=HEADERS,
        delivery_mode=2,
        priority=9,
        correlation_id="c-2",
        reply_to="r",
        expiration="5000",
        message_id="m-2",
        timestamp=dt.datetime.fromtimestamp(1_700_000_000, dt.UTC),
        type="t",
        user_id="guest",
        app_id="pika",
    )
